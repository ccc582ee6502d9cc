"""Subset selection over shared candidates (ldp_rec.rec.subset): exact selection law, exact ε-LDP
transcript, unbiasedness and closed-form MSE, order-statistic numerics, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ldp_rec.codec.registry import make_codec
from ldp_rec.errors import IncompatibleError, ParameterError
from ldp_rec.mechanisms.order_stats import expected_top_sums, top_sum
from ldp_rec.mechanisms.privunit2 import PrivUnit2
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.rec import randomness
from ldp_rec.rec.base import MechanismTarget
from ldp_rec.rec.subset import (ProjectionLaw, SubsetSelection, optimal_top_count, selection_probabilities,
                                subset_mse, subset_selection_probs)

Z_TOL = 4.5  # |z| bound for moment checks (two-sided p ≈ 7e-6 per check)


def _unit(rng, n, d):
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --------------------------------------------------------------------------- order statistics
def test_top_sum_matches_all_k_quadrature_and_monte_carlo():
    law = ProjectionLaw("normal", 5)
    T = expected_top_sums(32)
    for k in (1, 3, 16, 31):
        assert top_sum(32, k, law.isf) == pytest.approx(T[k - 1], rel=1e-8)
    rng = np.random.default_rng(0)
    # sphere law, d = 6: t = first coordinate of a uniform point of S^5
    sph = ProjectionLaw("sphere", 6)
    t = _unit(rng, 400_000, 6)[:, 0].reshape(-1, 40)
    top = -np.sort(-t, axis=1)[:, :5]
    for power in (1, 2):
        s = (top**power).sum(1)
        assert abs(s.mean() - top_sum(40, 5, sph.isf, power=power)) < Z_TOL * s.std() / math.sqrt(s.size)


# --------------------------------------------------------------------------- selection law and privacy
def test_selection_probabilities_sum_to_one_and_ratio_is_e_eps():
    for N, m, eps in ((16, 3, 1.0), (1024, 67, 4.0), (4096, 10, 20.0)):
        hi, lo = selection_probabilities(N, m, eps)
        assert m * hi + (N - m) * lo == pytest.approx(1.0, rel=1e-12)
        assert math.log(hi / lo) == pytest.approx(eps, rel=1e-12)


def test_encoder_follows_the_selection_law_chi2():
    """One client, one candidate set, 40 000 encodings: index frequencies against the exact law."""
    d, N, eps = 6, 16, 2.0
    mech = PrivUnitG(epsilon=eps, dim=d)
    u = _unit(np.random.default_rng(1), 1, d)
    n = 40_000
    keys = np.full(n, np.uint64(12345))
    target = MechanismTarget(mech, np.repeat(u, n, axis=0), keys)
    sim = SubsetSelection(bits=4, epsilon=eps, top=5)
    idx = np.array([m.index for m in sim.encode(target, rng=7)])
    scores = target.score_block(0, N, clients=slice(0, 1))
    p = subset_selection_probs(scores, 5, eps)[0]
    counts = np.bincount(idx, minlength=N)
    chi2 = ((counts - n * p) ** 2 / (n * p)).sum()
    assert stats.chi2.sf(chi2, N - 1) > 1e-4
    # the test has power: a wrong weight (e^{ε/2}) on the top set is rejected
    hi, lo = selection_probabilities(N, 5, eps / 2)
    wrong = np.where(p > p.min() * 1.5, hi, lo)
    assert stats.chi2.sf(((counts - n * wrong) ** 2 / (n * wrong)).sum(), N - 1) < 1e-12


def test_transcript_is_exactly_eps_ldp_over_adversarial_inputs_and_candidate_sets():
    """max_k log P[K=k | u, Z] − log P[K=k | u', Z] ≤ ε for every candidate set Z; the bound is attained."""
    rng = np.random.default_rng(2)
    d, N, eps = 5, 32, 1.5
    worst = 0.0
    for mech in (PrivUnitG(epsilon=eps, dim=d), PrivUnit2(epsilon=eps, dim=d)):
        for trial in range(40):
            U = _unit(rng, 6, d)
            U = np.concatenate([U, -U])  # adversarial pairs u, −u reverse the ranking
            key = np.uint64(rng.integers(0, 2**63))
            target = MechanismTarget(mech, U, np.full(U.shape[0], key))
            for m in (1, 7, 31):
                logp = np.log(subset_selection_probs(target.score_block(0, N), m, eps))
                spread = (logp[:, None, :] - logp[None, :, :]).max()
                assert spread <= eps + 1e-12
                worst = max(worst, spread)
    assert worst == pytest.approx(eps, rel=1e-12)


# --------------------------------------------------------------------------- unbiasedness and MSE
@pytest.mark.parametrize("mech_name", ["privunitg", "privunit2"])
def test_codec_unbiased_and_mse_matches_closed_form(mech_name):
    d, eps, bits, n = 8, 2.0, 6, 60_000
    cod = make_codec(mech_name, "subset", epsilon=eps, dim=d, bits=bits, clip=1.0)
    rng = np.random.default_rng(3)
    x = _unit(rng, 1, d)[0] * 0.9  # below the clip: rounding onto the sphere is part of the error
    X = np.tile(x, (n, 1))
    res = cod.decode(cod.encode(X, run_seed=5, round=2, clients=np.arange(n), rng=rng),
                     run_seed=5, round=2, clients=np.arange(n))
    assert res.ok.all()
    Z = res.estimates
    proj = Z @ (x / np.linalg.norm(x))
    assert abs(proj.mean() - np.linalg.norm(x)) < Z_TOL * proj.std() / math.sqrt(n)
    z = (Z.mean(0) - x) / (Z.std(0) / math.sqrt(n))
    assert np.abs(z).max() < Z_TOL
    law = cod._mechs[0].projection_law
    sim = cod._sims[0]
    closed = subset_mse(law, 1 << bits, sim.top_count(law), eps) + 1 - 0.9**2  # C²(E‖V‖²/c²) − ‖x‖²
    err = ((Z - x) ** 2).sum(1)
    assert abs(err.mean() - closed) < Z_TOL * err.std() / math.sqrt(n)
    # the test has power: a 4% error in the unbiasing scale is detected
    assert abs(proj.mean() * 1.04 - np.linalg.norm(x)) > Z_TOL * proj.std() / math.sqrt(n)


def test_chunked_subset_codec_is_unbiased_and_composes():
    d, n = 10, 20_000
    cod = make_codec("privunitg", "subset", epsilon=4.0, dim=d, bits=5, repetitions=2, blocks=2)
    ev = cod.transcript_event()
    assert [e.epsilon for e in ev.events] == [1.0] * 4
    rng = np.random.default_rng(4)
    x = _unit(rng, 1, d)[0]
    Z = cod.decode(cod.encode(np.tile(x, (n, 1)), run_seed=1, round=1, clients=np.arange(n), rng=rng),
                   run_seed=1, round=1, clients=np.arange(n)).estimates
    z = (Z.mean(0) - x) / (Z.std(0) / math.sqrt(n))
    assert np.abs(z).max() < Z_TOL


def test_large_d_mse_close_to_uncompressed_privunitg():
    """The issue's goal in closed form: d = 500, ε ∈ {4, 6, 8} at b = ⌈ε log2 e⌉ + 4: within 5%."""
    law = ProjectionLaw("normal", 500)
    for eps in (4.0, 6.0, 8.0):
        b = math.ceil(eps * math.log2(math.e)) + 4
        N = 1 << b
        ratio = subset_mse(law, N, optimal_top_count(law, N, eps), eps) / PrivUnitG(epsilon=eps, dim=500).expected_mse()
        assert ratio < 1.05


def test_optimal_top_count_is_the_brute_force_minimum():
    for law in (ProjectionLaw("normal", 20), ProjectionLaw("sphere", 20)):
        N, eps = 256, 3.0
        brute = min(range(1, N), key=lambda m: subset_mse(law, N, m, eps))
        assert optimal_top_count(law, N, eps) == brute


# --------------------------------------------------------------------------- refusals
def test_refusals():
    with pytest.raises(IncompatibleError, match="cap mechanism"):
        make_codec("gaussian", "subset", epsilon=2.0, dim=8, delta=1e-5)
    with pytest.raises(IncompatibleError, match="cap mechanism"):
        make_codec("laplace", "subset", epsilon=2.0, dim=8)
    with pytest.raises(ParameterError, match="top"):
        make_codec("privunitg", "mrc", epsilon=2.0, dim=8, top=3)
    with pytest.raises(ParameterError, match="top must be < N"):
        SubsetSelection(bits=3, epsilon=1.0, top=8)
    with pytest.raises(ParameterError):
        SubsetSelection(bits=3, epsilon=0.0)
    with pytest.raises(ParameterError):
        ProjectionLaw("cauchy", 3)
    keys = randomness.derive_keys(1, 1, np.arange(2), 0)
    from ldp_rec.mechanisms.gaussian import GaussianMechanism

    g = GaussianMechanism(epsilon=1.0, dim=4, delta=1e-5)
    with pytest.raises(IncompatibleError):
        SubsetSelection(bits=3, epsilon=1.0).encode(MechanismTarget(g, np.eye(2, 4), keys))


# --------------------------------------------------------------------------- one tie-breaking rule (issue 16)
class _TiedScores(MechanismTarget):
    """n clients that all see one fixed score row with ties (a stand-in for rounded projections)."""

    def __init__(self, row, n):  # noqa: D107 — no mechanism: only score_block and projection_law are used
        self.row = np.asarray(row, dtype=np.float64)
        self.keys = np.zeros(n, dtype=np.uint64)
        self.mechanism = PrivUnitG(epsilon=1.0, dim=4)
        self.reference = self.mechanism.reference

    def score_block(self, start, count, clients=slice(None)):
        k = len(range(self.n)[clients])
        return np.broadcast_to(self.row[start : start + count], (k, count)).copy()


def test_tie_breaking_is_one_rule_for_encoder_pmf_and_audit():
    """Ties go to the lower index (score descending, index ascending) in the encoder and in the pmf
    that the audit uses: encoder frequencies on a tied row match the pmf (chi-square)."""
    from ldp_rec.rec.subset import top_set

    # argpartition (the old encoder) favours {1, 3, 6, 13, 15} on this row: the rule gives {1, 3, 6, 7, 13}
    row = np.array([0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    m, eps, n = 5, 1.5, 60_000
    pmf = subset_selection_probs(row, m, eps)
    assert set(np.flatnonzero(pmf > pmf.min())) == {1, 13, 3, 6, 7}  # the two 1.0s, then the first three 0.5s
    assert np.array_equal(top_set(row[None], m)[0], pmf > pmf.min())
    # the O(N) rule agrees with a stable sort on random rows with many ties
    R = np.random.default_rng(5).integers(0, 4, size=(200, 32)).astype(float)
    for mm in (1, 7, 31, 32):
        rank = np.argsort(np.argsort(-R, axis=1, kind="stable"), axis=1, kind="stable")
        assert np.array_equal(top_set(R, mm), rank < mm)
    sim = SubsetSelection(bits=4, epsilon=eps, top=m)
    k = np.array([msg.index for msg in sim.encode(_TiedScores(row, n), rng=6)])
    obs = np.bincount(k, minlength=16)
    assert stats.chisquare(obs, pmf * n).pvalue > 1e-3
