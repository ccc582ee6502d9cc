"""ε-LDP subset selection over shared candidates: a cap mechanism whose cap is the top m candidates.

Both ends draw ``N = 2^b`` candidates ``Z_1 … Z_N ~ P`` from the shared seed, where P is the
reference of a cap mechanism (N(0, I_d) for PrivUnitG, uniform on S^{d−1} for PrivUnit2/Duchi). The
client ranks them by the projection ``t_k = ⟨Z_k, u⟩`` (on the sphere, of the normalised Z_k) and
sends K with

    P[K = k] = e^ε / D  for the m candidates with the largest t,   1 / D  otherwise,   D = m e^ε + N − m.

This is the selection rule of RRSC (Isik, Chen, Özgür, Weissman & No 2023, "Exact optimality of
communication-privacy-utility tradeoffs in distributed mean estimation", NeurIPS, Sec. 4) and of
k-subset selection (Ye & Barg 2018), applied to the reference's own i.i.d. candidates instead of a
rotated simplex, so any N is allowed (RRSC needs 2^b ≤ d).

**Channel simulation of the cap mechanism.** The top-m set is the empirical cap
``{t ≥ t_(m)}``: as N → ∞ with m/N → q, a chosen top candidate is distributed as P conditioned on
``t ≥ γ = isf(q)`` and the top set is chosen with probability ``m e^ε / D → e^ε q/(e^ε q + 1 − q)``,
the tight cap probability. So the output law converges to PrivUnitG (PrivUnit2) with cap mass q and
p tight at ε, while for every finite N:

* **Transcript privacy, exact**: every probability lies in ``{1, e^ε}/D`` and D does not depend on
  the input, so ``P[K = k | x, Z]/P[K = k | x', Z] ≤ e^ε`` for *every* candidate set Z: the
  transcript (seed, K) is ε-LDP (unlike MRC, whose normaliser moves with x: 2ε).
* **Unbiasedness**: the candidate law is invariant under rotations fixing u and the selection
  depends on the projections only, so ``E[Z_K | u] = c u`` with

      c = E[t_K] = (e^ε − 1)/D · E[Σ_{i ≤ m} t_(i)]          (E Σ_k t_k = 0),

  computed exactly by :func:`ldp_rec.mechanisms.order_stats.top_sum`; ``Ẑ = C Z_K / c``.
* **Error**: ``E‖Ẑ − x‖² = C² (E‖Z_K‖²/c² − 1)`` for ‖x‖ = C, with ``E‖Z_K‖² = 1`` on the sphere and
  ``d − 1 + E[t_K²]`` for N(0, I) (the orthogonal part is untouched by the selection),
  ``E[t_K²] = ((e^ε − 1) E[Σ_{i≤m} t_(i)²] + N E[t²])/D``.

m minimises that error (:func:`optimal_top_count`) unless given. The mechanism's own (p, γ) are not
used: only its reference, its clipping/rounding (``prepare``) and its ε.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import optimize, special

from .._validation import check_epsilon, check_positive_int
from ..errors import IncompatibleError, ParameterError
from ..mechanisms.cap import sphere_projection_isf
from ..mechanisms.order_stats import top_sum
from ..privacy.events import PureEvent, TranscriptPrivacy
from .base import Encoded, SelectionLaw, Target, encoded
from .mrc import FixedCandidates, block_size

_CLIENTS_ELEMENTS = 1 << 22  # (clients × candidates) scores held at once


def _normaliser(N: int, m: int, epsilon: float) -> float:
    """``D e^{−ε} = m + (N − m) e^{−ε}`` (overflow-free form of D)."""
    return m + (N - m) * math.exp(-epsilon)


def selection_probabilities(N: int, m: int, epsilon: float) -> tuple[float, float]:
    """``(e^ε, 1)/D``: probability of each top-m candidate and of each other candidate."""
    z = _normaliser(N, m, epsilon)
    return 1.0 / z, math.exp(-epsilon) / z


def top_set(scores, m: int) -> np.ndarray:
    """The favoured set as a mask ``(..., N)``: the first m candidates in the order **(score descending,
    index ascending)** — the one tie-breaking rule of the encoder (:meth:`SubsetSelection.encode`), the
    pmf (:func:`subset_selection_probs`, hence the audit) and RRSC. O(N) per row: the m-th largest score
    v by partition, every score above v, then the lowest-index ties at v until m are taken."""
    scores = np.asarray(scores, dtype=np.float64)
    N = scores.shape[-1]
    if not 1 <= int(m) <= N:
        raise ParameterError(f"m must lie in [1, {N}], got {m}")
    v = -np.partition(-scores, int(m) - 1, axis=-1)[..., int(m) - 1 : int(m)]  # m-th largest
    above = scores > v
    tied = scores == v
    need = int(m) - above.sum(axis=-1, keepdims=True)
    return above | (tied & (np.cumsum(tied, axis=-1) <= need))


def subset_selection_probs(scores, m: int, epsilon: float) -> np.ndarray:
    """Exact ``P[K = k]`` for score rows ``(..., N)``: e^ε/D on the :func:`top_set` (the m largest
    scores, ties to the lower index), 1/D elsewhere."""
    scores = np.asarray(scores, dtype=np.float64)
    N = scores.shape[-1]
    hi, lo = selection_probabilities(N, m, float(epsilon))
    return np.where(top_set(scores, m), hi, lo)


@dataclass(frozen=True)
class ProjectionLaw:
    """Law of ``t = ⟨Z, u⟩`` for a unit u under the reference: ``"normal"`` (Z ~ N(0, I_d), t ~ N(0, 1))
    or ``"sphere"`` (Z uniform on S^{d−1}, :func:`~ldp_rec.mechanisms.cap.sphere_projection_isf`)."""

    reference: str
    dim: int

    def __post_init__(self) -> None:
        if self.reference not in ("normal", "sphere"):
            raise ParameterError(f"unknown projection law {self.reference!r}")
        check_positive_int(self.dim, "dim", minimum=2 if self.reference == "sphere" else 1)

    @property
    def gaussian(self) -> bool:
        return self.reference == "normal"

    def isf(self, s):
        """Inverse survival function of t."""
        if self.gaussian:
            return -special.ndtri(s)
        return sphere_projection_isf(s, self.dim)

    @property
    def second_moment(self) -> float:
        """E t² (1 for N(0, 1), 1/d on the sphere)."""
        return 1.0 if self.gaussian else 1.0 / self.dim


@functools.lru_cache(maxsize=512)
def _moments(law: ProjectionLaw, N: int, m: int, epsilon: float) -> tuple[float, float]:
    """(c, E‖Z_K‖²) for m of N at ε (module doc)."""
    D = _normaliser(N, m, epsilon)  # D e^{−ε}
    gain = -math.expm1(-epsilon) / D  # (e^ε − 1)/D
    c = gain * top_sum(N, m, law.isf)
    if not law.gaussian:
        return c, 1.0
    t2 = gain * top_sum(N, m, law.isf, power=2) + N * law.second_moment * math.exp(-epsilon) / D
    return c, law.dim - 1 + t2


def subset_mse(law: ProjectionLaw, N: int, m: int, epsilon: float) -> float:
    """Per-user ``E‖Ẑ − x‖²/C²`` for ‖x‖ = C (module doc)."""
    c, sq = _moments(law, int(N), int(m), float(epsilon))
    return sq / (c * c) - 1.0 if c > 0 else math.inf


@functools.lru_cache(maxsize=512)
def optimal_top_count(law: ProjectionLaw, N: int, epsilon: float) -> int:
    """The m in [1, N−1] minimising :func:`subset_mse`: a bounded search on log m, then the integer
    neighbourhood of the optimum (the error is unimodal in m in every case we scanned)."""
    N = check_positive_int(N, "N", minimum=2)
    if N <= 64:
        ms = range(1, N)
        return int(min(ms, key=lambda m: subset_mse(law, N, m, epsilon)))
    res = optimize.minimize_scalar(lambda lm: subset_mse(law, N, int(round(math.exp(lm))), epsilon),
                                   bounds=(0.0, math.log(N - 1)), method="bounded", options={"xatol": 1e-3})
    m0 = int(round(math.exp(res.x)))
    near = range(max(1, m0 - 3), min(N - 1, m0 + 3) + 1)
    return int(min(near, key=lambda m: subset_mse(law, N, m, epsilon)))


@dataclass(frozen=True)
class SubsetSelection(FixedCandidates):
    """ε-LDP subset selection over ``N = 2^bits`` shared candidates (module doc).

    ``epsilon``: the transcript's ε (the weight e^ε of the top set); ``top``: m (default: optimal for
    the target's reference, see :meth:`top_count`). Needs a target with :meth:`score_block`
    (a cap mechanism): the projections t of the candidates.
    """

    epsilon: float
    top: int | None = None
    name: ClassVar[str] = "subset"
    exact: ClassVar[bool] = False
    needs_bounded_ratio: ClassVar[bool] = False
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "multiplier", 1.0, "probabilities in {1, e^ε}/D with D independent of the input (Isik et al. 2023)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_epsilon(self.epsilon)
        if self.top is not None:
            m = check_positive_int(self.top, "top")
            if m >= self.n_candidates:
                raise ParameterError(f"top must be < N = {self.n_candidates}, got {m}")

    def transcript_event(self, epsilon: float = 0.0, delta: float = 0.0):
        """Exactly ``self.epsilon``-LDP whatever the candidates (module doc)."""
        return PureEvent(float(self.epsilon))

    def top_count(self, law: ProjectionLaw) -> int:
        return int(self.top) if self.top is not None else optimal_top_count(law, self.n_candidates, float(self.epsilon))

    def moments(self, law: ProjectionLaw) -> tuple[float, float]:
        """``(c, E‖Z_K‖²)``: the unbiasing scale and the output's second moment."""
        return _moments(law, self.n_candidates, self.top_count(law), float(self.epsilon))

    @staticmethod
    def _need_cap(law) -> None:
        if law is None:
            raise IncompatibleError(
                "subset selection ranks candidates by <Z, u>: it needs a cap mechanism (privunit2, privunitg, duchi)")

    def check_mechanism(self, mechanism) -> None:
        """Refuse a mechanism without a projection law (not a cap mechanism)."""
        from ..mechanisms.cap import CapMechanism

        self._need_cap(mechanism.projection_law if isinstance(mechanism, CapMechanism) else None)

    def effective_cap_probability(self, mechanism) -> None:
        """Not a cap probability: subset selection unbiases with its exact scale c (:meth:`unbias_kwargs`)."""
        return None

    def unbias_kwargs(self, mechanism) -> dict:
        """``{"mean": c}``: the exact ``E⟨Z_K, u⟩`` of the selection (module doc), in place of the mechanism's m."""
        return {"mean": self.moments(mechanism.projection_law)[0]}

    def selection_law(self, mechanism) -> SelectionLaw:
        """e^ε/D on the top-m set by ⟨Z, u⟩, 1/D elsewhere (exact)."""
        N, m = self.n_candidates, self.top_count(mechanism.projection_law)
        return SelectionLaw("exact", N, lambda t: np.log(subset_selection_probs(t.score_block(0, N), m, self.epsilon)))

    def check_target(self, target: Target) -> None:
        self._need_cap(getattr(target, "projection_law", None) if hasattr(target, "score_block") else None)

    def encode(self, target: Target, *, rng=None) -> Encoded:
        """Per client: the top-m set (:func:`top_set`: score descending, ties to the lower index), the side
        (top w.p. m e^ε/D), then a uniform member of that side (non-top by rejection from [0, N),
        ≤ N/(N−m) draws expected)."""
        self.check_target(target)
        rng = np.random.default_rng(rng)
        n, N = target.n, self.n_candidates
        m = self.top_count(target.projection_law)
        hi, _ = selection_probabilities(N, m, float(self.epsilon))
        out = np.empty(n, dtype=np.int64)
        step = max(1, _CLIENTS_ELEMENTS // N)
        for c0 in range(0, n, step):
            sl = slice(c0, min(n, c0 + step))
            bs = block_size(sl.stop - sl.start, N)
            scores = np.concatenate([target.score_block(s, min(bs, N - s), clients=sl) for s in range(0, N, bs)],
                                    axis=1)
            k = scores.shape[0]
            in_top = top_set(scores, m)
            top = np.nonzero(in_top)[1].reshape(k, m)  # each row's m members, in index order
            choose_top = rng.random(k) < m * hi
            idx = np.where(choose_top, top[np.arange(k), rng.integers(0, m, size=k)], -1)
            todo = np.flatnonzero(~choose_top)
            while todo.size:
                draw = rng.integers(0, N, size=todo.size)
                ok = ~in_top[todo, draw]
                idx[todo[ok]] = draw[ok]
                todo = todo[~ok]
            out[sl] = idx
        return encoded(out, np.full(n, N))
