"""Random projections W ∈ R^{k×d} for ProjUnit / FastProjUnit (Asi, Feldman, Nelson, Nguyen, Talwar,
"Fast optimal locally private mean estimation via random projections", NeurIPS 2023; public code apple/ml-projunit).

Every W here is drawn from one public 64-bit key per user, through the counter-based streams of
:mod:`ldp_rec.rec.randomness` (so encoder and decoder regenerate the same W, and W is independent
across users), and is scaled so that ``E[Wᵀ W] = I_d``. Three kinds:

* ``srht`` (FastProjUnit, the paper's randomised Hadamard instance): d is zero-padded to D = 2^⌈log2 d⌉ and

      W = √(D/k) · S H D_σ,

  with D_σ = diag(σ) of i.i.d. random signs, H the orthonormal (Sylvester) Walsh–Hadamard matrix of
  order D, and S the k×D selector of k rows drawn uniformly *without* replacement. Then
  ``W Wᵀ = (D/k) I_k`` exactly (the rows are orthogonal with squared norm D/k), and ``E[Wᵀ W] = I_D``
  because ``E[Sᵀ S] = (k/D) I``. Applying W or Wᵀ costs one fast Walsh–Hadamard transform,
  D·log2 D additions (:func:`fwht`), plus O(D) for the signs and the row sample.
* ``gaussian`` (ProjUnit with a dense Gaussian W): i.i.d. N(0, 1/k) entries; row i of √k·W is
  candidate i of the user's normal stream, so ``W x`` is computed without storing W
  (:func:`ldp_rec.rec.randomness.project_block`). O(dk) work.
* ``orthonormal`` (ProjUnit with a random rotation, as in apple/ml-projunit's ``ProjUnit``): W = √(d/k) Qᵀ with Q the
  d×k Haar-distributed orthonormal factor of that Gaussian matrix (QR with the signs of diag R fixed).
  O(dk²) work: a reference for small d, not a hot path.

Constants of the normalisation step ``u = Wv/‖Wv‖`` (for a unit v), used by :mod:`.projunit`:

* ``c = E‖Wv‖`` (:func:`norm_mean`): gaussian, ‖Wv‖² ~ χ²_k/k, so c = √(2/k) Γ((k+1)/2)/Γ(k/2);
  orthonormal, ‖Wv‖² ~ (d/k)·Beta(k/2, (d−k)/2), so c = √(d/k) Γ((k+1)/2)Γ(d/2)/(Γ(k/2)Γ((d+1)/2)).
  For srht the law of ‖Wv‖ depends on v; we use the orthonormal value in dimension D (exact for
  k = D, and for the isotropic HD_σv the random signs make typical; the residual bias of ⟨v̂, v⟩ is
  O(Var‖Wv‖²) = O(1/k)).
* ``ρ = E‖P_d Wᵀ u‖²`` (:func:`lift_norm2`), P_d the truncation to the first d coordinates: gaussian
  1 + (d−1)/k (exact: W = g vᵀ + W_⊥ with W_⊥ ⊥ v independent of g = Wv), orthonormal d/k (exact),
  srht 1 + (D/k − 1)(d−1)/(D−1) (exact for d = D; with padding it takes the part of WᵀWv orthogonal to
  v as isotropic in R^D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from scipy import special

from .._validation import check_positive_int
from ..errors import InputError, ParameterError
from ..rec import randomness

KINDS = ("srht", "gaussian", "orthonormal")
_CHUNK_BYTES = 1 << 25  # working memory per batch of users (32 MiB)


class _OpCounter:
    """Additions and subtractions performed by :func:`fwht` (the O(D log D) test counts these)."""

    def __init__(self) -> None:
        self.butterflies = 0

    def reset(self) -> None:
        self.butterflies = 0


STATS = _OpCounter()


def padded_dim(d: int) -> int:
    """D = 2^⌈log2 d⌉, the order of the Hadamard transform for inputs of dimension d."""
    d = check_positive_int(d, "dim")
    return 1 << (d - 1).bit_length()


def check_projection(kind: str, dim: int, proj_dim: int) -> None:
    """ParameterError unless ``kind`` is known and 1 ≤ k ≤ d."""
    if kind not in KINDS:
        raise ParameterError(f"unknown projection {kind!r}; choose from {KINDS}")
    d = check_positive_int(dim, "dim")
    k = check_positive_int(proj_dim, "proj_dim")
    if k > d:
        raise ParameterError(f"proj_dim k = {k} exceeds the input dimension d = {d}")


@nb.njit(cache=True)
def fwht_inplace(v):
    """In-place unnormalised Sylvester FWHT of one vector of length D = 2^L; returns the operations
    executed (each of the L stages: D/2 butterflies of one addition and one subtraction)."""
    D = v.shape[0]
    ops = 0
    h = 1
    while h < D:
        for i in range(0, D, 2 * h):
            for j in range(i, i + h):
                a = v[j]
                b = v[j + h]
                v[j] = a + b
                v[j + h] = a - b
        ops += D
        h *= 2
    return ops


@nb.njit(cache=True, parallel=True)
def _fwht_rows_inplace(x):
    """:func:`fwht_inplace` on every row of x (rows, D), rows in parallel; returns the operations executed."""
    ops = np.zeros(x.shape[0], dtype=np.int64)
    for r in nb.prange(x.shape[0]):
        ops[r] = fwht_inplace(x[r])
    return ops.sum()


@nb.njit(cache=True)
def _sign(u, i):
    """σ_i = 1 − 2·bit (i mod 32) of ⌊u_{⌊i/32⌋}·2³²⌋ (the top 32 bits of a 53-bit uniform)."""
    w = np.uint64(u[i // 32] * 4294967296.0)
    return 1.0 - 2.0 * np.float64((w >> np.uint64(i % 32)) & np.uint64(1))


@nb.njit(cache=True, parallel=True)
def _srht_kernel(A, Us, rows, D, scale, out, transpose):
    """For every user r, in parallel and in one pass: out[r] = scale · (H (σ ⊙ pad(A[r])))[rows[r]] / √D
    (W a), or with ``transpose`` the first d coordinates of σ ⊙ H (scale · Sᵀ A[r]) / √D (Wᵀ a).
    Returns the FWHT operations executed."""
    n = A.shape[0]
    d = out.shape[1] if transpose else A.shape[1]
    ops = np.zeros(n, dtype=np.int64)
    norm = scale / np.sqrt(D)
    for r in nb.prange(n):
        v = np.zeros(D)
        if transpose:
            for j in range(rows.shape[1]):
                v[rows[r, j]] = A[r, j]
        else:
            for i in range(d):
                v[i] = A[r, i] * _sign(Us[r], i)
        ops[r] = fwht_inplace(v)
        if transpose:
            for i in range(d):
                out[r, i] = v[i] * norm * _sign(Us[r], i)
        else:
            for j in range(rows.shape[1]):
                out[r, j] = v[rows[r, j]] * norm
    return ops.sum()


def fwht(a: np.ndarray) -> np.ndarray:
    """Orthonormal fast Walsh–Hadamard transform along the last axis (length D = 2^L), Sylvester order:
    ``H_D a / √D`` with ``H_{2m} = [[H_m, H_m], [H_m, −H_m]]``. L stages of D/2 butterflies (one addition
    and one subtraction each): D·L operations per row, counted as executed in :data:`STATS`. H is
    symmetric and orthogonal, so the transform is its own inverse. Returns a new float64 array."""
    x = np.array(a, dtype=np.float64, copy=True)
    D = x.shape[-1]
    if D < 1 or D & (D - 1):
        raise InputError(f"fwht needs a power-of-two length, got {D}")
    lead = x.shape[:-1]
    x = np.ascontiguousarray(x.reshape(-1, D))
    STATS.butterflies += int(_fwht_rows_inplace(x))
    x *= 1.0 / math.sqrt(D)
    return x.reshape(*lead, D)


def _user_batches(n: int, per_user_bytes: int):
    step = max(1, _CHUNK_BYTES // max(per_user_bytes, 1))
    for s in range(0, n, step):
        yield slice(s, min(s + step, n))


_SIGN_BITS = 32  # random signs taken from each uniform of the key's stream (:func:`_sign`)


@nb.njit(cache=True)
def _signs_from_uniforms(u, D):
    """σ (n, D) from the sign uniforms u (n, ⌈D/32⌉), one row per user (:func:`_sign`)."""
    n = u.shape[0]
    out = np.empty((n, D))
    for r in range(n):
        for i in range(D):
            out[r, i] = _sign(u[r], i)
    return out


@nb.njit(cache=True)
def _floyd_subsets(u, D):
    """Floyd's algorithm F2 (Bentley & Floyd, CACM 1987), one row per user: a uniform k-subset of
    {0 … D−1} from k uniforms u_j, j = 0 … k−1: t = ⌊u_j (D−k+j+1)⌋, add t unless taken, else add D−k+j."""
    n, k = u.shape
    out = np.empty((n, k), dtype=np.int64)
    taken = np.zeros(D, dtype=np.bool_)
    for r in range(n):
        for j in range(k):
            top = D - k + j
            t = min(np.int64(u[r, j] * (top + 1)), top)
            if taken[t]:
                t = top
            taken[t] = True
            out[r, j] = t
        for j in range(k):
            taken[out[r, j]] = False
        out[r].sort()
    return out


def _srht_uniforms(keys, D: int, proj_dim: int) -> np.ndarray:
    """Candidate 0 of each key's uniform stream: ⌈D/32⌉ + k uniforms (n, ⌈D/32⌉ + k)."""
    return randomness.block(keys, 0, 1, -(-D // _SIGN_BITS) + proj_dim, "uniform")[:, 0, :]


def _srht_from_uniforms(U: np.ndarray, D: int) -> tuple[np.ndarray, np.ndarray]:
    nw = -(-D // _SIGN_BITS)
    return (_signs_from_uniforms(np.ascontiguousarray(U[:, :nw]), D),
            _floyd_subsets(np.ascontiguousarray(U[:, nw:]), D))


def srht_draws(keys, dim: int, proj_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The SRHT's random signs σ (n, D) in {±1} and sorted row indices (n, k) for each key, from candidate 0
    of the key's uniform stream: its first ⌈D/32⌉ uniforms give 32 sign bits each (the top bits of a uniform
    of :mod:`ldp_rec.rec.randomness`, (w + ½)·2⁻⁵³ with w a uniform 53-bit integer), and its next k give the
    rows by Floyd's algorithm (:func:`_floyd_subsets`, a uniform k-subset, without replacement)."""
    D = padded_dim(dim)
    return _srht_from_uniforms(_srht_uniforms(np.asarray(keys, dtype=np.uint64).reshape(-1), D, proj_dim), D)


def _srht(A, keys, d, k, *, transpose: bool):
    """Rows W a (transpose False: a ∈ R^d, W a = √(D/k) S H D_σ a) or Wᵀ a (a ∈ R^k, the first d coordinates
    of √(D/k) D_σ H Sᵀ a): one fused, parallel pass per user over the draws of :func:`srht_draws`."""
    n, D = A.shape[0], padded_dim(d)
    U = _srht_uniforms(keys, D, k)
    nw = -(-D // _SIGN_BITS)
    Us, rows = np.ascontiguousarray(U[:, :nw]), _floyd_subsets(np.ascontiguousarray(U[:, nw:]), D)
    out = np.empty((n, d if transpose else k))
    STATS.butterflies += int(_srht_kernel(A, Us, rows, D, math.sqrt(D / k), out, transpose))
    return out


def _gaussian_apply(X, keys, k):
    dots, _ = randomness.project_block(keys, 0, k, X)
    return dots / math.sqrt(k)


def _gaussian_lift(Z, keys, d):
    n, k = Z.shape
    out = np.zeros((n, d))
    rows = max(1, min(k, _CHUNK_BYTES // (4 * d)))
    for sl in _user_batches(n, 4 * d * rows):
        for s in range(0, k, rows):
            G = randomness.block(keys[sl], s, min(rows, k - s), d)
            out[sl] += np.einsum("nr,nrd->nd", Z[sl, s : s + G.shape[1]], G)
    return out / math.sqrt(k)


def orthonormal_matrices(keys, dim: int, proj_dim: int) -> np.ndarray:
    """W = √(d/k) Qᵀ (n, k, d), one per key: Q the Haar orthonormal d×k factor of the key's Gaussian rows
    (stacked QR, the signs of diag R made positive)."""
    G = randomness.block(np.asarray(keys, dtype=np.uint64).reshape(-1), 0, proj_dim, dim).astype(np.float64)
    Q, R = np.linalg.qr(np.swapaxes(G, 1, 2))
    Q *= np.where(np.diagonal(R, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]
    return math.sqrt(dim / proj_dim) * np.swapaxes(Q, 1, 2)


def _orthonormal(A, keys, d, k, *, transpose: bool):
    """Rows W a or Wᵀ a with the stacked dense W of :func:`orthonormal_matrices`, in batches of users."""
    out = np.empty((A.shape[0], d if transpose else k))
    for sl in _user_batches(A.shape[0], 16 * k * d):
        out[sl] = np.einsum("nkd,nk->nd" if transpose else "nkd,nd->nk", orthonormal_matrices(keys[sl], d, k), A[sl])
    return out


def _check_keys(keys, n: int) -> np.ndarray:
    keys = np.asarray(keys).reshape(-1)
    if keys.size != n:
        raise ParameterError(f"{keys.size} users' projection keys (client ids) for {n} rows")
    return keys.astype(np.uint64)


_KERNELS = {"srht": (lambda X, keys, k: _srht(X, keys, X.shape[1], k, transpose=False),
                     lambda Z, keys, d: _srht(Z, keys, d, Z.shape[1], transpose=True)),
            "gaussian": (_gaussian_apply, _gaussian_lift),
            "orthonormal": (lambda X, keys, k: _orthonormal(X, keys, X.shape[1], k, transpose=False),
                            lambda Z, keys, d: _orthonormal(Z, keys, d, Z.shape[1], transpose=True))}


def _rows(A, what: str) -> np.ndarray:
    A = np.ascontiguousarray(np.asarray(A, dtype=np.float64))
    if A.ndim != 2:
        raise InputError(f"{what} expects a 2-D array of rows, got shape {A.shape}")
    return A


def project(X, keys, *, kind: str, proj_dim: int) -> np.ndarray:
    """Rows ``W_i x_i`` (n, k) for inputs X (n, d) and one key per row."""
    X = _rows(X, "project")
    check_projection(kind, X.shape[1], proj_dim)
    return _KERNELS[kind][0](X, _check_keys(keys, X.shape[0]), proj_dim)


def lift(Z, keys, *, kind: str, dim: int) -> np.ndarray:
    """Rows ``W_iᵀ z_i`` (n, d) for k-dimensional rows Z (n, k) and one key per row."""
    Z = _rows(Z, "lift")
    check_projection(kind, dim, Z.shape[1])
    return _KERNELS[kind][1](Z, _check_keys(keys, Z.shape[0]), dim)


def norm_mean(kind: str, dim: int, proj_dim: int) -> float:
    """``c = E‖Wv‖`` for a unit v (module doc)."""
    check_projection(kind, dim, proj_dim)
    k = proj_dim
    half_k = special.gammaln((k + 1) / 2) - special.gammaln(k / 2)
    if kind == "gaussian":
        return float(math.sqrt(2.0 / k) * math.exp(half_k))
    n = dim if kind == "orthonormal" else padded_dim(dim)
    if k == n:
        return 1.0
    return float(math.sqrt(n / k) * math.exp(half_k + special.gammaln(n / 2) - special.gammaln((n + 1) / 2)))


def lift_norm2(kind: str, dim: int, proj_dim: int) -> float:
    """``ρ = E‖P_d Wᵀ u‖²`` for ``u = Wv/‖Wv‖`` (module doc)."""
    check_projection(kind, dim, proj_dim)
    d, k = dim, proj_dim
    if kind == "gaussian":
        return 1.0 + (d - 1) / k
    if kind == "orthonormal":
        return d / k
    D = padded_dim(d)
    return d / k if D == d else 1.0 + (D / k - 1.0) * (d - 1) / (D - 1)


def operator_norm_bound(kind: str, dim: int, proj_dim: int, *, tail: float) -> float:
    """A bound on ‖W‖_op (hence on ‖P_d Wᵀ z‖/‖z‖) exceeded with probability at most ``tail``: √(D/k)
    for srht and √(d/k) for orthonormal (exact), and (√d + √k + √(2 ln(1/tail)))/√k for gaussian
    (Davidson & Szarek 2001, Thm. II.13: σ_max of a k×d standard Gaussian ≤ √d + √k + t w.p. ≥ 1 − e^{−t²/2})."""
    check_projection(kind, dim, proj_dim)
    d, k = dim, proj_dim
    if kind == "srht":
        return math.sqrt(padded_dim(d) / k)
    if kind == "orthonormal":
        return math.sqrt(d / k)
    return (math.sqrt(d) + math.sqrt(k) + math.sqrt(2 * math.log(1 / tail))) / math.sqrt(k)


@dataclass(frozen=True)
class Projection:
    """One kind of random projection R^d → R^k, drawn per user from a public key (module doc)."""

    kind: str
    dim: int
    proj_dim: int

    def __post_init__(self) -> None:
        check_projection(self.kind, self.dim, self.proj_dim)

    def apply(self, X, keys) -> np.ndarray:
        return project(X, keys, kind=self.kind, proj_dim=self.proj_dim)

    def lift(self, Z, keys) -> np.ndarray:
        return lift(Z, keys, kind=self.kind, dim=self.dim)

    @property
    def norm_mean(self) -> float:
        return norm_mean(self.kind, self.dim, self.proj_dim)

    @property
    def lift_norm2(self) -> float:
        return lift_norm2(self.kind, self.dim, self.proj_dim)

    def operator_norm_bound(self, *, tail: float) -> float:
        return operator_norm_bound(self.kind, self.dim, self.proj_dim, tail=tail)
