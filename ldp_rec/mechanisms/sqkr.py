"""SQKR: subsampled and quantised Kashin representation (Chen, Kairouz & Özgür 2020, "Breaking the
communication-privacy-accuracy trilemma", NeurIPS, Sec. 4, Alg. "SQKR").

Client with x, ‖x‖₂ ≤ C (clipped), u = x/C:

1. Kashin coefficients a ∈ R^N of u over a public tight frame U (d×N, N = 2^⌈log2 λd⌉), ``U a = u``,
   ``‖a‖_∞ ≤ c = K/√N`` (:mod:`.kashin`).
2. 1-bit unbiased quantisation: ``B_j = 1`` (value +c) w.p. ``(1 + a_j/c)/2``, else 0 (value −c).
3. k coordinates S ⊂ [N] uniform without replacement, ``k = min(⌈ε⌉, bits)``; S is independent of x.
4. 2^k-ary randomised response on the k-bit word ``W = Σ_i B_{S_i} 2^i``: keep w.p. κ = (e^ε − 1)/(e^ε + 2^k − 1),
   else uniform over all 2^k words; so P[Y = W] = p = e^ε/(e^ε + 2^k − 1), P[Y = y ≠ W] = q = 1/(e^ε + 2^k − 1).

Privacy: given S, ``P[Y = y | x] = q + (p − q) P[W = y | x] ∈ [q, p]``, and S does not depend on x, so
the transcript (S, Y) is exactly ε-LDP: "mechanism and code are one" (references.md §4).

Decoder: bit i of Y, as ±1 (Ỹ_i), has ``E[Ỹ_i | B] = (p − q) B̃_{S_i}`` (the 2^k − 1 other words
split evenly on every bit), so with ``v = (N/k) c/(p − q) Σ_i Ỹ_i e_{S_i}`` we get E[v] = a and
``Z = C U v`` is unbiased for x. MSE (exact, for this frame, whose columns all have norm² d/N):

    E‖Z − x‖² = C² [ N d c²/(k (p−q)²) + N(k−1)/(k(N−1)(p−q)) (‖u‖² − (d/N)‖a‖²) − ‖u‖² ],

and since ‖a‖ ≥ ‖u‖ the worst case over the unit sphere is bounded by replacing ‖a‖² with ‖u‖² = 1.

Shared randomness: the frame comes from ``seed`` (domain "sqkr"). The sampled coordinates come from
each client's shared key when ``keys`` are given (they cost no bits: the message is the k-bit Y), or
from the client's private rng otherwise (then S must be sent too: ``index_bits`` more bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import special

from .._validation import check_positive_int
from ..errors import DecodeError, ParameterError
from ..rec import randomness
from .base import Mechanism
from .gaussian import l2_clip
from .kashin import HadamardFrame, frame_size, kashin_coefficients, kashin_level


def sample_without_replacement(uniforms: np.ndarray, population: int) -> np.ndarray:
    """Rows of k distinct indices in [0, population), uniform over k-subsets, from uniforms ``(n, k)``.

    Floyd's algorithm, vectorised over rows (a loop over the k ≤ 62 draws only): step i draws
    t ∈ {0..N−k+i}; if t was already chosen, take N−k+i instead."""
    u = np.asarray(uniforms, dtype=np.float64)
    n, k = u.shape
    out = np.empty((n, k), dtype=np.int64)
    for i in range(k):
        top = population - k + i
        t = np.minimum((u[:, i] * (top + 1)).astype(np.int64), top)
        dup = np.any(out[:, :i] == t[:, None], axis=1) if i else np.zeros(n, dtype=bool)
        out[:, i] = np.where(dup, top, t)
    return out


@dataclass(frozen=True)
class SampledMessages:
    """SQKR transcript of n clients: ``payload`` (n,) int64 k-bit words, and ``coords`` (n, k) int64 —
    None when the coordinates are derived from shared keys (then they cost no bits)."""

    payload: np.ndarray
    coords: np.ndarray | None = None


@dataclass(frozen=True)
class SQKR(Mechanism):
    """ε-LDP SQKR with a k-bit message (module doc). ``bits`` caps k = min(⌈ε⌉, bits);
    ``redundancy`` λ sets N; ``seed`` keys the public frame; ``kashin_level`` is K (c = K/√N)."""

    epsilon: float
    dim: int
    bits: int = 8
    clip: float = 1.0
    redundancy: float = 2.0
    seed: int = 0
    kashin_level: float = field(default_factory=lambda: kashin_level(1 / math.sqrt(2), 0.8))
    kashin_delta: float = 0.8
    kashin_iterations: int = 12
    name: ClassVar[str] = "sqkr"

    def __post_init__(self) -> None:
        self._check_common()
        check_positive_int(self.bits, "bits")
        if self.bits > 62:
            raise ParameterError(f"bits must be <= 62 (int64 messages), got {self.bits}")
        for nm in ("clip", "kashin_level"):
            v = float(getattr(self, nm))
            if not (math.isfinite(v) and v > 0):
                raise ParameterError(f"{nm} must be finite and > 0, got {v!r}")
        if not (math.isfinite(float(self.redundancy)) and float(self.redundancy) >= 1):
            raise ParameterError(f"redundancy must be >= 1, got {self.redundancy!r}")
        if not 0 < float(self.kashin_delta) <= 1:
            raise ParameterError(f"kashin_delta must lie in (0, 1], got {self.kashin_delta!r}")
        check_positive_int(self.kashin_iterations, "kashin_iterations")
        N = frame_size(int(self.dim), float(self.redundancy))
        key = int(randomness.derive_key(int(self.seed), 0, 0, domain="sqkr"))
        object.__setattr__(self, "_frame", HadamardFrame(int(self.dim), N, key))

    # ---- parameters
    @property
    def frame(self) -> HadamardFrame:
        return self._frame

    @property
    def k(self) -> int:
        """Sampled coordinates = message bits: ``min(⌈ε⌉, bits, N)``."""
        return int(min(math.ceil(float(self.epsilon)), int(self.bits), self._frame.size))

    @property
    def level(self) -> float:
        """Quantisation level c = K/√N."""
        return float(self.kashin_level) / math.sqrt(self._frame.size)

    @property
    def rr_probabilities(self) -> tuple[float, float]:
        """(p, q) of the 2^k-ary RR: ``e^ε/(e^ε + 2^k − 1)`` and ``1/(e^ε + 2^k − 1)``."""
        m = 2.0**self.k - 1.0
        p = 1.0 / (1.0 + m * math.exp(-float(self.epsilon)))
        return p, p * math.exp(-float(self.epsilon))

    @property
    def message_bits(self) -> int:
        """Bits per client with shared coordinates: k."""
        return self.k

    @property
    def index_bits(self) -> int:
        """Extra bits when S is client-private: ⌈log2 C(N, k)⌉."""
        N, k = self._frame.size, self.k
        return int(math.ceil((special.gammaln(N + 1) - special.gammaln(k + 1) - special.gammaln(N - k + 1)) / math.log(2) - 1e-9))

    # ---- client side
    def coefficients(self, x) -> np.ndarray:
        """Kashin coefficients of the clipped, scaled inputs u = clip(x)/C: ``(n, N)``."""
        X, _ = self.check_input(x)
        U = l2_clip(X, float(self.clip)) / float(self.clip)
        return kashin_coefficients(U, self._frame, delta=float(self.kashin_delta), iterations=int(self.kashin_iterations))

    def _coords(self, n: int, keys, rng) -> np.ndarray:
        if keys is None:
            u = rng.random((n, self.k))
        else:
            k = np.asarray(keys, dtype=np.uint64).reshape(-1)
            if k.size != n:
                raise ParameterError(f"{k.size} keys for {n} clients")
            u = randomness.gather(k, np.zeros(n, dtype=np.int64), self.k, "uniform")
        return sample_without_replacement(u, self._frame.size)

    def bit_probabilities(self, x, coords) -> np.ndarray:
        """``P[B_{S_i} = 1 | x] = (1 + a/c)/2`` at the sampled coordinates, clipped to [0, 1] (a
        coefficient beyond the level, never observed with the defaults, would be clipped)."""
        a = self.coefficients(x)
        sel = np.take_along_axis(a, np.asarray(coords, dtype=np.int64), axis=1)
        return np.clip(0.5 * (1.0 + sel / self.level), 0.0, 1.0)

    def encode(self, x, *, rng=None, keys=None):
        """With ``keys`` (one uint64 per client; S is derived from them): the k-bit messages, int64 ``(n,)``.
        Without: :class:`SampledMessages` holding the messages and the private coordinates."""
        rng = np.random.default_rng(rng)
        X, _ = self.check_input(x)
        n = X.shape[0]
        coords = self._coords(n, keys, rng)
        bits = rng.random((n, self.k)) < self.bit_probabilities(X, coords)
        word = (bits.astype(np.int64) << np.arange(self.k, dtype=np.int64)).sum(axis=1)
        p, q = self.rr_probabilities
        keep = rng.random(n) < p - q  # κ = (e^ε − 1)/(e^ε + 2^k − 1)
        y = np.where(keep, word, rng.integers(0, 1 << self.k, size=n, dtype=np.int64))
        return y if keys is not None else SampledMessages(y, coords)

    # ---- server side
    def decode(self, messages, keys=None) -> np.ndarray:
        """Unbiased estimates ``(n, d)``: ``C U v`` with ``v = (N/k) c/(p − q) Σ_i Ỹ_i e_{S_i}``.
        ``messages`` is the int64 array of :meth:`encode` with keys (pass the same keys) or a
        :class:`SampledMessages`."""
        if not isinstance(messages, SampledMessages):
            messages = SampledMessages(np.asarray(messages))
        y = np.asarray(messages.payload)
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DecodeError("payload must be a 1-D integer array")
        if np.any(y < 0) or np.any(y >= (1 << self.k)):
            raise DecodeError(f"payload out of range [0, 2^{self.k})")
        n = y.size
        if messages.coords is None:
            if keys is None:
                raise DecodeError("coordinates are shared: decode needs the clients' keys")
            coords = self._coords(n, keys, None)
        else:
            coords = np.asarray(messages.coords)
            N = self._frame.size
            if coords.shape != (n, self.k) or coords.dtype.kind not in "iu" or np.any(coords < 0) or np.any(coords >= N):
                raise DecodeError(f"coords must be (n, {self.k}) integers in [0, {N})")
            if self.k > 1 and np.any(np.diff(np.sort(coords, axis=1), axis=1) == 0):
                raise DecodeError("coords must be distinct within a message")
        signs = 2.0 * ((y[:, None] >> np.arange(self.k, dtype=np.int64)) & 1) - 1.0
        p, q = self.rr_probabilities
        v = np.zeros((n, self._frame.size))
        np.put_along_axis(v, coords.astype(np.int64), signs * (self._frame.size / self.k * self.level / (p - q)), axis=1)
        return float(self.clip) * self._frame.synthesis(v)

    def privatize(self, x, *, rng=None) -> np.ndarray:
        """``decode(encode(x))`` with private coordinates."""
        X, single = self.check_input(x)
        est = self.decode(self.encode(X, rng=rng))
        return est[0] if single else est

    def message_log_probs(self, x, coords) -> np.ndarray:
        """Exact ``log P[Y = y | x, S]`` for every word y: ``(n, 2^k)``; used by the privacy audit."""
        pb = self.bit_probabilities(x, coords)  # (n, k)
        words = np.arange(1 << self.k, dtype=np.int64)
        wb = (words[:, None] >> np.arange(self.k)) & 1  # (2^k, k)
        pw = np.prod(np.where(wb[None] == 1, pb[:, None, :], 1.0 - pb[:, None, :]), axis=2)
        p, q = self.rr_probabilities
        return np.log(q + (p - q) * pw)

    # ---- accuracy
    def mse(self, x) -> np.ndarray:
        """Exact per-input ``E‖Z − x‖²`` (module doc), for x in the ball; ``(n,)``."""
        X, _ = self.check_input(x)
        C = float(self.clip)
        u = l2_clip(X, C) / C
        a = self.coefficients(X)
        return C * C * self._mse_terms(np.sum(u * u, axis=1), np.sum(a * a, axis=1))

    def _mse_terms(self, u2, a2):
        N, d, k, c = self._frame.size, int(self.dim), self.k, self.level
        p, q = self.rr_probabilities
        cross = 0.0 if k == 1 else N * (k - 1) / (k * (N - 1) * (p - q))
        return N * d * c * c / (k * (p - q) ** 2) + cross * (u2 - d / N * a2) - u2

    def output_norm_bound(self) -> float:
        """Exact maximum: ``C·√k·(N/k)·c/(p − q)``: the decoded v has k entries of that magnitude
        (:meth:`decode`) and the tight Hadamard frame's synthesis has operator norm 1."""
        p, q = self.rr_probabilities
        return float(self.clip) * math.sqrt(self.k) * self._frame.size / self.k * self.level / (p - q)

    def expected_mse(self) -> float:
        """Upper bound on ``E‖Z − x‖²`` over ‖x‖ = C (exact when k = 1): ‖a‖² ≥ ‖u‖² = 1 in :meth:`mse`."""
        return float(self.clip) ** 2 * float(self._mse_terms(1.0, 1.0))
