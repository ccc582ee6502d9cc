"""PrivUnit2 (Bhowmick, Duchi, Freudiger, Kapoor, Rogers 2018, "Protection against reconstruction and
its applications in private federated learning", Alg. 1 and Thm 1), with the optimised split.

Given a unit u, output V uniform on the cap {v ∈ S^{d−1}: ⟨v, u⟩ ≥ γ} with probability p, else uniform on
its complement (see :mod:`.cap`). With q = ½ I_{1−γ²}((d−1)/2, ½) it is ε-LDP iff
log[p(1−q)/((1−p)q)] ≤ ε, and ``m = E⟨V, u⟩ = c(γ) [p/q − (1−p)/(1−q)]`` with
``c(γ) = (1−γ²)^{(d−1)/2} / ((d−1) B((d−1)/2, ½))``; ``Z = C V/m`` has
``E‖Z − x‖² = C²(1/m² − 1)`` for ‖x‖ = C.

Parameters ("optimised split", :func:`privunit2_parameters`): instead of Thm 1's sufficient
conditions (ε = ε0 + ε1, p = e^{ε0}/(1+e^{ε0}), γ from a bound; :func:`privunit2_sufficient_parameters`)
we minimise the exact variance under the exact constraint. For fixed γ the constraint is tight at the
optimum, ``p = e^ε q/(e^ε q + 1 − q)``, leaving ``m(γ) = (e^ε − 1) c(γ) / (1 + (e^ε − 1) q(γ))``, which we
maximise over γ ∈ [0, 1) (γ < 0 is never better, see :mod:`.cap`) by a grid in log q and bounded
Brent refinement.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import optimize, special

from .._validation import check_epsilon, check_positive_int
from ..errors import ParameterError
from .cap import SphereCapMechanism, sphere_cap_mass, sphere_log_partial_mean, tight_cap_probability

_GRID = 4001


def _one_minus_gamma_sq(log_q: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(γ², log(1 − γ²)) of the cap of mass q = exp(log_q) ≤ ½, each from the accurate inverse."""
    a = 0.5 * (dim - 1)
    two_q = 2.0 * np.exp(log_q)
    g2 = special.betainccinv(0.5, a, two_q)  # accurate for small γ²
    one_minus = special.betaincinv(a, 0.5, two_q)  # accurate for γ² near 1
    with np.errstate(divide="ignore"):
        log1m = np.where(g2 <= 0.5, np.log1p(-g2), np.log(one_minus))
    g2 = np.where(g2 <= 0.5, g2, 1.0 - one_minus)
    return g2, log1m


@functools.lru_cache(maxsize=512)
def _privunit2_parameters(eps: float, dim: int) -> tuple[float, float]:
    a = 0.5 * (dim - 1)
    log_k = eps + math.log(-math.expm1(-eps))  # log(e^ε − 1)

    def objective(log_q):  # −log m(γ(q)) up to constants
        _, log1m = _one_minus_gamma_sq(np.asarray(log_q, dtype=np.float64), dim)
        return -a * log1m + np.logaddexp(0.0, log_k + log_q)

    grid = np.linspace(-(eps + 45.0), math.log(0.5), _GRID)
    vals = objective(grid)
    i = int(np.nanargmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    res = optimize.minimize_scalar(lambda y: float(objective(y)), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12})
    best = res.x if res.fun <= vals[i] else grid[i]
    g2, _ = _one_minus_gamma_sq(np.asarray(best), dim)
    gamma = float(np.sqrt(g2))
    q = float(sphere_cap_mass(gamma, dim))  # the forward map the mechanism uses
    return float(tight_cap_probability(q, eps)), gamma


def privunit2_parameters(epsilon: float, dim: int) -> tuple[float, float]:
    """(p, γ) minimising the exact PrivUnit2 variance 1/m² − 1 subject to the exact ε-LDP constraint
    (tight). Cached per (ε, d)."""
    return _privunit2_parameters(check_epsilon(epsilon), check_positive_int(dim, "dim", minimum=2))


def privunit2_mse(p, gamma, dim: int):
    """Exact ``E‖Z − x‖² = 1/m² − 1`` of PrivUnit2 with parameters (p, γ) (unit x, C = 1); vectorised."""
    p = np.asarray(p, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    q = sphere_cap_mass(gamma, dim)
    m = np.exp(sphere_log_partial_mean(gamma, dim)) * (p / q - (1 - p) / (1 - q))
    return 1.0 / m**2 - 1.0


def privunit2_sufficient_gamma(epsilon1: float, dim: int) -> float:
    """The largest γ that Bhowmick et al. (2018) Thm 1 certifies for a cap ratio of ε1:

    (i) γ ≤ ((e^{ε1} − 1)/(e^{ε1} + 1)) √(π / (2(d − 1))), or
    (ii) ε1 ≥ ½ log d + log 6 − ((d − 1)/2) log(1 − γ²) + log γ with γ ≥ √(2/d).

    Needs d ≥ 3: for d = 2 condition (i) is *not* sufficient (it can even exceed 1). Measured with the
    exact cap mass arccos(γ)/π: at ε1 = 2 it gives γ = 0.9545 and a cap ratio of e^{2.24} > e^{2}.
    """
    eps1 = check_epsilon(epsilon1, "epsilon1")
    d = check_positive_int(dim, "dim", minimum=3)
    g1 = math.tanh(eps1 / 2) * math.sqrt(math.pi / (2 * (d - 1)))

    def slack(g):
        return eps1 - (0.5 * math.log(d) + math.log(6) - 0.5 * (d - 1) * math.log1p(-g * g) + math.log(g))

    g_lo = math.sqrt(2 / d)
    if g_lo >= 1 or slack(g_lo) < 0:
        return g1
    g_hi = 1 - 1e-15
    g2 = g_hi if slack(g_hi) >= 0 else optimize.brentq(slack, g_lo, g_hi, xtol=1e-15)
    return max(g1, g2)


def privunit2_sufficient_parameters(epsilon: float, dim: int, *, eps0_fraction: float) -> tuple[float, float]:
    """Bhowmick et al. (2018) Thm 1 parameters for the split ε0 = θ ε, ε1 = (1 − θ) ε:
    p = e^{ε0}/(1 + e^{ε0}) and γ = :func:`privunit2_sufficient_gamma` (ε1). For comparison only."""
    eps = check_epsilon(epsilon)
    theta = float(eps0_fraction)
    if not 0 < theta < 1:
        raise ParameterError(f"eps0_fraction must lie in (0, 1), got {eps0_fraction!r}")
    return float(special.expit(theta * eps)), privunit2_sufficient_gamma((1 - theta) * eps, dim)


@dataclass(frozen=True)
class PrivUnit2(SphereCapMechanism):
    """PrivUnit2 over the unit sphere with the optimised (p, γ) (module doc).

    ``p_override`` / ``gamma_override``: fix p or γ (the other is made tight); with both, the pair
    is checked against the ε-LDP constraint. Requires d ≥ 2."""

    name: ClassVar[str] = "privunit2"

    epsilon: float
    dim: int
    clip: float = 1.0
    p_override: float | None = None
    gamma_override: float | None = None

    def __post_init__(self) -> None:
        self._init_cap(self.p_override, self.gamma_override)

    def tuned_for_band(self, *, epsilon: float, bits: int):
        """(p, γ) minimising the MSE after modified MRC's band at ``epsilon`` and N = 2^bits
        (:func:`ldp_rec.codec.tuning.band_tuned_privunit2`); ``self`` when p or γ is fixed by the caller."""
        if self.p_override is not None or self.gamma_override is not None:
            return self
        from ..codec.tuning import band_tuned_privunit2

        return band_tuned_privunit2(float(epsilon), int(self.dim), int(bits), clip=float(self.clip))

    def _default_parameters(self) -> tuple[float, float]:
        return privunit2_parameters(float(self.epsilon), int(self.dim))


def _shah_gamma(eps1: float, dim: int) -> float:
    """γ of Shah et al.'s and Isik et al.'s public code for a cap budget ε1: the larger of condition (i) of
    Bhowmick et al. Thm 1 and the largest point ``min(e^{ε1}/(6√d), 1)·1.01^{−j}`` of condition (ii), used
    only when it exceeds √(2/d) (their geometric search, restated)."""
    d = int(dim)
    g_a = math.tanh(eps1 / 2) * math.sqrt(math.pi / (2 * d - 2))
    g_b = min(math.exp(eps1) / (6 * math.sqrt(d)), 1.0)
    while g_b > 0 and (g_b >= 1 or eps1 < 0.5 * math.log(36 * d) - 0.5 * (d - 1) * math.log1p(-g_b * g_b) + math.log(g_b)):
        g_b /= 1.01
    return max(g_b, g_a) if g_b > math.sqrt(2 / d) else g_a


@functools.lru_cache(maxsize=256)
def _shah_parameters(eps: float, dim: int) -> tuple[float, float]:
    best = None
    for budget in np.linspace(0.01, 0.99, 99):
        gamma = _shah_gamma(float(budget) * eps, dim)
        p = float(special.expit((1 - budget) * eps))
        m = float(np.exp(sphere_log_partial_mean(gamma, dim))) * (
            p / float(sphere_cap_mass(gamma, dim)) - (1 - p) / (1 - float(sphere_cap_mass(gamma, dim))))
        if best is None or m > best[0]:
            best = (m, p, gamma)
    return best[1], best[2]


def privunit2_shah_parameters(epsilon: float, dim: int) -> tuple[float, float]:
    """(p, γ) of PrivUnit2 as Shah, Chen, Ballé, Kairouz & Theis (2022) and Isik et al. (2023) run it in
    their DME experiments (public code ``rcc_dp`` and ``rrsc``): Bhowmick et al.'s Thm 1 split, with the
    budget θ ∈ {0.01, …, 0.99} of ε given to the cap (γ from :func:`_shah_gamma` (θε)) and
    ``p = e^{(1−θ)ε}/(1 + e^{(1−θ)ε})``, θ maximising the plain mechanism's m = E⟨V, u⟩. The spread is
    below ε (Thm 1 is only sufficient); this is the "Shah et al. parameters" baseline."""
    return _shah_parameters(check_epsilon(epsilon), check_positive_int(dim, "dim", minimum=3))
