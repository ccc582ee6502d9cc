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

Rotations: each client needs its own U (with one U for all clients the error would not average out).
U is the Q factor, with positive-diagonal R, of a d×M Gaussian matrix G drawn from the client's shared
key (exactly Haar on the Stiefel manifold; Mezzadri 2007, Sec. 5). It is never formed: with
``GᵀG = L Lᵀ`` (Cholesky), ``Uᵀu = L^{-1}Gᵀu`` and ``U v = G L^{-T} v`` (:func:`rotation_factors`), one
batched BLAS product of d M² flops per client on each side. Measured on 2 cores (encode, per client):
d = 1000, M = 64: 2.4 ms (Householder QR via stacked ``numpy.linalg.qr``: ~40 ms); d = 10⁴, M = 64:
~0.1 s (QR: ~0.6 s), dominated by drawing the d·M shared normals and the Gram product.
Structured rotations (H D sign flips) cost O(d log d) but are not Haar, so the scale m above would
not make them unbiased for every x; we keep the exact construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

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
    (reference construction, Householder QR)."""
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
            GT, L = rotation_factors(keys[sl], int(self.dim), self.M)
            out[sl] = np.linalg.solve(L, GT @ u[sl, :, None])[..., 0]  # Uᵀu = L^{-1} Gᵀ u
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
            GT, L = rotation_factors(keys[sl], int(self.dim), self.M)
            v = np.full((GT.shape[0], self.M), -1.0 / self.M)
            v[np.arange(GT.shape[0]), J[sl]] += 1.0  # e_J − 𝟙/M
            z = np.linalg.solve(L.transpose(0, 2, 1), v[..., None])  # U v = G L^{-T} v
            out[sl] = scale * np.einsum("nmd,nm->nd", GT, z[..., 0])
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
