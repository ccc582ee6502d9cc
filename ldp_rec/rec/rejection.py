"""Rejection sampling with fallback on shared candidates (Feldman & Talwar, "Lossless compression
of efficient private local randomizers", ICML 2021, Sec. 3, Alg. 1, adapted to an index code).

Try the shared candidates ``Z_0 … Z_{t−1} ~ P`` in order; accept ``Z_i`` with probability
``r(Z_i)/c_max`` (private coins from ``rng``); send the first accepted index. If none is accepted the
encoder sends the fallback index ``t``, i.e. a fresh shared candidate ``Z_t ~ P``. Each try accepts
with probability ``E_P[r/c_max] = 1/c_max``, so the output law is exactly the mixture

    (1 − ρ) Q + ρ P,   ρ = (1 − 1/c_max)^t,     TV(output, Q) = ρ · TV(P, Q) ≤ ρ,

and the index needs ``⌈log2(t+1)⌉`` bits (fixed length). Expected tries ≈ ``c_max``.

Transcript privacy: **unbounded**. Feldman & Talwar's ε guarantee needs the client to draw candidate
seeds privately and send only the accepted seed (costing the seed length). With shared candidates
the index K = k also says that ``Z_0 … Z_{k−1}`` were rejected, a likelihood factor
``Π_{i<k} (1 − r_x(Z_i)/c_max)`` that is 0 for an input whose ratio is ``c_max`` at one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._validation import check_positive_int
from ..errors import IncompatibleError
from ..privacy.events import TranscriptPrivacy
from .base import Encoded, SelectionLaw, Simulator, Target, encoded
from .mrc import block_size, check_log_ratios


@dataclass(frozen=True)
class RejectionSampler(Simulator):
    """Rejection sampling with ``tries`` shared candidates and fallback index ``tries`` (module doc)."""

    tries: int
    name: ClassVar[str] = "rejection"
    exact: ClassVar[bool] = False
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "unbounded", note="the index reveals that every earlier shared candidate was rejected"
    )

    def __post_init__(self) -> None:
        check_positive_int(self.tries, "tries")

    def check_target(self, target: Target) -> None:
        if not np.isfinite(target.bounds[1]):
            raise IncompatibleError(f"{self.name} needs a finite upper bound c_max on the density ratio")

    def fallback_probability(self, log_c_max: float) -> float:
        """``ρ = (1 − 1/c_max)^t``: probability of the fallback (a bound on the TV to Q)."""
        return float(math.exp(self.tries * math.log1p(-math.exp(-log_c_max)))) if log_c_max > 0 else 0.0

    def encode(self, target: Target, *, rng=None) -> Encoded:
        self.check_target(target)
        log_cmax = float(target.bounds[1])
        rng = np.random.default_rng(rng)
        n, t = target.n, self.tries
        idx = np.full(n, t, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        bs = block_size(n, t)
        start = 0
        while start < t and not done.all():
            cnt = min(bs, t - start)
            lr = check_log_ratios(target.log_ratio_block(start, cnt))
            if np.any(lr > log_cmax + 1e-9):
                raise IncompatibleError("a log ratio exceeds the target's upper bound")
            acc = np.log(rng.random((n, cnt))) < lr - log_cmax
            first = np.argmax(acc, axis=1)
            hit = acc.any(axis=1) & ~done
            idx = np.where(hit, start + first, idx)
            done |= hit
            start += cnt
        steps = np.minimum(idx + 1, t)
        return encoded(idx, steps)

    @property
    def index_limit(self) -> int:
        return self.tries + 1  # the fallback index t

    def check_mechanism(self, mechanism) -> None:
        if not np.isfinite(mechanism.log_ratio_bounds()[1]):
            raise IncompatibleError(f"{self.name} needs a finite upper bound c_max on the density ratio")

    def effective_cap_probability(self, mechanism) -> float:
        """Output ~ (1 − ρ) Q + ρ P, ρ = (1 − 1/c_max)^t (Feldman & Talwar 2021): p̂ = (1 − ρ) p + ρ q."""
        rho = self.fallback_probability(mechanism.log_ratio_bounds()[1])
        return (1.0 - rho) * float(mechanism.p) + rho * float(mechanism.cap_mass)

    def selection_law(self, mechanism) -> SelectionLaw:
        """``π_k = a_k Π_{i<k}(1 − a_i)``, ``π_t = Π_{i<t}(1 − a_i)``, a_i = r_i/c_max (exact; t + 1 messages)."""
        from ..privacy.audit import rejection_log_pmf

        t, hi = self.tries, float(mechanism.log_ratio_bounds()[1])
        return SelectionLaw("exact", t, lambda tg: rejection_log_pmf(tg.log_ratio_block(0, t), log_c_max=hi))

    def expected_codelength(self, kl_bits: float = 0.0) -> float:
        return float(math.ceil(math.log2(self.tries + 1)))
