"""Effective cap probability of a cap mechanism sent through a channel simulator.

For a cap mechanism (ratio c1 = p/q on a cap of P-mass q, c2 = (1−p)/(1−q) off it) an exact
simulator outputs a cap point with probability p. Simulators with finite candidate sets do not:
MRC's chosen candidate is in the cap with p̂ = E_j[j c1/(j c1 + (N−j) c2)], j ~ Bin(N, q)
(Shah et al. 2022, Sec. 5), and modified MRC's band clipping changes it again. Given the
effective probability, the decoder unbiases with m(p̂) in place of m(p) (references.md §3), and
the estimate stays exactly unbiased: by symmetry a chosen cap (non-cap) candidate is uniform on
the cap (its complement) under P's rotation invariance about u.
"""

from __future__ import annotations


from ..rec import mrc
from ..rec.orc import ORC
from ..rec.rejection import RejectionSampler


def _cap_ratios(mech) -> tuple[float, float, float]:
    q, p = float(mech.cap_mass), float(mech.p)
    return q, p / q, (1.0 - p) / (1.0 - q)


def effective_cap_probability(sim, mech) -> float | None:
    """p̂ for ``mech`` through ``sim`` (None: the simulator is exact, use p)."""
    q, c1, c2 = _cap_ratios(mech)
    if isinstance(sim, mrc.ModifiedMRC):
        return mrc.modified_cap_probability(sim.n_candidates, q, c1, c2, epsilon=sim.epsilon,
                                            log_c_max=mech.log_ratio_bounds()[1])
    if isinstance(sim, (mrc.MRC, ORC)):  # ORC outputs exactly MRC's distribution (Theis & Yosri 2022)
        return mrc.effective_cap_probability(sim.n_candidates, q, c1, c2)
    if isinstance(sim, RejectionSampler):
        # output ~ (1 − ρ) Q + ρ P with ρ = (1 − 1/c_max)^t (Feldman & Talwar 2021): p̂ = (1 − ρ) p + ρ q
        rho = sim.fallback_probability(mech.log_ratio_bounds()[1])
        return (1.0 - rho) * float(mech.p) + rho * q
    hook = getattr(sim, "effective_cap_probability", None)
    if hook is not None:
        return float(hook(q=q, c1=c1, c2=c2, p=float(mech.p)))
    if getattr(sim, "exact", False):
        return None
    raise NotImplementedError(f"no finite-N unbiasing known for {type(sim).__name__}")
