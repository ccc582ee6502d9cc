"""Statistical privacy audits: lower bounds on the privacy loss from observed transcripts.

For two inputs x, x' and any event S of the server's view, an ε-DP release satisfies
``P[S | x] ≤ e^ε P[S | x']``. From n₁ runs on x with k₁ hits in S and n₀ runs on x' with k₀ hits,
one-sided Clopper–Pearson bounds at level ``1 − a/2`` each (Bonferroni over the two, total level
``1 − a`` = ``confidence``) give, with probability at least ``confidence``,

    ε ≥ ε_lb = log( CP_lower(k₁, n₁) / CP_upper(k₀, n₀) )            (:func:`epsilon_lower_bound`)

(Jagielski, Ullman, Oprea, NeurIPS 2020, Sec. 3 "Auditing DP-SGD", the Clopper–Pearson estimate;
Nasr, Song, Thakurta, Papernot, Carlini, IEEE S&P 2021, Sec. 4.1, eq. (2)). The one-sided bounds are

    CP_lower(k, n) = Beta⁻¹(a/2; k, n − k + 1)      (0 when k = 0),
    CP_upper(k, n) = Beta⁻¹(1 − a/2; k + 1, n − k)  (1 when k = n),

so a zero count still gives a finite upper bound ``1 − (a/2)^{1/n} ≈ log(2/a)/n``: an event that never
happens under x' but often under x certifies ε_lb ≈ log(n P[S|x] / log(2/a)).

The event S must not depend on the counts it is evaluated on (selection bias): :func:`audit_scores` and
:func:`audit_messages` choose it on the first half of each sample (the threshold and direction of a
score, or the messages with the largest empirical ratio: the likelihood-ratio events of
Neyman–Pearson) and evaluate it on the other half. The lower bound is then valid at ``confidence``
for *any* selection rule; selection only affects its power.

Exact transcript loss: when the selection probabilities π(·|x), π(·|x') of every message are known
(MRC, modified MRC, rejection sampling with fixed candidates), the loss on the pair is
``max_k |log π_k(x) − log π_k(x')|`` (:func:`exact_transcript_epsilon`), with the pmfs below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .._validation import check_probability
from ..errors import InputError, ParameterError

_MAX_THRESHOLDS = 4096  # candidate thresholds examined when selecting an event


# --------------------------------------------------------------------------- Clopper–Pearson
def _counts(k, n):
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n <= 0) or np.any(k < 0) or np.any(k > n):
        raise InputError("need 0 <= k <= n and n > 0")
    return k, n


def clopper_pearson_lower(k, n, *, alpha: float) -> np.ndarray:
    """One-sided ``1 − alpha`` lower bound on a binomial proportion: ``Beta⁻¹(alpha; k, n−k+1)``, 0 at k = 0.
    Vectorised; non-integer k (expected counts, for planning) is allowed."""
    a = check_probability(alpha, "alpha")
    k, n = _counts(k, n)
    with np.errstate(invalid="ignore"):
        out = special.betaincinv(np.maximum(k, 1e-300), n - k + 1, a)
    return np.where(k <= 0, 0.0, out)


def clopper_pearson_upper(k, n, *, alpha: float) -> np.ndarray:
    """One-sided ``1 − alpha`` upper bound: ``Beta⁻¹(1 − alpha; k+1, n−k)``, 1 at k = n; at k = 0 it is
    ``1 − alpha^{1/n}`` exactly."""
    a = check_probability(alpha, "alpha")
    k, n = _counts(k, n)
    with np.errstate(invalid="ignore"):
        out = special.betaincinv(k + 1, np.maximum(n - k, 1e-300), 1 - a)
    return np.where(k >= n, 1.0, out)


def epsilon_lower_bound(k1, n1, k0, n0, *, confidence: float = 0.95) -> np.ndarray:
    """``max(0, log CP_lower(k₁, n₁) − log CP_upper(k₀, n₀))`` with each bound at level
    ``1 − (1 − confidence)/2`` (Bonferroni), vectorised over the counts (module doc)."""
    c = check_probability(confidence, "confidence")
    a = 0.5 * (1.0 - c)
    lo = clopper_pearson_lower(k1, n1, alpha=a)
    hi = clopper_pearson_upper(k0, n0, alpha=a)
    with np.errstate(divide="ignore"):
        val = np.log(lo) - np.log(hi)
    return np.maximum(val, 0.0)


def predicted_lower_bound(p1, p0, n: int, *, confidence: float = 0.95) -> np.ndarray:
    """The bound expected from ``n`` runs per input on an event of probabilities p₁ (under x) and
    p₀ (under x'): :func:`epsilon_lower_bound` at the expected counts. Used to plan an audit (choose
    the input pair), never as a result."""
    p1 = np.clip(np.asarray(p1, dtype=np.float64), 0.0, 1.0)
    p0 = np.clip(np.asarray(p0, dtype=np.float64), 0.0, 1.0)
    return epsilon_lower_bound(p1 * n, n, p0 * n, n, confidence=confidence)


def planned_events(log_p1, log_p0, n: int, *, confidence: float = 0.95):
    """Best likelihood-ratio event of each pair of *known* pmfs, for an audit planned in advance.

    Rows of ``log_p1, log_p0`` (C, M) are message log pmfs under two inputs. By Neyman–Pearson the
    events worth testing are prefixes of the messages sorted by ``log p1 − log p0`` (numerator p1,
    direction +1) or by ``log p0 − log p1`` (numerator p0, direction −1). Each prefix is scored by
    :func:`predicted_lower_bound` with ``n`` runs per input (every prefix up to 32 messages, then
    about 48 geometrically spaced lengths: Clopper–Pearson bounds are costly). Returns ``(predicted, direction, order,
    length)`` per row: the event is ``order[c, :length[c]]``. An event fixed this way before the
    audited runs needs no held-out split: all ``n`` runs evaluate it."""
    l1 = np.atleast_2d(np.asarray(log_p1, dtype=np.float64))
    l0 = np.atleast_2d(np.asarray(log_p0, dtype=np.float64))
    if l1.shape != l0.shape:
        raise InputError(f"pmfs of different shapes {l1.shape}, {l0.shape}")
    best = None
    for direction, (a, b) in ((+1, (l1, l0)), (-1, (l0, l1))):
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isfinite(a), a - b, -np.inf)  # messages impossible under the numerator last
        order = np.argsort(-np.nan_to_num(diff, nan=-np.inf, posinf=np.inf), axis=1, kind="stable")
        M = order.shape[1]
        lengths = np.unique(np.concatenate([np.arange(1, min(M, 32) + 1),
                                            np.rint(np.geomspace(1, M, 48)).astype(np.int64)]))
        p_num = np.cumsum(np.take_along_axis(np.exp(a), order, axis=1), axis=1)[:, lengths - 1]
        p_den = np.cumsum(np.take_along_axis(np.exp(b), order, axis=1), axis=1)[:, lengths - 1]
        pred = predicted_lower_bound(p_num, p_den, n, confidence=confidence)
        j = np.argmax(pred, axis=1)
        val = pred[np.arange(pred.shape[0]), j]
        cand = (val, np.full(val.shape, direction), order, lengths[j])
        if best is None:
            best = cand
        else:
            take = cand[0] > best[0]
            best = (np.where(take, cand[0], best[0]), np.where(take, direction, best[1]),
                    np.where(take[:, None], cand[2], best[2]), np.where(take, cand[3], best[3]))
    return best


# --------------------------------------------------------------------------- event selection
@dataclass(frozen=True)
class AuditOutcome:
    """An audit's result. The event is ``{score ≥ threshold}`` when ``direction`` is +1 (numerator x)
    or ``{score ≤ threshold}`` with numerator x' when −1; ``k1/n1`` are its held-out hits and runs
    under the numerator input, ``k0/n0`` under the other; ``selection_bound`` is the (biased) bound of
    the same event on the selection half at the simultaneous level of :func:`select_event`, reported
    for diagnostics only."""

    epsilon_lower_bound: float
    confidence: float
    threshold: float
    direction: int
    k1: int
    n1: int
    k0: int
    n0: int
    selection_bound: float

    @property
    def p1_hat(self) -> float:
        return self.k1 / self.n1

    @property
    def p0_hat(self) -> float:
        return self.k0 / self.n0


def _threshold_counts(s1: np.ndarray, s0: np.ndarray):
    """Candidate thresholds t of ``{s ≥ t}`` and the hits ``k1, k0`` of s1, s0 at each."""
    a = np.sort(s1)
    b = np.sort(s0)
    pooled = np.unique(np.concatenate([a, b]))
    if pooled.size > _MAX_THRESHOLDS:
        pooled = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, _MAX_THRESHOLDS), method="nearest"))
    return pooled, a.size - np.searchsorted(a, pooled, side="left"), b.size - np.searchsorted(b, pooled, side="left")


def select_event(s1, s0, *, confidence: float = 0.95) -> tuple[float, int, float]:
    """Choose ``(threshold, direction, bound)`` on selection data: scores s1 under x, s0 under x'.

    Both directions are tried: ``{s ≥ t}`` favouring x and ``{s ≤ t}`` favouring x'. Each of the m
    candidate events is scored by its bound at the *simultaneous* level ``1 − (1 − confidence)/m``
    (Bonferroni over the candidates), so the returned bound is valid for all of them at once and the
    choice is not a winner's curse: with a flat likelihood ratio, as in a cap mechanism's cap, a
    lucky tail event with few hits cannot beat a well-populated one."""
    s1 = np.asarray(s1, dtype=np.float64).reshape(-1)
    s0 = np.asarray(s0, dtype=np.float64).reshape(-1)
    if s1.size == 0 or s0.size == 0 or not (np.all(np.isfinite(s1)) and np.all(np.isfinite(s0))):
        raise InputError("scores must be non-empty and finite")
    c = check_probability(confidence, "confidence")
    t_pos, k1_pos, k0_pos = _threshold_counts(s1, s0)
    t_neg, k1_neg, k0_neg = _threshold_counts(-s0, -s1)  # {s ≤ t} with x' as numerator
    level = 1.0 - (1.0 - c) / (t_pos.size + t_neg.size)
    lb_pos = epsilon_lower_bound(k1_pos, s1.size, k0_pos, s0.size, confidence=level)
    lb_neg = epsilon_lower_bound(k1_neg, s0.size, k0_neg, s1.size, confidence=level)
    i, j = int(np.argmax(lb_pos)), int(np.argmax(lb_neg))
    if lb_neg[j] > lb_pos[i]:
        return -float(t_neg[j]), -1, float(lb_neg[j])
    return float(t_pos[i]), +1, float(lb_pos[i])


def evaluate_event(s1, s0, threshold: float, direction: int, *, confidence: float = 0.95) -> tuple[float, int, int, int, int]:
    """``(bound, k1, n1, k0, n0)`` of the fixed event on evaluation data (numerator per ``direction``)."""
    s1 = np.asarray(s1, dtype=np.float64).reshape(-1)
    s0 = np.asarray(s0, dtype=np.float64).reshape(-1)
    if direction > 0:
        k1, n1, k0, n0 = int(np.sum(s1 >= threshold)), s1.size, int(np.sum(s0 >= threshold)), s0.size
    else:
        k1, n1, k0, n0 = int(np.sum(s0 <= threshold)), s0.size, int(np.sum(s1 <= threshold)), s1.size
    return float(epsilon_lower_bound(k1, n1, k0, n0, confidence=confidence)), k1, n1, k0, n0


def _halves(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = a.shape[0] // 2
    if h < 1:
        raise InputError("an audit needs at least 2 runs per input")
    return a[:h], a[h:]


def audit_scores(s1, s0, *, confidence: float = 0.95) -> AuditOutcome:
    """Held-out threshold audit of a real-valued statistic: s1 from i.i.d. runs on x, s0 on x'.
    The event is selected on the first half of each and evaluated on the second (module doc)."""
    c = check_probability(confidence, "confidence")
    s1 = np.asarray(s1, dtype=np.float64).reshape(-1)
    s0 = np.asarray(s0, dtype=np.float64).reshape(-1)
    (a1, b1), (a0, b0) = _halves(s1), _halves(s0)
    t, d, sel = select_event(a1, a0, confidence=c)
    lb, k1, n1, k0, n0 = evaluate_event(b1, b0, t, d, confidence=c)
    return AuditOutcome(lb, c, t, d, k1, n1, k0, n0, sel)


def message_scores(m1_sel, m0_sel):
    """Score function learnt from selection messages: ``score(m) = log((c₁(m)+½)/(n₁+1)) −
    log((c₀(m)+½)/(n₀+1))`` (a smoothed empirical log ratio; 0 for unseen messages). Returns a
    vectorised callable mapping integer messages to scores."""
    m1 = np.asarray(m1_sel, dtype=np.int64).reshape(-1)
    m0 = np.asarray(m0_sel, dtype=np.int64).reshape(-1)
    vals, inv = np.unique(np.concatenate([m1, m0]), return_inverse=True)
    c1 = np.bincount(inv[: m1.size], minlength=vals.size)
    c0 = np.bincount(inv[m1.size :], minlength=vals.size)
    table = np.log((c1 + 0.5) / (m1.size + 1.0)) - np.log((c0 + 0.5) / (m0.size + 1.0))

    def score(m) -> np.ndarray:
        m = np.asarray(m, dtype=np.int64).reshape(-1)
        pos = np.minimum(np.searchsorted(vals, m), vals.size - 1)
        return np.where(vals[pos] == m, table[pos], 0.0)

    return score


def audit_messages(m1, m0, *, confidence: float = 0.95) -> AuditOutcome:
    """Held-out audit of discrete messages (indices) from i.i.d. runs on x (m1) and x' (m0): the
    score of :func:`message_scores` is learnt on the first halves, the event (messages with the
    largest learnt ratio, either direction) chosen on them too, and evaluated on the second halves."""
    c = check_probability(confidence, "confidence")
    m1 = np.asarray(m1, dtype=np.int64).reshape(-1)
    m0 = np.asarray(m0, dtype=np.int64).reshape(-1)
    (a1, b1), (a0, b0) = _halves(m1), _halves(m0)
    score = message_scores(a1, a0)
    t, d, sel = select_event(score(a1), score(a0), confidence=c)
    lb, k1, n1, k0, n0 = evaluate_event(score(b1), score(b0), t, d, confidence=c)
    return AuditOutcome(lb, c, t, d, k1, n1, k0, n0, sel)


# --------------------------------------------------------------------------- exact transcript pmfs
def exact_transcript_epsilon(log_p1, log_p0) -> float:
    """``max_k |log π_k(x) − log π_k(x')|`` over messages with positive probability under either
    input (inf when one input gives a message probability zero and the other does not)."""
    l1 = np.asarray(log_p1, dtype=np.float64)
    l0 = np.asarray(log_p0, dtype=np.float64)
    if l1.shape != l0.shape:
        raise InputError(f"pmfs of different shapes {l1.shape}, {l0.shape}")
    live = np.isfinite(l1) | np.isfinite(l0)
    if not np.any(live):
        raise InputError("both pmfs are empty")
    both = np.isfinite(l1) & np.isfinite(l0)
    if np.any(live & ~both):
        return math.inf
    return float(np.max(np.abs(l1[both] - l0[both])))


def mrc_log_pmf(log_r) -> np.ndarray:
    """MRC: ``log π_k = log r_k − logsumexp_j log r_j`` (Havasi et al. 2019; Shah et al. 2022, Sec. 3)."""
    from ..rec.mrc import mrc_log_probs

    return mrc_log_probs(log_r)


def modified_mrc_log_pmf(log_r, *, epsilon: float, log_c_max: float) -> np.ndarray:
    """Modified MRC (Shah et al. 2022, Sec. 4): log of the band-clipped π̃."""
    from ..rec.mrc import modified_mrc_probs

    with np.errstate(divide="ignore"):
        return np.log(modified_mrc_probs(log_r, epsilon=epsilon, log_c_max=log_c_max))


def rejection_log_pmf(log_r, *, log_c_max: float) -> np.ndarray:
    """Rejection sampling on shared candidates with fallback (Feldman & Talwar 2021, Alg. 1 on an
    index): with ``a_i = r_i/c_max`` over the t tried candidates ``log_r`` (..., t),

        π_k = a_k Π_{i<k} (1 − a_i)  (k < t),     π_t = Π_{i<t} (1 − a_i)  (fallback);

    returns (..., t + 1) log probabilities (−inf where a candidate before k has a_i = 1)."""
    lr = np.asarray(log_r, dtype=np.float64)
    if not np.isfinite(log_c_max):
        raise ParameterError("rejection sampling needs a finite log c_max")
    if np.any(lr > log_c_max + 1e-9):
        raise InputError("a log ratio exceeds log c_max")
    log_a = np.minimum(lr - log_c_max, 0.0)
    with np.errstate(divide="ignore"):
        log_rej = np.log(-np.expm1(log_a))  # log(1 − a_i), −inf when a_i = 1
    zero = np.zeros(lr.shape[:-1] + (1,))
    prefix = np.concatenate([zero, np.cumsum(log_rej, axis=-1)], axis=-1)  # Σ_{i<k}, k = 0..t
    return prefix + np.concatenate([log_a, zero], axis=-1)
