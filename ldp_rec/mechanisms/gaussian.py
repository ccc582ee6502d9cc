"""The Gaussian mechanism on the L2 ball with the *analytic* calibration of Balle & Wang (2018).

A client clips x to L2 norm C, ``u = x · min(1, C/‖x‖₂)``, and releases ``Z = u + N(0, σ² I_d)``. The
replace-one sensitivity of the L2 ball is Δ = 2C.

Analytic calibration (Balle & Wang 2018, "Improving the Gaussian mechanism for differential privacy:
analytical calibration and optimal denoising", ICML, Thm 8 and Alg. 1): the mechanism is (ε, δ)-DP
iff

    δ(ε; σ) = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ) ≤ δ,

and δ(ε; σ) decreases in σ, so the smallest valid σ is the root of δ(ε; σ) = δ
(:func:`analytic_gaussian_sigma`, computed in log space and solved by Brent's method in
s = σ/Δ). The classic calibration σ = Δ √(2 ln(1.25/δ))/ε (Dwork & Roth 2014, Thm A.1) holds only
for ε < 1 and is larger (:func:`classic_gaussian_sigma`, what Flower's LocalDpMod uses).

Density-ratio form: reference ``P = N(0, σ² I)`` and
``log r_u(z) = (⟨z, u⟩ − ‖u‖²/2)/σ²``, unbounded in z (the guarantee is approximate, δ > 0), so
codecs that need a bounded ratio refuse it. ``E‖Z − x‖² = d σ²`` for x in the ball.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import optimize, special

from .._validation import check_epsilon, check_positive_float
from ..errors import InputError, ParameterError
from .base import GaussianReference, PrivacyGuarantee, RatioMechanism


def _check_delta(delta) -> float:
    d = float(delta)
    if not (math.isfinite(d) and 0 < d < 1):
        raise ParameterError(f"delta must lie in (0, 1), got {delta!r}")
    return d


def _check_sensitivity(sensitivity) -> float:
    s = float(sensitivity)
    if not (math.isfinite(s) and s > 0):
        raise ParameterError(f"sensitivity must be finite and > 0, got {sensitivity!r}")
    return s


def gaussian_delta(epsilon: float, sigma, sensitivity: float = 1.0):
    """Exact δ(ε) of the Gaussian mechanism with noise σ and L2 sensitivity Δ (Balle & Wang 2018, Thm 8):

        δ = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ).

    Evaluated as ``Φ(a) · (−expm1(ε + log Φ(b) − log Φ(a)))`` with ``log_ndtr``, so tiny δ keep their
    relative precision. ``sigma`` may be an array."""
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps >= 0):
        raise ParameterError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    delta_s = _check_sensitivity(sensitivity)
    s = np.asarray(sigma, dtype=np.float64) / delta_s
    if np.any(~(s > 0)):
        raise ParameterError("sigma must be > 0")
    a = 0.5 / s - eps * s
    b = -0.5 / s - eps * s
    la = special.log_ndtr(a)
    lb = special.log_ndtr(b)
    out = np.exp(la) * -np.expm1(eps + lb - la)
    return float(out) if out.ndim == 0 else out


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """Smallest σ with δ(ε; σ) ≤ δ (Balle & Wang 2018, Alg. 1, solved to machine precision).

    δ(ε; σ) is continuous and strictly decreasing in σ, from 1 − 0 (σ → 0) to 0 (σ → ∞); we bracket
    the root in s = σ/Δ by doubling and solve ``log δ(ε; s) = log δ`` with Brent's method."""
    eps = check_epsilon(epsilon)
    dl = _check_delta(delta)
    sens = _check_sensitivity(sensitivity)

    def f(s: float) -> float:
        return math.log(gaussian_delta(eps, s)) - math.log(dl)

    lo, hi = 1e-3, 1.0
    while f(lo) < 0:
        lo *= 0.5
    while f(hi) > 0:
        hi *= 2.0
    s = optimize.brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    # brentq returns a point within tolerance of the root; step up to the smallest valid float.
    while gaussian_delta(eps, s) > dl:
        s = np.nextafter(s, np.inf)
    return float(s * sens)


def classic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0, *, strict: bool = True) -> float:
    """Classic calibration ``σ = Δ √(2 ln(1.25/δ))/ε`` (Dwork & Roth 2014, Thm A.1).

    Its proof needs ε < 1; with ``strict`` (default) larger ε raise :class:`ParameterError`. Pass
    ``strict=False`` to reproduce tools that apply it regardless (for comparison only)."""
    eps = check_epsilon(epsilon)
    dl = _check_delta(delta)
    sens = _check_sensitivity(sensitivity)
    if strict and eps >= 1:
        raise ParameterError(f"the classic Gaussian calibration is valid only for epsilon < 1, got {eps}")
    return sens * math.sqrt(2.0 * math.log(1.25 / dl)) / eps


def l2_clip(X: np.ndarray, clip: float) -> np.ndarray:
    """Rows of ``X`` scaled onto the L2 ball of radius ``clip`` when they lie outside it."""
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    return X * np.minimum(1.0, clip / np.where(norms > 0, norms, 1.0))


@dataclass(frozen=True)
class GaussianMechanism(RatioMechanism):
    """(ε, δ)-LDP Gaussian mechanism on the L2 ball of radius ``clip``, analytic σ for Δ = 2C."""

    epsilon: float
    dim: int
    delta: float = 1e-5
    clip: float = 1.0
    sigma: float = field(init=False, repr=True, compare=False)
    name: ClassVar[str] = "gaussian"

    def __post_init__(self) -> None:
        self._check_common()
        _check_delta(self.delta)
        c = check_positive_float(self.clip, "clip")
        object.__setattr__(self, "sigma", analytic_gaussian_sigma(self.epsilon, self.delta, 2.0 * c))

    @property
    def sensitivity(self) -> float:
        """Replace-one L2 sensitivity Δ = 2C."""
        return 2.0 * float(self.clip)

    @property
    def guarantee(self) -> PrivacyGuarantee:
        return PrivacyGuarantee(float(self.epsilon), float(self.delta))

    @property
    def reference(self) -> GaussianReference:
        return GaussianReference(int(self.dim), self.sigma)

    def prepare(self, x, *, rng=None) -> np.ndarray:
        """Clip to the L2 ball of radius C (deterministic)."""
        X, _ = self.check_input(x)
        return l2_clip(X, float(self.clip))

    def sample(self, u, *, rng=None) -> np.ndarray:
        rng = np.random.default_rng(rng)
        U, _ = self.check_input(u)
        return U + self.sigma * rng.standard_normal(U.shape)

    projection_uses_norm: ClassVar[bool] = True

    def log_ratio_from_projection(self, dots, sqnorms=None, *, u_sqnorm) -> np.ndarray:
        """Fused path: candidates are ``z = σ g`` with ``dots = ⟨g, u⟩`` (per client ``u_sqnorm = ‖u‖²``),
        so ``log r = (σ·dots − ‖u‖²/2)/σ²``."""
        dots = np.asarray(dots, dtype=np.float64)
        return (self.sigma * dots - 0.5 * np.asarray(u_sqnorm, dtype=np.float64)[:, None]) / self.sigma**2

    def log_ratio_cap(self, tail_sd: float = 6.0) -> float:
        """A cap on log r for channel simulators that need one: ``C²/(2σ²) + k·C/σ``; a reference
        candidate exceeds it with probability ≤ Φ̄(C/σ + k) (k = 6: ≈1e-9)."""
        return self.clip**2 / (2 * self.sigma**2) + tail_sd * self.clip / self.sigma

    def log_ratio(self, z, u) -> np.ndarray:
        """``(⟨z, u⟩ − ‖u‖²/2)/σ²``: z ``(..., m, d)`` against u ``(..., d)`` → ``(..., m)``."""
        z = np.asarray(z, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
        if z.ndim < 2 or z.shape[-1] != self.dim or u.shape[-1:] != (self.dim,):
            raise InputError(f"log_ratio needs z (..., m, {self.dim}) and u (..., {self.dim}), got {z.shape}, {u.shape}")
        dots = np.matmul(z, u[..., :, None])[..., 0]
        sq = np.einsum("...d,...d->...", u, u)[..., None]
        return (dots - 0.5 * sq) / self.sigma**2

    def log_ratio_bounds(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def unbias(self, v) -> np.ndarray:
        return np.asarray(v, dtype=np.float64)

    def expected_mse(self) -> float:
        """``E‖Z − x‖² = d σ²`` for every x in the L2 ball."""
        return int(self.dim) * self.sigma**2

    def output_norm_bound(self) -> float:
        """``C + σ√c`` with c the upper 1e-12 quantile of χ²_d (‖Z‖ ≤ ‖u‖ + ‖noise‖)."""
        from scipy import stats

        from .base import OUTPUT_TAIL

        return float(self.clip) + self.sigma * math.sqrt(float(stats.chi2.isf(OUTPUT_TAIL, int(self.dim))))
