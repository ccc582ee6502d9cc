"""Privacy audit (ldp_rec.privacy.audit, ldp_rec.experiments.audit).

Fixed seeds everywhere. Tolerances: Clopper–Pearson coverage checked exactly by enumerating the
binomial; frequency checks are chi-square tests at p > 1e-3; audit bounds are compared with the
exact ε of the audited pair (a valid 95% lower bound may not exceed it) and with the codec's claim."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from ldp_rec.errors import InputError, ParameterError
from ldp_rec.experiments import audit as E
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.privacy import audit as A
from ldp_rec.rec import randomness as R
from ldp_rec.rec.base import MechanismTarget
from ldp_rec.rec.mrc import MRC, ModifiedMRC
from ldp_rec.rec.rejection import RejectionSampler
from ldp_rec.rec.subset import SubsetSelection


# --------------------------------------------------------------------------- Clopper–Pearson
@pytest.mark.parametrize("n", [20, 137])
def test_clopper_pearson_exact_coverage(n):
    """Exact miss probabilities, by enumeration of k ~ Bin(n, p): each one-sided bound misses with
    probability <= alpha for every p, and the bound is not grossly conservative (some p misses > alpha/3)."""
    alpha = 0.05
    k = np.arange(n + 1)
    lo = A.clopper_pearson_lower(k, n, alpha=alpha)
    hi = A.clopper_pearson_upper(k, n, alpha=alpha)
    ps = np.linspace(0.001, 0.999, 997)
    pmf = stats.binom.pmf(k[None, :], n, ps[:, None])
    miss_lo = np.sum(pmf * (lo[None, :] > ps[:, None]), axis=1)
    miss_hi = np.sum(pmf * (hi[None, :] < ps[:, None]), axis=1)
    assert miss_lo.max() <= alpha + 1e-12 and miss_hi.max() <= alpha + 1e-12
    assert miss_lo.max() > alpha / 3 and miss_hi.max() > alpha / 3


def test_clopper_pearson_closed_forms():
    a, n = 0.025, 1000
    assert A.clopper_pearson_upper(0, n, alpha=a) == pytest.approx(1 - a ** (1 / n), rel=1e-10)
    assert A.clopper_pearson_lower(n, n, alpha=a) == pytest.approx(a ** (1 / n), rel=1e-10)
    assert A.clopper_pearson_lower(0, n, alpha=a) == 0.0 and A.clopper_pearson_upper(n, n, alpha=a) == 1.0
    # Bonferroni: each bound of epsilon_lower_bound is at level 1 - (1 - confidence)/2
    lb = A.epsilon_lower_bound(600, 1000, 100, 1000, confidence=0.9)
    ref = math.log(stats.beta.ppf(0.05, 600, 401) / stats.beta.ppf(0.95, 101, 900))
    assert lb == pytest.approx(ref, rel=1e-9)
    assert A.epsilon_lower_bound(10, 1000, 900, 1000) == 0.0  # clipped at 0


def test_bad_arguments():
    with pytest.raises(ParameterError):
        A.epsilon_lower_bound(1, 10, 1, 10, confidence=1.0)
    with pytest.raises(InputError):
        A.clopper_pearson_lower(11, 10, alpha=0.05)
    with pytest.raises(InputError):
        A.audit_scores([1.0], [0.0])
    with pytest.raises(InputError):
        A.exact_transcript_epsilon([0.0, 1.0], [0.0])


# --------------------------------------------------------------------------- validity on a known ε
def test_heldout_audit_coverage_on_randomized_response():
    """300 independent held-out audits of binary RR at ε = 1 (exact): the 95% bound exceeds ε in at
    most 5% of them (P[Bin(300, 0.05) > 25] < 0.01; CP + Bonferroni is conservative, so far fewer)."""
    eps, n, reps = 1.0, 4000, 300
    rng = np.random.default_rng(7)
    p = math.exp(eps) / (1 + math.exp(eps))
    over = 0
    for _ in range(reps):
        s1 = (rng.random(n) < p).astype(float)
        s0 = (rng.random(n) < 1 - p).astype(float)
        over += A.audit_scores(s1, s0, confidence=0.95).epsilon_lower_bound > eps
    assert over <= 25


def test_rr_audit_is_valid_and_tight():
    """Uncompressed coordinate RR, exact ε = 1 on the pair (1, −1): the bound stays <= 1 and approaches
    it with more runs (within 0.05 at 2·10^5 runs; CP half-widths give ≈ 0.02)."""
    small = E.run_audit(mechanism="rr", codec="none", epsilon=1.0, dim=1, trials=20_000, seed=1)
    big = E.run_audit(mechanism="rr", codec="none", epsilon=1.0, dim=1, trials=200_000, seed=2)
    assert small["epsilon_exact_on_pair"] == pytest.approx(1.0, abs=1e-12)
    assert 0 < small["epsilon_lower_bound"] < big["epsilon_lower_bound"] <= 1.0
    assert big["epsilon_lower_bound"] > 0.95


def test_privunitg_uncompressed_stays_below_epsilon():
    res = E.run_audit(mechanism="privunitg", codec="none", epsilon=2.0, trials=100_000, seed=3)
    assert res["epsilon_exact_on_pair"] == pytest.approx(2.0, abs=1e-9)
    assert 1.8 < res["epsilon_lower_bound"] <= 2.0


# --------------------------------------------------------------------------- exact pmfs vs the encoders
def _freq_pvalue(idx, logp):
    p = np.exp(logp)
    counts = np.bincount(idx, minlength=p.size)
    keep = p > 0
    assert counts[~keep].sum() == 0  # a zero-probability message never occurs
    return stats.chisquare(counts[keep], p[keep] / p[keep].sum() * idx.size).pvalue


@pytest.mark.parametrize("sim", [MRC(bits=4), ModifiedMRC(bits=4, epsilon=2.0), RejectionSampler(tries=20),
                                 SubsetSelection(bits=4, epsilon=2.0)])
def test_pmfs_match_the_encoders(sim):
    """The audit's exact pmfs are the encoders' selection laws (chi-square p > 1e-3, 40000 runs)."""
    mech = PrivUnitG(epsilon=2.0, dim=3)
    key = R.derive_key(11, 0, 0)
    z0 = R.CandidateStream(int(key), 3).candidate(0).astype(np.float64)
    u = -z0 / np.linalg.norm(z0)  # candidate 0 outside the cap, so rejection sampling may pass it
    M, log_pmf, exact = E._pmf_function(sim, mech)
    assert exact
    lp = log_pmf(MechanismTarget(mech, u[None, :], [key]))[0]
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)
    assert np.sum(np.exp(lp) > 1e-3) >= 3
    idx = E.run_encoder(sim, mech, u, key, 40_000, rng=5)
    assert _freq_pvalue(idx, lp) > 1e-3


def test_shared_key_target_equals_mechanism_target():
    mech = PrivUnitG(epsilon=1.0, dim=5)
    key = R.derive_key(3, 0, 0)
    u = np.ones(5) / math.sqrt(5)
    shared = E.SharedKeyTarget(mech, u, key, 7).log_ratio_block(3, 40)
    plain = MechanismTarget(mech, np.tile(u, (7, 1)), np.full(7, key, dtype=np.uint64)).log_ratio_block(3, 40)
    np.testing.assert_array_equal(shared, plain)


def test_rejection_pmf_and_exact_epsilon():
    lc = math.log(4.0)
    lp = A.rejection_log_pmf(np.log([[4.0, 1.0, 2.0]]), log_c_max=lc)[0]  # a = 1, 1/4, 1/2
    np.testing.assert_allclose(np.exp(lp), [1.0, 0.0, 0.0, 0.0], atol=0)
    lp2 = A.rejection_log_pmf(np.log([[1.0, 4.0, 2.0]]), log_c_max=lc)[0]
    np.testing.assert_allclose(np.exp(lp2), [0.25, 0.75, 0.0, 0.0], rtol=1e-12)
    assert A.exact_transcript_epsilon(lp, lp2) == math.inf
    assert A.exact_transcript_epsilon(np.log([0.5, 0.5]), np.log([0.25, 0.75])) == pytest.approx(math.log(2))


# --------------------------------------------------------------------------- power and the codecs' claims
def test_plain_mrc_audit_exceeds_epsilon():
    """Plain MRC with N = 8 at ε = 2: the transcript leaks more than ε (it is only 2ε-LDP) and the
    audit certifies it; the bound stays below the exact loss of the pair and the 2ε claim."""
    res = E.run_audit(mechanism="privunitg", codec="mrc", epsilon=2.0, bits=3, trials=60_000, seed=0)
    assert res["epsilon_claimed"] == 4.0
    assert 2.0 < res["epsilon_lower_bound"] <= res["epsilon_exact_on_pair"] <= 4.0 + 1e-9


def test_modified_mrc_audit_stays_below_epsilon():
    res = E.run_audit(mechanism="privunitg", codec="modified-mrc", epsilon=2.0, bits=3, trials=60_000, seed=0)
    assert res["epsilon_claimed"] == 2.0
    assert res["epsilon_exact_on_pair"] <= 2.0 + 1e-9
    assert 1.5 < res["epsilon_lower_bound"] <= 2.0


def test_subset_audit_stays_below_epsilon_and_is_tight():
    res = E.run_audit(mechanism="privunitg", codec="subset", epsilon=2.0, bits=4, trials=40_000, seed=0)
    assert res["epsilon_claimed"] == 2.0
    assert res["epsilon_exact_on_pair"] == pytest.approx(2.0, abs=1e-9)
    assert 1.5 < res["epsilon_lower_bound"] <= 2.0


def test_rejection_with_shared_candidates_leaks():
    """The index reveals earlier rejections: an index impossible under x' but frequent under x."""
    res = E.run_audit(mechanism="privunitg", codec="rs-fallback", epsilon=1.0, trials=40_000, seed=0)
    assert res["epsilon_claimed"] == math.inf and res["epsilon_exact_on_pair"] == math.inf
    assert res["event"]["k0"] == 0
    assert res["epsilon_lower_bound"] > 7.0  # ≈ log(0.6·20000/log(40)) ≈ 8.1 ≫ ε = 1


def test_ppr_audit_below_claim():
    res = E.run_audit(mechanism="privunitg", codec="ppr", epsilon=1.0, trials=20_000, seed=0)
    assert res["epsilon_claimed"] == 4.0 and res["epsilon_exact_on_pair"] is None
    assert 0 < res["epsilon_lower_bound"] <= 4.0


def test_cli_writes_result(tmp_path, capsys):
    from ldp_rec.cli import main

    out = tmp_path / "audit.json"
    rc = main(["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1", "--bits", "3",
               "--trials", "4000", "--keys", "2", "--out", str(out)])
    assert rc == 0 and "audited lower bound" in capsys.readouterr().out
    res = json.loads(out.read_text())
    for k in ("epsilon_claimed", "epsilon_lower_bound", "confidence", "trials", "config", "epsilon_exact_on_pair", "meta"):
        assert k in res
    assert res["config"]["bits"] == 3 and res["trials"] == 4000 and res["epsilon_claimed"] == 2.0


def test_cli_rejects_bad_settings(capsys):
    from ldp_rec.cli import main

    assert main(["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1", "--trials", "1"]) == 2
    assert main(["audit", "--mechanism", "gaussian", "--codec", "mrc", "--epsilon", "1", "--trials", "100"]) == 2
    assert "error" in capsys.readouterr().err
