"""Minimal random coding (MRC) and the ε-LDP modified MRC of Shah et al. (2022).

**MRC** (Havasi, Peharz, Hernández-Lobato 2019, Alg. 1; Shah, Chen, Ballé, Kairouz, Theis,
"Optimal compression of locally differentially private mechanisms", AISTATS 2022, Sec. 3).
Both ends draw ``N = 2^b`` shared candidates ``Z_1 … Z_N ~ P``; the encoder samples

    K ~ π,   π_k = r(Z_k) / Σ_j r(Z_j),

with private randomness and sends K in b bits. For an ε-LDP ratio (``c_max/c_min ≤ e^ε``) the
transcript (candidates, K) is **2ε**-LDP: ``π_k(x)/π_k(x') = [r_x(Z_k)/r_{x'}(Z_k)]·[Σ r_{x'}/Σ r_x]``
and each factor can reach ``e^ε`` (Shah et al., Sec. 3). We sample K by the Gumbel-max trick,
``K = argmax_k log r(Z_k) + G_k``, streaming over blocks, so π is never stored.

**Modified MRC** (Shah et al. 2022, Sec. 4; reference implementation ``rcc_dp/modify_pi.py`` of the
authors, google-research/federated). The probabilities π are moved into the fixed band

    [L, U] = [c_max e^{−ε} / N,  c_max / N]          (ε = the transcript's target ε)

i.e. ``e^{±ε/2}`` around the reference level ``c_max e^{−ε/2}/N``, where ``c_max = sup r``. Because the
band does not depend on the input, ``π̃_k(x)/π̃_k(x') ≤ U/L = e^ε``: the transcript is **ε**-LDP. The
band is feasible (``N·L ≤ 1 ≤ N·U``) iff ``log c_max ≤ ε``, which holds when the mechanism is ε-LDP.
The clipping is the authors' procedure, written in closed form (:func:`band_clip`):

* ``A = Σ (π−U)_+`` (mass above the band), ``B = Σ (L−π)_+`` (mass below);
* ``A = B = 0``: π is kept;
* ``A > B``: entries above U are set to U, the others become ``min(U, max(π_k, L) + t·π_k)``;
* ``B ≥ A, B > 0``: entries below L are set to L, the others become ``max(L, min(π_k, U) − s·π_k)``;

with ``t, s ≥ 0`` fixed by ``Σ π̃ = 1`` (the iterative "clip and renormalise ∝ π" loop of the
reference code converges to exactly this water level).

**Finite-N cap probability** (Shah et al., Sec. 5 "unbiasing"; references.md §3): for a cap mechanism
(ratio ``c1`` on a cap of P-mass q, ``c2`` off it) the chosen candidate is in the cap with probability
``p̂ = E_j[p_cap(j)]``, ``j ~ Binomial(N, q)`` candidates in the cap; :func:`effective_cap_probability`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special, stats

from .._validation import check_epsilon, check_positive_int
from ..errors import DecodeError, IncompatibleError, InputError, ParameterError
from ..privacy.events import TranscriptPrivacy
from .base import Encoded, SelectionLaw, Simulator, Target, as_indices, decode_candidates, encoded

_BLOCK_ELEMENTS = 1 << 20  # (clients × candidates) log-ratios per block


def mrc_bits(epsilon: float, t: float = 2.0) -> int:
    """Shah et al.'s default index length ``b = max(⌈ε/ln 2 + t⌉, 8)`` bits (ε in nats)."""
    eps = check_epsilon(epsilon)
    return max(int(math.ceil(eps / math.log(2) + t)), 8)


def check_log_ratios(log_r: np.ndarray) -> np.ndarray:
    """Reject NaN and +inf log ratios (−inf, a zero ratio, is allowed)."""
    log_r = np.asarray(log_r, dtype=np.float64)
    if np.isnan(log_r).any() or np.isposinf(log_r).any():
        raise InputError("log ratios must not be NaN or +inf")
    return log_r


def block_size(n: int, total: int) -> int:
    """Candidates per block so that a block of log ratios holds about 2^20 numbers."""
    return int(max(1, min(total, _BLOCK_ELEMENTS // max(n, 1))))


def check_indices(indices, limit: int | None) -> np.ndarray:
    """Indices (an array, :class:`~.base.Encoded` or messages) as int64; DecodeError if negative or ≥ ``limit``."""
    return as_indices(indices, limit)


def _cap_ratios(mech) -> tuple[float, float, float]:
    """(q, c1, c2) of a cap mechanism: cap mass, ratio on the cap, ratio off it."""
    q, p = float(mech.cap_mass), float(mech.p)
    return q, p / q, (1.0 - p) / (1.0 - q)


# --------------------------------------------------------------------------- selection probabilities
def mrc_log_probs(log_r) -> np.ndarray:
    """``log π_k = log r_k − logsumexp_j log r_j`` along the last axis."""
    log_r = check_log_ratios(log_r)
    return log_r - special.logsumexp(log_r, axis=-1, keepdims=True)


def _waterfill(base, w, cap, target, sign):
    """Solve ``Σ_k h_k(t) = target`` for ``t ≥ 0`` row-wise, ``h_k = min(cap, base+t·w)`` (sign +1)
    or ``max(cap, base − t·w)`` (sign −1); entries with ``w = 0`` stay at ``base``. Returns h(t)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(w > 0, sign * (cap - base) / w, np.inf)  # t at which entry k saturates
    tau = np.where((w == 0) & (base == cap), -1.0, tau)  # already saturated
    order = np.argsort(tau, axis=-1)
    ts = np.take_along_axis(tau, order, -1)
    bs = np.take_along_axis(base, order, -1)
    ws = np.take_along_axis(w, order, -1)
    n_sat = np.arange(1, ts.shape[-1] + 1)
    suf_b = np.cumsum(bs[..., ::-1], -1)[..., ::-1] - bs  # Σ_{j>m} base_j
    suf_w = np.cumsum(ws[..., ::-1], -1)[..., ::-1] - ws
    with np.errstate(invalid="ignore"):
        val = cap * n_sat + suf_b + sign * np.where(np.isfinite(ts), np.maximum(ts, 0.0), 0.0) * suf_w  # h-sum at t = τ_(m)
    ok = np.isfinite(ts) & ((val <= target) if sign > 0 else (val >= target))
    m = np.sum(ok, axis=-1, keepdims=True)  # breakpoints already passed at the solution
    zero = np.zeros(bs.shape[:-1] + (1,))
    rest_b = np.take_along_axis(np.concatenate([suf_b + bs, zero], -1), m, -1)  # Σ_{j ≥ m}, exact 0 at m = N
    rest_w = np.take_along_axis(np.concatenate([suf_w + ws, zero], -1), m, -1)
    # all movable entries saturated: the solution is the last breakpoint passed
    t_sat = np.take_along_axis(np.where(np.isfinite(ts), np.maximum(ts, 0.0), 0.0), np.maximum(m - 1, 0), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(rest_w > 0, sign * (target - cap * m - rest_b) / rest_w, t_sat)
    t = np.maximum(t, 0.0)
    h = base + sign * t * w
    return np.minimum(h, cap) if sign > 0 else np.maximum(h, cap)


def band_clip(pi, lower, upper) -> np.ndarray:
    """Shah et al.'s (Sec. 4) move of each row of ``pi`` into ``[lower, upper]`` (see module doc).

    ``pi``: ``(..., N)`` probabilities summing to 1 along the last axis; ``lower``/``upper``
    scalars or broadcastable with ``N·lower ≤ 1 ≤ N·upper``. Vectorised; O(N log N) per row.
    """
    pi = np.asarray(pi, dtype=np.float64)
    N = pi.shape[-1]
    L = np.broadcast_to(np.asarray(lower, dtype=np.float64), pi.shape[:-1] + (1,))
    U = np.broadcast_to(np.asarray(upper, dtype=np.float64), pi.shape[:-1] + (1,))
    if np.any(N * L > 1 + 1e-12) or np.any(N * U < 1 - 1e-12) or np.any(L > U):
        raise ParameterError("infeasible band: need N·lower ≤ 1 ≤ N·upper")
    above = pi > U
    below = pi < L
    A = np.sum(np.where(above, pi - U, 0.0), -1, keepdims=True)
    B = np.sum(np.where(below, L - pi, 0.0), -1, keepdims=True)
    case_a = A > B
    case_b = (~case_a) & (B > 0)
    out = pi.copy()
    rows_a = case_a[..., 0]
    if np.any(rows_a):
        p = pi[rows_a]
        ab = above[rows_a]
        Ua, La = U[rows_a], L[rows_a]
        base = np.where(ab, Ua, np.maximum(p, La))
        out[rows_a] = _waterfill(base, np.where(ab, 0.0, p), Ua, 1.0, +1)
    rows_b = case_b[..., 0]
    if np.any(rows_b):
        p = pi[rows_b]
        be = below[rows_b]
        Ub, Lb = U[rows_b], L[rows_b]
        base = np.where(be, Lb, np.minimum(p, Ub))
        out[rows_b] = _waterfill(base, np.where(be, 0.0, p), Lb, 1.0, -1)
    return out / out.sum(-1, keepdims=True)


def modified_mrc_probs(log_r, *, epsilon: float, log_c_max: float) -> np.ndarray:
    """Selection probabilities π̃ of modified MRC for log ratios ``(..., N)``: π clipped into
    ``[c_max e^{−ε}/N, c_max/N]`` (Shah et al. 2022, Sec. 4)."""
    eps = check_epsilon(epsilon)
    log_r = check_log_ratios(log_r)
    if not np.isfinite(log_c_max):
        raise IncompatibleError("modified MRC needs a finite upper bound on the ratio")
    if np.any(log_r > log_c_max + 1e-9):
        raise InputError("a log ratio exceeds the stated upper bound log c_max")
    if log_c_max > eps + 1e-12:
        raise IncompatibleError(f"band infeasible: log c_max = {log_c_max:.4g} > ε = {eps:.4g}")
    N = log_r.shape[-1]
    pi = np.exp(mrc_log_probs(log_r))
    return band_clip(pi, math.exp(log_c_max - eps) / N, math.exp(log_c_max) / N)


# --------------------------------------------------------------------------- finite-N cap probability
def _cap_terms(N: int, q: float, c1: float, c2: float):
    N = check_positive_int(N, "N")
    q = float(q)
    if not 0 < q < 1 or not (c1 > 0 and c2 > 0):
        raise ParameterError("need 0 < q < 1 and c1, c2 > 0")
    j = np.arange(N + 1, dtype=np.float64)
    logw = stats.binom.logpmf(j, N, q)
    S = j * c1 + (N - j) * c2  # Σ_k r(Z_k) given j candidates in the cap
    return N, j, logw, S


def effective_cap_probability(N: int, q: float, c1: float, c2: float) -> float:
    """``p̂ = Σ_j Bin(j; N, q) · j c1 / (j c1 + (N−j) c2)``: probability that MRC's chosen candidate
    lies in the cap (Shah et al. 2022, Sec. 5; the authors' ``get_unbiased_p_hat``)."""
    N, j, logw, S = _cap_terms(N, q, c1, c2)
    return float(np.sum(np.exp(logw) * (j * c1 / S)))


def modified_cap_probability(N: int, q: float, c1: float, c2: float, *, epsilon: float, log_c_max=None) -> float:
    """Cap probability of modified MRC: ``p̃ = Σ_j Bin(j; N, q) · m(j)`` with m(j) the in-cap mass of
    :func:`band_clip` applied to the two-level π (``a = c1/S`` on j entries, ``b = c2/S`` on N−j):

    * no violation: ``m = j a``;
    * ``A > B`` (A, B as in the module doc): the group above U is set to U, so ``m = jU`` if ``a > U``
      else ``1 − (N−j)U``;
    * ``B ≥ A, B > 0``: the group below L is set to L, so ``m = jL`` if ``a < L`` else ``1 − (N−j)L``;

    with ``U = c_max/N``, ``L = c_max e^{−ε}/N`` and ``c_max = max(c1, c2)`` unless given.
    """
    eps = check_epsilon(epsilon)
    N, j, logw, S = _cap_terms(N, q, c1, c2)
    lcm = math.log(max(c1, c2)) if log_c_max is None else float(log_c_max)
    U, L = math.exp(lcm) / N, math.exp(lcm - eps) / N
    a, b = c1 / S, c2 / S
    A = j * np.maximum(a - U, 0) + (N - j) * np.maximum(b - U, 0)
    B = j * np.maximum(L - a, 0) + (N - j) * np.maximum(L - b, 0)
    m_a = np.where(a > U, j * U, 1 - (N - j) * U)
    m_b = np.where(a < L, j * L, 1 - (N - j) * L)
    m = np.where(A > B, m_a, np.where(B > 0, m_b, j * a))
    m = np.where(j == 0, 0.0, np.where(j == N, 1.0, m))
    return float(np.sum(np.exp(logw) * m))


# --------------------------------------------------------------------------- simulators
def _check_bits(bits) -> int:
    b = check_positive_int(bits, "bits")
    if b > 40:
        raise ParameterError(f"bits must be <= 40, got {b}")
    return b


@dataclass(frozen=True)
class FixedCandidates(Simulator):
    """Shared pieces of the simulators over a fixed set of ``N = 2^bits`` candidates (MRC, modified
    MRC, ORC): the size check, ``n_candidates``, a decoder that regenerates candidate K alone and
    rejects indices ≥ N, and the fixed-length codelength."""

    bits: int

    def __post_init__(self) -> None:
        _check_bits(self.bits)

    @property
    def n_candidates(self) -> int:
        return 1 << self.bits

    @property
    def index_limit(self) -> int:
        return self.n_candidates

    def check_mechanism(self, mechanism) -> None:
        """Needs a bounded ratio (c_max/c_min ≤ e^ε): the transcript's bound and the finite-N unbiasing
        are stated in c_min, c_max (a target may still be unbounded: :meth:`check_target`)."""
        lo, hi = mechanism.log_ratio_bounds()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise IncompatibleError(f"{self.name} needs a bounded density ratio, but the mechanism's log bounds "
                                    f"are ({lo}, {hi})")

    def expected_codelength(self, kl_bits: float = 0.0) -> float:
        """Fixed-length index: ``bits`` (ORC's entropy-coded size is reported separately)."""
        return float(self.bits)


@dataclass(frozen=True)
class MRC(FixedCandidates):
    """Minimal random coding with ``N = 2^bits`` shared candidates (module doc). Transcript 2ε."""

    name: ClassVar[str] = "mrc"
    exact: ClassVar[bool] = False
    needs_bounded_ratio: ClassVar[bool] = False
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "multiplier", 2.0, "Shah et al. 2022, Sec. 3: r moves by e^ε in numerator and normaliser"
    )

    def encode(self, target: Target, *, rng=None) -> Encoded:
        """Gumbel-max over blocks: ``K = argmax_k log r(Z_k) + G_k``, G i.i.d. Gumbel from ``rng``."""
        self.check_target(target)
        rng = np.random.default_rng(rng)
        n, N = target.n, self.n_candidates
        best = np.full(n, -np.inf)
        arg = np.zeros(n, dtype=np.int64)
        bs = block_size(n, N)
        for start in range(0, N, bs):
            cnt = min(bs, N - start)
            s = check_log_ratios(target.log_ratio_block(start, cnt)) + rng.gumbel(size=(n, cnt))
            j = np.argmax(s, axis=1)
            v = s[np.arange(n), j]
            upd = v > best
            best = np.where(upd, v, best)
            arg = np.where(upd, start + j, arg)
        if np.any(~np.isfinite(best)):
            raise InputError("every candidate has a zero density ratio")
        return encoded(arg, np.full(n, N))

    def effective_cap_probability(self, mechanism) -> float:
        """``p̂ = E_j[j c1/(j c1 + (N−j) c2)]``, j ~ Bin(N, q) (Shah et al. 2022, Sec. 5)."""
        return effective_cap_probability(self.n_candidates, *_cap_ratios(mechanism))

    def selection_law(self, mechanism) -> SelectionLaw:
        """π_k = r_k / Σ_j r_j over the N candidates (exact)."""
        N = self.n_candidates
        return SelectionLaw("exact", N, lambda t: mrc_log_probs(t.log_ratio_block(0, N)))


@dataclass(frozen=True)
class ModifiedMRC(FixedCandidates):
    """Shah et al.'s ε-LDP modified MRC: MRC whose π is clipped into ``[c_max e^{−ε}/N, c_max/N]``.

    ``epsilon`` is the transcript's guarantee (needs ``log c_max ≤ ε``; the mechanism may run at
    any ε' ≥ ε with that property, Shah et al. use ε' = αε). Stores the ``(n, N)`` log ratios.
    """

    epsilon: float
    name: ClassVar[str] = "modified_mrc"
    exact: ClassVar[bool] = False
    heavy_rows: ClassVar[bool] = True
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "multiplier", 1.0, "Shah et al. 2022, Sec. 4: input-independent band of width e^ε"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_epsilon(self.epsilon)

    def check_target(self, target: Target) -> None:
        if not np.isfinite(target.bounds[1]):
            raise IncompatibleError(f"{self.name} needs a finite upper bound c_max on the density ratio")

    def transcript_event(self, epsilon: float, delta: float = 0.0):
        """The band alone makes the transcript ``self.epsilon``-LDP, whatever the mechanism's own
        spread (it needs only log c_max ≤ self.epsilon, checked at encoding)."""
        from ..privacy.events import PureEvent

        return PureEvent(float(self.epsilon))

    def selection_probs(self, target: Target) -> np.ndarray:
        """π̃ of every client, ``(n, N)``."""
        self.check_target(target)
        n, N = target.n, self.n_candidates
        bs = block_size(n, N)
        log_r = np.concatenate([target.log_ratio_block(s, min(bs, N - s)) for s in range(0, N, bs)], axis=1)
        return modified_mrc_probs(log_r, epsilon=self.epsilon, log_c_max=target.bounds[1])

    def encode(self, target: Target, *, rng=None) -> Encoded:
        rng = np.random.default_rng(rng)
        pi = self.selection_probs(target)
        cdf = np.cumsum(pi, axis=1)
        u = rng.random((pi.shape[0], 1)) * cdf[:, -1:]
        idx = np.minimum(np.sum(cdf <= u, axis=1), pi.shape[1] - 1)
        return encoded(idx, np.full(idx.size, pi.shape[1]))

    def check_mechanism(self, mechanism) -> None:
        """Needs ``log c_max ≤ ε`` (the band's feasibility), hence a finite c_max."""
        hi = float(mechanism.log_ratio_bounds()[1])
        if not np.isfinite(hi):
            raise IncompatibleError(f"{self.name} needs a finite upper bound c_max on the density ratio")
        if hi > float(self.epsilon) + 1e-12:
            raise IncompatibleError(f"band infeasible: log c_max = {hi:.4g} > ε = {float(self.epsilon):.4g}")

    def effective_cap_probability(self, mechanism) -> float:
        """p̃ of the band-clipped two-level π (:func:`modified_cap_probability`)."""
        return modified_cap_probability(self.n_candidates, *_cap_ratios(mechanism), epsilon=self.epsilon,
                                        log_c_max=mechanism.log_ratio_bounds()[1])

    def selection_law(self, mechanism) -> SelectionLaw:
        """π̃ = the band-clipped π (exact)."""
        N, hi = self.n_candidates, float(mechanism.log_ratio_bounds()[1])

        def log_pmf(t):
            with np.errstate(divide="ignore"):
                return np.log(modified_mrc_probs(t.log_ratio_block(0, N), epsilon=self.epsilon, log_c_max=hi))

        return SelectionLaw("exact", N, log_pmf)

