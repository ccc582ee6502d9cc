"""Simple one-dimensional target pairs ``(P, Q_c)`` for testing channel simulators.

Each class is a :class:`~ldp_rec.rec.base.Target` for a batch of n clients whose shared candidates
are ``Z_{c,i} = randomness.block(keys, i, 1, 1, "normal")[c, 0, 0]`` (float32 normals, widened to
float64), i.e. the reference is ``P = N(0, 1)`` = :class:`GaussianReference(dim=1)`. Besides the
contract (``bounds``, ``log_ratio_block``, ``candidates``) they expose closed forms that tests and
the GPRS code need: ``logpdf`` / ``cdf`` / ``sample`` of every ``Q_c``, ``kl_nats`` and the
superlevel masses ``w_P(h) = P[log r(Z) ≥ h]``, ``w_Q(h) = Q[log r(Z) ≥ h]`` (Flamich 2023, Eq. for σ).

* :class:`GaussianPair`: ``Q_c = N(mu_c, s_c²)``. For ``s < 1`` the ratio is bounded above by
  ``exp(mu²/(2(1−s²)) − log s)`` (attained at ``z* = mu/(1−s²)``) and unbounded below; for
  ``s > 1`` it is unbounded above.
* :class:`CapPair`: the one-dimensional PrivUnitG shape (Asi, Feldman, Talwar 2022): the ratio is
  ``c1 = p/q`` on the "cap" ``{z ≥ γ}`` (``q = 1 − Φ(γ)``) and ``c2 = (1−p)/(1−q)`` below it, so
  ``log(c1/c2)`` is the ε of the two-level mechanism.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ..errors import InputError, ParameterError
from ..mechanisms.base import GaussianReference
from . import randomness
from .base import Target

_REF = GaussianReference(dim=1)


def _per_client(value, n: int, name: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} must be finite")
    return arr


def _keys(keys) -> np.ndarray:
    k = np.asarray(keys)
    if k.ndim != 1 or k.size < 1 or k.dtype.kind not in "iu" or np.any(k < 0):
        raise ParameterError("keys must be a non-empty 1-D array of non-negative integers")
    return k.astype(np.uint64)


def _col(z, n: int) -> np.ndarray:
    """``z`` as float64 of shape ``(n, m)``: ``(m,)`` is shared by every client, ``(n, m)`` is per client."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim not in (1, 2):
        raise InputError(f"z must have shape (m,) or (n, m), got {z.shape}")
    return np.broadcast_to(z, (n, z.shape[-1]))


class _Pair1D(Target):
    """Shared plumbing of the 1-D pairs: the reference and candidate generation."""

    keys: np.ndarray

    @property
    def reference(self) -> GaussianReference:
        return _REF

    def candidate_values(self, start: int, count: int) -> np.ndarray:
        """``(n, count)`` float64 values of the shared candidates ``start … start+count-1``."""
        return randomness.block(self.keys, start, count, 1, "normal")[..., 0].astype(np.float64)

    def log_ratio_block(self, start: int, count: int) -> np.ndarray:
        return self.log_ratio(self.candidate_values(start, count))

    def log_ratio_at(self, indices, rows=None) -> np.ndarray:
        """Log ratios of client ``rows[i]``'s candidate ``indices[i]`` (all clients when ``rows`` is
        None), one random access each."""
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        z = randomness.gather(self.keys[rows], indices, 1, "normal")[:, 0].astype(np.float64)
        return self._log_ratio_rows(z, rows)

    def log_ratio(self, z) -> np.ndarray:
        """``log q_c(z) − log p(z)`` for ``z`` of shape ``(n, m)`` (or ``(m,)``, broadcast)."""
        z = _col(z, self.n)
        return self.logpdf(z) - (-0.5 * z**2 - 0.5 * np.log(2 * np.pi))

    def logpdf_reference(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return -0.5 * z**2 - 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True, eq=False)
class GaussianPair(_Pair1D):
    """``P = N(0, 1)``, ``Q_c = N(mu_c, s_c²)``; ``mu`` and ``s`` scalars or one per client."""

    mu: np.ndarray
    s: np.ndarray
    keys: np.ndarray

    def __post_init__(self) -> None:
        keys = _keys(self.keys)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "mu", _per_client(self.mu, keys.size, "mu"))
        s = _per_client(self.s, keys.size, "s")
        if np.any(s <= 0):
            raise ParameterError("s must be > 0")
        object.__setattr__(self, "s", s)

    @property
    def bounds(self) -> tuple[float, float]:
        mu, s = self.mu, self.s
        if np.all(s == 1.0) and np.all(mu == 0.0):
            return (0.0, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            extreme = mu**2 / (2 * (1 - s**2)) - np.log(s)  # max of log r (s < 1) or min (s > 1)
        lo = float(np.min(extreme)) if np.all(s > 1) else -np.inf
        hi = float(np.max(extreme)) if np.all(s < 1) else np.inf
        return (lo, hi)

    def _log_ratio_rows(self, z, rows) -> np.ndarray:
        mu, s = self.mu[rows], self.s[rows]
        return -0.5 * ((z - mu) / s) ** 2 - np.log(s) + 0.5 * z**2

    def logpdf(self, z) -> np.ndarray:
        z = _col(z, self.n)
        mu, s = self.mu[:, None], self.s[:, None]
        return -0.5 * ((z - mu) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)

    def cdf(self, z) -> np.ndarray:
        z = _col(z, self.n)
        return special.ndtr((z - self.mu[:, None]) / self.s[:, None])

    def sample(self, m: int, *, rng=None) -> np.ndarray:
        """``(n, m)`` exact samples of every ``Q_c`` (private randomness)."""
        rng = np.random.default_rng(rng)
        return self.mu[:, None] + self.s[:, None] * rng.standard_normal((self.n, m))

    def kl_nats(self) -> np.ndarray:
        """``D_KL[Q_c ‖ P] = (s² + mu² − 1)/2 − log s`` nats, per client."""
        return 0.5 * (self.s**2 + self.mu**2 - 1) - np.log(self.s)

    def mode(self) -> np.ndarray:
        """``argmax_z r_c(z) = mu/(1 − s²)`` (requires s < 1)."""
        if not np.all(self.s < 1):
            raise InputError("the ratio has a maximum only when s < 1")
        return self.mu / (1 - self.s**2)

    def superlevel_mass(self, h) -> tuple[np.ndarray, np.ndarray]:
        """``(w_P, w_Q)`` at log-level ``h`` (broadcast against clients), for ``s < 1``.

        ``log r(z) = h_max − ½(1/s² − 1)(z − z*)²``, so ``{log r ≥ h}`` is ``z* ± a`` with
        ``a = sqrt(2(h_max − h)/(1/s² − 1))`` (empty when ``h > h_max``).
        """
        zs = self.mode()
        hmax = self.mu**2 / (2 * (1 - self.s**2)) - np.log(self.s)
        h = np.asarray(h, dtype=np.float64)
        a = np.sqrt(np.maximum(hmax - h, 0.0) * 2 / (1 / self.s**2 - 1))
        lo, hi = zs - a, zs + a
        wp = special.ndtr(hi) - special.ndtr(lo)
        wq = special.ndtr((hi - self.mu) / self.s) - special.ndtr((lo - self.mu) / self.s)
        empty = h > hmax
        return np.where(empty, 0.0, wp), np.where(empty, 0.0, wq)


@dataclass(frozen=True, eq=False)
class CapPair(_Pair1D):
    """1-D cap (two-level) target: ratio ``c1 = p/q`` on ``{z ≥ γ}``, ``c2 = (1−p)/(1−q)`` below.

    ``q = 1 − Φ(γ)`` is the cap mass under P. ``Q_c`` is the mixture ``p·N(0,1)|_{z≥γ} +
    (1−p)·N(0,1)|_{z<γ}``. ``gamma`` and ``p`` are scalars or one per client.
    """

    gamma: np.ndarray
    p: np.ndarray
    keys: np.ndarray

    def __post_init__(self) -> None:
        keys = _keys(self.keys)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "gamma", _per_client(self.gamma, keys.size, "gamma"))
        p = _per_client(self.p, keys.size, "p")
        if np.any((p <= 0) | (p >= 1)):
            raise ParameterError("p must be in (0, 1)")
        object.__setattr__(self, "p", p)

    @property
    def cap_mass(self) -> np.ndarray:
        return special.ndtr(-self.gamma)

    @property
    def c1(self) -> np.ndarray:
        return self.p / self.cap_mass

    @property
    def c2(self) -> np.ndarray:
        return (1 - self.p) / (1 - self.cap_mass)

    @property
    def bounds(self) -> tuple[float, float]:
        lc = np.log(np.concatenate([self.c1, self.c2]))
        return (float(lc.min()), float(lc.max()))

    @property
    def epsilon(self) -> np.ndarray:
        """``|log(c1/c2)|`` per client: the ε of the two-level ratio."""
        return np.abs(np.log(self.c1) - np.log(self.c2))

    def log_ratio(self, z) -> np.ndarray:
        z = _col(z, self.n)
        return np.where(z >= self.gamma[:, None], np.log(self.c1)[:, None], np.log(self.c2)[:, None])

    def _log_ratio_rows(self, z, rows) -> np.ndarray:
        return np.where(z >= self.gamma[rows], np.log(self.c1[rows]), np.log(self.c2[rows]))

    def logpdf(self, z) -> np.ndarray:
        z = _col(z, self.n)
        return self.log_ratio(z) + self.logpdf_reference(z)

    def cdf(self, z) -> np.ndarray:
        z = _col(z, self.n)
        g = self.gamma[:, None]
        below = special.ndtr(np.minimum(z, g)) * self.c2[:, None]
        above = np.clip(special.ndtr(z) - special.ndtr(g), 0.0, None) * self.c1[:, None]
        return below + above

    def sample(self, m: int, *, rng=None) -> np.ndarray:
        """``(n, m)`` exact samples of every ``Q_c`` (inverse-CDF of the truncated normals)."""
        rng = np.random.default_rng(rng)
        u = rng.random((self.n, m))
        in_cap = rng.random((self.n, m)) < self.p[:, None]
        phig = special.ndtr(self.gamma)[:, None]
        v = np.where(in_cap, phig + u * (1 - phig), u * phig)
        return special.ndtri(np.clip(v, 1e-300, 1 - 1e-16))

    def kl_nats(self) -> np.ndarray:
        """``p log c1 + (1−p) log c2`` nats, per client."""
        return self.p * np.log(self.c1) + (1 - self.p) * np.log(self.c2)

    def superlevel_mass(self, h) -> tuple[np.ndarray, np.ndarray]:
        """``(w_P, w_Q)`` at log-level ``h``: (1, 1) up to the lower level, (q, p) up to the upper one, then 0."""
        h = np.asarray(h, dtype=np.float64)
        lo = np.minimum(np.log(self.c1), np.log(self.c2))
        hi = np.maximum(np.log(self.c1), np.log(self.c2))
        top_p = np.where(self.c1 >= self.c2, self.cap_mass, 1 - self.cap_mass)
        top_q = np.where(self.c1 >= self.c2, self.p, 1 - self.p)
        wp = np.where(h <= lo, 1.0, np.where(h <= hi, top_p, 0.0))
        wq = np.where(h <= lo, 1.0, np.where(h <= hi, top_q, 0.0))
        return wp, wq


def ks_pvalues(pair: _Pair1D, z: np.ndarray) -> np.ndarray:
    """Per-client KS p-values of samples ``z`` (n, m) against the pair's ``Q_c`` (for tests)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty(pair.n)
    for c in range(pair.n):  # test helper, not a hot path
        sub = _subset(pair, c)
        out[c] = stats.kstest(z[c], lambda t, sub=sub: sub.cdf(np.asarray(t)[None, :])[0]).pvalue
    return out


def _subset(pair: _Pair1D, c: int) -> _Pair1D:
    if isinstance(pair, GaussianPair):
        return GaussianPair(pair.mu[c], pair.s[c], pair.keys[c : c + 1])
    if isinstance(pair, CapPair):
        return CapPair(pair.gamma[c], pair.p[c], pair.keys[c : c + 1])
    raise InputError(f"unknown pair {type(pair).__name__}")
