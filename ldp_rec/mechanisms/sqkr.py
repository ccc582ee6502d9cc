"""SQKR: subsampled and quantised Kashin representation (Chen, Kairouz & Özgür 2020, "Breaking the
communication-privacy-accuracy trilemma", NeurIPS, Sec. 4, Alg. "SQKR").

Client with x, ‖x‖₂ ≤ C (clipped), u = x/C:

1. Kashin coefficients a ∈ R^N of u over a public tight frame U (d×N, N = 2^⌈log2 λd⌉), ``U a = u``,
   ``‖a‖_∞ ≤ c = K/√N`` (:mod:`.kashin`).
2. 1-bit unbiased quantisation: ``B_j = 1`` (value +c) w.p. ``(1 + a_j/c)/2``, else 0 (value −c).
3. k coordinates S ⊂ [N] uniform without replacement, ``k = min(⌈ε⌉, bits)`` (or ``coordinates``); S is
   independent of x.
4. 2^k-ary randomised response on the k-bit word ``W = Σ_i B_{S_i} 2^i``: keep w.p. κ = (e^ε − 1)/(e^ε + 2^k − 1),
   else uniform over all 2^k words; so P[Y = W] = p = e^ε/(e^ε + 2^k − 1), P[Y = y ≠ W] = q = 1/(e^ε + 2^k − 1).

Privacy: given S, ``P[Y = y | x] = q + (p − q) P[W = y | x] ∈ [q, p]``, and S does not depend on x, so
the transcript (S, Y) is exactly ε-LDP: "mechanism and code are one" (references.md §4).

Decoder: bit i of Y, as ±1 (Ỹ_i), has ``E[Ỹ_i | B] = (p − q) B̃_{S_i}`` (the 2^k − 1 other words
split evenly on every bit), so with ``v = (N/k) c/(p − q) Σ_i Ỹ_i e_{S_i}`` we get E[v] = a and
``Z = C U v`` is unbiased for x. MSE (exact, for this frame, whose columns all have norm² d/N):

    E‖Z − x‖² = C² [ N d c²/(k (p−q)²) + N(k−1)/(k(N−1)(p−q)) (‖u‖² − (d/N)‖a‖²) − ‖u‖² ],

and since ‖a‖ ≥ ‖u‖ the worst case over the unit sphere is bounded by replacing ‖a‖² with ‖u‖² = 1.
The leading term is ``d K²/(k (p − q)²)``: the error scales with K² and not otherwise with N.
If a coefficient exceeds c it is clipped, the quantiser's mean is ``ā = clip(a, ±c)`` and ``E[Z] = C U ā``;
:meth:`SQKR.moments` gives ``E[Z]`` and ``E‖Z‖²`` for any frame in that case (``Σ_j ā_j² ‖u_j‖²`` in
place of ``(d/N)‖a‖²``), so the closed form also covers the biased faithful variant.

Settings. The class defaults are the setting of ldp-rec's wire format v1 (Hadamard frame without input
signs, λ = 2, relative truncation with δ = 0.8, K = K(1/√2, 0.8) ≈ 3.82), kept so that stored payloads and
the known-answer vectors decode unchanged; it is unbiased but its level costs ≈ 4× the published error.
Changing the default to :meth:`SQKR.bounded` needs a wire-format version bump (tests/test_known_answers.py).

Representations (``representation``):

* ``"bounded"`` (:meth:`SQKR.bounded`): :func:`~.kashin.bounded_coefficients` over a :class:`~.kashin.HadamardFrame`
  with redundancy λ = 8 and level K = 1.7 (2.0 for N < 512, :func:`default_kashin_level`). At λ = 8
  the relative truncation (δ = 1, 8 steps) already stays below
  1.7 on every input we could construct (max ‖a‖_∞√N ≈ 1.55 on the DME benchmark, ≈ 1.67 on adversarial
  unit inputs at d = 500), and rows above the level are refined by projection onto the box, which succeeds
  whenever a representation within the level exists. A row that still does not fit (never observed) is
  clipped, i.e. biased; :meth:`SQKR.overflow` reports such rows. Compared with Chen et al.'s code
  (K ≈ 1.86 with clipping) the variance is (1.7/1.86)² ≈ 0.83 of theirs, and there is no bias.
* ``"kashin"``: the plain truncated iteration (:func:`~.kashin.kashin_coefficients`, either schedule),
  clipped at the level by the quantiser when it exceeds it. :meth:`SQKR.chen_kairouz_ozgur` is the
  authors' exact setting (dense Haar frame, N = 2^(⌈log2 d⌉+1), fixed schedule η = 0.4, δ = 0.8, ⌊ln N⌋
  steps, K = 1/((1−η)√δ) ≈ 1.86, k = bits): on the DME benchmark 3–4% of its coefficients are clipped and
  the mean is biased by ≈ 4% of its norm (measured; simulations/published_baselines.md). Their code samples
  the k coordinates with replacement; we sample without (the difference in MSE is O(k²/N) < 1% here).

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
from .kashin import HaarFrame, HadamardFrame, bounded_coefficients, frame_size, kashin_coefficients, kashin_level


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


def default_kashin_level(size: int) -> float:
    """Default level K of the bounded representation for a frame of N = ``size`` columns: 1.7 for
    N ≥ 512, 2.0 below (measured worst cases of the relative truncation at λ = 8 on adversarial unit
    inputs: 1.46 at N = 32, 1.80 at N = 128, 1.66–1.67 at N = 512–4096; module doc)."""
    return 1.7 if int(size) >= 512 else 2.0


@dataclass(frozen=True)
class SampledMessages:
    """SQKR transcript of n clients: ``payload`` (n,) int64 k-bit words, and ``coords`` (n, k) int64 —
    None when the coordinates are derived from shared keys (then they cost no bits)."""

    payload: np.ndarray
    coords: np.ndarray | None = None


@dataclass(frozen=True)
class SQKR(Mechanism):
    """ε-LDP SQKR with a k-bit message (module doc). ``bits`` caps k = min(⌈ε⌉, bits) (``coordinates``
    sets k directly); ``redundancy`` λ sets N; ``seed`` keys the public frame (``frame_kind`` "hadamard"
    or "haar"); ``kashin_level`` is K (c = K/√N); ``representation`` "bounded" or "kashin" with
    ``kashin_schedule`` "relative" or "fixed" (η = ``kashin_eta``). The repr (bound into the codec's
    payload tag) lists the fields added after wire format v1 only when they differ from their defaults,
    so v1 payloads keep their tags."""

    epsilon: float
    dim: int
    bits: int = 8
    clip: float = 1.0
    redundancy: float = 2.0
    seed: int = 0
    kashin_level: float = field(default_factory=lambda: kashin_level(1 / math.sqrt(2), 0.8))
    kashin_delta: float = 0.8
    kashin_iterations: int = 12
    representation: str = "kashin"
    frame_kind: str = "hadamard-v1"
    kashin_schedule: str = "relative"
    kashin_eta: float = 0.4
    coordinates: int | None = None
    name: ClassVar[str] = "sqkr"

    @classmethod
    def bounded(cls, epsilon: float, dim: int, *, bits: int = 8, clip: float = 1.0, seed: int = 0,
                redundancy: float = 8.0) -> "SQKR":
        """ldp-rec's unbiased SQKR at a lower level (module doc): signed Hadamard frame with λ = 8, relative
        truncation (δ = 1, 8 steps) refined by projection, K = :func:`default_kashin_level` (1.7)."""
        K = default_kashin_level(frame_size(int(dim), float(redundancy)))
        return cls(epsilon=epsilon, dim=dim, bits=bits, clip=clip, redundancy=redundancy, seed=seed, kashin_level=K,
                   kashin_delta=1.0, kashin_iterations=8, representation="bounded", frame_kind="hadamard")

    @classmethod
    def chen_kairouz_ozgur(cls, epsilon: float, dim: int, *, bits: int = 8, clip: float = 1.0, seed: int = 0) -> "SQKR":
        """The authors' exact setting (faithful baseline; module doc): biased by clipping on some inputs."""
        N = frame_size(int(dim), 2.0)
        return cls(epsilon=epsilon, dim=dim, bits=bits, clip=clip, redundancy=2.0, seed=seed,
                   kashin_level=kashin_level(0.4, 0.8), kashin_delta=0.8, kashin_iterations=max(1, int(math.log(N))),
                   representation="kashin", frame_kind="haar", kashin_schedule="fixed", kashin_eta=0.4,
                   coordinates=bits)

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
        for nm, allowed in (("representation", ("bounded", "kashin")), ("frame_kind", ("hadamard", "hadamard-v1", "haar")),
                            ("kashin_schedule", ("relative", "fixed"))):
            if getattr(self, nm) not in allowed:
                raise ParameterError(f"{nm} must be one of {allowed}, got {getattr(self, nm)!r}")
        if not 0 < float(self.kashin_eta) < 1:
            raise ParameterError(f"kashin_eta must lie in (0, 1), got {self.kashin_eta!r}")
        if self.coordinates is not None:
            check_positive_int(self.coordinates, "coordinates")
            if self.coordinates > 62:
                raise ParameterError(f"coordinates must be <= 62 (int64 messages), got {self.coordinates}")
        N = frame_size(int(self.dim), float(self.redundancy))
        key = int(randomness.derive_key(int(self.seed), 0, 0, domain="sqkr"))
        if self.frame_kind == "haar":
            frame = HaarFrame(int(self.dim), N, key)
        else:
            frame = HadamardFrame(int(self.dim), N, key, signed_inputs=self.frame_kind == "hadamard")
        object.__setattr__(self, "_frame", frame)
        K = float(self.kashin_level)
        object.__setattr__(self, "_K", K)

    def __repr__(self) -> str:
        v1 = ("epsilon", "dim", "bits", "clip", "redundancy", "seed", "kashin_level", "kashin_delta", "kashin_iterations")
        later = {"representation": "kashin", "frame_kind": "hadamard-v1", "kashin_schedule": "relative",
                 "kashin_eta": 0.4, "coordinates": None}
        parts = [f"{k}={getattr(self, k)!r}" for k in v1]
        parts += [f"{k}={getattr(self, k)!r}" for k, d in later.items() if getattr(self, k) != d]
        return f"SQKR({', '.join(parts)})"

    # ---- parameters
    @property
    def frame(self) -> HadamardFrame | HaarFrame:
        return self._frame

    @property
    def k(self) -> int:
        """Sampled coordinates = message bits: ``min(⌈ε⌉, bits, N)``, or ``min(coordinates, N)``."""
        if self.coordinates is not None:
            return int(min(int(self.coordinates), self._frame.size))
        return int(min(math.ceil(float(self.epsilon)), int(self.bits), self._frame.size))

    @property
    def level(self) -> float:
        """Quantisation level c = K/√N."""
        return self._K / math.sqrt(self._frame.size)

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
        """Kashin coefficients of the clipped, scaled inputs u = clip(x)/C: ``(n, N)`` (module doc,
        ``representation``). Not clipped to the level: see :meth:`overflow`."""
        X, _ = self.check_input(x)
        U = l2_clip(X, float(self.clip)) / float(self.clip)
        kw = dict(delta=float(self.kashin_delta), iterations=int(self.kashin_iterations))
        if self.representation == "bounded":
            return bounded_coefficients(U, self._frame, bound=self.level, **kw)[0]
        return kashin_coefficients(U, self._frame, schedule=self.kashin_schedule, eta=float(self.kashin_eta), **kw)

    def overflow(self, x) -> np.ndarray:
        """Per input, the fraction of its N coefficients beyond the level c (these are clipped, which
        biases the output): 0 for every input we know of with the default representation."""
        a = self.coefficients(x)
        return np.mean(np.abs(a) > self.level * (1 + 1e-12), axis=1)

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
        coefficient beyond the level is clipped: :meth:`overflow`)."""
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
    def moments(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(E[Z], E‖Z‖²)`` per input, ``(n, d)`` and ``(n,)``, with ā = clip(a, ±c) (module doc):

        ``E[Z] = C U ā``,  ``E‖Z‖² = C² [N d c²/(k (p−q)²) + N(k−1)/(k(N−1)(p−q)) (‖U ā‖² − Σ_j ā_j² ‖u_j‖²)]``
        (exact for any tight frame: ``Σ_j ‖u_j‖² = d``)."""
        X, _ = self.check_input(x)
        C = float(self.clip)
        a = np.clip(self.coefficients(X), -self.level, self.level)
        mu = self._frame.synthesis(a)
        if isinstance(self._frame, HadamardFrame):
            diag = np.sum(a * a, axis=1) * (int(self.dim) / self._frame.size)
        else:
            diag = (a * a) @ np.sum(self._frame.u ** 2, axis=0)
        N, d, k, c = self._frame.size, int(self.dim), self.k, self.level
        p, q = self.rr_probabilities
        cross = 0.0 if k == 1 else N * (k - 1) / (k * (N - 1) * (p - q))
        second = N * d * c * c / (k * (p - q) ** 2) + cross * (np.sum(mu * mu, axis=1) - diag)
        return C * mu, C * C * second

    def mse(self, x) -> np.ndarray:
        """Exact per-input ``E‖Z − clip(x)‖²`` (module doc; includes the bias of clipped coefficients); ``(n,)``."""
        X, _ = self.check_input(x)
        xc = l2_clip(X, float(self.clip))
        mu, second = self.moments(X)
        return second - 2 * np.sum(mu * xc, axis=1) + np.sum(xc * xc, axis=1)

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
        """Upper bound on ``E‖Z − x‖²`` over ‖x‖ = C (exact when k = 1) for inputs whose coefficients fit
        the level (no clipping): ‖a‖² ≥ ‖u‖² = 1 in the module doc's formula."""
        return float(self.clip) ** 2 * float(self._mse_terms(1.0, 1.0))
