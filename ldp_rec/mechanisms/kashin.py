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
IEEE Trans. IT, Thm 3.5 and the truncation algorithm of its proof; used by Chen, Kairouz & Özgür 2020,
Sec. 4): coefficients a ∈ R^N with ``U a = x`` and ``‖a‖_∞ ≤ K ‖x‖₂/√N``. From r₀ = x iterate

    b_t = trunc(Uᵀ r_t, ‖r_t‖/√(δN)),   a ← a + b_t,   r_{t+1} = r_t − U b_t,

for T steps, then add the exact remainder ``a ← a + Uᵀ r_T`` (U Uᵀ = I, so ``U a = x`` to rounding).
If U satisfies the uncertainty principle UP(η, δ) (‖U v‖ ≤ η‖v‖ for every δN-sparse v) the residual
contracts by η per step and ``K = 1/((1 − η)√δ)`` (:func:`kashin_level`).

Note on constants. UP applied to 1-sparse v = e_j needs η ≥ ‖u_j‖ = √(d/N), i.e. η ≥ 1/√2 for the
usual redundancy N = 2d, so the level of Chen et al.'s public code (η = 0.4, δ = 0.8, K ≈ 1.86, with a
*fixed* schedule of levels η^t/√(δN)) cannot be certified, and on adversarial inputs its coefficients
exceed that level by a factor of 10–20 (their quantiser then silently clips, which biases the mean).
With levels relative to the residual, as here, the measured ``max ‖a‖_∞ √N`` over adversarial unit
inputs (basis vectors, frame columns, sparse combinations of frame columns, hill-climbing) is about
2.2–2.9 for d ≤ 4000 at N = 2d, δ = 0.8, below ``kashin_level(1/√2, 0.8) ≈ 3.82``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from .._validation import check_positive_int
from ..errors import InputError, ParameterError
from ..rec import randomness


@numba.njit(cache=True, nogil=True, inline="always")
def _butterflies(v):  # in place, unnormalised Walsh–Hadamard butterflies of a 1-D array
    n = v.shape[0]
    h = 1
    while h < n:
        for i in range(0, n, 2 * h):
            for j in range(i, i + h):
                x = v[j]
                y = v[j + h]
                v[j] = x + y
                v[j + h] = x - y
        h *= 2


@numba.njit(cache=True, parallel=True)
def _fwht_rows(a, scale):
    for r in numba.prange(a.shape[0]):
        row = a[r]
        _butterflies(row)
        for j in range(row.shape[0]):
            row[j] *= scale


@numba.njit(cache=True, parallel=True)
def _analysis_rows(x, rows, coef, out):  # out[r] = coef ⊙ H_raw (scatter of x[r] into rows)
    for r in numba.prange(x.shape[0]):
        buf = out[r]
        buf[:] = 0.0
        for i in range(rows.shape[0]):
            buf[rows[i]] = x[r, i]
        _butterflies(buf)
        for j in range(buf.shape[0]):
            buf[j] *= coef[j]


@numba.njit(cache=True, parallel=True)
def _synthesis_rows(a, rows, coef, out):  # out[r] = (H_raw (coef ⊙ a[r]))[rows]
    n = a.shape[1]
    for r in numba.prange(a.shape[0]):
        buf = np.empty(n)
        for j in range(n):
            buf[j] = a[r, j] * coef[j]
        _butterflies(buf)
        for i in range(rows.shape[0]):
            out[r, i] = buf[rows[i]]


def fwht(a) -> np.ndarray:
    """Orthonormal fast Walsh–Hadamard transform along the last axis (length a power of two).

    Returns ``H_N a`` row-wise, with ``H_N`` (Sylvester order, entries ±1/√N) symmetric and orthogonal,
    so ``fwht`` is its own inverse. O(N log N) per row (compiled butterflies); the input is not modified."""
    a = np.array(a, dtype=np.float64, copy=True, order="C")
    n = a.shape[-1]
    if n & (n - 1) or n == 0:
        raise ParameterError(f"fwht needs a power-of-two length, got {n}")
    _fwht_rows(a.reshape(-1, n), 1.0 / math.sqrt(n))
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
        object.__setattr__(self, "rows", np.sort(np.argsort(u[1], kind="stable")[: self.dim]).astype(np.int64))

    def analysis(self, x: np.ndarray) -> np.ndarray:
        """``Uᵀ x = D H (Rᵀ x)`` for rows x ``(n, d)`` → ``(n, N)`` (compiled, parallel over rows)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"x must have shape (n, {self.dim}), got {x.shape}")
        out = np.empty((x.shape[0], self.size))
        _analysis_rows(x, self.rows, self.signs / math.sqrt(self.size), out)
        return out

    def synthesis(self, a: np.ndarray) -> np.ndarray:
        """``U a = R H (D a)`` for rows a ``(n, N)`` → ``(n, d)`` (compiled, parallel over rows)."""
        a = np.ascontiguousarray(a, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.size:
            raise InputError(f"a must have shape (n, {self.size}), got {a.shape}")
        out = np.empty((a.shape[0], self.dim))
        _synthesis_rows(a, self.rows, self.signs / math.sqrt(self.size), out)
        return out

    def matrix(self) -> np.ndarray:
        """U as a dense d×N array (tests and small d only)."""
        return self.synthesis(np.eye(self.size)).T.copy()


def kashin_level(eta: float, delta: float) -> float:
    """``K = 1/((1 − η)√δ)``: ‖a‖_∞ ≤ K/√N for ‖x‖ ≤ 1 when U satisfies the uncertainty principle
    with parameters (η, δ) (Lyubarskii & Vershynin 2010, Thm 3.5)."""
    if not (0 < eta < 1 and 0 < delta <= 1):
        raise ParameterError(f"need 0 < eta < 1 and 0 < delta <= 1, got eta={eta}, delta={delta}")
    return 1.0 / ((1.0 - eta) * math.sqrt(delta))


def kashin_coefficients(x, frame: HadamardFrame, *, delta: float = 0.8, iterations: int = 12) -> np.ndarray:
    """Kashin coefficients ``a`` ``(n, N)`` of the rows of x, with ``frame.synthesis(a) = x`` to rounding.

    Truncated iteration (Lyubarskii & Vershynin 2010, proof of Thm 3.5): ``b_t = trunc(Uᵀ r_t, M_t)``
    with the level relative to the current residual, ``M_t = ‖r_t‖/√(δN)``, then ``r_{t+1} = r_t − U b_t``;
    after ``iterations`` steps the exact remainder ``Uᵀ r_T`` is added. Clipping is a shrinkage, so
    ``⟨Uᵀr, b⟩ ≥ ‖b‖² ≥ ‖U b‖²`` and the residual never grows: ``‖r_{t+1}‖ ≤ ‖r_t‖`` for any frame, and
    ‖r_{t+1}‖ ≤ η‖r_t‖ under the uncertainty principle. The representation is homogeneous,
    ``a(s x) = s a(x)``. ``‖a‖_∞`` is *not* checked here: callers compare it with their level."""
    if not 0 < delta <= 1:
        raise ParameterError(f"need 0 < delta <= 1, got {delta}")
    T = check_positive_int(iterations, "iterations")
    X = np.asarray(x, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != frame.dim:
        raise InputError(f"x must have shape (n, {frame.dim}), got {X.shape}")
    scale = 1.0 / math.sqrt(delta * frame.size)
    a = np.zeros((X.shape[0], frame.size))
    r = X.copy()
    for _ in range(T):  # a dozen passes, each vectorised over clients and coordinates
        m = np.linalg.norm(r, axis=1, keepdims=True) * scale
        b = np.clip(frame.analysis(r), -m, m)
        a += b
        r -= frame.synthesis(b)
    a += frame.analysis(r)
    return a
