"""Mechanism parameters tuned for a channel simulator.

Modified MRC (Shah et al. 2022, Sec. 4) makes the transcript ε-LDP through its input-independent
band ``[c_max e^{−ε}/N, c_max/N]`` alone; it needs only ``log c_max ≤ ε``. So the mechanism
behind it may have a larger spread ε' than ε: for PrivUnitG the constraint is ``p/q ≤ e^ε``
instead of ``p(1−q)/((1−p)q) ≤ e^ε``. :func:`band_tuned_privunitg` picks (p, γ) minimising the
per-user MSE *after* the band clipping and finite N, i.e. with the effective cap probability
p̃ (:func:`ldp_rec.rec.mrc.modified_cap_probability`):

    MSE(p, γ) = (d + γ m) / m² − 1,   m = φ(γ) [p̃/q − (1 − p̃)/(1 − q)],   q = 1 − Φ(γ),

(E‖V‖² = d − 1 + E[W²] and E[W²] = 1 + γ m for the two-sided truncated normal W).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from ..mechanisms.privunitg import PrivUnitG
from ..rec import mrc


def privunitg_mse_at(q: float, p_eff: float, dim: int) -> float:
    """Per-user MSE of PrivUnitG with cap mass q whose output is in the cap w.p. ``p_eff``."""
    g = -special.ndtri(q)
    phi = math.exp(-0.5 * g * g) / math.sqrt(2 * math.pi)
    m = p_eff * phi / q - (1 - p_eff) * phi / (1 - q)
    return (dim + g * m) / m**2 - 1 if m > 0 else math.inf


def _mse(lq: float, lc: float, epsilon: float, N: int, dim: int) -> float:
    q, c1 = math.exp(lq), math.exp(lc)
    p = c1 * q
    if not (c1 > 1 and p < 1):
        return math.inf
    c2 = (1 - p) / (1 - q)
    p_eff = mrc.modified_cap_probability(N, q, c1, c2, epsilon=epsilon, log_c_max=lc)
    return privunitg_mse_at(q, p_eff, dim)


@functools.lru_cache(maxsize=64)
def band_tuned_privunitg_parameters(epsilon: float, dim: int, bits: int) -> tuple[float, float]:
    """(p, γ) of PrivUnitG for modified MRC with the band at ε and N = 2^bits (grid, then refined)."""
    N = 1 << int(bits)

    def search(lqs, lcs):
        vals = np.array([[_mse(lq, lc, epsilon, N, dim) for lc in lcs] for lq in lqs])
        i, j = np.unravel_index(np.argmin(vals), vals.shape)
        return lqs[i], lcs[j]

    top = epsilon * (1 - 1e-9)
    lqs, lcs = np.linspace(-epsilon - 8, math.log(0.5), 40), np.linspace(0.05 * epsilon, top, 32)
    lq, lc = search(lqs, lcs)
    dq, dc = lqs[1] - lqs[0], lcs[1] - lcs[0]
    lq, lc = search(np.linspace(lq - dq, min(lq + dq, math.log(0.5)), 15), np.linspace(lc - dc, min(lc + dc, top), 15))
    q = math.exp(lq)
    return math.exp(lc) * q, float(-special.ndtri(q))


def band_tuned_privunitg(epsilon: float, dim: int, bits: int, *, clip: float = 1.0) -> PrivUnitG:
    """The PrivUnitG to put behind modified MRC at transcript ε; its ``epsilon`` field is its own
    (larger) spread, its ``log c_max`` is ≤ ε."""
    p, gamma = band_tuned_privunitg_parameters(float(epsilon), int(dim), int(bits))
    q = float(special.ndtr(-gamma))
    spread = math.log(p / q) - math.log((1 - p) / (1 - q))
    return PrivUnitG(epsilon=spread * (1 + 1e-12), dim=dim, clip=clip, p_override=p, gamma_override=gamma)
