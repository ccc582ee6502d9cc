"""Audit planning from the codec's law (ldp_rec.experiments.audit_plan): constructed candidate sets,
planned Neyman–Pearson events, the ORC planner and the worst case each audit states.

Fixed seeds. Audit bounds are checked against the exact loss of the audited pair (a valid 95% lower
bound may not exceed it), the worst case the audit targets and the codec's claim; frequency checks
are chi-square tests at p > 1e-3."""

import math

import numpy as np
import pytest
from scipy import stats

from ldp_rec.errors import ParameterError
from ldp_rec.experiments import audit as E
from ldp_rec.experiments import audit_plan as P
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.privacy import audit as A
from ldp_rec.rec.mrc import MRC, ModifiedMRC
from ldp_rec.rec.orc import ORC


def _mrc_sup(mech, N):
    """sup over candidate sets of size N of MRC's loss for a two-level ratio c1 > c2."""
    lo, hi = mech.log_ratio_bounds()
    c1, c2 = math.exp(hi), math.exp(lo)
    return (hi - lo) + math.log((c1 * (N - 1) + c2) / (c1 + c2 * (N - 1)))


def test_planned_events_are_consistent():
    rng = np.random.default_rng(0)
    p1, p0 = rng.dirichlet(np.ones(8), size=5), rng.dirichlet(np.ones(8), size=5)
    n = 5000
    pred, direction, order, length = A.planned_events(np.log(p1), np.log(p0), n)
    for c in range(5):
        ev = order[c, : length[c]]
        a, b = (p1[c], p0[c]) if direction[c] > 0 else (p0[c], p1[c])
        assert pred[c] == pytest.approx(float(A.predicted_lower_bound(a[ev].sum(), b[ev].sum(), n)), rel=1e-12)
        singles = np.maximum(A.predicted_lower_bound(p1[c], p0[c], n), A.predicted_lower_bound(p0[c], p1[c], n))
        assert pred[c] >= singles.max() - 1e-12
    # a message impossible under x' (log pmf −inf) is the event, favouring x
    with np.errstate(divide="ignore"):
        pred, direction, order, length = A.planned_events(np.log([[0.5, 0.5]]), np.log([[1.0, 0.0]]), 1000)
    assert direction[0] == 1 and list(order[0, : length[0]]) == [1] and pred[0] > 4


@pytest.mark.parametrize("bits,eps", [(3, 1.0), (6, 1.0), (6, 2.0)])
def test_constructed_family_reaches_the_mrc_supremum(bits, eps):
    mech = PrivUnitG(epsilon=eps, dim=4)
    plan, worst = P.plan_constructed(MRC(bits=bits), mech, trials=100_000, confidence=0.95, rng=1)
    assert worst == pytest.approx(_mrc_sup(mech, 1 << bits), abs=1e-9)
    assert worst <= 2 * eps and plan.exact <= worst + 1e-12
    assert plan.kind == "constructed" and plan.candidates.shape == (1 << bits, 4)


def test_constructed_set_runs_the_real_encoder_with_the_planned_law():
    mech = PrivUnitG(epsilon=1.0, dim=4)
    sim = MRC(bits=3)
    plan, _ = P.plan_constructed(sim, mech, trials=40_000, confidence=0.95, rng=2)
    M, log_pmf = P.law(sim, mech)
    for u in (plan.u1, plan.u0):
        lp = log_pmf(mech.log_ratio(plan.candidates, u)[None, :])[0]
        idx = E.run_encoder(sim, mech, u, None, 40_000, rng=3, candidates=plan.candidates)
        counts = np.bincount(idx, minlength=M)
        assert stats.chisquare(counts, np.exp(lp) * idx.size).pvalue > 1e-3


def test_mrc_audit_at_the_defaults_approaches_the_worst_case():
    """N = 64, d = 4, ε = 1 (the registry's default bits): the seeded search alone stays near 1.3; the
    constructed set reaches > 1.75 of a worst case of 1.964 (claim 2ε = 2)."""
    res = E.run_audit(mechanism="privunitg", codec="mrc", epsilon=1.0, trials=60_000, seed=0)
    mech = PrivUnitG(epsilon=1.0, dim=4)
    assert res["config"]["bits"] == 6 and res["epsilon_claimed"] == 2.0
    assert res["epsilon_worst_case"] == pytest.approx(_mrc_sup(mech, 64), abs=1e-9)
    assert res["pair"]["candidate_set"] == "constructed" and res["event"]["kind"] == "planned"
    lb = res["epsilon_lower_bound"]
    assert 1.75 < lb <= res["epsilon_exact_on_pair"] <= res["epsilon_worst_case"] + 1e-12 <= 2.0 + 1e-9
    assert res["gap_to_claim"] == pytest.approx(2.0 - lb)
    assert res["event"]["n1"] == 60_000  # a planned event uses every run
    seeded = E.run_audit(mechanism="privunitg", codec="mrc", epsilon=1.0, trials=20_000, seed=0,
                         candidates="seeded")
    assert seeded["pair"]["candidate_set"] == "seeded"
    assert 0 < seeded["epsilon_lower_bound"] <= seeded["epsilon_exact_on_pair"] < lb


def test_orc_audit_has_a_planner(capsys):
    from ldp_rec.cli import main

    res = E.run_audit(mechanism="privunitg", codec="orc", epsilon=1.0, trials=20_000, seed=0)
    assert res["epsilon_claimed"] == math.inf and res["epsilon_exact_on_pair"] == math.inf
    assert res["epsilon_worst_case"] == math.inf
    assert res["event"]["k0"] == 0 and res["epsilon_lower_bound"] > 7.0
    built = E.run_audit(mechanism="privunitg", codec="orc", epsilon=1.0, trials=4000, seed=1,
                        candidates="constructed")
    assert built["pair"]["candidate_set"] == "constructed" and built["event"]["k0"] == 0
    assert main(["audit", "--mechanism", "privunitg", "--codec", "orc", "--epsilon", "1", "--trials", "2000"]) == 0
    assert "worst case targeted inf" in capsys.readouterr().out


def test_orc_sure_input_sends_index_zero():
    mech = PrivUnitG(epsilon=1.0, dim=4)
    sim = ORC(bits=4)
    plan, _ = P.plan_orc(sim, mech, keys=[], trials=1000, confidence=0.95, rng=4,
                         pool=lambda m, k, n, rng: E.input_pool(m, k, n, rng=rng))
    assert np.all(E.run_encoder(sim, mech, plan.u0, None, 5000, rng=5, candidates=plan.candidates) == 0)
    assert np.mean(E.run_encoder(sim, mech, plan.u1, None, 5000, rng=6, candidates=plan.candidates) != 0) > 0.3


def test_modified_mrc_worst_case_is_its_claim():
    res = E.run_audit(mechanism="privunitg", codec="modified-mrc", epsilon=1.0, bits=4, trials=40_000, seed=0)
    assert res["epsilon_claimed"] == 1.0
    assert res["epsilon_worst_case"] <= 1.0 + 1e-9
    assert 0.9 < res["epsilon_lower_bound"] <= res["epsilon_exact_on_pair"] + 1e-12


def test_bad_candidate_family():
    with pytest.raises(ParameterError):
        E.run_audit(mechanism="privunitg", codec="mrc", epsilon=1.0, trials=100, candidates="bogus")
