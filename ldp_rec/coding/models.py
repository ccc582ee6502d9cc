"""Probability models of a positive integer index ``K ∈ {1, 2, …}``.

Kept apart from the coders (the tensorflow-compression / constriction split): a model gives
``pmf``, ``logpmf``, ``cdf`` (``P[K <= k]``), ``sf`` (``P[K > k]``, accurate in the tail) and
``entropy()`` in bits; a code or an entropy coder consumes it.

Index convention: a 0-based candidate index ``i`` (as in :class:`ldp_rec.rec.base.Message`) is
modelled and coded as ``k = i + 1``.

Determinism: every table is computed from the model's parameters by the same numpy/scipy calls,
so encoder and decoder that hold equal parameters build bit-identical tables.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .._validation import check_positive_int, check_probability
from ..errors import ParameterError

__all__ = ["IndexModel", "UniformIndex", "ZetaModel", "GeometricModel", "EmpiricalModel"]

_LN2 = math.log(2.0)


def _as_k(k) -> np.ndarray:
    return np.asarray(k, dtype=np.float64)


class IndexModel(abc.ABC):
    """A distribution on ``{1, 2, …}`` (or on ``{1, …, support_max}``)."""

    support_max: float = math.inf

    @abc.abstractmethod
    def logpmf(self, k) -> np.ndarray:
        """Natural-log probability of each ``k`` (``-inf`` outside the support)."""

    @abc.abstractmethod
    def sf(self, k) -> np.ndarray:
        """``P[K > k]`` for real ``k >= 0`` (integer part used)."""

    @abc.abstractmethod
    def entropy(self) -> float:
        """Shannon entropy in bits."""

    def pmf(self, k) -> np.ndarray:
        return np.exp(self.logpmf(k))

    def cdf(self, k) -> np.ndarray:
        return 1.0 - self.sf(k)

    def table(self, max_index: int) -> np.ndarray:
        """``[P(1), …, P(max_index), P(K > max_index)]``: the truncated table plus the escape
        mass that an entropy coder needs."""
        m = check_positive_int(max_index, "max_index")
        k = np.arange(1, m + 1)
        return np.concatenate([self.pmf(k), np.atleast_1d(self.sf(m))])


def _outside(k: np.ndarray, hi: float) -> np.ndarray:
    return (k < 1) | (k > hi) | (k != np.floor(k))


@dataclass(frozen=True)
class UniformIndex(IndexModel):
    """Uniform on ``{1, …, n}``; entropy ``log2 n``."""

    n: int

    def __post_init__(self) -> None:
        check_positive_int(self.n, "n")

    @property
    def support_max(self) -> float:  # type: ignore[override]
        return float(self.n)

    def logpmf(self, k) -> np.ndarray:
        k = _as_k(k)
        return np.where(_outside(k, self.n), -np.inf, -math.log(self.n))

    def sf(self, k) -> np.ndarray:
        k = np.floor(_as_k(k))
        return np.clip((self.n - k) / self.n, 0.0, 1.0)

    def entropy(self) -> float:
        return math.log2(self.n)


def _sum_k_pow_log(s: float, cut: int = 10_000) -> float:
    """``Σ_{k>=1} k^-s ln k = -ζ'(s)``: direct sum below ``cut`` plus the Euler–Maclaurin tail
    ``∫_cut^∞ f + f(cut)/2 - f'(cut)/12 + f'''(cut)/720`` for ``f(x) = x^-s ln x``."""
    k = np.arange(2, cut, dtype=np.float64)
    head = float(np.sum(k**-s * np.log(k)))
    c, lc = float(cut), math.log(cut)
    integral = c ** (1 - s) * (lc / (s - 1) + 1 / (s - 1) ** 2)
    f = c**-s * lc
    f1 = c ** (-s - 1) * (1 - s * lc)
    # f''' = x^{-s-3} [ -s(s+1)(s+2) ln x + 3 s^2 + 6 s + 2 ]
    f3 = c ** (-s - 3) * (-s * (s + 1) * (s + 2) * lc + 3 * s * s + 6 * s + 2)
    return head + integral + f / 2 - f1 / 12 + f3 / 720


@dataclass(frozen=True)
class ZetaModel(IndexModel):
    """Zeta (discrete power law): ``P(k) = k^{-s} / ζ(s)``, ``k >= 1``, ``s > 1``.

    ``P[K > k] = ζ(s, k+1) / ζ(s)`` (Hurwitz zeta). Entropy in nats is
    ``ln ζ(s) + s·E[ln K]`` with ``E[ln K] = -ζ'(s)/ζ(s)``. The Boldi–Vigna code ζ_k is matched to
    ``s = 1 + 1/k`` (Boldi & Vigna 2005).
    """

    s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.s) and self.s > 1):
            raise ParameterError(f"Zeta exponent s must be finite and > 1, got {self.s!r}")

    @property
    def log_norm(self) -> float:
        return math.log(float(special.zeta(self.s)))

    def logpmf(self, k) -> np.ndarray:
        k = _as_k(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -self.s * np.log(np.where(k >= 1, k, 1.0)) - self.log_norm
        return np.where(_outside(k, math.inf), -np.inf, out)

    def sf(self, k) -> np.ndarray:
        k = np.maximum(np.floor(_as_k(k)), 0.0)
        return special.zeta(self.s, k + 1) / special.zeta(self.s)

    def entropy(self) -> float:
        zs = float(special.zeta(self.s))
        return (math.log(zs) + self.s * _sum_k_pow_log(self.s) / zs) / _LN2


@dataclass(frozen=True)
class GeometricModel(IndexModel):
    """Geometric on ``{1, 2, …}``: ``P(k) = (1-p)^{k-1} p``; ``P[K > k] = (1-p)^k``;
    entropy ``h2(p) / p`` bits with ``h2`` the binary entropy."""

    p: float

    def __post_init__(self) -> None:
        check_probability(self.p, "p")

    def logpmf(self, k) -> np.ndarray:
        k = _as_k(k)
        out = (np.where(k >= 1, k, 1.0) - 1) * math.log1p(-self.p) + math.log(self.p)
        return np.where(_outside(k, math.inf), -np.inf, out)

    def sf(self, k) -> np.ndarray:
        k = np.maximum(np.floor(_as_k(k)), 0.0)
        return np.exp(k * math.log1p(-self.p))

    def entropy(self) -> float:
        p, q = self.p, 1.0 - self.p
        return -(q * math.log2(q) + p * math.log2(p)) / p


@dataclass(frozen=True)
class EmpiricalModel(IndexModel):
    """Normalised counts: ``P(k) = counts[k-1] / Σ counts`` on ``{1, …, len(counts)}``.
    ``pseudocount`` is added to every count (0 by default: unseen values then have P = 0)."""

    counts: tuple
    pseudocount: float = 0.0
    _p: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.counts, dtype=np.float64).reshape(-1)
        if c.size == 0 or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ParameterError("counts must be a non-empty array of finite values >= 0")
        if not (math.isfinite(self.pseudocount) and self.pseudocount >= 0):
            raise ParameterError("pseudocount must be finite and >= 0")
        c = c + self.pseudocount
        if c.sum() <= 0:
            raise ParameterError("counts must not all be zero")
        object.__setattr__(self, "counts", tuple(np.asarray(self.counts).reshape(-1).tolist()))
        object.__setattr__(self, "_p", c / c.sum())

    @property
    def support_max(self) -> float:  # type: ignore[override]
        return float(self._p.size)

    def logpmf(self, k) -> np.ndarray:
        k = _as_k(k)
        bad = _outside(k, self._p.size)
        idx = np.where(bad, 1, k).astype(np.int64) - 1
        with np.errstate(divide="ignore"):
            return np.where(bad, -np.inf, np.log(self._p[idx]))

    def sf(self, k) -> np.ndarray:
        k = np.clip(np.floor(_as_k(k)), 0, self._p.size).astype(np.int64)
        tail = np.concatenate([np.cumsum(self._p[::-1])[::-1], [0.0]])
        return np.clip(tail[k], 0.0, 1.0)

    def entropy(self) -> float:
        p = self._p[self._p > 0]
        return float(-np.sum(p * np.log2(p)))
