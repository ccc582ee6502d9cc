"""Greedy Poisson rejection sampling, global variant (Flamich, NeurIPS 2023, Alg. 1 / §3).

Shared randomness is a Poisson process ``(T_n, X_n)`` on ``R_+ × X`` with ``T_n = T_{n−1} + Exp(1)``
and ``X_n ~ P``. GPRS returns the first ``n`` with ``T_n ≤ σ(r(X_n))``, where

    σ(h) = ∫_0^h dη / (w_Q(η) − η·w_P(η)),   w_Q(η) = P_{Z~Q}[r(Z) ≥ η],  w_P(η) = P_{Z~P}[r(Z) ≥ η].

The denominator is the excess ``D(η) = E_P[(r(Z) − η)_+]`` (D(0) = 1, D(r_max) = 0), and
``P[T_K > t] = D(σ^{-1}(t))`` (Flamich 2023, Thm 3.1 proof), so ``X_K ~ Q`` exactly and
``E[K] = ‖r‖_∞``, ``H[K] ≤ D_KL + log2(D_KL + 1) + O(1)``.

Here ``X_n`` is candidate ``n`` of the client's stream (:mod:`.randomness`) and ``T_n`` are
cumulative sums of ``−log u`` over uniforms of a second stream whose key is derived from the
client's key (:func:`time_keys`). The decoder needs only ``X_K``: one candidate.

σ is computed by :class:`SigmaTable` (quadrature of ``1/D`` on a grid, cubic Hermite
interpolation with the exact derivative ``1/D``) for any pair whose ``w_P, w_Q`` are computable,
or in closed form by :class:`TwoLevelSigma` for the 2-valued ratios of cap mechanisms.

Transcript privacy: not established (references.md §4). ``rng`` is unused: GPRS is a
deterministic function of the shared randomness.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import DecodeError, IncompatibleError, ParameterError
from ..mechanisms.base import Reference
from ..privacy.events import TranscriptPrivacy
from . import randomness
from .base import Encoded, MechanismTarget, Simulator, Target, encoded

_TIME_DOMAIN = b"ldp-rec/gprs-times/v1"
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
NOT_ESTABLISHED = TranscriptPrivacy(
    kind="not_established",
    note="GPRS with shared times: exact output, transcript LDP not established (references.md §4)",
)


def time_keys(keys) -> np.ndarray:
    """Keys of the shared arrival-time streams: BLAKE2b-64 of each candidate key under a fixed domain."""
    k = np.asarray(keys, dtype=np.uint64).reshape(-1)
    out = np.empty(k.size, dtype=np.uint64)
    for i, key in enumerate(k.tolist()):  # one hash per client, not per candidate
        d = hashlib.blake2b(int(key).to_bytes(8, "little"), digest_size=8, key=_TIME_DOMAIN).digest()
        out[i] = int.from_bytes(d, "little")
    return out


def exponentials(tkeys, start: int, count: int) -> np.ndarray:
    """``(n, count)`` shared Exp(1) variates ``−log u`` of the time streams."""
    return -np.log(randomness.block(tkeys, start, count, 1, "uniform")[..., 0])


def _rows(rows, n_table: int, shape0: int) -> np.ndarray:
    if n_table == 1:
        return np.zeros(shape0, dtype=np.int64)
    if rows is None:
        if shape0 != n_table:
            raise ParameterError(f"{shape0} rows for a table of {n_table} targets: pass rows=")
        return np.arange(n_table)
    return np.asarray(rows, dtype=np.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class SigmaTable:
    """σ of n targets on a logit grid ``w_j = w0 + j·dw`` of ``η = r_max / (1 + e^{−w})``.

    The grid is geometric in η near 0 (``η ≈ r_max e^{w}``, where a ratio whose mass sits far from
    its mode has ``D`` falling by decades) and geometric in ``r_max − η`` near the top.
    ``sig[c, j] = σ_c(η(w_j))`` by 4-point Gauss–Legendre quadrature of
    ``dσ/dw = r_max s(w)(1 − s(w)) / D(η)`` (s the logistic function) on each panel, starting from
    ``σ(η_0) = −log(1 − η_0)`` at ``η_0 ≈ r_max e^{−30}`` (exact while ``D(η) = 1 − η``); ``dsig`` is
    ``dσ/dw`` at the nodes, for cubic Hermite interpolation. The grid stops (σ = +∞ beyond) where
    ``D`` drops below ``floor``: since ``P[T_K > σ(η)] = D(η)``, that truncation moves at most
    ``tail_mass[c] ≈ floor`` of probability (total variation).
    """

    log_r_max: np.ndarray
    w0: np.ndarray
    dw: np.ndarray
    sig: np.ndarray
    dsig: np.ndarray
    top: np.ndarray
    tail_mass: np.ndarray

    @classmethod
    def from_excess(cls, excess, log_r_max, *, n_grid: int = 1024, w_lo: float = -30.0, w_hi: float = 40.0,
                    floor: float = 1e-13):
        """Build from ``excess(h) = D(e^h)`` evaluated at log-levels ``h`` of shape ``(n, k)``.

        The grid runs from ``w0 = w_lo − max(log r_max, 0)`` to ``w_hi`` with ``n_grid`` nodes.
        """
        lrm = np.atleast_1d(np.asarray(log_r_max, dtype=np.float64))
        if not np.all(np.isfinite(lrm)):
            raise IncompatibleError("GPRS needs a bounded ratio: log r_max must be finite")
        n, G = lrm.size, int(n_grid)
        w0 = w_lo - np.maximum(lrm, 0.0)
        dw = (w_hi - w0) / (G - 1)
        offs = np.concatenate([np.arange(G, dtype=np.float64),
                               (np.arange(G - 1)[:, None] + (_GL_X[None, :] + 1) / 2).ravel()])
        w = w0[:, None] + dw[:, None] * offs[None, :]
        log_s = -np.logaddexp(0.0, -w)  # log s(w)
        log_1ms = -np.logaddexp(0.0, w)  # log(1 − s(w))
        D = np.asarray(excess(lrm[:, None] + log_s), dtype=np.float64)
        with np.errstate(divide="ignore", over="ignore"):
            deriv = np.exp(lrm[:, None] + log_s + log_1ms) / D  # dσ/dw
        d_nodes, d_gl = deriv[:, :G], deriv[:, G:].reshape(n, G - 1, 4)
        D_nodes, D_gl = D[:, :G], D[:, G:].reshape(n, G - 1, 4)
        ok = (D_nodes[:, 1:] > floor) & np.all(D_gl > floor, axis=2)
        top = np.where(ok.all(axis=1), G - 1, np.argmin(ok, axis=1))  # number of leading valid panels
        panel = np.where(ok, (dw[:, None] / 2) * np.einsum("cpk,k->cp", np.where(ok[:, :, None], d_gl, 0.0), _GL_W), 0.0)
        sig0 = -np.log1p(-np.exp(lrm + log_s[:, 0]))
        sig = np.concatenate([sig0[:, None], sig0[:, None] + np.cumsum(panel, axis=1)], axis=1)
        sig[np.arange(G)[None, :] > top[:, None]] = np.inf
        tail = D_nodes[np.arange(n), top]
        return cls(lrm, w0, dw, sig, d_nodes, top, tail)

    @classmethod
    def from_superlevel(cls, superlevel_mass, log_r_max, **kw):
        """Build from ``superlevel_mass(h) -> (w_P, w_Q)`` at log-levels h: ``D = w_Q − e^h w_P``.

        ``superlevel_mass`` follows the convention of :mod:`.targets1d`: clients on the *last*
        axis, so it is called with ``h`` of shape ``(k, n)``.
        """

        def excess(h):
            wp, wq = superlevel_mass(h.T)
            return np.maximum(np.asarray(wq).T - np.exp(h) * np.asarray(wp).T, 0.0)

        return cls.from_excess(excess, log_r_max, **kw)

    def take(self, rows) -> "SigmaTable":
        """The table of targets ``rows`` (used to expand a table built on distinct targets)."""
        r = np.asarray(rows, dtype=np.int64)
        return SigmaTable(self.log_r_max[r], self.w0[r], self.dw[r], self.sig[r], self.dsig[r], self.top[r],
                          self.tail_mass[r])

    @property
    def ratio_max(self) -> np.ndarray:
        return np.exp(self.log_r_max)

    def __call__(self, log_r, rows=None) -> np.ndarray:
        """σ(r) for log ratios ``(m, k)`` of the targets ``rows`` (m,); +∞ at or above the top."""
        lr = np.asarray(log_r, dtype=np.float64)
        r = _rows(rows, self.log_r_max.size, lr.shape[0])
        d = np.minimum(lr - self.log_r_max[r][:, None], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = d - np.log(-np.expm1(d))  # logit(η / r_max)
        w = np.where(lr >= self.log_r_max[r][:, None], np.inf, w)
        below = w < self.w0[r][:, None]
        with np.errstate(divide="ignore", over="ignore"):
            small = -np.log1p(-np.exp(np.minimum(lr, -1e-300)))  # σ(η) = −log(1 − η) below the grid
        return np.where(below, small, self.at_w(w, r))

    def at_w(self, w, r) -> np.ndarray:
        """σ at grid coordinates ``w`` ``(m, k)`` (≥ w0) for table rows ``r`` (m,): cubic Hermite."""
        rr = r[:, None]
        x = (w - self.w0[rr]) / self.dw[rr]
        j = np.floor(x)
        inside = (j < self.top[rr]) & (j >= 0)
        ji = np.where(inside, j, 0).astype(np.int64)
        t = np.where(inside, x - ji, 0.0)
        h = self.dw[rr]
        s0, s1 = self.sig[rr, ji], self.sig[rr, ji + 1]
        d0, d1 = self.dsig[rr, ji] * h, self.dsig[rr, ji + 1] * h
        t2, t3 = t * t, t * t * t
        out = (2 * t3 - 3 * t2 + 1) * s0 + (t3 - 2 * t2 + t) * d0 + (3 * t2 - 2 * t3) * s1 + (t3 - t2) * d1
        return np.where(inside, out, np.where(j < 0, self.sig[rr, 0], np.inf))

    def inverse(self, t, rows=None, *, iters: int = 80) -> np.ndarray:
        """σ^{-1}(t) (η, not log η) for times ``(m, k)``, by bisection in w on the interpolant."""
        t = np.asarray(t, dtype=np.float64)
        r = _rows(rows, self.log_r_max.size, t.shape[0])
        rr = r[:, None]
        a = np.broadcast_to(self.w0[rr], t.shape).copy()
        b = np.broadcast_to(self.w0[rr] + self.top[rr] * self.dw[rr], t.shape).copy()
        for _ in range(iters):
            mid = (a + b) / 2
            below = self.at_w(mid, r) <= t
            a = np.where(below, mid, a)
            b = np.where(below, b, mid)
        eta = self.ratio_max[rr] / (1 + np.exp(-(a + b) / 2))
        return np.where(t <= self.sig[rr, 0], -np.expm1(-np.maximum(t, 0.0)), eta)


@dataclass(frozen=True, eq=False)
class TwoLevelSigma:
    """Closed-form σ for a 2-valued ratio ``r ∈ {c_lo, c_hi}`` with ``c_lo < 1 < c_hi``.

    ``E_P r = 1`` forces the P-mass of the top level to be ``q = (1 − c_lo)/(c_hi − c_lo)``.
    ``D(η) = 1 − η`` for ``η ≤ c_lo`` and ``q(c_hi − η)`` above, so
    ``σ(c_lo) = −log(1 − c_lo)`` and ``σ(c_hi) = +∞``: a top-level candidate is always accepted,
    a low one only while ``T ≤ −log(1 − c_lo)`` (giving P[low output] = (1 − q)c_lo, as Q requires).
    """

    log_lo: np.ndarray
    log_hi: np.ndarray

    def __post_init__(self) -> None:
        lo, hi = np.atleast_1d(np.asarray(self.log_lo, float)), np.atleast_1d(np.asarray(self.log_hi, float))
        if lo.shape != hi.shape or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise IncompatibleError("two-level GPRS needs finite log-ratio levels of equal shape")
        if not (np.all(lo < 0) and np.all(hi > 0)):
            raise IncompatibleError("a 2-valued density ratio must straddle 1 (log c_lo < 0 < log c_hi)")
        object.__setattr__(self, "log_lo", lo)
        object.__setattr__(self, "log_hi", hi)

    @property
    def log_r_max(self) -> np.ndarray:
        return self.log_hi

    @property
    def ratio_max(self) -> np.ndarray:
        return np.exp(self.log_hi)

    @property
    def q(self) -> np.ndarray:
        c_lo, c_hi = np.exp(self.log_lo), np.exp(self.log_hi)
        return (1 - c_lo) / (c_hi - c_lo)

    def check_levels(self, log_r, rows=None, *, tol: float = 1e-7) -> None:
        r = _rows(rows, self.log_lo.size, np.shape(log_r)[0])
        lr = np.asarray(log_r)
        near = (np.abs(lr - self.log_lo[r][:, None]) <= tol) | (np.abs(lr - self.log_hi[r][:, None]) <= tol)
        if not np.all(near):
            raise IncompatibleError("the target's ratio is not 2-valued; give it a gprs_sigma() or superlevel_mass()")

    def __call__(self, log_r, rows=None) -> np.ndarray:
        lr = np.asarray(log_r, dtype=np.float64)
        r = _rows(rows, self.log_lo.size, lr.shape[0])
        lo, hi = self.log_lo[r][:, None], self.log_hi[r][:, None]
        tau = -np.log(-np.expm1(lo))
        return np.where(lr >= (lo + hi) / 2, np.inf, np.broadcast_to(tau, lr.shape))

    def inverse(self, t, rows=None) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        r = _rows(rows, self.log_lo.size, t.shape[0])
        c_lo, c_hi, q = np.exp(self.log_lo[r])[:, None], np.exp(self.log_hi[r])[:, None], self.q[r][:, None]
        tau = -np.log1p(-c_lo)
        return np.where(t <= tau, -np.expm1(-t), c_hi - (c_hi - c_lo) * np.exp(-q * (t - tau)))


def sigma_for(target: Target):
    """σ of a target: ``target.gprs_sigma()`` if it has one; else from ``superlevel_mass`` and
    ``mode`` (1-D pairs); else closed form for a 2-valued ratio (checked during encoding)."""
    if hasattr(target, "gprs_sigma"):
        return target.gprs_sigma()
    if hasattr(target, "c1") and hasattr(target, "c2"):  # 1-D cap pair
        l1, l2 = np.log(target.c1), np.log(target.c2)
        return TwoLevelSigma(np.minimum(l1, l2), np.maximum(l1, l2))
    if hasattr(target, "superlevel_mass") and hasattr(target, "mode"):
        params = getattr(target, "distinct_params", None)
        if params is None and hasattr(target, "mu") and hasattr(target, "s"):
            params = np.stack([target.mu, target.s], axis=1)
        if params is not None:  # build one table per distinct target, then expand
            _, first, inverse = np.unique(params, axis=0, return_index=True, return_inverse=True)
            small = subset_target(target, first) if first.size < target.n else target
            if small is not None and small is not target:
                return _table_of(small).take(inverse.reshape(-1))
        return _table_of(target)
    lo, hi = target.bounds
    return TwoLevelSigma(lo, hi)


def _table_of(target) -> SigmaTable:
    from .unimodal import accurate_superlevel_mass  # 1-D pairs live there (no import cycle at load)

    mode = np.asarray(target.mode(), dtype=np.float64)
    lrm = target.log_ratio(mode[:, None])[:, 0]
    return SigmaTable.from_superlevel(accurate_superlevel_mass(target), lrm)


def subset_target(target: Target, idx: np.ndarray):
    """The target restricted to clients ``idx`` (None when the target type cannot be subset)."""
    if hasattr(target, "subset"):
        return target.subset(idx)
    if isinstance(target, MechanismTarget):
        return MechanismTarget(target.mechanism, target.U[idx], target.keys[idx])
    name = type(target).__name__
    if name == "GaussianPair":
        return type(target)(target.mu[idx], target.s[idx], target.keys[idx])
    if name == "CapPair":
        return type(target)(target.gamma[idx], target.p[idx], target.keys[idx])
    return None


@dataclass(frozen=True)
class GPRS(Simulator):
    """Global GPRS (Flamich 2023, Alg. 1), vectorised over clients and blocks of candidates.

    Blocks start at ``block`` candidates per client and double, capped so that one block holds at
    most ``max_block_elems`` ratios; finished clients are dropped from later blocks.
    Message: the 0-based index ``K − 1``; ``steps = K``. ``E[K] = ‖r‖_∞``.
    """

    block: int = 64
    max_block_elems: int = 1 << 22
    max_steps: int = 1 << 40

    name: ClassVar[str] = "gprs"
    exact: ClassVar[bool] = True
    transcript: ClassVar[TranscriptPrivacy] = NOT_ESTABLISHED
    needs_bounded_ratio: ClassVar[bool] = False  # only sup r < ∞ is needed (checked in check_target)

    def check_target(self, target: Target) -> None:
        hi = target.bounds[1]
        if not np.isfinite(hi):
            raise IncompatibleError(f"{self.name} needs a ratio bounded above (‖r‖_∞ < ∞), got log sup r = {hi}")

    def __post_init__(self) -> None:
        if int(self.block) < 1 or int(self.max_block_elems) < 1:
            raise ParameterError("block and max_block_elems must be >= 1")

    def encode(self, target: Target, *, rng=None, sigma=None) -> Encoded:
        self.check_target(target)
        sigma = sigma_for(target) if sigma is None else sigma
        n = target.n
        tkeys = time_keys(target.keys)
        index = np.full(n, -1, dtype=np.int64)
        T = np.zeros(n)
        active = np.arange(n)
        start, count = 0, int(self.block)
        sub = target
        while active.size:
            lr = sub.log_ratio_block(start, count) if sub is not None else target.log_ratio_block(start, count)[active]
            if isinstance(sigma, TwoLevelSigma):
                sigma.check_levels(lr, active)
            times = T[active][:, None] + np.cumsum(exponentials(tkeys[active], start, count), axis=1)
            acc = times <= sigma(lr, active)
            hit = acc.any(axis=1)
            first = np.argmax(acc, axis=1)
            index[active[hit]] = start + first[hit]
            T[active] = times[:, -1]
            start += count
            if start > self.max_steps and not hit.all():
                raise IncompatibleError(f"GPRS exceeded max_steps={self.max_steps}")
            if hit.any():
                active = active[~hit]
                sub = subset_target(target, active) if active.size else None
            count = max(1, min(count * 2, self.max_block_elems // max(active.size, 1)))
        return encoded(index, index + 1)

    def check_mechanism(self, mechanism) -> None:
        hi = mechanism.log_ratio_bounds()[1]
        if not np.isfinite(hi):
            raise IncompatibleError(f"{self.name} needs a ratio bounded above (‖r‖_∞ < ∞), got log sup r = {hi}")

    def expected_codelength(self, kl_bits: float) -> float:
        """The paper's bound without its constant: ``D_KL + log2(D_KL + 1)`` bits (+ O(1))."""
        return float(kl_bits) + math.log2(float(kl_bits) + 1.0)
