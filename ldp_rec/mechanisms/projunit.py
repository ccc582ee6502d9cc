"""ProjUnit and FastProjUnit (Asi, Feldman, Nelson, Nguyen, Talwar, "Fast optimal locally private mean
estimation via random projections", NeurIPS 2023: the ProjUnit algorithm and its SRHT instance FastProjUnit;
public code apple/ml-projunit, ``PrivUnitAlgs.ProjUnit`` / ``FastProjUnit``).

For an input x with ‖x‖ ≤ C and a random W ∈ R^{k×d} with E[WᵀW] = I (:mod:`.projection`), drawn per user:

1. round x unbiasedly onto the sphere, v = ±x/‖x‖ with E[v] = x/C (:func:`~.base.round_to_sphere`;
   the paper's inputs are unit vectors already);
2. project and normalise, u = Wv/‖Wv‖ (the paper's algorithm, its projection and normalisation steps);
3. privatise u with PrivUnitG in R^k at ε (Asi, Feldman, Talwar 2022): Z = σ V, E[Z | u] = u;
4. lift, v̂ = C·Wᵀ Z / c with c = E‖Wv‖ (:func:`.projection.norm_mean`).

Step 4's 1/c is ours: the paper lifts Wᵀ Z, whose mean is E[WᵀWv/‖Wv‖] = c·v (c = 1 − O(1/k)) for the
rotation-invariant W; dividing by c makes the dense kinds exactly unbiased, and FastProjUnit unbiased
up to O(1/k) relative (see :mod:`.projection`). W is public (it comes from the user's key), u is a
function of v and W, and PrivUnitG is ε-LDP for every u, so the release is ε-LDP (post-processing, as in
the paper).

Exact error for ‖x‖ = r ≤ C (PrivUnitG in R^k: σ = 1/m, ⟨V, u⟩ = W_t with E W_t² = 1 + γm):

    E‖v̂ − x‖² = C² σ² (d + γ m ρ)/c² − r²,

with ρ = E‖P_d Wᵀu‖² (:func:`.projection.lift_norm2`), because the part of V orthogonal to u is
isotropic and E tr(P_d WᵀW P_d) = d for every kind (exactly d for srht and orthonormal). Against
full-d PrivUnitG, C²σ²(d + γm) − r², the excess is ≈ (γm + ½)/k relative: O(ε/k) (γm ≈ 2ε for large
ε), consistent with the paper's 1 + o(1) once k is large relative to ε (the ratio here is exact, derived
from the closed forms). The default k (:func:`default_proj_dim`) is the least k whose exact ratio is within ``tolerance`` (5%).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .._validation import check_positive_float, check_positive_int
from ..errors import ParameterError
from .base import OUTPUT_TAIL, Mechanism, round_to_sphere
from .privunitg import PrivUnitG
from .projection import KINDS, Projection, check_projection

DEFAULT_TOLERANCE = 0.05
"""Default k: the least k with projected MSE ≤ (1 + 5%) × full-d PrivUnitG's (exact closed forms)."""


def projected_mse(epsilon: float, dim: int, proj_dim: int, *, kind: str = "srht", clip: float = 1.0,
                  norm: float | None = None) -> float:
    """Closed-form per-user ``E‖v̂ − x‖²`` of ProjUnit (module doc)."""
    check_projection(kind, dim, proj_dim)
    inner = PrivUnitG(epsilon, int(proj_dim))
    sigma2 = inner.sigma**2
    gm = inner.gamma * inner.m()
    proj = Projection(kind, int(dim), int(proj_dim))
    c, r = float(clip), float(clip if norm is None else norm)
    return c * c * sigma2 * (dim + gm * proj.lift_norm2) / proj.norm_mean**2 - r * r


@functools.lru_cache(maxsize=256)
def _default_proj_dim(epsilon: float, dim: int, kind: str, tolerance: float) -> int:
    full = PrivUnitG(epsilon, dim).expected_mse()
    ok = lambda k: projected_mse(epsilon, dim, k, kind=kind) <= (1 + tolerance) * full  # noqa: E731
    if not ok(dim):
        return dim
    lo, hi = 1, dim  # ok(hi); the ratio falls with k, so bisect for the least k with ok(k)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def default_proj_dim(epsilon: float, dim: int, *, kind: str = "srht", tolerance: float = DEFAULT_TOLERANCE) -> int:
    """The least k ≤ d whose ProjUnit error is within ``1 + tolerance`` of full-d PrivUnitG's (exact closed
    forms, :func:`projected_mse`): k ≈ (γm + ½)/tolerance, i.e. k = Θ(ε) for a constant factor, as the paper's
    analysis gives (its experiments use k = 1000). k = d when no smaller k meets the tolerance."""
    check_positive_int(dim, "dim")
    check_positive_float(tolerance, "tolerance")
    if kind not in KINDS:
        raise ParameterError(f"unknown projection {kind!r}; choose from {KINDS}")
    return _default_proj_dim(float(epsilon), int(dim), kind, float(tolerance))


@dataclass(frozen=True)
class ProjUnit(Mechanism):
    """ProjUnit (module doc): ``projection`` "gaussian" (default) or "orthonormal"; FastProjUnit: "srht".
    ``proj_dim`` k (0: :func:`default_proj_dim`). As a standalone mechanism each user's W is drawn from a
    key taken from ``rng``; behind a codec (:class:`ldp_rec.codec.projection.ProjectedCodec`) the key is
    public, derived from (run seed, round, user)."""

    name: ClassVar[str] = "projunit"

    epsilon: float
    dim: int
    proj_dim: int = 0
    clip: float = 1.0
    projection: str = "gaussian"
    inner: PrivUnitG = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_common()
        check_positive_float(self.clip, "clip")
        if self.projection not in KINDS:
            raise ParameterError(f"unknown projection {self.projection!r}; choose from {KINDS}")
        if isinstance(self.proj_dim, bool) or not isinstance(self.proj_dim, (int, np.integer)) or self.proj_dim < 0:
            raise ParameterError(f"proj_dim must be a positive integer (0: default), got {self.proj_dim!r}")
        k = int(self.proj_dim) or default_proj_dim(self.epsilon, int(self.dim), kind=self.projection)
        check_projection(self.projection, int(self.dim), k)
        object.__setattr__(self, "proj_dim", k)
        object.__setattr__(self, "inner", PrivUnitG(float(self.epsilon), k))

    @property
    def kind(self) -> Projection:
        """The random projection R^d → R^k."""
        return Projection(self.projection, int(self.dim), int(self.proj_dim))

    # ---- the two halves, shared with the codec
    def project(self, x, keys, *, rng=None) -> np.ndarray:
        """Steps 1–2: unit rows u = W v/‖W v‖ (n, k) for raw inputs (n, d) and one public key per row.

        W is linear, so the rounding v = s·x/‖x‖ (s = ±1 with P[s = 1] = (1 + min(‖x‖/C, 1))/2, exactly the
        law of :func:`~.base.round_to_sphere`) is applied after the projection: u = s·W x/‖W x‖, with no
        d-dimensional temporary. A zero row gets round_to_sphere's uniformly random direction first. A row
        with W v = 0 (probability 0 for dense W; for the SRHT only when v is orthogonal to every sampled
        row) gets a uniformly random direction in R^k, which is data-independent."""
        rng = np.random.default_rng(rng)
        X, _ = self.check_input(x)
        with np.errstate(over="ignore"):
            norms = np.sqrt(np.einsum("nd,nd->n", X, X))
        huge, zero = ~np.isfinite(norms), norms == 0
        if huge.any() or zero.any():
            X = X.copy()
            X[huge] /= np.abs(X[huge]).max(axis=1, keepdims=True)  # ‖x‖² overflowed: u is scale-free, so rescale
            X[zero] = round_to_sphere(X[zero], float(self.clip), rng)
        r = np.minimum(norms / float(self.clip), 1.0)
        sign = np.where(rng.random(X.shape[0]) < 0.5 * (1.0 + r), 1.0, -1.0)
        sign[zero] = 1.0  # the random direction is already the rounded point
        U = self.kind.apply(X, keys)
        unorms = np.linalg.norm(U, axis=1)
        bad = ~(unorms > 0)
        if bad.any():
            g = rng.standard_normal((int(bad.sum()), U.shape[1]))
            U[bad] = g / np.linalg.norm(g, axis=1, keepdims=True)
            unorms[bad] = 1.0
        return U * (sign / unorms)[:, None]

    def lift(self, z, keys) -> np.ndarray:
        """Step 4: ``C Wᵀ z / c`` (n, d) for unbiased estimates z (n, k) of u."""
        return self.kind.lift(np.asarray(z, dtype=np.float64), keys) * (float(self.clip) / self.kind.norm_mean)

    # ---- Mechanism
    def privatize(self, x, *, rng=None) -> np.ndarray:
        rng = np.random.default_rng(rng)
        X, single = self.check_input(x)
        keys = rng.integers(0, np.iinfo(np.int64).max, size=X.shape[0], dtype=np.int64).astype(np.uint64)
        U = self.project(X, keys, rng=rng)
        est = self.lift(self.inner.privatize(U, rng=rng), keys)
        return est[0] if single else est

    def expected_mse(self, *, norm: float | None = None) -> float:
        """Closed form ``C²σ²(d + γmρ)/c² − ‖x‖²`` (module doc); ``norm`` = ‖x‖ ≤ C (default C)."""
        r = float(self.clip) if norm is None else float(norm)
        if not 0 <= r <= float(self.clip):
            raise ParameterError(f"norm must lie in [0, clip], got {norm!r}")
        return projected_mse(float(self.epsilon), int(self.dim), int(self.proj_dim), kind=self.projection,
                             clip=float(self.clip), norm=r)

    def output_norm_bound(self) -> float:
        """``C/c · ‖W‖_op · ‖Z‖`` with both factors at tail ``OUTPUT_TAIL/2`` (a union bound: exceeded with
        probability below ``OUTPUT_TAIL``)."""
        z = self.inner._norm_quantile(OUTPUT_TAIL / 2) / self.inner.m()
        return float(self.clip) / self.kind.norm_mean * self.kind.operator_norm_bound(tail=OUTPUT_TAIL / 2) * z


@dataclass(frozen=True)
class FastProjUnit(ProjUnit):
    """FastProjUnit: ProjUnit with the SRHT (O(d log d) per user; the paper's FastProjUnit)."""

    name: ClassVar[str] = "fastprojunit"

    projection: str = "srht"

    def __post_init__(self) -> None:
        if self.projection != "srht":
            raise ParameterError(f"FastProjUnit uses the SRHT; for projection {self.projection!r} use ProjUnit")
        super().__post_init__()
