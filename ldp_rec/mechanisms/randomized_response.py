"""Randomised response: binary and k-ary on categories, and a one-coordinate vector version.

**k-ary RR** (Warner 1965; Kairouz, Oh & Viswanath 2014/2016, "Extremal mechanisms", Sec. 5.1; Wang et
al. 2017 "GRR"): on inputs in {0, …, k−1} report the true value with probability
``p = e^ε/(e^ε + k − 1)`` and each other value with probability ``q = 1/(e^ε + k − 1)``; p/q = e^ε, so it
is exactly ε-LDP. With ``e_y`` the one-hot vector of the report, ``E[e_y] = (p − q) e_x + q 𝟙``, hence

    f̂(y) = (e_y − q 𝟙)/(p − q)

is an unbiased estimate of the one-hot input, and averaging it over n users estimates the frequency
vector f with ``Var f̂_j = [f_j p(1 − p) + (1 − f_j) q(1 − q)] / (n (p − q)²)``.

**CoordinateRR** (name "rr"; Duchi, Jordan & Wainwright 2013/2018 Sec. 4.2 for the sampled-coordinate
idea, here with binary RR): for x ∈ [−1, 1]^d (after clipping to the L∞ box of radius C and dividing by
C) draw j uniform on {1..d} (client-private, independent of x), round x_j to s ∈ {±1} with
P[s = +1] = (1 + x_j)/2, flip s with probability 1/(e^ε + 1), and output

    Z = C d · (e^ε + 1)/(e^ε − 1) · s' e_j,

which is unbiased: E[s' | x_j] = x_j (e^ε − 1)/(e^ε + 1). Rounding and RR combine into one Bernoulli:
``P[s' = +1] = ½ + ½ x_j (e^ε − 1)/(e^ε + 1)``.

Density-ratio form: P is uniform on the 2d signed basis vectors {s e_j}, and
``r_x(s e_j) = 1 + s x_j (e^ε − 1)/(e^ε + 1) ∈ [2/(e^ε + 1), 2e^ε/(e^ε + 1)]``, a spread of exactly e^ε
(pure ε-LDP, attained by x_j = ±1). ``‖Z‖ = C d (e^ε + 1)/(e^ε − 1)`` always, so
``E‖Z − x‖² = C² d² ((e^ε + 1)/(e^ε − 1))² − ‖x‖²``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from .._validation import check_epsilon, check_positive_int, check_positive_float
from ..errors import InputError, ParameterError
from .base import PrivacyGuarantee, RatioMechanism, Reference

# --------------------------------------------------------------------------- categorical RR


def rr_probabilities(epsilon: float, k: int) -> tuple[float, float]:
    """``(p, q) = (e^ε, 1)/(e^ε + k − 1)``: probability of the true value and of each other value."""
    eps = check_epsilon(epsilon)
    k = check_positive_int(k, "k", minimum=2)
    # 1/(1 + (k−1)e^{−ε}) is overflow-free for large ε
    p = 1.0 / (1.0 + (k - 1) * math.exp(-eps))
    q = math.exp(-eps) * p
    return p, q


def _check_categories(values, k: int) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind not in "iu":
        if v.dtype.kind == "f" and np.all(np.isfinite(v)) and np.all(v == np.round(v)):
            v = v.astype(np.int64)
        else:
            raise InputError(f"categorical values must be integers in [0, {k}), got dtype {v.dtype}")
    if v.size and (v.min() < 0 or v.max() >= k):
        raise InputError(f"categorical values must lie in [0, {k})")
    return v.astype(np.int64, copy=False)


@dataclass(frozen=True)
class KaryRR:
    """ε-LDP k-ary randomised response on {0, …, k−1} (module doc)."""

    epsilon: float
    k: int
    name: ClassVar[str] = "kary-rr"

    def __post_init__(self) -> None:
        rr_probabilities(self.epsilon, self.k)

    @property
    def probabilities(self) -> tuple[float, float]:
        """(p, q): keep probability and per-other-value probability."""
        return rr_probabilities(self.epsilon, self.k)

    @property
    def guarantee(self) -> PrivacyGuarantee:
        return PrivacyGuarantee(float(self.epsilon))

    def privatize(self, values, *, rng=None) -> np.ndarray:
        """Reports, same shape as ``values``: the true value w.p. p, else uniform over the other k − 1
        (drawn as ``(x + 1 + U{0..k−2}) mod k``)."""
        rng = np.random.default_rng(rng)
        v = _check_categories(values, int(self.k))
        p, _ = self.probabilities
        keep = rng.random(v.shape) < p
        other = (v + 1 + rng.integers(0, int(self.k) - 1, size=v.shape)) % int(self.k)
        return np.where(keep, v, other)

    def log_prob(self, reports, values) -> np.ndarray:
        """``log P[report | value]`` (broadcasting)."""
        y = _check_categories(reports, int(self.k))
        x = _check_categories(values, int(self.k))
        p, q = self.probabilities
        return np.where(y == x, math.log(p), math.log(q))

    def transition_matrix(self) -> np.ndarray:
        """``T[x, y] = P[report y | value x]``, shape (k, k)."""
        p, q = self.probabilities
        k = int(self.k)
        return np.full((k, k), q) + (p - q) * np.eye(k)

    def estimate_one_hot(self, reports) -> np.ndarray:
        """Unbiased one-hot estimates ``(e_y − q𝟙)/(p − q)``, shape ``reports.shape + (k,)``."""
        y = _check_categories(reports, int(self.k))
        p, q = self.probabilities
        onehot = (y[..., None] == np.arange(int(self.k))).astype(np.float64)
        return (onehot - q) / (p - q)

    def estimate_frequencies(self, reports) -> np.ndarray:
        """Unbiased frequency vector from n reports: ``(counts/n − q)/(p − q)``, shape (k,)."""
        y = _check_categories(reports, int(self.k)).reshape(-1)
        if y.size == 0:
            raise InputError("no reports")
        p, q = self.probabilities
        return (np.bincount(y, minlength=int(self.k)) / y.size - q) / (p - q)

    def frequency_variance(self, frequencies, n: int) -> np.ndarray:
        """Closed-form ``Var f̂_j = [f_j p(1−p) + (1−f_j) q(1−q)] / (n (p − q)²)`` per category."""
        f = np.asarray(frequencies, dtype=np.float64)
        n = check_positive_int(n, "n")
        p, q = self.probabilities
        return (f * p * (1 - p) + (1 - f) * q * (1 - q)) / (n * (p - q) ** 2)


@dataclass(frozen=True)
class BinaryRR(KaryRR):
    """ε-LDP binary randomised response (Warner 1965): k = 2, keep probability e^ε/(e^ε + 1)."""

    epsilon: float
    k: int = 2
    name: ClassVar[str] = "binary-rr"

    def __post_init__(self) -> None:
        if self.k != 2:
            raise ParameterError(f"BinaryRR has k = 2, got {self.k!r}")
        super().__post_init__()


# --------------------------------------------------------------------------- vector RR


@dataclass(frozen=True)
class SignedBasisReference(Reference):
    """P = uniform on the 2·dim signed basis vectors {±e_j}, from one shared uniform w:
    ``idx = ⌊2·dim·w⌋``, ``j = idx // 2``, sign ``+`` for even idx."""

    dim: int
    base: ClassVar[Literal["normal", "uniform"]] = "uniform"

    @property
    def base_width(self) -> int:
        return 1

    def transform(self, base: np.ndarray) -> np.ndarray:
        w = np.asarray(base, dtype=np.float64)[..., 0]
        idx = np.minimum((w * (2 * self.dim)).astype(np.int64), 2 * self.dim - 1)
        out = np.zeros(w.shape + (self.dim,))
        np.put_along_axis(out, (idx // 2)[..., None], np.where(idx % 2 == 0, 1.0, -1.0)[..., None], axis=-1)
        return out


@dataclass(frozen=True)
class CoordinateRR(RatioMechanism):
    """ε-LDP one-coordinate randomised response for vectors in the L∞ box of radius ``clip`` (module doc)."""

    epsilon: float
    dim: int
    clip: float = 1.0
    name: ClassVar[str] = "rr"

    def __post_init__(self) -> None:
        self._check_common()
        check_positive_float(self.clip, "clip")

    @property
    def contrast(self) -> float:
        """``(e^ε − 1)/(e^ε + 1) = tanh(ε/2)``: E[s'] = contrast · x_j."""
        return math.tanh(0.5 * float(self.epsilon))

    @property
    def reference(self) -> SignedBasisReference:
        return SignedBasisReference(int(self.dim))

    def prepare(self, x, *, rng=None) -> np.ndarray:
        """Clip each coordinate to [−C, C] and divide by C: u ∈ [−1, 1]^d (deterministic)."""
        X, _ = self.check_input(x)
        c = float(self.clip)
        return np.clip(X, -c, c) / c

    def sample(self, u, *, rng=None) -> np.ndarray:
        """Signed basis vector ``s' e_j``: j uniform, ``P[s' = +1] = ½(1 + contrast · u_j)``."""
        rng = np.random.default_rng(rng)
        U, _ = self.check_input(u)
        if np.any(np.abs(U) > 1.0):
            raise InputError("sample expects prepared inputs in [-1, 1]^d (call prepare first)")
        n = U.shape[0]
        j = rng.integers(0, int(self.dim), size=n)
        plus = rng.random(n) < 0.5 * (1.0 + self.contrast * U[np.arange(n), j])
        out = np.zeros_like(U)
        out[np.arange(n), j] = np.where(plus, 1.0, -1.0)
        return out

    def log_ratio(self, z, u) -> np.ndarray:
        """``log(1 + contrast · ⟨z, u⟩)`` for signed basis vectors z (where ⟨z, u⟩ = s u_j)."""
        z = np.asarray(z, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
        if z.ndim < 2 or z.shape[-1] != self.dim or u.shape[-1:] != (self.dim,):
            raise InputError(f"log_ratio needs z (..., m, {self.dim}) and u (..., {self.dim}), got {z.shape}, {u.shape}")
        return np.log1p(self.contrast * np.matmul(z, u[..., :, None])[..., 0])

    def log_ratio_bounds(self) -> tuple[float, float]:
        """``(log(2/(e^ε+1)), log(2e^ε/(e^ε+1)))``; their difference is exactly ε."""
        c = self.contrast
        return (math.log1p(-c), math.log1p(c))

    @property
    def output_scale(self) -> float:
        """``C d (e^ε + 1)/(e^ε − 1)``."""
        return float(self.clip) * int(self.dim) / self.contrast

    def unbias(self, v) -> np.ndarray:
        return np.asarray(v, dtype=np.float64) * self.output_scale

    def output_norm_bound(self) -> float:
        """Every output is a signed basis vector times :attr:`output_scale`: its norm, exactly."""
        return self.output_scale

    @property
    def message_bits(self) -> int:
        """Bits to send (j, s') when j is client-private: ``⌈log2(2d)⌉``."""
        return int(math.ceil(math.log2(2 * int(self.dim))))

    def expected_mse(self, *, norm: float | None = None) -> float:
        """``E‖Z − x‖² = C² d² ((e^ε+1)/(e^ε−1))² − ‖x‖²`` (exact for x in the box; ‖Z‖ is constant).
        ``norm`` is ‖x‖ (default C, a unit-norm input when C = 1); the worst case over the box is norm = 0."""
        r = float(self.clip) if norm is None else float(norm)
        if not (math.isfinite(r) and r >= 0):
            raise ParameterError(f"norm must be finite and >= 0, got {norm!r}")
        return self.output_scale**2 - r * r
