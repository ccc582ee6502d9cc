"""Poisson private representation PPR(α) (Liu, Chen, Özgür, Li, "Universal exact compression of
differentially private mechanisms", NeurIPS 2024, Sec. 3, Alg. 1).

Candidates ``Z_i ~ P`` are shared (index i); arrival times ``T_1 < T_2 < …`` (rate-1 Poisson) and marks
``V_i ~ Exp(1)`` are the encoder's private randomness. The encoder sends

    K = argmin_i W_i,   W_i = (T_i / r(Z_i))^α · V_i,   α > 1.

Exactness: the points ``(T, Z, V)`` form a Poisson process of intensity ``dt · P(dz) · e^{−v} dv``, and
``μ{W ≤ w, Z ∈ dz} = Γ(1 − 1/α) · w^{1/α} · r(z) P(dz)`` factorises, so ``Z_K ~ r dP = Q`` exactly.
The transcript is **2αε-LDP** for an ε-LDP mechanism (Liu et al., Thm. 4.5), and the index costs about
``ℓ + log2(ℓ+1) + 2`` bits with ``ℓ = I + log2(3.56)/min((α−1)/2, 1)`` (their Thm. 4.3).

Search (our vectorised, exact variant of their Alg. 1; needs ``r ≤ r_max``):

1. Blocks in index order: ``T`` = running sums of Exp(1), ``V`` ~ Exp(1), ``W`` from the block's log
   ratios; keep the minimum ``w*``. A later point can only win if ``T^α V < β := w*·r_max^α``.
2. Once ``T_M ≥ κ β^{1/α}`` (last examined arrival; κ = ``tail_factor``) the unexamined points that
   could still win, ``D = {t > T_M, v < β t^{−α}}``, form a Poisson process (strong Markov property)
   of finite mass ``λ(T_M)`` with

       λ(a) = ∫_a^∞ (1 − e^{−β t^{−α}}) dt = β^{1/α} γ(1 − 1/α, β a^{−α}) − a (1 − e^{−β a^{−α}}),

   (γ the lower incomplete gamma function). We draw |D| ~ Poisson(λ), their times by inverting
   ``λ(t)/λ(T_M)``, their marks ``V ~ Exp(1)`` truncated to ``[0, β t^{−α}]``, and their *indices* from
   the counts of the complementary (never winning) points, Poisson with mean
   ``(t' − t) − (λ(t) − λ(t'))`` between consecutive D times. Only the D points' candidates are
   evaluated. The result has exactly the law of the full argmin. Liu et al. enumerate points in
   the order of ``T^α min(V, 1)`` with a heap instead; both stop after O(r_max) candidates.

Unbounded ratios (the Gaussian mechanism): Alg. 1 needs ``r_max``; so do we. Give ``log_ratio_cap``
to run anyway: the output is then exact for the target whose ratio is capped (an examined candidate
above the cap raises InputError, so a silent error needs an unexamined one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from ..errors import InputError, ParameterError
from ..privacy.events import TranscriptPrivacy
from . import randomness
from .base import MechanismTarget, Message, Simulator, Target, decode_candidates
from .mrc import check_indices, check_log_ratios
from .pfr import resolve_cap


def tail_mass(a, beta, alpha: float) -> np.ndarray:
    """``λ(a) = ∫_a^∞ (1 − exp(−β t^{−α})) dt`` (module doc), vectorised."""
    a = np.asarray(a, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    s = 1.0 - 1.0 / alpha
    x = beta * a ** (-alpha)
    return beta ** (1 / alpha) * special.gammainc(s, x) * special.gamma(s) + a * np.expm1(-x)


def _invert_tail(target_mass, a, beta, alpha: float) -> np.ndarray:
    """t > a with ``λ(t) = target_mass`` (bisection in log t, vectorised)."""
    lo = np.log(a)
    hi = np.log(np.maximum(a, (beta / ((alpha - 1) * target_mass)) ** (1 / (alpha - 1)))) + 1e-6
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        big = tail_mass(np.exp(mid), beta, alpha) > target_mass
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    return np.exp(0.5 * (lo + hi))


def log_ratio_at(target: Target, rows, indices) -> np.ndarray:
    """``log r_c(Z_{c, k})`` for the pairs ``(c, k) = (rows[i], indices[i])``, one candidate each."""
    rows = np.asarray(rows, dtype=np.int64)
    idx = np.asarray(indices, dtype=np.int64)
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


@dataclass(frozen=True)
class PPR(Simulator):
    """Poisson private representation with parameter ``alpha`` > 1 (module doc). Exact output."""

    alpha: float = 2.0
    log_ratio_cap: float | None = None
    block: int = 64
    tail_factor: float = 2.0
    max_candidates: int = 1 << 26
    name: ClassVar[str] = "ppr"
    exact: ClassVar[bool] = True
    needs_bounded_ratio: ClassVar[bool] = False
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "multiplier", 2.0, "Liu, Chen, Özgür, Li 2024, Thm. 4.5: 2αε-LDP (factor is set per instance)"
    )

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha) and self.alpha > 1):
            raise ParameterError(f"alpha must be > 1, got {self.alpha}")
        if not self.tail_factor >= 1:
            raise ParameterError("tail_factor must be >= 1")
        if self.log_ratio_cap is not None and not math.isfinite(self.log_ratio_cap):
            raise ParameterError("log_ratio_cap must be finite")
        if int(self.block) < 1:
            raise ParameterError("block must be >= 1")
        object.__setattr__(self, "transcript", TranscriptPrivacy("multiplier", 2.0 * float(self.alpha), PPR.transcript.note))

    def encode(self, target: Target, *, rng=None) -> list[Message]:
        rng = np.random.default_rng(rng)
        a_ = float(self.alpha)
        log_cap = resolve_cap(target, self.log_ratio_cap, self.name)
        n = target.n
        best = np.full(n, np.inf)  # min log W
        arg = np.zeros(n, dtype=np.int64)
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
            if np.any(lr > log_cap + 1e-9):
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
                self._tail(target, ready, t_last, log_beta, start, best, arg, steps, log_cap, rng)
                active &= ~ready
            cnt = min(2 * cnt, 1 << 14)
        return [Message(index=int(k), steps=int(s)) for k, s in zip(arg, steps)]

    def _tail(self, target, ready, t_last, log_beta, next_index, best, arg, steps, log_cap, rng) -> None:
        """Exact treatment of the unexamined points after ``t_last`` (module doc, step 2); updates
        ``best``/``arg``/``steps`` in place for the clients in ``ready``."""
        a_ = float(self.alpha)
        beta = np.exp(log_beta)
        lam = np.where(ready, tail_mass(t_last, beta, a_), 0.0)
        counts = rng.poisson(np.maximum(lam, 0.0))
        m = int(counts.max()) if counts.size else 0
        if m == 0:
            return
        rows = np.flatnonzero(counts > 0)
        valid = np.arange(m)[None, :] < counts[rows, None]
        u = np.where(valid, rng.random((rows.size, m)), -1.0)
        u = -np.sort(-u, axis=1)  # descending, so the earliest point comes first and padding last
        u = np.where(valid, u, 0.5)
        tt = _invert_tail(u * lam[rows, None], t_last[rows, None], beta[rows, None], a_)
        vmax = beta[rows, None] * tt ** (-a_)
        logv = np.log(-np.log1p(rng.random(tt.shape) * np.expm1(-vmax)))  # Exp(1) truncated to [0, vmax]
        prev_t = np.concatenate([t_last[rows, None], tt[:, :-1]], axis=1)
        lam_t = tail_mass(tt, beta[rows, None], a_)
        lam_p = tail_mass(prev_t, beta[rows, None], a_)
        gap = np.maximum((tt - prev_t) - (lam_p - lam_t), 0.0)  # mean count of non-competing points
        skipped = np.cumsum(np.where(valid, rng.poisson(gap), 0), axis=1)
        idx = next_index + np.arange(m)[None, :] + skipped
        for j in range(m):  # rounds over the (few) competing tail points, vectorised over clients
            sel = valid[:, j]
            lr = check_log_ratios(log_ratio_at(target, rows[sel], idx[sel, j]))
            if np.any(lr > log_cap + 1e-9):
                raise InputError("a candidate's log ratio exceeds the ratio bound: PPR would not be exact")
            logw = a_ * (np.log(tt[sel, j]) - lr) + logv[sel, j]
            r = rows[sel]
            win = logw < best[r]
            best[r[win]] = logw[win]
            arg[r[win]] = idx[sel, j][win]
            steps[r] += 1

    def decode(self, messages, reference, keys) -> np.ndarray:
        return decode_candidates(reference, keys, check_indices(messages, None))

    def expected_codelength(self, kl_bits: float) -> float:
        """``ℓ + log2(ℓ+1) + 2`` with ``ℓ = I + log2(3.56)/min((α−1)/2, 1)`` (Liu et al., Thm. 4.3)."""
        ell = kl_bits + math.log2(3.56) / min((self.alpha - 1) / 2, 1.0)
        return float(ell + math.log2(ell + 1) + 2)
