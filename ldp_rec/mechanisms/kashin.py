"""Kashin representations over a randomised Hadamard tight frame.

A *tight (Parseval) frame* of N ≥ d vectors in R^d is a d×N matrix U with ``U Uᵀ = I_d``. We use

    U = R H_N D,

with H_N the orthonormal N×N Walsh–Hadamard matrix (N a power of two), D = diag(±1) random signs and
R the restriction to ``dim`` of the N rows chosen at random; so ``U Uᵀ = R R ᵀ = I_d`` and every column
has ``‖u_j‖² = d/N``. Both products cost O(N log N) with the fast Walsh–Hadamard transform
(:func:`fwht`): ``Uᵀx = D H (Rᵀx)`` (:meth:`HadamardFrame.analysis`) and ``U a = R H (D a)``
(:meth:`HadamardFrame.synthesis`). The frame is public: signs and rows are a pure function of a key
(:func:`ldp_rec.rec.randomness.block` on uniforms).

Kashin representation (Lyubarskii & Vershynin 2010, "Uncertainty principles and vector quantization",
IEEE Trans. IT, Thm 3.5 and its truncation algorithm; as used by Chen, Kairouz & Özgür 2020, Sec. 4):
coefficients a ∈ R^N with ``U a = x`` and ``‖a‖_∞ ≤ K/√N · ‖x‖₂``. Iterate, from r₀ = x,

    b_t = trunc(Uᵀ r_t, M_t),   a ← a + b_t,   r_{t+1} = r_t − U b_t,   M_t = η^{t+1}/√(δN),

for T steps, then add the exact remainder ``a ← a + Uᵀ r_T`` (so ``U a = x`` holds to rounding,
because U Uᵀ = I). If the frame satisfies the uncertainty principle with parameters (η, δ) the
residual contracts, ‖r_{t+1}‖ ≤ η ‖r_t‖, and ``‖a‖_∞ ≤ K/√N`` with level ``K = 1/((1 − η)√δ)`` for
‖x‖ ≤ 1. Random frames satisfy it with high probability; :func:`kashin_coefficients` reports the
realised ‖a‖_∞ so callers can check the level (the defaults η = 0.4, δ = 0.8 are Chen et al.'s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_positive_int
from ..errors import InputError, ParameterError
from ..rec import randomness


def fwht(a: np.ndarray) -> np.ndarray:
    """Orthonormal fast Walsh–Hadamard transform along the last axis (length a power of two).

    Returns ``a Hᵀ/… = H_N a`` row-wise with ``H_N`` symmetric and orthogonal, so ``fwht`` is its own
    inverse. log2(N) vectorised butterfly passes (a loop over levels, not over coordinates)."""
    a = np.array(a, dtype=np.float64, copy=True)
    n = a.shape[-1]
    if n & (n - 1) or n == 0:
        raise ParameterError(f"fwht needs a power-of-two length, got {n}")
    lead = a.shape[:-1]
    h = 1
    while h < n:
        v = a.reshape(lead + (n // (2 * h), 2, h))
        x = v[..., 0, :].copy()
        y = v[..., 1, :]
        v[..., 0, :] += y
        v[..., 1, :] = x - y
        h *= 2
    a *= 1.0 / math.sqrt(n)
    return a


def frame_size(dim: int, redundancy: float) -> int:
    """N = the smallest power of two ≥ redundancy · dim (Chen et al. use N = 2^(⌈log2 d⌉+1), i.e. λ = 2)."""
    return 1 << max(0, math.ceil(math.log2(redundancy * dim) - 1e-12))


@dataclass(frozen=True)
class HadamardFrame:
    """Tight frame ``U = R H_N D`` (d×N) from a public key (module doc)."""

    dim: int
    size: int
    key: int
    signs: np.ndarray = field(init=False, repr=False, compare=False)
    rows: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "dim")
        n = check_positive_int(self.size, "size")
        if n & (n - 1) or n < self.dim:
            raise ParameterError(f"frame size must be a power of two >= dim = {self.dim}, got {n}")
        if not 0 <= int(self.key) < 2**64:
            raise ParameterError("key must be a uint64")
        u = randomness.block(np.array([self.key], dtype=np.uint64), 0, 2, n, "uniform")[0]
        object.__setattr__(self, "signs", np.where(u[0] < 0.5, 1.0, -1.0))
        object.__setattr__(self, "rows", np.sort(np.argsort(u[1], kind="stable")[: self.dim]))

    def analysis(self, x: np.ndarray) -> np.ndarray:
        """``Uᵀ x`` for rows x ``(..., d)`` → ``(..., N)``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.zeros(x.shape[:-1] + (self.size,))
        y[..., self.rows] = x
        return self.signs * fwht(y)

    def synthesis(self, a: np.ndarray) -> np.ndarray:
        """``U a`` for rows a ``(..., N)`` → ``(..., d)``."""
        a = np.asarray(a, dtype=np.float64)
        return fwht(self.signs * a)[..., self.rows]

    def matrix(self) -> np.ndarray:
        """U as a dense d×N array (tests and small d only)."""
        return self.synthesis(np.eye(self.size)).T


def kashin_level(eta: float, delta: float) -> float:
    """``K = 1/((1 − η)√δ)``: ‖a‖_∞ ≤ K/√N for ‖x‖ ≤ 1 (Lyubarskii & Vershynin 2010, Thm 3.5)."""
    return 1.0 / ((1.0 - eta) * math.sqrt(delta))


def kashin_coefficients(x, frame: HadamardFrame, *, eta: float = 0.4, delta: float = 0.8, iterations: int | None = None):
    """Kashin coefficients of rows of x (‖x‖₂ ≤ 1 expected) by truncated iteration (module doc).

    Returns ``(a, level)``: a ``(n, N)`` with ``frame.synthesis(a) = x`` to rounding, and the level
    ``c = K/√N`` the coefficients should respect; check ``np.abs(a).max() <= c`` (a frame that fails the
    uncertainty principle for some x gives larger coefficients, never an inexact representation).
    ``iterations`` defaults to ⌊ln N⌋ (Chen et al.)."""
    if not (0 < eta < 1 and 0 < delta <= 1):
        raise ParameterError(f"need 0 < eta < 1 and 0 < delta <= 1, got eta={eta}, delta={delta}")
    X = np.asarray(x, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != frame.dim:
        raise InputError(f"x must have shape (n, {frame.dim}), got {X.shape}")
    N = frame.size
    T = max(1, int(math.log(N))) if iterations is None else check_positive_int(iterations, "iterations")
    a = np.zeros((X.shape[0], N))
    r = X.copy()
    m = eta / math.sqrt(delta * N)
    for _ in range(T):  # a handful of passes (⌊ln N⌋), each vectorised over clients and coordinates
        b = np.clip(frame.analysis(r), -m, m)
        a += b
        r -= frame.synthesis(b)
        m *= eta
    a += frame.analysis(r)
    return a, kashin_level(eta, delta) / math.sqrt(N)
