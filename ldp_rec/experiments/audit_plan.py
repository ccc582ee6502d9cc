"""Planning a transcript audit from the codec's law: the input pair, the candidate set and the event.

Everything here runs before the audited encoder runs and on randomness independent of them, so the
audit's Clopper–Pearson bound stays valid whatever the plan (:mod:`ldp_rec.privacy.audit`).

**What the server can exploit.** The server knows the shared seed, hence the candidate set, and a
pure ε-LDP transcript guarantee must hold for *every* candidate set: ``π_k(x | Z) ≤ e^ε π_k(x' | Z)``
for all Z in the support of ``P^N``. The audit may therefore condition on a candidate set. Two
families are searched (``candidates="auto"`` takes the plan with the larger predicted bound):

* **seeded**: candidate sets of ``keys`` real streams, inputs from a pool (random directions and ± the
  candidates' directions), per message the pool inputs maximising and minimising its probability;
* **constructed**: the extremal set of the codec's law. For MRC,
  ``π_k(x)/π_k(x') = (r_x(z_k)/r_x'(z_k)) · Σ_j r_x'(z_j) / Σ_j r_x(z_j)`` is largest when ``z_k``
  maximises ``D(z) = log r_x(z) − log r_x'(z)`` and every other candidate minimises it: for a cap
  mechanism with x' = −x, z_k in the cap of x only and the N − 1 others in the cap of x' only, so the
  normaliser moves by e^ε too and the loss is ``ε + log((c₁(N−1) + c₂)/(c₁ + c₂(N−1)))`` → 2ε. The
  family is "``m`` copies of ``z₊ = argmax D`` then ``N − m`` of ``z₋ = argmin D``" (and the reverse
  order, which matters for ORC and rejection sampling), ``z±`` picked from samples of P, Q_x and Q_x'.
  Copies are a limit point of the support: the two-level ratios of cap mechanisms are constant near
  ``z±`` (a.s. off the cap boundary), so a neighbourhood of positive probability has the same law.

**The event.** For codecs with a known pmf (MRC, modified MRC, rejection sampling, subset selection)
the event is the Neyman–Pearson prefix of :func:`~ldp_rec.privacy.audit.planned_events`, fixed in
advance and evaluated on all runs. ORC has no closed-form pmf, but its sorted Gumbels make the index
deterministic (K = 0) for an input whose ratio is largest at candidate 0; the event is ``{K ≠ 0}``,
impossible under that input, and a pilot of fresh encoder runs predicts its frequency under the other.

**The worst case the audit targets** (``worst_case``) is the largest exact loss over the constructed
family: for MRC with a two-level ratio it is the supremum over candidate sets of size N quoted above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mechanisms.base import RatioMechanism
from ..mechanisms.randomized_response import CoordinateRR
from ..privacy import audit as A
from ..rec.base import MechanismTarget
from ..rec.mrc import MRC, ModifiedMRC
from ..rec.orc import ORC, orc_select
from ..rec.rejection import RejectionSampler

_POOL_POINTS = 4096  # samples of P, Q_x and Q_x' each, searched for z±
_MAX_SPLITS = 256  # values of m tried in the constructed family
_ORC_PILOT = 4000


class ConstructedTarget(MechanismTarget):
    """``n`` runs of one input ``u`` on an explicit candidate set ``Z`` (N, dim_P): the encoders see
    ``log r_u(Z_k)`` through :meth:`log_ratio_block`, exactly as for a seeded stream."""

    def __init__(self, mechanism: RatioMechanism, u: np.ndarray, Z: np.ndarray, n: int) -> None:
        u = np.asarray(u, dtype=np.float64).reshape(1, -1)
        super().__init__(mechanism, np.broadcast_to(u, (int(n), u.shape[1])), np.zeros(int(n), dtype=np.uint64))
        self.Z = np.asarray(Z, dtype=np.float64)
        self._row = mechanism.log_ratio(self.Z, u[0])

    def log_ratio_block(self, start: int, count: int) -> np.ndarray:
        return np.repeat(self._row[None, start : start + count], self.n, axis=0)

    def candidate_block(self, start: int, count: int) -> np.ndarray:
        return np.broadcast_to(self.Z[None, start : start + count], (self.n, count, self.Z.shape[1])).copy()


@dataclass
class Plan:
    """An audit plan: ``u1`` is the numerator input of ``event`` (message indices; None means
    held-out selection), on stream ``key`` (seeded) or candidate set ``candidates`` (constructed)."""

    kind: str
    u1: np.ndarray
    u0: np.ndarray
    predicted: float
    event: np.ndarray | None = None
    key: int | None = None
    candidates: np.ndarray | None = None
    exact: float | None = None


def law(sim, mech):
    """``(M, log_pmf(log_r (C, M)) -> (C, M'))`` of a codec whose pmf is a function of the candidates'
    log ratios, or None (ORC, PPR, subset selection: planned otherwise)."""
    hi = mech.log_ratio_bounds()[1]
    if isinstance(sim, ModifiedMRC):
        return sim.n_candidates, lambda lr: A.modified_mrc_log_pmf(lr, epsilon=sim.epsilon, log_c_max=hi)
    if isinstance(sim, MRC):
        return sim.n_candidates, A.mrc_log_pmf
    if isinstance(sim, RejectionSampler):
        return sim.tries, lambda lr: A.rejection_log_pmf(lr, log_c_max=hi)
    return None


def extreme_inputs(mech) -> tuple[np.ndarray, np.ndarray]:
    """A prepared input at the edge of the domain and its opposite (box vertices for coordinate RR)."""
    d = int(mech.dim)
    u = np.ones(d) if isinstance(mech, CoordinateRR) else np.eye(d)[0]
    return u, -u


def extreme_points(mech, u1, u0, *, rng) -> tuple[np.ndarray, np.ndarray]:
    """``z₊ = argmax D`` (ties: largest r_u1) and ``z₋ = argmin D`` (ties: largest r_u0) over samples
    of P, Q_u1 and Q_u0, with ``D = log r_u1 − log r_u0``."""
    n = _POOL_POINTS
    pool = np.concatenate([np.asarray(mech.reference.sample(n, rng=rng), dtype=np.float64),
                           mech.sample(np.tile(u1, (n, 1)), rng=rng), mech.sample(np.tile(u0, (n, 1)), rng=rng)])
    l1, l0 = mech.log_ratio(pool, u1), mech.log_ratio(pool, u0)
    plus = np.lexsort((-l1, -(l1 - l0)))[0]
    minus = np.lexsort((-l0, l1 - l0))[0]
    return pool[plus], pool[minus]


def _splits(N: int) -> np.ndarray:
    if N - 1 <= _MAX_SPLITS:
        return np.arange(1, N)
    return np.unique(np.rint(np.geomspace(1, N - 1, _MAX_SPLITS)).astype(np.int64))


def constructed_family(mech, u1, u0, N: int, *, rng):
    """``(Z of split m and order, log r_u1 rows, log r_u0 rows, labels)`` of the constructed family."""
    zp, zm = extreme_points(mech, u1, u0, rng=rng)
    pts = np.stack([zp, zm])
    l1, l0 = mech.log_ratio(pts, u1), mech.log_ratio(pts, u0)
    rows1, rows0, labels = [], [], []
    for first in (0, 1):  # 0: z₊ first, 1: z₋ first
        for m in _splits(N):
            sel = np.where(np.arange(N) < m, first, 1 - first)
            rows1.append(l1[sel])
            rows0.append(l0[sel])
            labels.append((first, int(m)))

    def build(label):
        first, m = label
        return pts[np.where(np.arange(N) < m, first, 1 - first)]

    return np.array(rows1), np.array(rows0), labels, build


def _row_exact(lp1, lp0) -> np.ndarray:
    return np.array([A.exact_transcript_epsilon(a, b) for a, b in zip(lp1, lp0)])


def plan_constructed(sim, mech, *, trials: int, confidence: float, rng) -> tuple[Plan, float] | None:
    """The best constructed plan and the worst case of the family (largest exact loss), or None."""
    lw = law(sim, mech)
    if lw is None:
        return None
    M, log_pmf = lw
    u1, u0 = extreme_inputs(mech)
    r1, r0, labels, build = constructed_family(mech, u1, u0, M, rng=rng)
    lp1, lp0 = log_pmf(r1), log_pmf(r0)
    pred, direction, order, length = A.planned_events(lp1, lp0, trials, confidence=confidence)
    c = int(np.argmax(pred))
    exact = _row_exact(lp1, lp0)
    a, b = (u1, u0) if direction[c] > 0 else (u0, u1)
    plan = Plan("constructed", a, b, float(pred[c]), event=np.sort(order[c, : length[c]]),
                candidates=build(labels[c]), exact=float(exact[c]))
    return plan, float(np.max(exact))


def plan_seeded(M: int, log_pmf, mech, *, keys, trials: int, confidence: float, rng, pool) -> Plan:
    """The best seeded plan with a Neyman–Pearson event, for a codec whose pmf on a target is known:
    ``log_pmf(target) -> (n, M')`` over its first ``M`` candidates; ``pool(mech, key, M, rng)`` gives
    the inputs searched."""
    best = None
    for key in keys:
        U = pool(mech, key, M, rng=rng)
        lp = log_pmf(MechanismTarget(mech, U, np.full(U.shape[0], key, dtype=np.uint64)))
        i1, i0 = np.argmax(lp, axis=0), np.argmin(lp, axis=0)
        pred, direction, order, length = A.planned_events(lp[i1], lp[i0], trials, confidence=confidence)
        c = int(np.argmax(pred))
        if best is None or pred[c] > best.predicted:
            a, b = (U[i1[c]], U[i0[c]]) if direction[c] > 0 else (U[i0[c]], U[i1[c]])
            best = Plan("seeded", a, b, float(pred[c]), event=np.sort(order[c, : length[c]]), key=int(key),
                        exact=A.exact_transcript_epsilon(lp[i1[c]], lp[i0[c]]))
    return best


def _orc_certified(lr_sure, lr_other) -> bool:
    """K = 0 surely under the first input and P(K ≠ 0) > 0 under the second."""
    return bool(lr_sure[0] >= np.max(lr_sure[1:]) and lr_other[0] < np.max(lr_other[1:]))


def _orc_plan(kind, u_other, u_sure, lr_other, lr_sure, *, trials, confidence, rng, **where) -> Plan:
    k = orc_select(np.tile(lr_other, (_ORC_PILOT, 1)), rng=rng)  # pilot, discarded
    p1 = float(np.mean(k != 0))
    pred = float(A.predicted_lower_bound(p1, 0.0, trials, confidence=confidence))
    return Plan(kind, u_other, u_sure, pred, event=np.arange(1, lr_other.size), exact=np.inf, **where)


def plan_orc(sim: ORC, mech, *, keys, trials: int, confidence: float, rng, pool) -> tuple[Plan, float]:
    """ORC: an input whose ratio peaks at candidate 0 sends K = 0 surely (module doc)."""
    N = sim.n_candidates
    u1, u0 = extreme_inputs(mech)
    zp, zm = extreme_points(mech, u1, u0, rng=rng)
    Z = np.concatenate([zm[None, :], np.tile(zp, (N - 1, 1))])
    l1, l0 = mech.log_ratio(Z, u1), mech.log_ratio(Z, u0)
    plans = []
    if _orc_certified(l0, l1):
        plans.append(_orc_plan("constructed", u1, u0, l1, l0, trials=trials, confidence=confidence, rng=rng,
                               candidates=Z))
    for key in keys:
        U = pool(mech, key, N, rng=rng)
        lr = MechanismTarget(mech, U, np.full(U.shape[0], key, dtype=np.uint64)).log_ratio_block(0, N)
        margin = lr[:, 0] - np.max(lr[:, 1:], axis=1)
        sure, other = int(np.argmax(margin)), int(np.argmin(margin))
        if _orc_certified(lr[sure], lr[other]):
            plans.append(_orc_plan("seeded", U[other], U[sure], lr[other], lr[sure], trials=trials,
                                   confidence=confidence, rng=rng, key=int(key)))
    if not plans:
        raise NotImplementedError("no ORC plan: no input sends K = 0 surely on the searched candidate sets")
    return max(plans, key=lambda p: p.predicted), np.inf


def run_lengths(Z: np.ndarray) -> list[dict]:
    """A constructed candidate set as runs ``{"point", "count"}`` in index order (for the result file)."""
    Z = np.asarray(Z)
    change = np.flatnonzero(np.any(Z[1:] != Z[:-1], axis=1)) + 1
    starts = np.concatenate([[0], change, [Z.shape[0]]])
    return [{"point": Z[a].tolist(), "count": int(b - a)} for a, b in zip(starts[:-1], starts[1:])]
