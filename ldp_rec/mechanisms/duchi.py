"""Duchi, Jordan & Wainwright's L2-ball mechanism ("Local privacy and statistical minimax rates",
FOCS 2013, Sec. 4.2.3; JASA 2018 "Minimax optimal procedures for locally private estimation", Sec. 4.2).

Round x (‖x‖ ≤ C) to ±x/‖x‖ unbiasedly, then with probability p = e^ε/(e^ε + 1) output a uniform point
of the half-sphere {v: ⟨v, u⟩ ≥ 0}, else of the other half, scaled by B. It is the cap mechanism with
γ = 0, q = ½ (so the ratio spread is exactly log(p/(1 − p)) = ε), and B = C/m with

    m = 2 c(0) (2p − 1),  c(0) = 1/((d − 1) B((d − 1)/2, ½))  ⇒
    B = C · (e^ε + 1)/(e^ε − 1) · √π Γ((d + 1)/2) / Γ(d/2)
      = C · (e^ε + 1)/(e^ε − 1) · √π d Γ((d − 1)/2 + 1) / (2 Γ(d/2 + 1)),

which grows as ((e^ε + 1)/(e^ε − 1)) √(π d / 2). :func:`duchi_l2_radius` evaluates the paper's
Gamma-function form independently of the generic cap code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from scipy import special

from .._validation import check_epsilon, check_positive_int
from .cap import SphereCapMechanism


def duchi_l2_radius(epsilon: float, dim: int, clip: float = 1.0) -> float:
    """The paper's output radius ``B = C (e^ε+1)/(e^ε−1) · √π d Γ((d−1)/2 + 1) / (2 Γ(d/2 + 1))``
    (log-Gamma form, so it is finite for large d)."""
    eps = check_epsilon(epsilon)
    d = check_positive_int(dim, "dim", minimum=2)
    log_gamma_ratio = special.gammaln((d - 1) / 2 + 1) - special.gammaln(d / 2 + 1)
    return float(clip) / math.tanh(eps / 2) * math.sqrt(math.pi) * d / 2 * math.exp(log_gamma_ratio)


@dataclass(frozen=True)
class DuchiL2(SphereCapMechanism):
    """Duchi et al.'s L2 mechanism as a cap mechanism (γ = 0, q = ½, p = e^ε/(e^ε + 1)); d ≥ 2."""

    name: ClassVar[str] = "duchi"

    epsilon: float
    dim: int
    clip: float = 1.0

    def __post_init__(self) -> None:
        self._init_cap()

    def _default_parameters(self) -> tuple[float, float]:
        return float(special.expit(float(self.epsilon))), 0.0

    @property
    def radius(self) -> float:
        """B = C/m: the norm of every output ``Z = B V``."""
        return float(self.clip) / self.m()
