"""RRSC: randomly rotated simplex coding (Isik, Chen, Özgür, Weissman & No 2023, "Exact optimality of
communication-privacy-utility tradeoffs in distributed mean estimation", NeurIPS, Sec. 4).

Codebook: the M = 2^b vertices of the regular simplex, ``s_i = √(M/(M−1)) (e_i − 𝟙/M)`` (unit norm,
⟨s_i, s_j⟩ = −1/(M−1)), rotated by a shared random d×M matrix U with orthonormal columns (M ≤ d):
``c_i = U s_i``. A client with unit u (see :meth:`RRSC.prepare`) ranks the codewords by
``⟨u, c_i⟩ = √(M/(M−1)) (y_i − ȳ)`` with ``y = Uᵀu``, and sends J ∈ [M] (b bits) with

    P[J = j] = e^ε/(k e^ε + M − k)  for the top-k codewords,   1/(k e^ε + M − k)  otherwise.

Every transcript probability lies in [1, e^ε]/(k e^ε + M − k): exactly ε-LDP (for any U; U is public).

Unbiasedness holds over the rotation, not per rotation. Given U, ``E[c_J | U] = (q₁ − q₀) U Σ_{i∈top-k} s_i``
lies in the range of U, which does not contain x in general. For Haar-distributed U (left-invariant
law), ``E[U Σ_{top-k} s_i]`` is fixed by every rotation that fixes u, hence equals α u with

    α = √(M/(M−1)) E[sum of the k largest y_i],   y = Uᵀu ~ first M coordinates of a uniform point of S^{d−1}.

Writing that point as g/‖g‖ (g ~ N(0, I_d), ‖g‖ independent of the direction),
``E[top-k sum of y] = T_k(M) / E‖g‖`` with ``T_k(M)`` the expected sum of the k largest of M i.i.d.
N(0, 1) (:func:`expected_top_sums`) and ``E‖g‖ = √2 Γ((d+1)/2)/Γ(d/2)``. Hence

    m = (e^ε − 1)/(k e^ε + M − k) · √(M/(M−1)) · T_k(M) · Γ(d/2)/(√2 Γ((d+1)/2)),   Z = C c_J/m,

is unbiased over (rotation, private randomness); ``‖c_J‖ = 1`` gives ``E‖Z − x‖² = C²/m² − ‖x‖²``.
k maximises m over 1 ≤ k < M (a search over the M − 1 values of T_k, computed once).

Rotations: each client needs its own U (with one U for all clients the error would not average out), derived
from the client's shared key so both ends build the same one. U is a product of M Householder reflections
(Stewart 1980, "The efficient generation of random orthogonal matrices with an application to condition
estimators", SIAM J. Numer. Anal. 17(3); Mezzadri 2007, Sec. 5), which is **exactly Haar** on the Stiefel
manifold: with ``v_k ~ N(0, I_{d−k+1})`` independent (entries k…d of the key's k-th shared normal
candidate), ``q_k = v_k/‖v_k‖`` uniform on the sphere and ``A_k`` an orthogonal map of R^{d−k+1} with
``A_k e_1 = q_k``, ``U = A_1' A_2' ⋯ A_M' [I_M; 0]`` (``A_k' = diag(I_{k−1}, A_k)``). By induction on the
recursive characterisation of Haar measure (first column uniform, the rest an independent Haar matrix of the
complement) the law is Haar, whatever orthogonal A_k is chosen as a function of q_k. We take
``A_k = H_k diag(σ_k, I)`` with H_k the reflection swapping e_1 and σ_k q_k, ``σ_k = −sign(q_{k,1})``
(no cancellation in ``e_1 − σ_k q_k``; Householder products are backward stable for every M ≤ d).

U is never formed: ``Uᵀu`` applies the M reflections to u and ``U v`` applies them in reverse to ``[v; 0]``,
O(dM) per client on each side instead of the d M² of a QR (:func:`rotate_t`, :func:`rotate`: numba kernels
that build each reflector from its normals on the fly; :func:`householder_factors` with
:func:`apply_rotation_t`/:func:`apply_rotation` is the same map in numpy, for tests). The previous
constructions (Q of a QR of a d×M Gaussian matrix, by Householder or Cholesky QR) have the same law and are
kept as references (:func:`haar_stiefel`, :func:`rotation_factors`). Measured at b = 8, d = 500 (M > d/2,
where they fell back to Householder QR; 2 shared cores, load 3–5): 7–9 ms per client per side before
(26–38 ms in the issue's run), about 1 ms now, which is the time to draw the d·M shared normals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np
from scipy import special

from .._validation import check_positive_int, check_positive_float
from ..errors import DecodeError, ParameterError
from ..rec import randomness
from .base import Mechanism, round_to_sphere
from .order_stats import expected_top_sums

_CHUNK_ELEMENTS = 1 << 22  # clients are processed in blocks of about this many rotation entries


def _gaussian_columns(keys, dim: int, M: int) -> np.ndarray:
    """The keys' Gaussian matrices, transposed: ``Gᵀ`` ``(n, M, d)`` (M shared normal candidates of width d)."""
    return randomness.block(keys, 0, M, dim, "normal").astype(np.float64)


def haar_stiefel(keys, dim: int, M: int) -> np.ndarray:
    """Per-key Haar d×M matrices with orthonormal columns ``(n, d, M)``: Q of QR(G) times sign(diag R)
    (reference construction, Householder QR; same law as the mechanism's rotation, other values)."""
    Q, R = np.linalg.qr(_gaussian_columns(keys, dim, M).transpose(0, 2, 1))
    s = np.sign(np.diagonal(R, axis1=1, axis2=2))
    return Q * np.where(s == 0, 1.0, s)[:, None, :]


def rotation_factors(keys, dim: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Gᵀ, L)`` with ``U = G L^{-T}`` the Haar d×M matrix of each key: ``(n, M, d)``, ``(n, M, M)``.

    Cholesky QR: ``GᵀG = L Lᵀ`` with L lower triangular, positive diagonal, so ``R = Lᵀ`` is the QR factor
    of G with positive diagonal and ``U = G R^{-1}`` is exactly the sign-fixed Q of :func:`haar_stiefel`.
    It costs one batched BLAS product (d M² per client) instead of a Householder QR (numpy's stacked QR
    was 6–15× slower in our measurements). Rounding grows with cond(G)², so for M > d/2 (where
    cond(G) = (√d+√M)/(√d−√M) is no longer O(1)) we fall back to Householder QR (L = I, Gᵀ = Uᵀ)."""
    if 2 * M > dim:
        Q = haar_stiefel(keys, dim, M)
        return np.ascontiguousarray(Q.transpose(0, 2, 1)), np.broadcast_to(np.eye(M), (Q.shape[0], M, M))
    GT = _gaussian_columns(keys, dim, M)
    G = np.ascontiguousarray(GT.transpose(0, 2, 1))  # contiguous operands let matmul use BLAS
    return GT, np.linalg.cholesky(GT @ G)


def householder_factors(keys, dim: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    """``(W, σ)``: per key the M unit reflection vectors ``w_k = (e_k − σ_k q_k)/‖·‖`` ``(n, M, d)``, zero
    before coordinate k, and the signs σ_k ``(n, M)`` of the Haar rotation U (module doc); ``q_k`` is the
    normalised tail ``v_k`` (coordinates k…d−1) of the key's k-th shared normal candidate."""
    GT = _gaussian_columns(keys, dim, M)
    ks = np.arange(M)
    V = np.where(np.arange(dim)[None, None, :] >= ks[None, :, None], GT, 0.0)
    V /= np.linalg.norm(V, axis=2, keepdims=True)
    sigma = np.where(V[:, ks, ks] >= 0, -1.0, 1.0)
    W = -sigma[..., None] * V
    W[:, ks, ks] += 1.0  # e_k − σ_k q_k: first entry 1 + |q_k1| >= 1
    W /= np.linalg.norm(W, axis=2, keepdims=True)
    return W, sigma


def apply_rotation_t(W, sigma, u) -> np.ndarray:
    """``Uᵀu`` ``(n, M)`` for u ``(n, d)`` from :func:`householder_factors` (reference, numpy):
    ``A_k'ᵀ = diag(I, σ_k, I)·H_k'`` applied for k = 1 … M."""
    x = np.array(u, dtype=np.float64, copy=True)
    for k in range(W.shape[1]):
        w = W[:, k]
        x -= 2.0 * np.einsum("nd,nd->n", w, x)[:, None] * w
        x[:, k] *= sigma[:, k]
    return x[:, : W.shape[1]]


def apply_rotation(W, sigma, v) -> np.ndarray:
    """``U v`` ``(n, d)`` for v ``(n, M)`` (reference, numpy): ``A_k' = H_k' diag(I, σ_k, I)`` applied to
    ``[v; 0]`` for k = M … 1."""
    n, M, d = W.shape
    x = np.zeros((n, d))
    x[:, :M] = v
    for k in range(M - 1, -1, -1):
        w = W[:, k]
        x[:, k] *= sigma[:, k]
        x -= 2.0 * np.einsum("nd,nd->n", w, x)[:, None] * w
    return x


@nb.njit(inline="always", cache=True)
def _reflect(g, k, x):
    """``x ← H_k x`` in place for the reflector of row g (the key's k-th normal candidate) (module doc):
    ``w = e_k − σ v/‖v‖``, ``‖w‖² = 2(1 + |q_k|)``; returns σ."""
    d = g.shape[0]
    s2 = 0.0
    dv = 0.0
    for i in range(k, d):
        gi = np.float64(g[i])
        s2 += gi * gi
        dv += gi * x[i]
    nv = math.sqrt(s2)
    q1 = np.float64(g[k]) / nv
    sig = -1.0 if q1 >= 0 else 1.0
    f = (x[k] - sig * dv / nv) / (1.0 + abs(q1))  # 2 (w·x)/‖w‖²
    h = f * sig / nv
    for i in range(k, d):
        x[i] += h * np.float64(g[i])
    x[k] -= f
    return sig


@nb.njit(parallel=True, cache=True)
def _rotate_t_kernel(GT, U, out):
    """``out[c] = U_cᵀ U[c]``: the M reflections of client c in order, each followed by its sign."""
    n, M, d = GT.shape
    for c in nb.prange(n):
        x = U[c].copy()
        for k in range(M):
            sig = _reflect(GT[c, k], k, x)
            x[k] *= sig
        out[c, :] = x[:M]


@nb.njit(parallel=True, cache=True)
def _rotate_kernel(GT, V, out):
    """``out[c] = U_c V[c]``: the reflections of client c in reverse order, each after its sign."""
    n, M, d = GT.shape
    for c in nb.prange(n):
        x = np.zeros(d)
        x[:M] = V[c]
        for k in range(M - 1, -1, -1):
            g = GT[c, k]
            x[k] *= -1.0 if g[k] >= 0 else 1.0  # σ_k = −sign(q_k1) = −sign(v_k1)
            _reflect(g, k, x)
        out[c, :] = x


def rotate_t(keys, dim: int, M: int, u) -> np.ndarray:
    """``Uᵀu`` ``(n, M)`` for each key's Haar rotation (module doc), O(dM) per client, U never formed."""
    GT = randomness.block(keys, 0, M, dim, "normal")
    out = np.empty((GT.shape[0], M))
    _rotate_t_kernel(GT, np.ascontiguousarray(u, dtype=np.float64), out)
    return out


def rotate(keys, dim: int, M: int, v) -> np.ndarray:
    """``U v`` ``(n, d)`` for each key's Haar rotation (module doc), O(dM) per client."""
    GT = randomness.block(keys, 0, M, dim, "normal")
    out = np.empty((GT.shape[0], dim))
    _rotate_kernel(GT, np.ascontiguousarray(v, dtype=np.float64), out)
    return out


@dataclass(frozen=True)
class RRSC(Mechanism):
    """ε-LDP RRSC with b = ``bits`` bits (M = 2^b ≤ dim), optimal k (or ``top_k``) (module doc)."""

    epsilon: float
    dim: int
    bits: int = 3
    clip: float = 1.0
    top_k: int | None = None
    seed: int = 0
    name: ClassVar[str] = "rrsc"

    def __post_init__(self) -> None:
        self._check_common()
        b = check_positive_int(self.bits, "bits")
        if b > 30 or (1 << b) > int(self.dim):
            raise ParameterError(
                f"RRSC needs M = 2^bits <= dim (a d x M matrix with orthonormal columns): 2^{b} > dim = {self.dim}"
            )
        check_positive_float(self.clip, "clip")
        M = 1 << b
        eps = float(self.epsilon)
        T = expected_top_sums(M)[:-1]  # k = 1..M−1
        ks = np.arange(1, M)
        # (e^ε − 1)/(k e^ε + M − k) = (1 − e^{−ε})/(k + (M − k) e^{−ε}) (overflow-free)
        gain = -math.expm1(-eps) / (ks + (M - ks) * math.exp(-eps)) * T
        if self.top_k is None:
            k = int(ks[np.argmax(gain)])
        else:
            k = check_positive_int(self.top_k, "top_k")
            if k >= M:
                raise ParameterError(f"top_k must be < M = {M}, got {k}")
        d = int(self.dim)
        norm_mean = math.sqrt(2.0) * math.exp(special.gammaln(0.5 * (d + 1)) - special.gammaln(0.5 * d))
        m = float(gain[k - 1]) * math.sqrt(M / (M - 1)) / norm_mean
        object.__setattr__(self, "_k", k)
        object.__setattr__(self, "_m", m)

    # ---- parameters
    @property
    def M(self) -> int:
        return 1 << int(self.bits)

    @property
    def k(self) -> int:
        """Size of the favoured set (top-k codewords)."""
        return self._k

    @property
    def m(self) -> float:
        """``E⟨c_J, u⟩`` over rotation and selection for unit u: the unbiasing scale."""
        return self._m

    @property
    def selection_probabilities(self) -> tuple[float, float]:
        """``(e^ε, 1)/(k e^ε + M − k)``: for a top-k codeword and for any other."""
        from ..rec.subset import selection_probabilities

        return selection_probabilities(self.M, self._k, float(self.epsilon))

    @property
    def message_bits(self) -> int:
        return int(self.bits)

    # ---- client side
    def prepare(self, x, *, rng=None) -> np.ndarray:
        """Clip to L2 norm C and round unbiasedly onto the unit sphere: ``±x/‖x‖`` with probabilities
        ``(1 ± min(‖x‖, C)/C)/2`` (a random direction for x = 0), so E[u] = clip(x)/C."""
        X, _ = self.check_input(x)
        return round_to_sphere(X, self.clip, np.random.default_rng(rng))

    def _keys(self, n: int, keys) -> np.ndarray:
        if keys is None:
            return randomness.derive_keys(int(self.seed), 0, np.arange(n), domain="rrsc")
        k = np.asarray(keys, dtype=np.uint64).reshape(-1)
        if k.size != n:
            raise ParameterError(f"{k.size} keys for {n} clients")
        return k

    def _blocks(self, n: int):
        step = max(1, _CHUNK_ELEMENTS // (int(self.dim) * self.M))
        return [slice(i, min(n, i + step)) for i in range(0, n, step)]

    def scores(self, u, keys) -> np.ndarray:
        """``y = Uᵀu`` per client ``(n, M)`` (ranking by y equals ranking by ⟨u, c_i⟩)."""
        u = np.asarray(u, dtype=np.float64)
        keys = self._keys(u.shape[0], keys)
        out = np.empty((u.shape[0], self.M))
        for sl in self._blocks(u.shape[0]):
            out[sl] = rotate_t(keys[sl], int(self.dim), self.M, u[sl])
        return out

    def selection_log_probs(self, u, keys) -> np.ndarray:
        """Exact ``log P[J = j | u, U]`` for every j: ``(n, M)`` (privacy audit)."""
        from ..rec.subset import subset_selection_probs

        return np.log(subset_selection_probs(self.scores(u, keys), self._k, float(self.epsilon)))

    def encode(self, x, *, rng=None, keys=None) -> np.ndarray:
        """Indices J ``(n,)`` int64 in [0, M): b bits each. ``keys`` (one uint64 per client) key the
        shared rotations; by default they are derived from ``seed`` and the client's position."""
        rng = np.random.default_rng(rng)
        u = self.prepare(x, rng=rng)
        n = u.shape[0]
        from ..rec.subset import top_set

        # top-k codewords first, by the shared rule (score descending, ties to the lower index)
        order = np.argsort(~top_set(self.scores(u, keys), self._k), axis=1, kind="stable")
        hi, _ = self.selection_probabilities
        top = rng.random(n) < self._k * hi
        pos = np.where(top, rng.integers(0, self._k, size=n), rng.integers(self._k, self.M, size=n))
        return order[np.arange(n), pos].astype(np.int64)

    # ---- server side
    def decode(self, messages, keys=None) -> np.ndarray:
        """Unbiased estimates ``C c_J/m`` with ``c_J = √(M/(M−1)) (U e_J − U𝟙/M)``: ``(n, d)``."""
        J = np.asarray(messages)
        if J.ndim != 1 or J.dtype.kind not in "iu":
            raise DecodeError("messages must be a 1-D integer array")
        if np.any(J < 0) or np.any(J >= self.M):
            raise DecodeError(f"message out of range [0, {self.M})")
        n = J.size
        keys = self._keys(n, keys)
        out = np.empty((n, int(self.dim)))
        scale = float(self.clip) * math.sqrt(self.M / (self.M - 1)) / self._m
        for sl in self._blocks(n):
            v = np.full((sl.stop - sl.start, self.M), -1.0 / self.M)
            v[np.arange(v.shape[0]), J[sl]] += 1.0  # e_J − 𝟙/M
            out[sl] = scale * rotate(keys[sl], int(self.dim), self.M, v)
        return out

    def privatize(self, x, *, rng=None) -> np.ndarray:
        """``decode(encode(x))`` with fresh private rotation keys (same law as shared ones)."""
        rng = np.random.default_rng(rng)
        X, single = self.check_input(x)
        keys = rng.integers(0, np.iinfo(np.uint64).max, size=X.shape[0], dtype=np.uint64, endpoint=True)
        est = self.decode(self.encode(X, rng=rng, keys=keys), keys=keys)
        return est[0] if single else est

    def output_norm_bound(self) -> float:
        """Every output is ``C c_J/m`` with a unit codeword ``c_J`` (a rotated simplex vertex): ``C/m``."""
        return float(self.clip) / self._m

    def expected_mse(self, *, norm: float | None = None) -> float:
        """``E‖Z − x‖² = C²/m² − ‖x‖²`` (exact; ``norm`` = ‖x‖ ≤ C, default C)."""
        c = float(self.clip)
        r = c if norm is None else float(norm)
        if not 0 <= r <= c:
            raise ParameterError(f"norm must lie in [0, clip], got {norm!r}")
        return c * c / self._m**2 - r * r
