"""PrivUnitG (Asi, Feldman & Talwar 2022, "Optimal algorithms for mean estimation under local
differential privacy", ICML, Sec. 4, Alg. 2): the Gaussian analogue of PrivUnit2.

Reference P = N(0, I_d). For a unit u draw g ~ N(0, I_d) and W ~ N(0, 1) conditioned on W ≥ γ with
probability p, on W < γ otherwise, and output V = g − ⟨g, u⟩u + W u. Then ⟨V, u⟩ = W and, with
q = 1 − Φ(γ),

    r_u(v) = p/q if ⟨v, u⟩ ≥ γ else (1 − p)/(1 − q),   ε-LDP iff p(1 − q)/(q(1 − p)) ≤ e^ε.

``m = E W = φ(γ)[p/q − (1 − p)/Φ(γ)]`` (truncated-normal means φ(γ)/q and −φ(γ)/Φ(γ)); the paper's
scale is σ = 1/m and Z = C σ V. Its exact error for ‖x‖ = C is

    E‖Z − x‖² = C² ((d − 1) + E W²) σ² − C² = C² ((d + γ m) σ² − 1),

using E[W² | W ≥ γ] = 1 + γφ(γ)/q and E[W² | W < γ] = 1 − γφ(γ)/Φ(γ); the paper quotes ≈ d σ².

Parameters (:func:`privunitg_parameters`): as in the paper, p on a fine grid (in logit space) with γ from
the tight constraint, q = p/(p + e^ε(1 − p)) in closed form (so no root finding), minimising σ; then
bounded Brent refinement around the best grid cell.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import optimize, special

from .._validation import check_epsilon
from .base import GaussianReference
from .cap import CapMechanism, tight_cap_mass

_GRID = 4001
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def privunitg_log_sigma(p, epsilon: float):
    """log σ(p) = −log(φ(γ)[p/q − (1 − p)/Φ(γ)]) with q and γ from the tight constraint; vectorised."""
    p = np.asarray(p, dtype=np.float64)
    q = tight_cap_mass(p, epsilon)
    gamma = -special.ndtri(q)
    return 0.5 * gamma**2 + _LOG_SQRT_2PI - np.log(p / q - (1 - p) / (1 - q))


@functools.lru_cache(maxsize=256)
def _privunitg_parameters(eps: float) -> tuple[float, float]:
    def objective(logit_p):
        return privunitg_log_sigma(special.expit(logit_p), eps)

    # logit q = logit p − ε ranges over [−(ε + 45), 0]: q from ~e^{−45−ε} up to ½ (γ ≥ 0 suffices).
    grid = np.linspace(-45.0, eps, _GRID)
    vals = objective(grid)
    i = int(np.nanargmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    res = optimize.minimize_scalar(lambda y: float(objective(y)), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12})
    best = res.x if res.fun <= vals[i] else grid[i]
    p = float(special.expit(best))
    return p, float(-special.ndtri(tight_cap_mass(p, eps)))


def privunitg_parameters(epsilon: float) -> tuple[float, float]:
    """(p, γ) minimising the PrivUnitG scale σ under the tight ε-LDP constraint (Asi et al. 2022,
    Sec. 4). Independent of the dimension. Cached per ε."""
    return _privunitg_parameters(check_epsilon(epsilon))


@dataclass(frozen=True)
class PrivUnitG(CapMechanism):
    """PrivUnitG over P = N(0, I_d) with the optimised (p, γ) (module doc); d ≥ 1.

    ``p_override`` / ``gamma_override``: fix p or γ (the other is made tight); with both, the pair
    is checked against the ε-LDP constraint."""

    name: ClassVar[str] = "privunitg"

    epsilon: float
    dim: int
    clip: float = 1.0
    p_override: float | None = None
    gamma_override: float | None = None

    def __post_init__(self) -> None:
        self._init_cap(self.p_override, self.gamma_override)

    def tuned_for_band(self, *, epsilon: float, bits: int):
        """(p, γ) minimising the MSE after modified MRC's band at ``epsilon`` and N = 2^bits
        (:func:`ldp_rec.codec.tuning.band_tuned_privunitg`); ``self`` when p or γ is fixed by the caller."""
        if self.p_override is not None or self.gamma_override is not None:
            return self
        from ..codec.tuning import band_tuned_privunitg

        return band_tuned_privunitg(float(epsilon), int(self.dim), int(bits), clip=float(self.clip))

    @property
    def reference(self) -> GaussianReference:
        return GaussianReference(int(self.dim))

    @property
    def sigma(self) -> float:
        """The paper's scale σ = 1/m (for C = 1)."""
        return 1.0 / self.m()

    def _default_parameters(self) -> tuple[float, float]:
        return privunitg_parameters(float(self.epsilon))

    def _cap_mass(self, gamma: float) -> float:
        return float(special.ndtr(-gamma))

    def _threshold(self, q: float) -> float:
        return float(-special.ndtri(q))

    def _cap_means(self) -> tuple[float, float]:
        g = self._gamma
        log_phi = -0.5 * g * g - _LOG_SQRT_2PI
        # log q = log Φ(−γ), log(1 − q) = log Φ(γ), each accurate in its tail
        return math.exp(log_phi - special.log_ndtr(-g)), -math.exp(log_phi - special.log_ndtr(g))

    def _draw_projection(self, in_cap, rng):
        q = self._q
        s = 1.0 - rng.random(in_cap.shape[0])  # (0, 1]: the inverses stay finite
        w_cap = -special.ndtri(q * s)  # P[W >= w] ~ U(0, q]
        w_off = special.ndtri((1.0 - q) * s)  # P[W <= w] ~ U(0, 1 − q]
        g = self._gamma
        return np.where(in_cap, np.maximum(w_cap, g), np.minimum(w_off, np.nextafter(g, -np.inf)))

    def _assemble(self, u, t, rng):
        g = rng.standard_normal(u.shape)
        g += (t - np.einsum("nd,nd->n", g, u))[:, None] * u
        return g

    @property
    def projection_law(self):
        """Law of ``t = ⟨Z, u⟩ ~ N(0, 1)`` for Z ~ N(0, I_d) (:class:`ldp_rec.rec.subset.ProjectionLaw`)."""
        from ..rec.subset import ProjectionLaw

        return ProjectionLaw("normal", int(self.dim))

    def projection_score(self, dots, sqnorms=None) -> np.ndarray:
        """``t = ⟨Z, u⟩`` of the candidates Z = g (their base normals): the ``dots`` themselves."""
        return np.asarray(dots, dtype=np.float64)

    def _second_moment(self) -> float:
        """E‖V‖² = (d − 1) + E W² = d + γ m."""
        return int(self.dim) + self._gamma * self.m()

    def _norm_quantile(self, tail: float) -> float:
        """‖V‖² = ‖g_⊥‖² + W² with ‖g_⊥‖² ~ χ²_{d−1}. Split the tail in halves: χ²'s upper
        ``tail/2`` quantile, and w with ``P[|W| > w] ≤ Φ(−w)(1/q + 1/(1 − q)) = tail/2`` (each side
        of W is a standard normal conditioned on a set of mass q or 1 − q)."""
        from scipy import stats

        q = self._q
        chi = float(stats.chi2.isf(tail / 2, int(self.dim) - 1)) if int(self.dim) > 1 else 0.0
        w = max(-float(special.ndtri(tail / 2 / (1 / q + 1 / (1 - q)))), abs(self._gamma))
        return math.sqrt(chi + w * w)
