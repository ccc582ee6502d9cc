"""The Laplace mechanism on the L1 ball, as a density-ratio mechanism.

A client clips x to L1 norm C, ``u = x · min(1, C/‖x‖₁)``, and releases

    Z = u + (L_1, …, L_d),   L_j i.i.d. Laplace(0, b),   b = 2C/ε.

Privacy (Dwork, McSherry, Nissim & Smith 2006, Sec. 3; Dwork & Roth 2014, Thm 3.6): for inputs u, u'
of the ball, ``log q(z|u)/q(z|u') = Σ_j (|z_j − u'_j| − |z_j − u_j|)/b ≤ ‖u − u'‖₁/b ≤ 2C/b = ε``. The
*replace-one* sensitivity of the L1 ball of radius C is its diameter 2C (u = C e₁, u' = −C e₁ attain
it), so the scale C/ε that is often quoted gives only 2ε-LDP.

Density-ratio form (what REC compresses): the reference is ``P = Laplace(0, b)^d``
(:class:`LaplaceReference`) and

    log r_u(z) = log q(z|u)/p(z) = Σ_j (|z_j| − |z_j − u_j|)/b ∈ [−‖u‖₁/b, ‖u‖₁/b] ⊆ [−ε/2, ε/2],

so ``c_max/c_min ≤ e^ε`` and D_∞(Q_u ‖ P) ≤ ε/2. ``Z`` is unbiased for u, hence for x whenever
‖x‖₁ ≤ C; ``E‖Z − u‖² = 2 b² d`` for every input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from .._validation import check_positive_int, check_positive_float
from ..errors import InputError, ParameterError
from .base import RatioMechanism, Reference


def laplace_ppf(uniform, scale: float) -> np.ndarray:
    """Inverse CDF of Laplace(0, scale) at ``uniform`` in (0, 1):
    ``b log(2w)`` for w < ½ and ``−b log(2(1 − w))`` otherwise (log1p form near w = ½)."""
    w = np.asarray(uniform, dtype=np.float64)
    s = w - 0.5
    # |z| = −b log(1 − 2|s|), with the sign of s; log1p keeps precision near the median.
    return -scale * np.sign(s) * np.log1p(-2.0 * np.abs(s))


@dataclass(frozen=True)
class LaplaceReference(Reference):
    """P = Laplace(0, scale)^dim, built from ``dim`` shared uniforms by the inverse CDF."""

    dim: int
    scale: float = 1.0
    base: ClassVar[Literal["normal", "uniform"]] = "uniform"

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "dim")
        if not (math.isfinite(float(self.scale)) and float(self.scale) > 0):
            raise ParameterError(f"scale must be finite and > 0, got {self.scale!r}")

    def transform(self, base: np.ndarray) -> np.ndarray:
        return laplace_ppf(base, float(self.scale))

    def logpdf(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        b = float(self.scale)
        return -np.sum(np.abs(z), axis=-1) / b - self.dim * math.log(2.0 * b)


def l1_clip(X: np.ndarray, clip: float) -> np.ndarray:
    """Rows of ``X`` scaled onto the L1 ball of radius ``clip`` when they lie outside it."""
    norms = np.sum(np.abs(X), axis=-1, keepdims=True)
    return X * np.minimum(1.0, clip / np.where(norms > 0, norms, 1.0))


@dataclass(frozen=True)
class LaplaceMechanism(RatioMechanism):
    """ε-LDP Laplace mechanism on the L1 ball of radius ``clip`` (module doc): b = 2C/ε."""

    epsilon: float
    dim: int
    clip: float = 1.0
    name: ClassVar[str] = "laplace"

    def __post_init__(self) -> None:
        self._check_common()
        check_positive_float(self.clip, "clip")

    @property
    def scale(self) -> float:
        """Laplace scale ``b = 2C/ε`` (replace-one sensitivity 2C of the L1 ball)."""
        return 2.0 * float(self.clip) / float(self.epsilon)

    @property
    def reference(self) -> LaplaceReference:
        return LaplaceReference(int(self.dim), self.scale)

    def prepare(self, x, *, rng=None) -> np.ndarray:
        """Clip to the L1 ball of radius C (deterministic)."""
        X, _ = self.check_input(x)
        return l1_clip(X, float(self.clip))

    def sample(self, u, *, rng=None) -> np.ndarray:
        """``u + Laplace(0, b)^d`` per row (inverse-CDF draws)."""
        rng = np.random.default_rng(rng)
        U, _ = self.check_input(u)
        return U + laplace_ppf(rng.random(U.shape), self.scale)

    def log_ratio(self, z, u) -> np.ndarray:
        """``Σ_j (|z_j| − |z_j − u_j|)/b``: z ``(..., m, d)`` against u ``(..., d)`` → ``(..., m)``."""
        z = np.asarray(z, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
        if z.ndim < 2 or z.shape[-1] != self.dim or u.shape[-1:] != (self.dim,):
            raise InputError(f"log_ratio needs z (..., m, {self.dim}) and u (..., {self.dim}), got {z.shape}, {u.shape}")
        return np.sum(np.abs(z) - np.abs(z - u[..., None, :]), axis=-1) / self.scale

    def log_ratio_bounds(self) -> tuple[float, float]:
        """``(−ε/2, ε/2)``: ‖u‖₁ ≤ C and b = 2C/ε."""
        h = 0.5 * float(self.epsilon)
        return (-h, h)

    def unbias(self, v) -> np.ndarray:
        """Identity: the noise has mean zero."""
        return np.asarray(v, dtype=np.float64)

    def expected_mse(self) -> float:
        """``E‖Z − x‖² = 2 b² d`` for every x in the L1 ball (the Laplace variance is 2b²)."""
        return 2.0 * self.scale**2 * int(self.dim)

    def output_norm_bound(self) -> float:
        """``C + b·g`` with g the upper 1e-12 quantile of Gamma(d, 1): ‖Z‖₂ ≤ ‖u‖₂ + ‖noise‖₁ and
        ‖noise‖₁/b = Σ|L_j| ~ Gamma(d, 1)."""
        from scipy import stats

        from .base import OUTPUT_TAIL

        return float(self.clip) + self.scale * float(stats.gamma.isf(OUTPUT_TAIL, int(self.dim)))
