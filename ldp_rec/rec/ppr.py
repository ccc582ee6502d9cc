"""Poisson private representation PPR(α) (Liu, Chen, Özgür, Li, "Universal exact compression of
differentially private mechanisms", NeurIPS 2024, Sec. 3, Alg. 1).

Candidates ``Z_i ~ P`` are shared (index i); arrival times ``T_1 < T_2 < …`` (rate-1 Poisson) and marks
``V_i ~ Exp(1)`` are the encoder's private randomness. The encoder sends

    K = argmin_i W_i,   W_i = (T_i / r(Z_i))^α · V_i,   α > 1.

Exactness: the points ``(T, Z, V)`` form a Poisson process of intensity ``dt · P(dz) · e^{−v} dv``, and
``μ{W ≤ w, Z ∈ dz} = Γ(1 − 1/α) · w^{1/α} · r(z) P(dz)`` factorises, so ``Z_K ~ r dP = Q`` exactly.
The transcript is **2αε-LDP** for an ε-LDP mechanism (Liu et al., Thm. 4.5), and the index costs about
``ℓ + log2(ℓ+1) + 2`` bits with ``ℓ = I + log2(3.56)/min((α−1)/2, 1)`` (their Thm. 4.3): about 73 bits
more than I at α = 1.05, so for α near 1 the index routinely exceeds 2^63 (``P[K > k]`` decays only like
``k^{1−α}``). Indices are therefore Python integers of any size (see *Far candidates*).

Search (our vectorised, exact variant of their Alg. 1; needs ``r ≤ r_max``):

1. Blocks in index order: ``T`` = running sums of Exp(1), ``V`` ~ Exp(1), ``W`` from the block's log
   ratios; keep the minimum ``w*``. A later point can only win if ``T^α V < β := w*·r_max^α``.
2. Once ``T_M ≥ κ β^{1/α}`` (last examined arrival; κ = ``tail_factor``) the unexamined points that
   could still win, ``D = {t > T_M, v < β t^{−α}}``, form a Poisson process (strong Markov property)
   of finite mass ``λ(T_M)`` with

       λ(a) = ∫_a^∞ (1 − e^{−β t^{−α}}) dt = β^{1/α} γ(1 − 1/α, β a^{−α}) − a (1 − e^{−β a^{−α}})
            = a x Σ_{k≥0} (−x)^k/k! · (1/(s+k) − 1/(k+1)),   x = β a^{−α} ≤ κ^{−α},  s = 1 − 1/α

   (γ the lower incomplete gamma function; the series, whose k = 0 term is ``1/(α−1)``, is used in
   log space, :func:`log_tail_mass`, so times up to ``e^{700}`` and beyond never overflow). We draw
   |D| ~ Poisson(λ), their log times by inverting ``λ(t)/λ(T_M)`` (bisection in ``log t``), their marks
   ``V ~ Exp(1)`` truncated to ``[0, β t^{−α}]``, and their *indices* from the counts of the
   complementary (never winning) points, Poisson with mean ``(t' − t) − (λ(t) − λ(t'))`` between
   consecutive D times. Only the D points' candidates are evaluated. The result has exactly the law of
   the full argmin. Liu et al. enumerate points in the order of ``T^α min(V, 1)`` with a heap instead;
   both stop after O(r_max) candidates.

**Skip counts without a λ limit** (:func:`poisson_count`). The means above reach 1e19 at α = 1.2 and
``e^{1000}`` and more for α near 1, beyond any fixed-width Poisson sampler (numpy's stops at ~9.2e18).
A mean ``λ > 2^60`` is reduced through the arrival process itself (Ahrens & Dieter 1974; Knuth, TAOCP
vol. 2, §3.4.1): with ``m = λ − k``, ``k = ⌈c√λ⌉`` (c = 12), the m-th arrival of a rate-1 process is
``G_m ~ Gamma(m)``; if ``G_m ≤ λ`` the count in ``[0, λ]`` is ``m + Poisson(λ − G_m)``, otherwise
``m − 1 − Binomial(m − 1, (G_m − λ)/G_m)`` (the first m − 1 arrivals are uniform on ``[0, G_m]``).
``G_m − m`` is drawn directly (a centred Marsaglia & Tsang 2000 sampler, exact, written so that no term
of size m is ever formed), so ``λ − G_m = k − (G_m − m)`` keeps its full precision, and the next mean is
about ``c√λ``: five levels take ``e^{700}`` below ``2^60``, where ``numpy``'s exact PTRS sampler
finishes. Every branch is exact except one: a binomial with ``m − 1 ≥ 2^62`` trials (beyond numpy) is
drawn as the Poisson count of the same mean. That branch needs ``G_m > λ = m + k``, whose probability
is at most ``exp(−m(x − log(1+x))) ≤ exp(−c²/2 + c³/(3√m)) < 5.4·10⁻³²`` (Chernoff for Gamma(m),
``x = k/m ≥ c/√m``, ``m ≥ 2^62``), so **the total-variation distance between each drawn count and the
Poisson law is below 5.4·10⁻³² per reduction level**; a mean ``e^L`` takes about ``log2(L/42) + 1`` levels
(5 at ``e^{700}``, ≤ 1020 for any float L), so the distance is **below 10⁻²⁸ per count** — far under
1e-12 — and the index law is within that of PPR's exact law for every client. (As everywhere in this
module, real parameters are float64 numbers: the count is exact for the float mean.)

**Far candidates.** Candidate ``i < 2^62`` of stream ``key`` is the stream's own candidate i
(:mod:`~ldp_rec.rec.randomness`); candidate ``i ≥ 2^62`` is candidate ``i mod 2^62`` of the stream
``far_key(key, i >> 62)`` (BLAKE2b-64, its own domain), so every index, however large, names a
fresh shared candidate, and :meth:`PPR.decode` regenerates it in O(width) work like any other. The
index code (Elias δ on ``K + 1``) takes Python integers of any size.

Unbounded ratios (the Gaussian mechanism): Alg. 1 needs ``r_max``; so do we. Give ``log_ratio_cap``
to run anyway: the output is then exact for the target whose ratio is capped (an examined candidate
above the cap raises InputError, so a silent error needs an unexamined one).
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from ..errors import DecodeError, IncompatibleError, InputError, ParameterError
from ..privacy.events import TranscriptPrivacy
from . import randomness
from .base import Encoded, MechanismTarget, SelectionLaw, Simulator, Target, as_indices, decode_candidates, encoded
from .mrc import check_log_ratios
from .pfr import resolve_cap

FAR = 1 << 62  #: indices from here on address the far streams (module doc)
_FAR_KEY = b"ldp-rec/ppr-far/v1"
_DIRECT_LOG_MEAN = 60 * math.log(2)  # numpy's exact Poisson sampler below this log mean
_SPLIT_SD = 12.0  # k = ⌈c √λ⌉ in the reduction (module doc)
_SERIES_TERMS = 40  # x ≤ 1: the omitted terms are below 1/40! relative to the first


# ----------------------------------------------------------------------------- tail mass λ(a)
def tail_mass(a, beta, alpha: float) -> np.ndarray:
    """``λ(a) = ∫_a^∞ (1 − exp(−β t^{−α})) dt`` (module doc), vectorised, linear scale."""
    a = np.asarray(a, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    s = 1.0 - 1.0 / alpha
    x = beta * a ** (-alpha)
    return beta ** (1 / alpha) * special.gammainc(s, x) * special.gamma(s) + a * np.expm1(-x)


def _tail_series_log(lx, alpha: float) -> np.ndarray:
    """``log S(x) = log Σ_k (−x)^k/k! (1/(s+k) − 1/(k+1))`` for ``x = e^{lx} ≤ 1`` (positive coefficients,
    alternating signs; the first, ``1/(α−1)``, dominates). Terms are summed until ``x^k/k!`` < 1e-18 for the
    largest x (at most 40, below 1/40! for x ≤ 1)."""
    s = 1.0 - 1.0 / alpha
    x = np.exp(np.minimum(lx, 0.0))
    xmax = float(np.max(x)) if x.size else 0.0
    terms, t = 1, 1.0
    while terms < _SERIES_TERMS and t > 1e-18:
        t *= xmax / terms
        terms += 1
    acc = np.full_like(x, 1.0 / s - 1.0)
    term = np.ones_like(x)  # (−x)^k / k!
    for k in range(1, terms):
        term = term * (-x) / k
        acc += term * (1.0 / (s + k) - 1.0 / (k + 1))
    return np.log(acc)


def log_tail_mass(log_a, log_beta, alpha: float) -> np.ndarray:
    """``log λ(a)`` from ``log a`` and ``log β``: the series (module doc) where ``x = β a^{−α} ≤ 1``, so it
    stays finite for ``a`` far beyond the float range; the closed form elsewhere."""
    log_a, log_beta = np.broadcast_arrays(np.asarray(log_a, dtype=np.float64), np.asarray(log_beta, dtype=np.float64))
    lx = log_beta - alpha * log_a
    out = log_a + lx + _tail_series_log(lx, alpha)
    near = lx > 0
    if np.any(near):
        out = np.where(near, np.log(tail_mass(np.exp(np.where(near, log_a, 0.0)), np.exp(np.where(near, log_beta, 0.0)),
                                              alpha)), out)
    return out


def _invert_log_tail(log_target, log_a, log_beta, alpha: float) -> np.ndarray:
    """``log t`` with ``t ≥ a`` and ``λ(t) = e^{log_target}``, for ``β a^{−α} ≤ 1`` (the tail's domain).

    ``log λ(t) = log β + (1 − α) log t + log S(x)``, so ``σ = log t`` is the fixed point of
    ``g(σ) = (log β + log S(β e^{−ασ}) − log_target)/(α − 1)``. g is increasing with slope
    ``x·(−S'(x))/(S(x)(1 − 1/α)·α)·… ≈ x s/(2(1 + s)) ≤ x/4`` (s = 1 − 1/α; x ≤ 1/2 at the default κ), and
    starting from the upper bound that ``S ≤ 1/(α − 1)`` gives, the iterates decrease to the root
    geometrically (40 iterations bound the error by 4^-40 times the first step)."""
    log_target, log_a, log_beta = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                                        (log_target, log_a, log_beta)))
    sig = (log_beta - math.log(alpha - 1) - log_target) / (alpha - 1)
    for _ in range(60):
        new = (log_beta + _tail_series_log(log_beta - alpha * sig, alpha) - log_target) / (alpha - 1)
        done = np.abs(new - sig) <= 1e-13 * np.maximum(1.0, np.abs(sig))
        sig = new
        if np.all(done):
            break
    return np.maximum(sig, log_a)


# ----------------------------------------------------------------------------- Poisson counts of any mean
def _dyadic_int(log_value: float) -> int:
    """``e^{log_value}`` rounded to a 53-bit mantissa, as an exact Python int (needs ``e^{log_value} ≥ 2^60``)."""
    y = log_value / math.log(2)
    e = math.floor(y)
    return round(2.0 ** (y - e + 52)) << (e - 52)


def _centred_gamma(c, rng) -> np.ndarray:
    """Marsaglia & Tsang (2000) for Gamma(a), returned centred and scaled: ``B`` with ``G − a = √d·B − 1/3``
    (``d = a − 1/3``, ``c = 1/(3√d)``, one draw per entry of c). Their algorithm draws ``x ~ N(0, 1)``,
    ``v = (1 + cx)^3 = 1 + 3cB`` with ``B = x + cx² + c²x³/3``, and accepts when
    ``log U < x²/2 + d(1 − v + log v)``; for ``w = 3cB`` small, ``d(log v − (v − 1)) = Σ_{j≥2} (−1)^{j+1}
    (3c)^{j−2} B^j/j`` (``9c²d = 1``), so no term of size d is formed and nothing cancels."""
    out = np.empty(c.size)
    todo = np.arange(c.size)
    while todo.size:
        cc = c[todo]
        x = rng.standard_normal(todo.size)
        logu = np.log(rng.random(todo.size))
        b = x + cc * x * x + cc * cc * x**3 / 3.0
        w = 3.0 * cc * b
        acc = -0.5 * (b - x) * (b + x)  # x²/2 − B²/2
        p = w * b**3  # (3c)^{j−2} B^j at j = 3
        for j in range(3, 48):  # |w| ≤ 0.2 where used: the remainder is below 0.2^45
            acc += p / j if j % 2 else -p / j
            p = p * w
        with np.errstate(invalid="ignore", divide="ignore"):
            direct = 0.5 * x * x + (np.log1p(w) - w) / (9.0 * cc * cc)
        acc = np.where(np.abs(w) <= 0.2, acc, direct)
        ok = (1.0 + cc * x > 0) & (logu < acc)
        out[todo[ok]] = b[ok]
        todo = todo[~ok]
    return out


def poisson_count(log_mean, *, rng, split_sd: float = _SPLIT_SD, direct_below: float = _DIRECT_LOG_MEAN) -> np.ndarray:
    """Poisson counts of means ``e^{log_mean}`` (any size; ``−inf`` gives 0) as an object array of Python
    ints, by the reduction of the module doc: numpy's exact sampler for means up to ``e^{direct_below}``,
    one exact Gamma/Binomial reduction step above, approximate only on an event of probability < 5.4e-32
    per step. ``split_sd`` (c) and ``direct_below`` exist so that tests can reach every branch at small
    means; the bound needs the defaults."""
    if not (split_sd > 0 and math.exp(direct_below) >= (split_sd + 2) ** 2):
        raise ParameterError("poisson_count needs split_sd > 0 and e^direct_below >= (split_sd + 2)^2")
    rng = np.random.default_rng(rng)
    L = np.asarray(log_mean, dtype=np.float64)
    if np.any(np.isnan(L)) or np.any(L == np.inf):
        raise ParameterError("Poisson log means must be finite or -inf")
    flat = L.reshape(-1)
    out = np.zeros(flat.size, dtype=object)  # Python ints
    rows, cur = np.arange(flat.size), flat.copy()
    while rows.size:
        direct = cur <= direct_below
        if np.any(direct):
            out[rows[direct]] += rng.poisson(np.exp(cur[direct])).astype(object)
        rows, cur = rows[~direct], cur[~direct]
        if not rows.size:
            break
        half = 0.5 * cur
        # λ = floor + frac (an exact dyadic integer once λ ≥ 2^53), k = ⌈c√λ⌉, m = floor − k
        lam = [_dyadic_int(v) if v > 40 else math.floor(math.exp(v)) for v in cur]
        frac = np.array([0.0 if v > 40 else math.exp(v) - f for v, f in zip(cur, lam)])
        k = [_dyadic_int(math.log(split_sd) + h) if h > 40 else math.ceil(split_sd * math.exp(h)) for h in half]
        m = [a - b for a, b in zip(lam, k)]
        # (λ − m) e^{−half}, √d/√λ with d = m − 1/3, and c = 1/(3√d)
        c_eff = np.array([split_sd if h > 40 else (kk + f) * math.exp(-h) for kk, f, h in zip(k, frac, half)])
        root = np.sqrt(1.0 - c_eff * np.exp(-half) - np.exp(-2.0 * half) / 3.0)
        b = _centred_gamma(np.exp(-half) / (3.0 * root), rng)
        rn = c_eff - root * b + np.exp(-half) / 3.0  # (λ − G_m)/√λ
        nxt = np.full(rows.size, -np.inf)
        for i in range(rows.size):  # few rows, a handful of levels: Python ints
            if rn[i] > 0:
                out[rows[i]] += m[i]
                nxt[i] = half[i] + math.log(rn[i])
                continue
            # overshoot (G_m > λ): m − 1 − Binomial(m − 1, q), q = (G_m − λ)/G_m
            log_q = half[i] + math.log(-rn[i]) - (cur[i] + math.log1p(-rn[i] * math.exp(-half[i])))
            if m[i] - 1 < FAR:
                out[rows[i]] += m[i] - 1 - int(rng.binomial(m[i] - 1, math.exp(log_q)))
            else:  # the one approximate branch (module doc): Binomial(n, q) ≈ Poisson(nq), TV ≤ q
                more = poisson_count(np.array([math.log(m[i] - 1) + log_q]), rng=rng, split_sd=split_sd,
                                     direct_below=direct_below)
                out[rows[i]] += m[i] - 1 - int(more[0])
        keep = np.isfinite(nxt)
        rows, cur = rows[keep], nxt[keep]
    return out.reshape(L.shape)


# ----------------------------------------------------------------------------- far candidates
def far_key(key: int, high: int) -> np.uint64:
    """Stream key of the far candidates ``high·2^62 … (high+1)·2^62 − 1`` of stream ``key`` (high ≥ 1):
    BLAKE2b-64 keyed with its own label over ``key`` (8 bytes) and ``high`` (little-endian)."""
    msg = int(key).to_bytes(8, "little") + int(high).to_bytes(max(1, (int(high).bit_length() + 7) // 8), "little")
    return np.uint64(int.from_bytes(hashlib.blake2b(msg, digest_size=8, key=_FAR_KEY).digest(), "little"))


def candidate_address(keys, indices) -> tuple[np.ndarray, np.ndarray]:
    """``(stream keys, local indices)`` of candidate ``indices[c]`` of stream ``keys[c]`` (module doc):
    uint64 and int64 arrays, the identity for indices below 2^62."""
    keys = np.asarray(keys, dtype=np.uint64).reshape(-1).copy()
    idx = [int(i) for i in np.asarray(indices, dtype=object).reshape(-1)]
    local = np.array([i & (FAR - 1) for i in idx], dtype=np.int64)
    for c, i in enumerate(idx):
        if i >= FAR:
            keys[c] = far_key(int(keys[c]), i >> 62)
    return keys, local


def _rekeyed(target: Target, rows, keys) -> Target:
    """A shallow copy of ``target`` whose clients ``rows`` use the streams ``keys``."""
    t = copy.copy(target)
    k = np.array(target.keys, dtype=np.uint64, copy=True)
    k[rows] = keys
    object.__setattr__(t, "keys", k)
    return t


def _log_ratio_local(target: Target, rows, idx) -> np.ndarray:
    if hasattr(target, "log_ratio_at"):
        return np.asarray(target.log_ratio_at(idx, rows), dtype=np.float64)
    if isinstance(target, MechanismTarget):
        ref = target.reference
        z = ref.transform(randomness.gather(target.keys[rows], idx, ref.base_width, ref.base))
        return np.asarray(target.mechanism.log_ratio(z[:, None, :], target.U[rows]), dtype=np.float64)[:, 0]
    out = np.empty(idx.size)
    for k in np.unique(idx):  # generic fallback: one block of all clients per distinct index
        sel = idx == k
        out[sel] = target.log_ratio_block(int(k), 1)[rows[sel], 0]
    return out


def log_ratio_at(target: Target, rows, indices) -> np.ndarray:
    """``log r_c(Z_{c, k})`` for the pairs ``(c, k) = (rows[i], indices[i])``, one candidate each; indices
    of any size (far ones through :func:`candidate_address`)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    idx = np.asarray(indices, dtype=object).reshape(-1)
    far = np.array([int(i) >= FAR for i in idx], dtype=bool)
    out = np.empty(rows.size)
    if not far.all():
        out[~far] = _log_ratio_local(target, rows[~far], idx[~far].astype(np.int64))
    pending = np.flatnonzero(far)
    while pending.size:  # one pass per repeated row (each pass re-keys distinct clients)
        _, first = np.unique(rows[pending], return_index=True)
        now = pending[first]
        keys, local = candidate_address(target.keys[rows[now]], idx[now])
        out[now] = _log_ratio_local(_rekeyed(target, rows[now], keys), rows[now], local)
        pending = np.setdiff1d(pending, now)
    return out


def check_any_indices(indices) -> list[int]:
    """Indices (an array, :class:`~.base.Encoded` or messages) as Python ints of any size; DecodeError if
    not integers or negative."""
    return [int(i) for i in as_indices(indices, None, big=True)]


# ----------------------------------------------------------------------------- the simulator
@dataclass(frozen=True)
class PPR(Simulator):
    """Poisson private representation with parameter ``alpha`` > 1 (module doc). Exact output; indices
    are Python ints of any size."""

    alpha: float = 2.0
    log_ratio_cap: float | None = None
    block: int = 64
    tail_factor: float = 2.0
    max_candidates: int = 1 << 26
    name: ClassVar[str] = "ppr"
    exact: ClassVar[bool] = True
    needs_bounded_ratio: ClassVar[bool] = False
    heavy_rows: ClassVar[bool] = True
    _NOTE: ClassVar[str] = "Liu, Chen, Özgür, Li 2024, Thm. 4.5: 2αε-LDP"

    @property
    def transcript(self) -> TranscriptPrivacy:
        """2αε-LDP (Liu et al. 2024, Thm. 4.5): the factor 2α of this instance."""
        return TranscriptPrivacy("multiplier", 2.0 * float(self.alpha), self._NOTE)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha) and self.alpha > 1):
            raise ParameterError(f"alpha must be > 1, got {self.alpha}")
        if not self.tail_factor >= 1:
            raise ParameterError("tail_factor must be >= 1")
        if self.log_ratio_cap is not None and not math.isfinite(self.log_ratio_cap):
            raise ParameterError("log_ratio_cap must be finite")
        if int(self.block) < 1:
            raise ParameterError("block must be >= 1")

    def encode(self, target: Target, *, rng=None) -> Encoded:
        rng = np.random.default_rng(rng)
        a_ = float(self.alpha)
        log_cap = resolve_cap(target, self.log_ratio_cap, self.name)  # scalar, or per client
        n = target.n
        best = np.full(n, np.inf)  # min log W
        arg = np.zeros(n, dtype=object)  # Python ints: tail indices can exceed 2^63
        t_last = np.zeros(n)
        active = np.ones(n, dtype=bool)
        steps = np.zeros(n, dtype=np.int64)
        start, cnt = 0, int(self.block)
        while active.any():
            if start >= self.max_candidates:
                raise InputError(f"PPR did not stop within {self.max_candidates} candidates")
            t = t_last[:, None] + np.cumsum(rng.standard_exponential((n, cnt)), axis=1)
            logv = np.log(rng.standard_exponential((n, cnt)))
            lr = check_log_ratios(target.log_ratio_block(start, cnt))
            if np.any(lr > np.reshape(log_cap, (-1, 1)) + 1e-9):
                raise InputError("a candidate's log ratio exceeds the ratio bound: PPR would not be exact")
            logw = a_ * (np.log(t) - lr) + logv
            j = np.argmin(logw, axis=1)
            v = logw[np.arange(n), j]
            upd = active & (v < best)
            best = np.where(upd, v, best)
            arg = np.where(upd, start + j, arg)
            steps = np.where(active, start + cnt, steps)
            t_last = np.where(active, t[:, -1], t_last)
            start += cnt
            log_beta = best + a_ * log_cap
            ready = active & np.isfinite(best) & (np.log(t_last) >= log_beta / a_ + math.log(self.tail_factor))
            if ready.any():
                self._tail(target, np.flatnonzero(ready), np.log(t_last), log_beta, start, best, arg, steps, log_cap,
                           rng)
                active &= ~ready
            cnt = min(2 * cnt, 1 << 14)
        return encoded(arg, steps)  # int64, or Python ints when a far index reaches 2^63

    def check_mechanism(self, mechanism) -> None:
        """Needs ``r ≤ r_max``: the mechanism's bound, or ``log_ratio_cap`` for an unbounded ratio."""
        if self.log_ratio_cap is None and not np.isfinite(mechanism.log_ratio_bounds()[1]):
            raise IncompatibleError(f"{self.name} needs a finite ratio bound or a log_ratio_cap")

    def selection_law(self, mechanism) -> SelectionLaw:
        """No closed form: the MRC pmf of the first 16 candidates, a proxy for shortlisting audit pairs."""
        from .mrc import mrc_log_probs

        M = 16
        return SelectionLaw("proxy", M, lambda t: mrc_log_probs(t.log_ratio_block(0, M)))

    def _tail(self, target, ready, log_t_last, log_beta, next_index, best, arg, steps, log_cap, rng) -> None:
        """Exact treatment of the unexamined points after ``t_last`` for the clients ``ready`` (module doc,
        step 2), in log time, on the flat list of competing points (client-major, time order); updates
        ``best``/``arg``/``steps`` in place."""
        a_ = float(self.alpha)
        lb, s0 = log_beta[ready], log_t_last[ready]
        log_lam = log_tail_mass(s0, lb, a_)
        counts = poisson_count(log_lam, rng=rng).astype(np.int64)  # λ(T_M) = O(r_max/(α − 1))
        total = int(counts.sum())
        if total == 0:
            return
        owner = np.repeat(np.arange(ready.size), counts)
        first_pos = np.cumsum(counts) - counts
        rank = np.arange(total) - first_pos[owner]  # position of the point among its client's
        u = rng.random(total)
        u = u[np.lexsort((-u, owner))]  # per client descending: the earliest point first
        lbp, l0, s0p = lb[owner], log_lam[owner], s0[owner]
        ls = _invert_log_tail(np.log(u) + l0, s0p, lbp, a_)  # log times of the competing points
        # marks: Exp(1) truncated to [0, y], y = β t^{−α}: V = −log(1 − U(1 − e^{−y})); V ≈ U y once y underflows
        log_y = lbp - a_ * ls
        uu = rng.random(total)
        logv = np.where(log_y < -700, np.log(uu) + log_y,
                        np.log(-np.log1p(uu * np.expm1(-np.exp(np.maximum(log_y, -700))))))
        # non-competing points between consecutive competing ones: Poisson((t' − t) − (λ(t) − λ(t')))
        first = rank == 0
        lam_t = log_tail_mass(ls, lbp, a_)
        prev = np.where(first, s0p, np.roll(ls, 1))
        lam_p = np.where(first, l0, np.roll(lam_t, 1))
        with np.errstate(divide="ignore"):
            log_dt = ls + np.log(-np.expm1(np.minimum(prev - ls, 0.0)))
            log_dl = lam_p + np.log(-np.expm1(np.minimum(lam_t - lam_p, 0.0)))
            log_gap = log_dt + np.log1p(-np.exp(np.minimum(log_dl - log_dt, 0.0)))
        gaps = poisson_count(log_gap, rng=rng)  # object: Python ints of any size
        csum = np.cumsum(gaps)
        skips = csum - (csum - gaps)[first_pos[owner]]  # per-client running sums
        idx = next_index + rank.astype(object) + skips
        rows_all = ready[owner]
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(int(counts.max()) + 1))
        for j in range(int(counts.max())):  # rounds over the competing points, vectorised over clients
            sel = by_rank[bounds[j] : bounds[j + 1]]
            lr = check_log_ratios(log_ratio_at(target, rows_all[sel], idx[sel]))
            if np.any(lr > np.broadcast_to(log_cap, (target.n,))[rows_all[sel]] + 1e-9):
                raise InputError("a candidate's log ratio exceeds the ratio bound: PPR would not be exact")
            logw = a_ * (ls[sel] - lr) + logv[sel]
            r = rows_all[sel]
            win = logw < best[r]
            best[r[win]] = logw[win]
            arg[r[win]] = idx[sel][win]
            steps[r] += 1

    def decode(self, indices, reference, keys) -> np.ndarray:
        keys, local = candidate_address(keys, check_any_indices(indices))
        return decode_candidates(reference, keys, local)

    def expected_codelength(self, kl_bits: float) -> float:
        """``ℓ + log2(ℓ+1) + 2`` with ``ℓ = I + log2(3.56)/min((α−1)/2, 1)`` (Liu et al., Thm. 4.3)."""
        ell = kl_bits + math.log2(3.56) / min((self.alpha - 1) / 2, 1.0)
        return float(ell + math.log2(ell + 1) + 2)
