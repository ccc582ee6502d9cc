"""PrivUnit2 behind Shah et al.'s modified MRC: band tuning (ldp_rec.codec.tuning), Shah et al.'s
parameters (ldp_rec.mechanisms.privunit2) and the published DME figures (simulations/published_baselines.json).

Tolerances: closed forms against the published table within 5% (the published SE is 1–3%); Monte-Carlo
checks at 4.5 standard errors; privacy bounds to 1e-9.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ldp_rec.codec.registry import make_codec
from ldp_rec.codec.tuning import (band_tuned_privunit2, band_tuned_privunit2_parameters, privunit2_mse_at,
                                  shah_cap_probability)
from ldp_rec.mechanisms.privunit2 import PrivUnit2, privunit2_mse, privunit2_shah_parameters
from ldp_rec.privacy.events import PureEvent
from ldp_rec.rec import randomness
from ldp_rec.rec.base import MechanismTarget
from ldp_rec.rec.mrc import ModifiedMRC, modified_cap_probability, modified_mrc_probs

PUBLISHED = json.loads((Path(__file__).resolve().parents[1] / "simulations" / "published_baselines.json").read_text())
SETTINGS = [("eps", e, e) for e in range(1, 9)] + [("bits", 6, b) for b in range(1, 9)]
D, N_USERS = 500, 5000
MEAN_SQ = 0.7255  # ‖mean(x)‖² of the DME inputs at d = 500 (two clusters: (0.995 + 0.707)²/4 to 1e-3)


def _published(sweep, eps, bits):
    i = eps - 1 if sweep == "eps" else bits - 1
    return PUBLISHED[sweep]["mmrc"]["mse"][i]


def _mmrc_terms(mech, eps, bits):
    q, p = mech.cap_mass, mech.p
    p_hat = modified_cap_probability(1 << bits, q, p / q, (1 - p) / (1 - q), epsilon=eps, log_c_max=math.log(p / q))
    return q, p, p_hat


@pytest.mark.parametrize("sweep,eps,bits", SETTINGS)
def test_shah_parameters_reproduce_published_closed_form(sweep, eps, bits):
    """Shah et al.'s parameters and their decoder (approximate p̃) give the published MSE within 5%; ldp-rec's
    exact decoder is unbiased and lower; the band-tuned PrivUnit2 is lower still."""
    p, g = privunit2_shah_parameters(eps, D)
    mech = PrivUnit2(eps, D, p_override=p, gamma_override=g)  # checks the spread ≤ ε
    q, p, p_hat = _mmrc_terms(mech, eps, bits)
    p_shah = shah_cap_probability(1 << bits, q, p / q, (1 - p) / (1 - q), epsilon=eps)
    assert p_shah < p_hat  # their approximation is low: their decoder scales the estimates up
    m_e, m_s = mech.m(p_hat), mech.m(p_shah)
    faithful = (1 / m_s**2 - (m_e / m_s) ** 2) / N_USERS + (m_e / m_s - 1) ** 2 * MEAN_SQ
    exact = (1 / m_e**2 - 1) / N_USERS
    pub = _published(sweep, eps, bits)
    assert faithful == pytest.approx(pub, rel=0.05)
    assert exact <= faithful
    tuned = band_tuned_privunit2(eps, D, bits)
    tq, tp, tp_hat = _mmrc_terms(tuned, eps, bits)
    assert (1 / tuned.m(tp_hat) ** 2 - 1) / N_USERS <= exact


def test_shah_parameters_follow_theorem_1():
    p, g = privunit2_shah_parameters(6.0, D)
    # the budget split maximises m over θ: no other grid point of the same rule does better
    m = PrivUnit2(6.0, D, p_override=p, gamma_override=g).m()
    assert 0.5 < p < 1 and 0 < g < 1
    assert privunit2_mse(p, g, D) == pytest.approx(1 / m**2 - 1, rel=1e-10)
    # the optimised split (tight constraint) is better than the sufficient Thm 1 choice, as it should be
    assert PrivUnit2(6.0, D).expected_mse() < 1 / m**2 - 1


@pytest.mark.parametrize("eps,bits", [(1.0, 1), (2.0, 3), (6.0, 1), (6.0, 4), (8.0, 8)])
def test_band_tuned_privunit2_transcript_is_eps_ldp(eps, bits):
    """The band, not the mechanism, carries the guarantee: the tuned PrivUnit2's own spread exceeds ε, its
    log c_max does not, and modified MRC's selection probabilities move by at most e^ε between any two
    inputs on the same candidates (all two-level ratio patterns: adversarial pairs; and real inputs)."""
    d, N = 24, 1 << bits
    mech = band_tuned_privunit2(eps, d, bits)
    lo, hi = mech.log_ratio_bounds()
    assert hi <= eps + 1e-12
    cod = make_codec("privunit2", "modified-mrc", epsilon=eps, dim=d, bits=bits)
    assert cod.transcript_event() == PureEvent(eps)
    assert cod.mechanism.log_ratio_bounds()[1] <= eps + 1e-12
    rng = np.random.default_rng(int(10 * eps) + bits)
    worst = 0.0
    pats = [rng.random(N) < rng.random() for _ in range(300)]
    pats += [np.arange(N) == 0, np.arange(N) != 0, np.zeros(N, bool), np.ones(N, bool)]
    for a in pats:
        for b in (pats[int(rng.integers(len(pats)))], ~a):
            pa = modified_mrc_probs(np.where(a, hi, lo), epsilon=eps, log_c_max=hi)
            pb = modified_mrc_probs(np.where(b, hi, lo), epsilon=eps, log_c_max=hi)
            worst = max(worst, float(np.max(np.abs(np.log(pa) - np.log(pb)))))
    assert worst <= eps + 1e-9
    # real inputs on shared candidates: u, −u, and inputs aimed at single candidates
    keys = np.full(6, 11, dtype=np.uint64)
    Z = randomness.block(keys[:1], 0, N, d, "normal")[0].astype(np.float64)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    u = rng.standard_normal(d)
    U = np.stack([u, -u, Z[0], -Z[0], Z[-1], rng.standard_normal(d)])
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    pi = ModifiedMRC(bits, eps).selection_probs(MechanismTarget(mech, U, keys))
    assert np.max(np.log(pi).max(0) - np.log(pi).min(0)) <= eps + 1e-9
    if bits >= 3:
        assert mech.epsilon > eps  # its own spread is larger than the transcript's ε


def test_band_tuned_privunit2_unbiased_and_matches_closed_form():
    eps, bits, d, n = 4.0, 4, 16, 40000
    cod = make_codec("privunit2", "modified-mrc", epsilon=eps, dim=d, bits=bits)
    mech = cod.mechanism
    p, g = band_tuned_privunit2_parameters(eps, d, bits)
    assert (mech.p, mech.gamma) == pytest.approx((p, g), rel=1e-9)
    x = np.random.default_rng(3).standard_normal(d)
    x /= np.linalg.norm(x)
    X = np.tile(x, (n, 1))
    res = cod.decode(cod.encode(X, run_seed=5, round=0, clients=np.arange(n), rng=6), run_seed=5, round=0,
                     clients=np.arange(n))
    Z = res.estimates
    se = Z.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(Z.mean(0) - x) < 4.5 * se)
    q, p_, p_hat = _mmrc_terms(mech, eps, bits)
    assert cod._unbias_kw[0]["p_eff"] == pytest.approx(p_hat, rel=1e-12)
    closed = privunit2_mse_at(q, p_hat, d)
    assert closed == pytest.approx(1 / mech.m(p_hat) ** 2 - 1, rel=1e-6)
    err = np.sum((Z - x) ** 2, axis=1)
    assert abs(err.mean() - closed) < 4.5 * err.std(ddof=1) / math.sqrt(n)
    # fraction of chosen candidates in the cap = p̃: the decoded Z/‖Z‖ lies in the cap iff ⟨Z, x⟩ ≥ γ‖Z‖
    in_cap = Z @ x >= mech.gamma * np.linalg.norm(Z, axis=1) - 1e-12
    assert abs(in_cap.mean() - p_hat) < 4.5 * math.sqrt(p_hat * (1 - p_hat) / n)


def test_band_tuning_is_the_default_and_can_be_turned_off():
    tuned = make_codec("privunit2", "modified-mrc", epsilon=6.0, dim=D, bits=2).mechanism
    plain = make_codec("privunit2", "modified-mrc", epsilon=6.0, dim=D, bits=2, band_tuning=False).mechanism
    assert (tuned.p, tuned.gamma) == pytest.approx(band_tuned_privunit2_parameters(6.0, D, 2), rel=1e-9)
    assert plain.epsilon == 6.0 and plain.gamma != pytest.approx(tuned.gamma, rel=1e-3)
    p, g = privunit2_shah_parameters(6.0, D)
    shah = make_codec("privunit2", "modified-mrc", epsilon=6.0, dim=D, bits=2, p_override=p, gamma_override=g)
    assert shah.mechanism.p == pytest.approx(p) and shah.mechanism.gamma == pytest.approx(g)
