"""Mechanism parameters tuned for a channel simulator.

Modified MRC (Shah et al. 2022, Sec. 4) makes the transcript ε-LDP through its input-independent
band ``[c_max e^{−ε}/N, c_max/N]`` alone; it needs only ``log c_max ≤ ε``. So the mechanism
behind it may have a larger spread ε' than ε: for a cap mechanism the constraint is ``p/q ≤ e^ε``
instead of ``p(1−q)/((1−p)q) ≤ e^ε``. The band-tuned parameters pick (p, γ) minimising the per-user
MSE *after* the band clipping and finite N, i.e. with the effective cap probability p̃
(:func:`ldp_rec.rec.mrc.modified_cap_probability`), over a grid in (log q, log c1), c1 = p/q ∈ (1, e^ε],
then a finer grid around the best cell:

* PrivUnitG (:func:`band_tuned_privunitg`): ``MSE = (d + γ m)/m² − 1``, ``m = φ(γ)[p̃/q − (1 − p̃)/(1 − q)]``,
  ``q = 1 − Φ(γ)`` (E‖V‖² = d − 1 + E[W²] and E[W²] = 1 + γ m for the two-sided truncated normal W);
* PrivUnit2 (:func:`band_tuned_privunit2`): ``MSE = 1/m² − 1``, ``m = c(γ)[p̃/q − (1 − p̃)/(1 − q)]``,
  ``q = ½ I_{1−γ²}((d−1)/2, ½)``, ``c(γ) = (1−γ²)^{(d−1)/2}/((d−1) B((d−1)/2, ½))`` (Bhowmick et al. 2018;
  :mod:`ldp_rec.mechanisms.privunit2`).

The transcript of either stays ε-LDP: that is the band's guarantee, whatever the spread ε' of the
mechanism (tests/test_baselines_privunit2.py checks it over adversarial pairs of inputs).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special, stats

from ..mechanisms.cap import sphere_cap_mass, sphere_log_partial_mean, sphere_projection_isf
from ..mechanisms.privunit2 import PrivUnit2
from ..mechanisms.privunitg import PrivUnitG
from ..rec import mrc


def privunitg_mse_at(q: float, p_eff: float, dim: int) -> float:
    """Per-user MSE of PrivUnitG with cap mass q whose output is in the cap w.p. ``p_eff``."""
    g = -special.ndtri(q)
    phi = math.exp(-0.5 * g * g) / math.sqrt(2 * math.pi)
    m = p_eff * phi / q - (1 - p_eff) * phi / (1 - q)
    return (dim + g * m) / m**2 - 1 if m > 0 else math.inf


def privunit2_mse_at(q: float, p_eff: float, dim: int) -> float:
    """Per-user MSE ``1/m² − 1`` of PrivUnit2 with cap mass q whose output is in the cap w.p. ``p_eff``."""
    gamma = float(sphere_projection_isf(q, dim))
    m = math.exp(float(sphere_log_partial_mean(gamma, dim))) * (p_eff / q - (1 - p_eff) / (1 - q))
    return 1 / m**2 - 1 if m > 0 else math.inf


def _mse(lq: float, lc: float, epsilon: float, N: int, dim: int, mse_at=privunitg_mse_at) -> float:
    q, c1 = math.exp(lq), math.exp(lc)
    p = c1 * q
    if not (c1 > 1 and p < 1):
        return math.inf
    c2 = (1 - p) / (1 - q)
    p_eff = mrc.modified_cap_probability(N, q, c1, c2, epsilon=epsilon, log_c_max=lc)
    return mse_at(q, p_eff, dim)


def _band_search(epsilon: float, dim: int, bits: int, mse_at, lq_min: float) -> tuple[float, float]:
    """(log q, log c1) minimising ``mse_at`` after the band at ε with N = 2^bits (grid, then refined)."""
    N = 1 << int(bits)

    def search(lqs, lcs):
        vals = np.array([[_mse(lq, lc, epsilon, N, dim, mse_at) for lc in lcs] for lq in lqs])
        i, j = np.unravel_index(np.argmin(vals), vals.shape)
        return lqs[i], lcs[j]

    top = epsilon * (1 - 1e-9)
    lqs, lcs = np.linspace(lq_min, math.log(0.5), 40), np.linspace(0.05 * epsilon, top, 32)
    lq, lc = search(lqs, lcs)
    dq, dc = lqs[1] - lqs[0], lcs[1] - lcs[0]
    return search(np.linspace(max(lq - dq, lq_min), min(lq + dq, math.log(0.5)), 15),
                  np.linspace(lc - dc, min(lc + dc, top), 15))


@functools.lru_cache(maxsize=64)
def band_tuned_privunitg_parameters(epsilon: float, dim: int, bits: int) -> tuple[float, float]:
    """(p, γ) of PrivUnitG for modified MRC with the band at ε and N = 2^bits (grid, then refined)."""
    lq, lc = _band_search(epsilon, dim, bits, privunitg_mse_at, -epsilon - 8)
    q = math.exp(lq)
    return math.exp(lc) * q, float(-special.ndtri(q))


@functools.lru_cache(maxsize=64)
def band_tuned_privunit2_parameters(epsilon: float, dim: int, bits: int) -> tuple[float, float]:
    """(p, γ) of PrivUnit2 for modified MRC with the band at ε and N = 2^bits (grid, then refined).

    p is recomputed from the cap mass of γ by the forward map the mechanism uses, so that
    ``log(p/q) ≤ ε`` holds exactly as the band checks it."""
    lq, lc = _band_search(epsilon, dim, bits, privunit2_mse_at, max(-epsilon - 8, -700.0))
    gamma = float(sphere_projection_isf(math.exp(lq), dim))
    q = float(sphere_cap_mass(gamma, dim))
    return min(math.exp(lc), math.exp(epsilon * (1 - 1e-9))) * q, gamma


def band_tuned_privunitg(epsilon: float, dim: int, bits: int, *, clip: float = 1.0) -> PrivUnitG:
    """The PrivUnitG to put behind modified MRC at transcript ε; its ``epsilon`` field is its own
    (larger) spread, its ``log c_max`` is ≤ ε."""
    p, gamma = band_tuned_privunitg_parameters(float(epsilon), int(dim), int(bits))
    q = float(special.ndtr(-gamma))
    spread = math.log(p / q) - math.log((1 - p) / (1 - q))
    return PrivUnitG(epsilon=spread * (1 + 1e-12), dim=dim, clip=clip, p_override=p, gamma_override=gamma)


def band_tuned_privunit2(epsilon: float, dim: int, bits: int, *, clip: float = 1.0) -> PrivUnit2:
    """The PrivUnit2 to put behind modified MRC at transcript ε (module doc); its ``epsilon`` field is its
    own (larger) spread, its ``log c_max = log(p/q)`` is ≤ ε."""
    p, gamma = band_tuned_privunit2_parameters(float(epsilon), int(dim), int(bits))
    q = float(sphere_cap_mass(gamma, int(dim)))
    spread = math.log(p / q) - math.log((1 - p) / (1 - q))
    return PrivUnit2(epsilon=spread * (1 + 1e-12), dim=dim, clip=clip, p_override=p, gamma_override=gamma)


def shah_cap_probability(N: int, q: float, c1: float, c2: float, *, epsilon: float) -> float:
    """The closed-form approximation of modified MRC's cap probability in Shah et al.'s public code
    (``get_unbiased_p_tilde``), restated: with β = j/N, ``π_in = c1/(N(β c1 + (1−β) c2))``,
    ``π₁ = π_in (1 + β(e^ε − 1))/(1 + q(e^ε − 1))``, ``π₂ = π₁ (β + q(e^ε − 1))/(β e^ε)``, and
    ``p̃ = Σ_j Bin(j; N, q) · j · (π₁ if β ≤ q else π₂)``. It is *not* the exact band-clipped law
    (:func:`ldp_rec.rec.mrc.modified_cap_probability`); on the DME benchmark it is 1–4% low, so decoding
    with it scales the estimates up by as much (a bias). Used only for the faithful baseline."""
    N = int(N)
    j = np.arange(N + 1, dtype=np.float64)
    beta = j / N
    ee = math.expm1(float(epsilon))
    pi_in = c1 / (N * (beta * c1 + (1 - beta) * c2))
    p1 = pi_in * (1 + beta * ee) / (1 + q * ee)
    with np.errstate(divide="ignore", invalid="ignore"):
        p2 = np.where(j > 0, p1 * (beta + q * ee) / (beta * (ee + 1)), 0.0)
    w = np.exp(stats.binom.logpmf(j, N, q))
    return float(np.sum(w * j * np.where(beta <= q, p1, p2)))
