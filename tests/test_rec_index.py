"""Index-based channel simulators: MRC, modified MRC, ORC, PFR, PPR, rejection sampling.

Fixed seeds everywhere; tolerances are stated at each assertion (KS / z-tests at p > 1e-3 or
|z| < 4.5, exact privacy bounds to 1e-9)."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from ldp_rec.errors import DecodeError, IncompatibleError, InputError, ParameterError
from ldp_rec.mechanisms.base import GaussianReference
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.privacy.events import NotEstablishedEvent, PureEvent, UnboundedEvent
from ldp_rec.rec import randomness as R
from ldp_rec.rec.base import MechanismTarget, Message, Target
from ldp_rec.rec.mrc import (
    MRC,
    ModifiedMRC,
    band_clip,
    effective_cap_probability,
    modified_cap_probability,
    modified_mrc_probs,
    mrc_bits,
    mrc_log_probs,
)
from ldp_rec.rec.orc import ORC, index_bit_statistics, orc_select
from ldp_rec.rec.pfr import PFR
from ldp_rec.rec.ppr import PPR, tail_mass
from ldp_rec.rec.rejection import RejectionSampler
from ldp_rec.rec.targets1d import CapPair, GaussianPair


def keys(n, seed=0):
    return R.derive_keys(seed, 0, np.arange(n))


def ks_p(z, pair):
    return stats.kstest(np.asarray(z, dtype=np.float64), lambda x: pair.cdf(np.asarray(x)[None, :])[0]).pvalue


def run(sim, target, rng=0):
    msgs = sim.encode(target, rng=rng)
    return msgs, sim.decode(msgs, target.reference, target.keys)


# ----------------------------------------------------------------------------- 1-D targets
def test_targets1d_closed_forms():
    g = GaussianPair([0.5, -1.0], 0.6, keys(2))
    z = g.candidate_values(0, 200_000)
    w = np.exp(g.log_ratio(z))
    assert np.all(np.abs(w.mean(1) - 1) < 4.5 * w.std(1) / np.sqrt(z.shape[1]))  # E_P r = 1
    kl_mc = np.mean(w * np.log(w), axis=1)
    assert np.allclose(kl_mc, g.kl_nats(), rtol=0.03)
    assert np.max(g.log_ratio(z)) <= g.bounds[1] + 1e-12 and g.bounds[0] == -np.inf
    c = CapPair(0.3, 0.7, keys(1))
    assert math.isclose(c.epsilon[0], math.log(c.c1[0] / c.c2[0]))
    wp, wq = c.superlevel_mass(0.5 * (math.log(c.c1[0]) + math.log(c.c2[0])))
    assert math.isclose(wp[0], c.cap_mass[0]) and math.isclose(wq[0], 0.7)


# ----------------------------------------------------------------------------- exactness
_PPR_ALPHAS = (1.05, 1.2, 1.5, 2.0, 4.0)  # issue 16: every α > 1, the far tail included (indices ≥ 2^62 at 1.05)


@pytest.mark.parametrize(
    "sim",
    [PFR(), *(PPR(alpha=a) for a in _PPR_ALPHAS), PPR(alpha=1.5, block=1, tail_factor=1.0)],
    ids=["pfr", *(f"ppr{a}" for a in _PPR_ALPHAS), "ppr1.5-tail"],
)
def test_exact_simulators_1d(sim):
    # KS at n = 3000, p > 1e-3: detects a law off by a KS distance of ~0.04 (e.g. a tenth of the
    # outputs drawn from P instead of Q here)
    n = 3000
    for pair in (GaussianPair(0.8, 0.6, keys(n, 1)), CapPair(1.0, 0.75, keys(n, 2))):
        _, z = run(sim, pair, rng=5)
        assert ks_p(z[:, 0], pair) > 1e-3


def test_exact_simulators_on_privunitg():
    # the projection <Z, u> of PrivUnitG is the 1-D cap law: N(0,1) | >= γ w.p. p, | < γ otherwise
    mech = PrivUnitG(epsilon=2.0, dim=16)
    n = 2000
    U = np.random.default_rng(0).standard_normal((n, 16))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    law = CapPair(mech.gamma, mech.p, [0])
    for sim in (PFR(), PPR(alpha=2.0)):
        target = MechanismTarget(mech, U, keys(n, 3))
        _, z = run(sim, target, rng=1)
        assert ks_p(np.sum(z * U, axis=1), law) > 1e-3


def test_ppr_tail_mass_and_search_invariance():
    for a, b, al in [(3.0, 5.0, 2.0), (2.0, 50.0, 3.0), (10.0, 2.0, 1.5)]:
        num = integrate.quad(lambda t: -np.expm1(-b * t**-al), a, np.inf)[0]
        assert math.isclose(tail_mass(a, b, al), num, rel_tol=1e-7)
    # the index law must not depend on how the search is split into blocks and the exact tail
    pair = CapPair(1.2, 0.8, keys(4000, 4))
    k1 = np.array([m.index for m in PPR(alpha=1.5, block=1, tail_factor=1.0).encode(pair, rng=1)])
    k2 = np.array([m.index for m in PPR(alpha=1.5, block=4096, tail_factor=50.0).encode(pair, rng=2)])
    bins = [0, 1, 2, 4, 8, 16, 32, 64, np.inf]
    h = np.array([np.histogram(k, bins)[0] for k in (k1, k2)])
    h = h[:, h.min(0) > 5]
    assert stats.chi2_contingency(h)[1] > 1e-3


# ----------------------------------------------------------------------------- MRC bias and cap probability
def _cap_freq(sim, pair):
    msgs, z = run(sim, pair, rng=11)
    return float(np.mean(z[:, 0] >= pair.gamma[0])), len(msgs)


@pytest.mark.parametrize("bits", [2, 5])
def test_mrc_cap_probability_matches_closed_form(bits):
    pair = CapPair(0.8, 0.7, keys(20000, 6))
    q, c1, c2 = pair.cap_mass[0], pair.c1[0], pair.c2[0]
    N = 1 << bits
    for sim, p_hat in (
        (MRC(bits), effective_cap_probability(N, q, c1, c2)),
        (ORC(bits), effective_cap_probability(N, q, c1, c2)),  # same output law as MRC
        (ModifiedMRC(bits, float(pair.epsilon[0])), modified_cap_probability(N, q, c1, c2, epsilon=float(pair.epsilon[0]))),
    ):
        f, n = _cap_freq(sim, pair)
        assert abs(f - p_hat) < 4.5 * math.sqrt(p_hat * (1 - p_hat) / n), (sim.name, f, p_hat)


def test_cap_probability_converges_to_p():
    q, eps = 0.1, 2.0
    c1 = math.exp(eps) / (q * math.exp(eps) + 1 - q)
    c2 = c1 * math.exp(-eps)
    p = q * c1
    gaps = [p - effective_cap_probability(1 << b, q, c1, c2) for b in (2, 4, 6, 8, 10, 12)]
    assert all(g > 0 for g in gaps) and all(b < a for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-3  # O(1/N) bias
    gm = [p - modified_cap_probability(1 << b, q, c1, c2, epsilon=eps) for b in (4, 8, 12)]
    assert gm[-1] < gm[0] and gm[-1] < 0.01


# ----------------------------------------------------------------------------- exact transcript privacy
def _adversarial_pairs(N, eps, rng, trials, lcm=0.0):
    """Log ratios of two inputs on the same candidates, each in [lcm − ε, lcm] (ε-LDP ratio values)."""
    lo, hi = lcm - eps, lcm
    for _ in range(trials):
        a = rng.choice([lo, hi], size=N) if rng.random() < 0.7 else rng.uniform(lo, hi, size=N)
        b = rng.choice([lo, hi], size=N) if rng.random() < 0.5 else lo + hi - a
        yield a, b
    yield np.where(np.arange(N) == 0, hi, lo), np.where(np.arange(N) == 0, lo, hi)  # worst case for MRC


def test_modified_mrc_transcript_is_eps_ldp_exactly():
    rng = np.random.default_rng(0)
    eps = 1.5
    for N, lcm in [(2, 0.0), (16, 0.5 * eps), (16, eps), (1024, 0.5 * eps), (1024, 0.9 * eps)]:
        worst = 0.0
        for a, b in _adversarial_pairs(N, eps, rng, 150, lcm):
            pa = modified_mrc_probs(a, epsilon=eps, log_c_max=lcm)
            pb = modified_mrc_probs(b, epsilon=eps, log_c_max=lcm)
            assert np.allclose(pa.sum(), 1) and np.allclose(pb.sum(), 1)
            worst = max(worst, np.max(np.abs(np.log(pa) - np.log(pb))))
        assert worst <= eps + 1e-9


def test_plain_mrc_transcript_reaches_two_eps():
    eps, N = 1.5, 1024
    a = np.where(np.arange(N) == 0, 0.0, -eps)
    b = np.where(np.arange(N) == 0, -eps, 0.0)
    loss = np.max(np.abs(mrc_log_probs(a) - mrc_log_probs(b)))
    assert loss > 1.98 * eps and loss <= 2 * eps + 1e-12


def test_band_clip_matches_reference_procedure():
    def reference(pi, L, U):  # the authors' iterative procedure (rcc_dp/modify_pi.py), restated
        A, B = np.sum(np.maximum(pi - U, 0)), np.sum(np.maximum(L - pi, 0))
        if A == 0 and B == 0:
            return pi
        new = pi.copy()
        if A > B:
            new[pi < L], budget = L, B
            for i in np.argsort(U - pi):
                d = new[i] - U
                if d > budget:
                    new[i] -= budget
                    break
                if d > 0:
                    new[i], budget = U, budget - d
            while (m := np.sum(np.maximum(new - U, 0))) > 1e-15:
                ab = new >= U
                new[ab] = U
                new[~ab] += m * pi[~ab] / pi[~ab].sum()
        else:
            new[pi > U], budget = U, A
            for i in np.argsort(pi - L):
                d = L - new[i]
                if d > budget:
                    new[i] += budget
                    break
                if d > 0:
                    new[i], budget = L, budget - d
            while (m := np.sum(np.maximum(L - new, 0))) > 1e-15:
                be = new <= L
                new[be] = L
                new[~be] -= m * pi[~be] / pi[~be].sum()
        return new

    rng = np.random.default_rng(1)
    for _ in range(200):
        N, eps = int(rng.integers(2, 50)), rng.uniform(0.3, 3)
        lr = rng.uniform(-1.6 * eps, 0, size=N)
        pi = np.exp(mrc_log_probs(lr))
        L, U = math.exp(-eps) / N, 1.0 / N
        np.testing.assert_allclose(band_clip(pi, L, U), reference(pi, L, U), rtol=1e-10, atol=1e-14)


def test_orc_transcript_is_unbounded_but_index_is_small():
    rng = np.random.default_rng(2)
    k_low = orc_select(np.tile([0.0, -1.0], (20000, 1)), rng=rng)  # r_2 < r_1: index 2 impossible
    assert np.all(k_low == 0)
    k_high = orc_select(np.tile([-1.0, 0.0], (20000, 1)), rng=rng)
    p = (1 - math.exp(-1)) / (1 + math.exp(-1))
    assert abs(k_high.mean() - p) < 4.5 * math.sqrt(p * (1 - p) / 20000)
    pair = GaussianPair(0.5, 0.8, keys(2000, 7))
    stats_orc = index_bit_statistics(ORC(10).encode(pair, rng=0))
    stats_mrc = index_bit_statistics(MRC(10).encode(pair, rng=0))
    assert stats_orc["mean_log2_index"] < 3 < stats_mrc["mean_log2_index"]


# ----------------------------------------------------------------------------- rejection sampling
def test_rejection_output_is_the_fallback_mixture():
    pair = CapPair(1.0, 0.7, keys(4000, 8))
    sim = RejectionSampler(tries=3)
    msgs, z = run(sim, pair, rng=3)
    rho = sim.fallback_probability(float(np.log(pair.c1[0])))
    assert math.isclose(rho, (1 - 1 / pair.c1[0]) ** 3)
    mix = lambda x: (1 - rho) * pair.cdf(np.asarray(x)[None, :])[0] + rho * stats.norm.cdf(x)
    assert stats.kstest(z[:, 0].astype(float), mix).pvalue > 1e-3
    fb = np.mean([m.index == 3 for m in msgs])
    assert abs(fb - rho) < 4.5 * math.sqrt(rho * (1 - rho) / len(msgs))


# ----------------------------------------------------------------------------- contract
ALL = [MRC(6), ModifiedMRC(6, 1.2), ORC(6), PFR(), PPR(alpha=2.0), RejectionSampler(20)]


@pytest.mark.parametrize("sim", ALL, ids=lambda s: s.name)
def test_round_trip_and_one_candidate_per_client(sim):
    pair = CapPair(0.5, 0.6, keys(50, 9))
    msgs = sim.encode(pair, rng=4)
    R.STATS.reset()
    z = sim.decode(msgs, pair.reference, pair.keys)
    assert R.STATS.candidates == pair.n
    for c, m in enumerate(msgs):
        assert z[c, 0] == R.block(pair.keys[c : c + 1], m.index, 1, 1)[0, 0, 0]


def test_transcript_privacy_declarations():
    assert MRC.transcript.event(1.0) == PureEvent(2.0)
    assert ModifiedMRC.transcript.event(1.0) == PureEvent(1.0)
    assert PPR(alpha=1.5).transcript.event(1.0) == PureEvent(3.0)
    assert isinstance(ORC.transcript.event(1.0), UnboundedEvent)
    assert isinstance(RejectionSampler.transcript.event(1.0), UnboundedEvent)
    assert isinstance(PFR.transcript.event(1.0), NotEstablishedEvent)


def test_codelengths_and_bits():
    assert mrc_bits(1.0) == 8 and mrc_bits(8.0) == 14 and mrc_bits(8.0, t=3) == 15
    ell = 5 + math.log2(3.56) / 0.5
    assert math.isclose(PPR(alpha=2.0).expected_codelength(5.0), ell + math.log2(ell + 1) + 2)
    assert MRC(9).expected_codelength() == 9 and RejectionSampler(7).expected_codelength() == 3


class _BadTarget(Target):
    def __init__(self, value):
        self.value, self.keys, self.reference = value, keys(3), GaussianReference(1)

    @property
    def bounds(self):
        return (-1.0, 1.0)

    def log_ratio_block(self, start, count):
        out = np.zeros((3, count))
        out[1, 0] = self.value
        return out


@pytest.mark.parametrize("sim", ALL, ids=lambda s: s.name)
def test_bad_inputs_raise_typed_errors(sim):
    for bad in (np.nan, np.inf):
        with pytest.raises(InputError):
            sim.encode(_BadTarget(bad), rng=0)
    pair = CapPair(0.5, 0.6, keys(2))
    with pytest.raises(DecodeError):
        sim.decode([Message(index=-1), Message(index=0)], pair.reference, pair.keys)
    limit = getattr(sim, "n_candidates", None) or (sim.tries + 1 if isinstance(sim, RejectionSampler) else None)
    if limit is not None:
        with pytest.raises(DecodeError):
            sim.decode([Message(index=limit), Message(index=0)], pair.reference, pair.keys)


def test_parameter_and_compatibility_errors():
    for make in (lambda: MRC(0), lambda: PPR(alpha=1.0), lambda: ModifiedMRC(4, -1.0), lambda: RejectionSampler(0)):
        with pytest.raises(ParameterError):
            make()
    unbounded = GaussianPair(0.0, 1.5, keys(2))  # s > 1: ratio unbounded above
    for sim in (PFR(), PPR(), ModifiedMRC(4, 1.0), RejectionSampler(5)):
        with pytest.raises(IncompatibleError):
            sim.encode(unbounded, rng=0)
    _, z = run(PPR(log_ratio_cap=4.0), GaussianPair(0.0, 1.2, keys(200)), rng=0)  # user cap: runs
    assert z.shape == (200, 1)
    with pytest.raises(IncompatibleError):  # log c_max > ε: band infeasible
        ModifiedMRC(4, 0.5).encode(CapPair(1.0, 0.8, keys(2)), rng=0)
