"""Composition of LDP guarantees over rounds: plain keyword-only functions (references.md §5).

* :func:`basic_composition`: ``(Σ ε_t, Σ δ_t)`` (Dwork & Roth 2014, Thm 3.16).
* :func:`advanced_composition`: ``T`` rounds of ε-DP are ``(ε', δ')``-DP with
  ``ε' = ε·sqrt(2T ln(1/δ')) + T·ε·(e^ε − 1)`` (Dwork, Rothblum & Vadhan 2010;
  Dwork & Roth 2014, Thm 3.20).
* :func:`exact_pure_composition`: the optimal ε' for ``T`` homogeneous ε-DP rounds (Kairouz,
  Oh & Viswanath 2015, optimal composition theorem) in closed form. Every ε-DP mechanism is a post-processing of
  binary randomised response ``RR_ε`` (ibid., §2), so the worst-case privacy loss of ``T``
  rounds is ``L = ε(2B − T)``, ``B ~ Bin(T, p)``, ``p = e^ε/(1 + e^ε)``, and
  ``δ(ε') = sup_S P(S) − e^{ε'} Q(S)`` is attained on upper sets ``{B >= j}``:
  ``ε'(δ) = max(0, max_j ln((P[B>=j] − δ) / Q[B>=j]))`` with ``Q`` the law under ``p ↔ 1−p``.
* :func:`pld_pure_composition`: the same worst case through dp_accounting's privacy-loss
  distribution (PLD) (Meiser & Mohammadi 2018; Koskela et al. 2020; Doroshenko et al. 2022),
  from the two-point PLD ``{+ε w.p. e^ε/(1+e^ε), −ε w.p. 1/(1+e^ε)}`` of ``RR_ε``
  (``from_privacy_parameters(ε, 0)``); handles heterogeneous per-round ε (the exact problem is
  #P-hard there: Murtagh & Vadhan 2016). Pessimistic discretisation: the result is an upper
  bound, exact when every ε is a multiple of the discretisation interval. :func:`exact_interval`
  picks such a grid whenever one is coarse enough (always for one ε: the interval ε itself, so
  T rounds are a PLD on 2T + 1 points and ε' is read off exactly between grid points).
* :func:`rdp_gaussian_composition`: the (subsampled) Gaussian mechanism by Rényi DP via opacus
  (Mironov 2017; Mironov, Talwar & Zhang 2019; conversion of Balle et al. 2020, Thm 21).
  Under LDP, sampling *clients* gives no amplification for a client's own data: use
  ``sample_rate = 1``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from scipy import stats

from .._validation import check_epsilon, check_positive_int, check_probability
from ..errors import ParameterError

__all__ = [
    "basic_composition", "advanced_composition", "exact_pure_composition",
    "pld_pure_composition", "rdp_gaussian_composition", "pure_rdp", "DEFAULT_ORDERS",
    "pure_pld", "exact_interval", "FALLBACK_INTERVAL",
]

#: Discretisation interval of the PLD when no exact grid is used (dp_accounting's default).
FALLBACK_INTERVAL = 1e-4
#: An exact grid is used when the largest ε spans at most this many grid points.
_MAX_GRID_POINTS = 10_000

#: Rényi orders: opacus's defaults extended below 1.1 and above 63.
DEFAULT_ORDERS = tuple(
    [1 + x / 100.0 for x in range(1, 10)] + [1 + x / 10.0 for x in range(1, 100)]
    + list(range(12, 64)) + [80, 96, 128, 192, 256, 384, 512, 1024]
)


def _check_delta(delta, name: str = "delta") -> float:
    return check_probability(delta, name)


def basic_composition(*, epsilons, deltas=None) -> tuple[float, float]:
    """``(Σ ε_t, Σ δ_t)`` for rounds that are ``(ε_t, δ_t)``-DP (ε_t may be 0)."""
    eps = np.asarray(epsilons, dtype=np.float64).reshape(-1)
    if eps.size == 0 or not np.all(np.isfinite(eps)) or np.any(eps < 0):
        raise ParameterError("epsilons must be a non-empty array of finite values >= 0")
    if deltas is None:
        return float(eps.sum()), 0.0
    dl = np.broadcast_to(np.asarray(deltas, dtype=np.float64), eps.shape)
    if np.any(dl < 0) or np.any(dl >= 1):
        raise ParameterError("deltas must be in [0, 1)")
    return float(eps.sum()), float(min(1.0, dl.sum()))


def advanced_composition(*, epsilon: float, steps: int, delta_prime: float) -> float:
    """ε' of ``steps`` ε-DP rounds at slack ``δ'``: ``ε sqrt(2T ln(1/δ')) + Tε(e^ε − 1)``.
    (For ``(ε, δ)`` rounds the total δ is ``Tδ + δ'``.) Not clipped at the basic bound ``Tε``."""
    eps = check_epsilon(epsilon)
    t = check_positive_int(steps, "steps")
    dp = _check_delta(delta_prime, "delta_prime")
    return eps * math.sqrt(2 * t * math.log(1 / dp)) + t * eps * math.expm1(eps)


def exact_pure_composition(*, epsilon: float, steps: int, delta: float) -> float:
    """Optimal ε' of ``steps`` homogeneous ε-DP rounds at ``delta`` (module doc, KOV 2015)."""
    eps = check_epsilon(epsilon)
    t = check_positive_int(steps, "steps")
    dl = check_probability(delta, "delta", open_interval=False)
    if dl >= 1:
        return 0.0
    p = 1.0 / (1.0 + math.exp(-eps))
    j = np.arange(0, t + 1)
    tail_p = stats.binom.sf(j - 1, t, p)  # P[B >= j]
    log_tail_q = stats.binom.logsf(j - 1, t, 1 - p)  # log Q[B >= j]
    ok = tail_p > dl
    if not np.any(ok):
        return 0.0
    with np.errstate(divide="ignore"):
        cand = np.log(tail_p[ok] - dl) - log_tail_q[ok]
    return float(max(0.0, cand.max()))


def _epsilon_list(epsilon, steps) -> tuple[list[float], int]:
    if isinstance(epsilon, (Sequence, np.ndarray)):
        eps = [check_epsilon(e) for e in np.asarray(epsilon, dtype=np.float64).reshape(-1)]
        if not eps:
            raise ParameterError("epsilon list is empty")
        return eps, check_positive_int(1 if steps is None else steps, "steps")
    if steps is None:
        raise ParameterError("steps is required with a scalar epsilon")
    return [check_epsilon(epsilon)], check_positive_int(steps, "steps")


def _grid_multiple(epsilon: float, interval: float) -> int | None:
    """``k`` when ``epsilon`` is ``k · interval`` up to float rounding (1e-12 relative), else None."""
    k = round(float(epsilon) / interval)
    return k if k >= 1 and abs(k * interval - float(epsilon)) <= 1e-12 * float(epsilon) else None


def pure_pld(epsilon: float, *, value_discretization_interval: float, delta: float = 0.0):
    """dp_accounting PLD of the worst-case (ε, δ)-DP pair: binary randomised response, losses ``±ε``
    with masses ``(1−δ)/(1+e^{∓ε})`` and ``δ`` at ``+∞`` (KOV 2015, §2; as
    ``from_privacy_parameters``). When ε is a multiple of the interval (to 1e-12 relative) the losses
    sit exactly on the grid (``from_privacy_parameters`` would round ``ε/interval`` up, and float division can
    land one point above); otherwise they are rounded up (pessimistic)."""
    from dp_accounting.pld import common, privacy_loss_distribution as pld

    vdi = float(value_discretization_interval)
    k = _grid_multiple(epsilon, vdi)
    if k is None:
        params = common.DifferentialPrivacyParameters(float(epsilon), float(delta))
        return pld.from_privacy_parameters(params, value_discretization_interval=vdi)
    up = (1.0 - delta) / (1.0 + math.exp(-float(epsilon)))
    down = (1.0 - delta) / (1.0 + math.exp(float(epsilon)))
    return pld.PrivacyLossDistribution.create_from_rounded_probability({k: up, -k: down}, float(delta), vdi)


def exact_interval(epsilons) -> float | None:
    """The largest discretisation interval of which every ε is an integer multiple (ε read as a
    fraction with denominator <= 10^6), or None when there is none or it is finer than
    ``max ε / 10^4`` (then the PLD is discretised pessimistically at :data:`FALLBACK_INTERVAL`).
    One ε gives ε itself; (0.3, 0.7) gives 0.1."""
    eps = sorted({float(e) for e in epsilons})
    if not eps:
        return None
    if len(eps) == 1:
        return eps[0]
    fracs = [Fraction(e).limit_denominator(10**6) for e in eps]
    if any(abs(float(f) - e) > 1e-12 * e for f, e in zip(fracs, eps)):
        return None
    den = math.lcm(*(f.denominator for f in fracs))
    g = float(Fraction(math.gcd(*(f.numerator * (den // f.denominator) for f in fracs)), den))
    if eps[-1] / g > _MAX_GRID_POINTS or any(_grid_multiple(e, g) is None for e in eps):
        return None
    return g


def pld_pure_composition(
    *, epsilon, steps: int | None = None, delta: float, value_discretization_interval: float | None = None
) -> float:
    """ε' at ``delta`` for pure-ε rounds, composed through the PLD (module doc).

    ``epsilon`` is a scalar (``steps`` rounds at ε) or a per-round list (one *round* made of
    those releases, e.g. chunks), composed ``steps`` times (default 1). Default interval:
    :func:`exact_interval` of the ε (exact), else 1e-4 (upper bound, overestimate at most
    ``Σ_t interval`` from rounding each ε_t up).
    """
    eps, t = _epsilon_list(epsilon, steps)
    dl = _check_delta(delta)
    counts = Counter(eps)
    if value_discretization_interval is None:
        vdi = exact_interval(counts) or FALLBACK_INTERVAL
    else:
        vdi = float(value_discretization_interval)
        if not (math.isfinite(vdi) and vdi > 0):
            raise ParameterError("value_discretization_interval must be > 0")
    total = None
    for e, c in sorted(counts.items()):
        part = pure_pld(e, value_discretization_interval=vdi).self_compose(c * t)
        total = part if total is None else total.compose(part)
    return float(total.get_epsilon_for_delta(dl))


def pure_rdp(epsilon: float, orders) -> np.ndarray:
    """Rényi divergence of order α of the worst-case ε-DP pair ``RR_ε`` (tight RDP of pure DP,
    by data processing and KOV 2015 §2): with ``p = e^ε/(1+e^ε)``,
    ``D_α = ln(p^α (1−p)^{1−α} + (1−p)^α p^{1−α}) / (α − 1)``, computed in log space."""
    eps = check_epsilon(epsilon)
    a = np.asarray(orders, dtype=np.float64)
    lp, lq = -math.log1p(math.exp(-eps)), -math.log1p(math.exp(eps))  # ln p, ln(1-p)
    return np.logaddexp(a * lp + (1 - a) * lq, a * lq + (1 - a) * lp) / (a - 1)


def rdp_gaussian_composition(
    *, noise_multiplier: float, steps: int, delta: float, sample_rate: float = 1.0, orders=DEFAULT_ORDERS
) -> float:
    """ε at ``delta`` of ``steps`` (Poisson-subsampled at ``sample_rate``) Gaussian releases with
    σ = ``noise_multiplier`` × sensitivity, via opacus ``compute_rdp`` / ``get_privacy_spent``."""
    from opacus.accountants.analysis import rdp as opacus_rdp

    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise ParameterError("noise_multiplier must be finite and > 0")
    t = check_positive_int(steps, "steps")
    dl = _check_delta(delta)
    q = check_probability(sample_rate, "sample_rate", open_interval=False)
    if q == 0:
        return 0.0
    rdp = opacus_rdp.compute_rdp(q=q, noise_multiplier=float(noise_multiplier), steps=t, orders=list(orders))
    return rdp_to_epsilon(orders, rdp, dl)


def rdp_to_epsilon(orders, rdp, delta: float) -> float:
    """(ε, δ) from an RDP curve (Balle et al. 2020, Thm 21, as opacus implements it)."""
    from opacus.accountants.analysis import rdp as opacus_rdp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "optimal order is the smallest/largest alpha"
        eps, _ = opacus_rdp.get_privacy_spent(orders=list(orders), rdp=np.asarray(rdp), delta=delta)
    return float(max(0.0, eps))
