"""One-dimensional pairs ``(P, Q_c)`` with a unimodal density ratio, for (branch-and-bound) GPRS.

Branch-and-bound GPRS (Flamich 2023, §3.2 / Alg. 3) needs, per client: the mode of ``r_c``, ``log r_c``,
σ (through ``superlevel_mass``, the masses ``w_P, w_Q`` of ``{log r ≥ h}``) and, on both sides,
sampling of P restricted to an interval by the inverse CDF of a shared uniform
(:func:`sample_interval`). The pairs follow the conventions of :mod:`.targets1d` (whose
:class:`~.targets1d.GaussianPair` is the Gaussian/Gaussian pair, re-exported here): ``log_ratio(z)``
for ``z`` of shape ``(n, m)``; ``superlevel_mass(h)`` broadcasts ``h`` against clients on the last axis.

* :class:`LaplacePair`: ``P = Laplace(0, 1)``, ``Q_c = Laplace(mu_c, b_c)``, ``b < 1``; closed-form
  superlevel endpoints (``log r`` is piecewise linear with kinks at 0 and ``mu``).
* :class:`UnimodalPair`: any ``p_dist``, ``q_dist`` (scipy frozen, one Q shared by all keys) and
  the ``mode`` of ``r``; superlevel endpoints by bisection on each side of the mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from ..errors import IncompatibleError, InputError, ParameterError
from ..mechanisms.base import GaussianReference, Reference
from . import randomness
from .base import Target
from .targets1d import GaussianPair

__all__ = ["GaussianPair", "LaplacePair", "UnimodalPair", "LaplaceReference", "ScipyReference",
           "sample_interval", "interval_ops"]


def _lap_cdf(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(x, 0.0)))


def _lap_ppf(p):
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p < 0.5, np.log(2 * p), -np.log(2 * (1 - p)))


@dataclass(frozen=True)
class LaplaceReference(Reference):
    """P = Laplace(0, 1) on R (dim 1), candidates by the inverse CDF of shared uniforms."""

    dim: int = 1
    base: ClassVar[str] = "uniform"

    def transform(self, base):
        return _lap_ppf(base)

    def logpdf(self, z):
        return -np.abs(np.asarray(z, dtype=np.float64))[..., 0] - np.log(2.0)

    def cdf(self, z):
        return _lap_cdf(z)

    def sf(self, z):
        return _lap_cdf(-np.asarray(z, dtype=np.float64))

    def ppf(self, p):
        return _lap_ppf(p)

    def isf(self, p):
        return -_lap_ppf(p)

    median: ClassVar[float] = 0.0


@dataclass(frozen=True, eq=False)
class ScipyReference(Reference):
    """P = a scipy frozen 1-D distribution; candidates by ``ppf`` of shared uniforms."""

    dist: object
    dim: int = 1
    base: ClassVar[str] = "uniform"

    def transform(self, base):
        return self.dist.ppf(base)

    def logpdf(self, z):
        return self.dist.logpdf(np.asarray(z, dtype=np.float64)[..., 0])

    def cdf(self, z):
        return self.dist.cdf(z)

    def sf(self, z):
        return self.dist.sf(z)

    def ppf(self, p):
        return self.dist.ppf(p)

    def isf(self, p):
        return self.dist.isf(p)

    @property
    def median(self) -> float:
        return float(self.dist.median())


@dataclass(frozen=True)
class _GaussOps:
    scale: float
    median: float = 0.0

    def cdf(self, z):
        return special.ndtr(np.asarray(z) / self.scale)

    def sf(self, z):
        return special.ndtr(-np.asarray(z) / self.scale)

    def ppf(self, p):
        return self.scale * special.ndtri(p)

    def isf(self, p):
        return -self.scale * special.ndtri(p)


def interval_ops(reference: Reference):
    """``cdf, sf, ppf, isf`` and ``median`` of a 1-D reference."""
    if isinstance(reference, GaussianReference):
        if reference.dim != 1:
            raise IncompatibleError("branch-and-bound GPRS needs a 1-D reference")
        return _GaussOps(float(reference.scale))
    if all(hasattr(reference, f) for f in ("cdf", "sf", "ppf", "isf", "median")) and reference.dim == 1:
        return reference
    raise IncompatibleError(f"{type(reference).__name__} has no 1-D cdf/sf/ppf/isf")


def sample_interval(ops, a, b, u) -> tuple[np.ndarray, np.ndarray]:
    """``X ~ P`` restricted to ``(a, b)`` by the inverse CDF of ``u``, and ``P((a, b))``.

    Works with the lower tail (``F(a) + u(F(b) − F(a))``) unless ``a`` is above the median, where
    it uses survival functions, so deep-tail intervals keep their relative precision. Encoder and
    decoder call this same function on the same values, so they agree bit for bit.
    """
    a, b, u = (np.asarray(x, dtype=np.float64) for x in (a, b, u))
    right = a >= ops.median
    with np.errstate(invalid="ignore", divide="ignore"):
        Fa, Fb, Sa, Sb = ops.cdf(a), ops.cdf(b), ops.sf(a), ops.sf(b)
        mass = np.where(right, Sa - Sb, Fb - Fa)
        x = np.where(right, ops.isf(Sa - u * mass), ops.ppf(Fa + u * mass))
    if not (np.all(mass > 0) and np.all(np.isfinite(x))):
        raise IncompatibleError("the search interval collapsed below float64 precision")
    return np.clip(x, a, b), mass


def _mass(cdf, sf, lo, hi, median):
    return np.where(lo >= median, sf(lo) - sf(hi), cdf(hi) - cdf(lo))


def gaussian_superlevel_mass(mu, s, h) -> tuple[np.ndarray, np.ndarray]:
    """Tail-accurate ``(w_P, w_Q)`` of ``{log r ≥ h}`` for ``P = N(0,1)``, ``Q = N(mu, s²)``, ``s < 1``.

    ``log r(z) = h_max − ½(1/s² − 1)(z − z*)²`` with ``z* = mu/(1 − s²)``,
    ``h_max = mu²/(2(1 − s²)) − log s``. Interval masses use survival functions above each
    median, so a mode deep in P's tail keeps its relative precision (σ depends on it).
    """
    mu, s = np.asarray(mu, dtype=np.float64), np.asarray(s, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    zs = mu / (1 - s**2)
    hmax = mu**2 / (2 * (1 - s**2)) - np.log(s)
    half = np.sqrt(np.maximum(hmax - h, 0.0) * 2 / (1 / s**2 - 1))
    lo, hi = zs - half, zs + half
    wp = _mass(special.ndtr, lambda z: special.ndtr(-z), lo, hi, 0.0)
    wq = _mass(special.ndtr, lambda z: special.ndtr(-z), (lo - mu) / s, (hi - mu) / s, 0.0)
    empty = h > hmax
    return np.where(empty, 0.0, wp), np.where(empty, 0.0, wq)


def accurate_superlevel_mass(target):
    """The most accurate ``superlevel_mass`` available for ``target`` (tail-accurate for Gaussian pairs)."""
    if isinstance(target, GaussianPair):
        return lambda h: gaussian_superlevel_mass(target.mu, target.s, h)
    return target.superlevel_mass


def _keys(keys) -> np.ndarray:
    k = np.asarray(keys)
    if k.ndim != 1 or k.size < 1 or k.dtype.kind not in "iu" or np.any(k < 0):
        raise ParameterError("keys must be a non-empty 1-D array of non-negative integers")
    return k.astype(np.uint64)


class _Pair(Target):
    """Candidates ``X_i = P.transform(u_i)`` from the uniform stream of each key."""

    keys: np.ndarray

    def log_ratio_block(self, start: int, count: int) -> np.ndarray:
        u = randomness.block(self.keys, start, count, 1, "uniform")
        return self.log_ratio(self.reference.transform(u)[..., 0])

    def superlevel_mass(self, h):
        """``(w_P, w_Q)`` of ``{log r ≥ h}`` (clients on the last axis of ``h``)."""
        lo, hi = self.superlevel_interval(h)
        empty = np.asarray(h) > self.log_r_max
        wp = _mass(self._p_cdf, self._p_sf, lo, hi, self.reference.median)
        wq = _mass(self._q_cdf, self._q_sf, lo, hi, self._q_median)
        return np.where(empty, 0.0, wp), np.where(empty, 0.0, wq)

    @property
    def bounds(self) -> tuple[float, float]:
        return (-np.inf, float(np.max(self.log_r_max)))


@dataclass(frozen=True, eq=False)
class LaplacePair(_Pair):
    """``P = Laplace(0, 1)``, ``Q_c = Laplace(mu_c, b_c)`` with ``0 < b < 1``.

    ``log r(z) = −log b − |z − mu|/b + |z|``: mode ``mu``, ``log r_max = −log b + |mu|``; slopes
    ``1/b ± 1`` on either side of the kink at 0.
    """

    mu: np.ndarray
    b: np.ndarray
    keys: np.ndarray
    reference: ClassVar[Reference] = LaplaceReference()

    def __post_init__(self) -> None:
        keys = _keys(self.keys)
        mu = np.broadcast_to(np.asarray(self.mu, dtype=np.float64), keys.shape).copy()
        b = np.broadcast_to(np.asarray(self.b, dtype=np.float64), keys.shape).copy()
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(b))):
            raise InputError("mu and b must be finite")
        if np.any((b <= 0) | (b >= 1)):
            raise ParameterError("b must be in (0, 1) for a bounded ratio")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "b", b)

    def subset(self, idx):
        return LaplacePair(self.mu[idx], self.b[idx], self.keys[idx])

    @property
    def distinct_params(self):
        return np.stack([self.mu, self.b], axis=1)

    @property
    def log_r_max(self):
        return -np.log(self.b) + np.abs(self.mu)

    def mode(self):
        return self.mu.copy()

    def log_ratio(self, z):
        z = np.asarray(z, dtype=np.float64)
        mu, b = self.mu[:, None], self.b[:, None]
        return -np.log(b) - np.abs(z - mu) / b + np.abs(z)

    def superlevel_interval(self, h):
        h = np.asarray(h, dtype=np.float64)
        mu, b, top = self.mu, self.b, self.log_r_max
        g0 = -np.log(b) - np.abs(mu) / b  # log r(0)
        fast, slow = 1 / b + 1, 1 / b - 1
        gap = np.maximum(top - h, 0.0)
        lo = np.where(mu > 0, np.where(h >= g0, mu - gap / fast, -(g0 - h) / slow), mu - gap / slow)
        hi = np.where(mu < 0, np.where(h >= g0, mu + gap / fast, (g0 - h) / slow), mu + gap / slow)
        return lo, hi

    def _p_cdf(self, z):
        return _lap_cdf(z)

    def _p_sf(self, z):
        return _lap_cdf(-np.asarray(z))

    def _q_cdf(self, z):
        return _lap_cdf((z - self.mu) / self.b)

    def _q_sf(self, z):
        return _lap_cdf((self.mu - z) / self.b)

    @property
    def _q_median(self):
        return self.mu

    def cdf(self, z):
        return _lap_cdf((np.asarray(z) - self.mu[:, None]) / self.b[:, None])


@dataclass(frozen=True, eq=False)
class UnimodalPair(_Pair):
    """Generic pair: ``p_dist``, ``q_dist`` scipy frozen 1-D distributions and the ``mode`` of
    ``r = q/p``; the same Q for every key. Superlevel endpoints by bisection (``iters`` halvings)
    on each side of the mode, within ``[P.ppf(1e-300), P.isf(1e-300)]`` ∩ support."""

    p_dist: object
    q_dist: object
    mode_value: float
    keys: np.ndarray
    iters: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _keys(self.keys))
        if not np.isfinite(self.mode_value):
            raise InputError("mode must be finite")
        lr = self.log_ratio(np.array([[self.mode_value]]))
        if not np.isfinite(lr).all():
            raise IncompatibleError("log r at the mode must be finite")

    @property
    def reference(self):
        return ScipyReference(self.p_dist)

    def subset(self, idx):
        return UnimodalPair(self.p_dist, self.q_dist, self.mode_value, self.keys[idx], self.iters)

    @property
    def distinct_params(self):
        return np.zeros((self.n, 1))

    @property
    def log_r_max(self):
        return np.full(self.n, float(self.log_ratio(np.array([[self.mode_value]]))[0, 0]))

    def mode(self):
        return np.full(self.n, float(self.mode_value))

    def log_ratio(self, z):
        z = np.asarray(z, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.q_dist.logpdf(z) - self.p_dist.logpdf(z)

    def _side(self, h, limit):
        m = float(self.mode_value)
        inside = self.log_ratio(np.full(h.shape, limit)) >= h
        a, b = np.full(h.shape, limit), np.full(h.shape, m)  # a: r < h (outer), b: r >= h (inner)
        for _ in range(int(self.iters)):
            mid = (a + b) / 2
            ok = self.log_ratio(mid) >= h
            b = np.where(ok, mid, b)
            a = np.where(ok, a, mid)
        edge = -np.inf if limit < m else np.inf
        return np.where(inside, edge, b)

    def superlevel_interval(self, h):
        h = np.asarray(h, dtype=np.float64)
        lo_s, hi_s = self.p_dist.support()
        lo_lim = max(float(self.p_dist.ppf(1e-300)), lo_s)
        hi_lim = min(float(self.p_dist.isf(1e-300)), hi_s)
        return self._side(h, lo_lim), self._side(h, hi_lim)

    def _p_cdf(self, z):
        return self.p_dist.cdf(z)

    def _p_sf(self, z):
        return self.p_dist.sf(z)

    def _q_cdf(self, z):
        return self.q_dist.cdf(z)

    def _q_sf(self, z):
        return self.q_dist.sf(z)

    @property
    def _q_median(self):
        return float(self.q_dist.median())

    def cdf(self, z):
        return self.q_dist.cdf(np.asarray(z))
