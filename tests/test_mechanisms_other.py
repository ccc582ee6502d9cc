"""Laplace, Gaussian (analytic), randomised response, SQKR and RRSC: privacy, unbiasedness, MSE,
sampler laws and bad input. Every statistical test uses a fixed seed and a stated tolerance."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.linalg import hadamard

from ldp_rec.errors import DecodeError, InputError, ParameterError
from ldp_rec.mechanisms.gaussian import (
    GaussianMechanism,
    analytic_gaussian_sigma,
    classic_gaussian_sigma,
    gaussian_delta,
)
from ldp_rec.mechanisms.kashin import HadamardFrame, kashin_coefficients
from ldp_rec.mechanisms.projection import fwht
from ldp_rec.mechanisms.laplace import LaplaceMechanism, LaplaceReference
from ldp_rec.mechanisms.randomized_response import BinaryRR, CoordinateRR, KaryRR, SignedBasisReference
from ldp_rec.mechanisms.rrsc import RRSC, expected_top_sums, haar_stiefel, rotation_factors
from ldp_rec.mechanisms.sqkr import SQKR, SampledMessages, sample_without_replacement
from ldp_rec.rec import randomness

Z_TOL = 4.5  # |z| bound for unbiasedness tests (two-sided p ≈ 7e-6 per coordinate)


def unit(d, seed=0):
    x = np.random.default_rng(seed).standard_normal(d)
    return x / np.linalg.norm(x)


def assert_unbiased(Z, x):
    n = Z.shape[0]
    z = (Z.mean(0) - x) / (Z.std(0, ddof=1) / math.sqrt(n))
    assert np.max(np.abs(z)) < Z_TOL, np.max(np.abs(z))


def assert_mse(Z, x, expected, rel):
    emp = np.mean(np.sum((Z - x) ** 2, axis=1))
    assert abs(emp / expected - 1) < rel, (emp, expected)


# --------------------------------------------------------------------------- Laplace


def test_laplace_reference_law_and_logpdf():
    ref = LaplaceReference(3, 0.7)
    z = ref.sample(20000, rng=1)
    assert stats.kstest(z.ravel(), stats.laplace(scale=0.7).cdf).pvalue > 1e-3
    np.testing.assert_allclose(ref.logpdf(z[:5]), stats.laplace(scale=0.7).logpdf(z[:5]).sum(1), rtol=1e-12)


def test_laplace_privacy_exact_and_ratio_form():
    eps, C, d = 1.3, 2.0, 4
    m = LaplaceMechanism(eps, d, clip=C)
    assert m.scale == pytest.approx(2 * C / eps)
    # adversarial pair u = C e1, u' = −C e1, z far on the +e1 side: the output density ratio is e^ε exactly
    u, v = C * np.eye(d)[0], -C * np.eye(d)[0]
    z = np.array([[50.0, 0.3, -1.0, 2.0]])
    law = stats.laplace(scale=m.scale)
    lr = law.logpdf(z - u).sum() - law.logpdf(z - v).sum()
    assert lr == pytest.approx(eps, rel=1e-12)
    # log_ratio is log q/p, and stays within (−ε/2, ε/2) over random z and inputs on the ball's boundary
    assert m.log_ratio(z, u)[0] - m.log_ratio(z, v)[0] == pytest.approx(eps, rel=1e-12)
    rng = np.random.default_rng(2)
    U = m.prepare(rng.standard_normal((50, d)) * 10)
    Zs = m.reference.sample(400, rng=3)
    L = m.log_ratio(np.broadcast_to(Zs, (50, 400, d)), U)
    assert L.max() <= eps / 2 + 1e-12 and L.min() >= -eps / 2 - 1e-12
    np.testing.assert_allclose(
        m.log_ratio(Zs[None], U[0])[0], law.logpdf(Zs - U[0]).sum(1) - m.reference.logpdf(Zs), rtol=1e-10, atol=1e-12
    )


def test_laplace_unbiased_and_mse():
    m = LaplaceMechanism(2.0, 8, clip=1.0)
    x = unit(8) / 4  # ‖x‖₁ ≤ √8/4 < 1: inside the ball
    Z = m.privatize(np.tile(x, (100000, 1)), rng=4)
    assert_unbiased(Z, x)
    assert_mse(Z, x, m.expected_mse(), 0.02)  # 8e5 Laplace draws: rel. s.e. ≈ 0.3%
    assert m.expected_mse() == pytest.approx(2 * 1.0**2 * 8)


# --------------------------------------------------------------------------- Gaussian


def _pld_delta(eps, sigma, sens):
    """δ(ε) = E_{L~N(μ, 2μ)}[(1 − e^{ε−L})_+] with μ = Δ²/(2σ²): the privacy-loss definition, by quadrature."""
    mu = sens**2 / (2 * sigma**2)
    sd = math.sqrt(2 * mu)
    f = lambda l: -math.expm1(eps - l) * stats.norm.pdf(l, mu, sd)  # noqa: E731
    return integrate.quad(f, eps, mu + 60 * sd, epsabs=0, epsrel=1e-13, limit=500)[0]


@pytest.mark.parametrize("eps", [0.3, 1.0, 4.0])
def test_gaussian_analytic_sigma_tight(eps):
    delta, C = 1e-5, 1.0
    m = GaussianMechanism(eps, 10, delta=delta, clip=C)
    assert m.guarantee.epsilon == eps and m.guarantee.delta == delta
    assert _pld_delta(eps, m.sigma, 2 * C) == pytest.approx(delta, rel=1e-8)
    assert gaussian_delta(eps, 0.99 * m.sigma, 2 * C) > delta * 1.01
    assert _pld_delta(eps, 0.99 * m.sigma, 2 * C) > delta
    if eps < 1:
        assert classic_gaussian_sigma(eps, delta, 2 * C) > m.sigma


def test_gaussian_known_value_and_classic_validity():
    # Balle & Wang (2018) Fig. 1 setting: ε = 1, δ = 1e-5, Δ = 1 → σ ≈ 3.73 (classic: 4.84)
    assert analytic_gaussian_sigma(1.0, 1e-5) == pytest.approx(3.7306, abs=1e-4)
    with pytest.raises(ParameterError):
        classic_gaussian_sigma(1.5, 1e-5)
    assert classic_gaussian_sigma(1.5, 1e-5, strict=False) == pytest.approx(math.sqrt(2 * math.log(1.25e5)) / 1.5)


def test_gaussian_sampler_unbiased_mse_ratio():
    m = GaussianMechanism(2.0, 6, delta=1e-6)
    x = unit(6) * 0.8
    Z = m.privatize(np.tile(x, (60000, 1)), rng=5)
    assert stats.kstest(((Z - x) / m.sigma).ravel(), "norm").pvalue > 1e-3
    assert_unbiased(Z, x)
    assert_mse(Z, x, m.expected_mse(), 0.02)
    z = m.reference.sample(5, rng=6)
    u = m.prepare(x)[0]
    np.testing.assert_allclose(
        m.log_ratio(z, u), stats.norm(u, m.sigma).logpdf(z).sum(1) - m.reference.logpdf(z), rtol=1e-9
    )
    assert m.log_ratio_bounds() == (-math.inf, math.inf)
    assert np.linalg.norm(m.prepare(10 * x)[0]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- randomised response


def test_kary_rr_law_privacy_and_frequency_estimator():
    eps, k = 1.1, 5
    rr = KaryRR(eps, k)
    T = rr.transition_matrix()
    assert T.max(0).max() / T.min(0).min() == pytest.approx(math.exp(eps), rel=1e-12)
    np.testing.assert_allclose(T.sum(1), 1.0)
    rep = rr.privatize(np.full(50000, 2), rng=7)
    counts = np.bincount(rep, minlength=k)
    assert stats.chisquare(counts, 50000 * T[2]).pvalue > 1e-3
    # frequency estimator: unbiased (z-test over 400 repetitions) and its closed-form variance within 15%
    f = np.array([0.5, 0.2, 0.2, 0.1, 0.0])
    n = 2000
    vals = np.repeat(np.arange(k), (f * n).astype(int))
    rng = np.random.default_rng(8)
    est = np.array([rr.estimate_frequencies(rr.privatize(vals, rng=rng)) for _ in range(400)])
    var = rr.frequency_variance(f, n)
    assert np.all(np.abs(est.mean(0) - f) < Z_TOL * np.sqrt(var / 400))
    assert np.all(np.abs(est.var(0) / var - 1) < 0.2)  # 400 reps: rel. s.e. of a variance ≈ 7%
    np.testing.assert_allclose(rr.estimate_one_hot(np.arange(k)).sum(1), 1.0)


def test_binary_rr():
    rr = BinaryRR(0.5)
    p, q = rr.probabilities
    assert p == pytest.approx(math.exp(0.5) / (math.exp(0.5) + 1)) and p + q == pytest.approx(1)
    rep = rr.privatize(np.ones(40000, dtype=int), rng=9)
    assert abs(rep.mean() - p) < 4.5 * math.sqrt(p * q / 40000)
    with pytest.raises(ParameterError):
        BinaryRR(0.5, k=3)


def test_coordinate_rr_privacy_unbiased_mse():
    eps, d = 1.5, 6
    m = CoordinateRR(eps, d)
    lo, hi = m.log_ratio_bounds()
    assert hi - lo == pytest.approx(eps, rel=1e-12)
    # the 2d outcomes, adversarial inputs ±𝟙: ratio attains e^ε exactly, never more
    Zs = SignedBasisReference(d).transform((np.arange(2 * d)[:, None] + 0.5) / (2 * d))
    assert np.all(np.abs(Zs).sum(1) == 1)
    L = m.log_ratio(Zs[None], np.stack([np.ones(d), -np.ones(d), np.zeros(d)]))
    assert (L.max(0) - L.min(0)).max() == pytest.approx(eps, rel=1e-12)
    # sampler law: chi² against q(z|u) = r_u(z)/(2d)
    u = np.linspace(-1, 1, d)
    V = m.sample(np.tile(u, (60000, 1)), rng=10)
    cell = np.argmax(np.abs(V), 1) * 2 + (V.sum(1) < 0)
    expected = np.exp(m.log_ratio(Zs, u)) / (2 * d)
    assert stats.chisquare(np.bincount(cell, minlength=2 * d), 60000 * expected).pvalue > 1e-3
    x = unit(d) * 0.9
    Z = m.privatize(np.tile(x, (200000, 1)), rng=11)
    assert_unbiased(Z, x)
    assert np.mean(np.sum((Z - x) ** 2, 1)) == pytest.approx(m.expected_mse(norm=0.9), rel=0.01)
    assert m.expected_mse() == pytest.approx((d / math.tanh(eps / 2)) ** 2 - 1)


# --------------------------------------------------------------------------- Kashin / SQKR


def test_fwht_and_frame():
    a = np.random.default_rng(0).standard_normal((3, 32))
    np.testing.assert_allclose(fwht(a), a @ hadamard(32).T / math.sqrt(32), atol=1e-13)
    F = HadamardFrame(20, 64, 5)
    U = F.matrix()
    np.testing.assert_allclose(U @ U.T, np.eye(20), atol=1e-13)
    np.testing.assert_allclose((U**2).sum(0), 20 / 64, atol=1e-13)
    x = a[:, :20]
    np.testing.assert_allclose(F.analysis(x), x @ U, atol=1e-13)


@pytest.mark.parametrize("d", [16, 100])
def test_kashin_exact_and_bounded_on_adversarial_inputs(d):
    m = SQKR.bounded(1.0, d)
    F = m.frame
    rng = np.random.default_rng(12)
    W = np.zeros((600, F.size))
    W[np.arange(600)[:, None], rng.integers(0, F.size, (600, 2))] = rng.choice([-1.0, 1.0], (600, 2))
    X = np.concatenate([np.eye(d), -np.eye(d), F.matrix().T, F.synthesis(W), rng.standard_normal((200, d)),
                        np.ones((1, d)), np.sign(rng.standard_normal((100, d)))])
    X = X[np.linalg.norm(X, axis=1) > 1e-9]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    A = m.coefficients(X)
    np.testing.assert_allclose(F.synthesis(A), X, atol=1e-12)
    assert np.abs(A).max() <= m.level  # no coefficient is ever clipped on these inputs
    assert not m.overflow(X).any()
    # the plain truncation with delta = 0.8 is exact too, but may exceed the level
    np.testing.assert_allclose(F.synthesis(kashin_coefficients(X, F)), X, atol=1e-12)


def test_without_replacement_uniform():
    u = np.random.default_rng(13).random((60000, 2))
    S = sample_without_replacement(u, 5)
    assert np.all(S[:, 0] != S[:, 1])
    pair = np.sort(S, 1) @ np.array([5, 1])
    counts = np.bincount(pair, minlength=25)[[5 * i + j for i in range(5) for j in range(i + 1, 5)]]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sqkr_message_law_and_privacy():
    m = SQKR(2.0, 16)  # k = 2, 4 words
    assert m.k == 2 and m.message_bits == 2
    p, q = m.rr_probabilities
    assert p / q == pytest.approx(math.exp(2.0), rel=1e-12)
    F = m.frame
    # adversarial inputs: frame columns (coefficients near ±c) and their negatives, basis vectors
    X = np.concatenate([F.matrix().T[:8], -F.matrix().T[:8], np.eye(16)[:4]])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    coords = np.tile(np.array([[3, 17]]), (X.shape[0], 1))
    LP = m.message_log_probs(X, coords)
    np.testing.assert_allclose(np.exp(LP).sum(1), 1.0, rtol=1e-12)
    assert (LP.max(0) - LP.min(0)).max() <= 2.0 + 1e-12
    # the bound is attained when bits are deterministic (coefficients at ±c)
    assert math.log(p) - math.log(q) == pytest.approx(2.0)
    # empirical message law with shared coordinates (keys) matches the exact law: chi²
    x = X[0]
    n = 40000
    keys = np.full(n, 77, dtype=np.uint64)
    msg = m.encode(np.tile(x, (n, 1)), rng=14, keys=keys)
    assert msg.dtype == np.int64 and msg.shape == (n,)
    c = m._coords(1, keys[:1], None)
    expected = np.exp(m.message_log_probs(x[None], c)[0])
    assert stats.chisquare(np.bincount(msg, minlength=4), n * expected).pvalue > 1e-3


def test_sqkr_unbiased_mse_and_roundtrip():
    m = SQKR(3.0, 32, bits=2)  # k = min(3, 2) = 2
    x = unit(32, 1)
    n = 100000
    Z = m.privatize(np.tile(x, (n, 1)), rng=15)
    assert_unbiased(Z, x)
    exact = m.mse(x)[0]
    assert_mse(Z, x, exact, 0.03)
    assert exact <= m.expected_mse() * (1 + 1e-12)
    # shared-coordinate transcript decodes with the keys; private one carries its coordinates
    keys = randomness.derive_keys(1, 0, np.arange(5), domain="sqkr-coords")
    msg = m.encode(np.tile(x, (5, 1)), rng=16, keys=keys)
    est = m.decode(msg, keys=keys)
    assert est.shape == (5, 32)
    with pytest.raises(DecodeError):
        m.decode(msg)
    with pytest.raises(DecodeError):
        m.decode(np.array([4, 0, 0, 0, 0]), keys=keys)
    priv = m.encode(np.tile(x, (5, 1)), rng=16)
    assert isinstance(priv, SampledMessages) and priv.coords.shape == (5, 2)
    assert m.decode(priv).shape == (5, 32)
    assert priv.coords.shape == (5, 2) and m.index_bits == math.ceil(math.log2(math.comb(64, 2)))


# --------------------------------------------------------------------------- RRSC


def test_expected_top_sums():
    assert expected_top_sums(2)[0] == pytest.approx(1 / math.sqrt(math.pi), rel=1e-10)
    assert expected_top_sums(3)[0] == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-10)
    g = np.sort(np.random.default_rng(17).standard_normal((200000, 8)), 1)[:, ::-1].cumsum(1)
    se = g.std(0) / math.sqrt(g.shape[0])
    assert np.all(np.abs(g.mean(0) - expected_top_sums(8)) < Z_TOL * se)


def test_rotation_is_householder_q():
    keys = np.arange(3, dtype=np.uint64)
    GT, L = rotation_factors(keys, 40, 8)
    U = GT.transpose(0, 2, 1) @ np.linalg.inv(L).transpose(0, 2, 1)
    np.testing.assert_allclose(U, haar_stiefel(keys, 40, 8), atol=1e-12)
    np.testing.assert_allclose(U.transpose(0, 2, 1) @ U, np.broadcast_to(np.eye(8), (3, 8, 8)), atol=1e-12)


def test_rrsc_exact_privacy_and_k_choice():
    eps = 1.7
    m = RRSC(eps, 20, bits=3)
    X = np.concatenate([np.eye(20), -np.eye(20)])
    keys = np.full(40, 5, dtype=np.uint64)
    LP = m.selection_log_probs(m.prepare(X, rng=0), keys)
    np.testing.assert_allclose(np.exp(LP).sum(1), 1.0, rtol=1e-12)
    assert (LP.max(0) - LP.min(0)).max() == pytest.approx(eps, rel=1e-12)
    # k maximises m: brute force over top_k
    ms = [RRSC(eps, 20, bits=3, top_k=k).m for k in range(1, 8)]
    assert m.k == int(np.argmax(ms)) + 1 and m.m == pytest.approx(max(ms))


@pytest.mark.parametrize("eps,d,bits", [(2.0, 16, 3), (4.0, 8, 3)])
def test_rrsc_unbiased_and_mse(eps, d, bits):
    m = RRSC(eps, d, bits=bits)
    x = unit(d, 2)
    n = 80000
    Z = m.privatize(np.tile(x, (n, 1)), rng=18)
    assert_unbiased(Z, x)
    assert_mse(Z, x, m.expected_mse(), 0.03)
    # shorter input: randomised rounding keeps it unbiased
    Z2 = m.privatize(np.tile(0.3 * x, (n, 1)), rng=19)
    assert_unbiased(Z2, 0.3 * x)


def test_rrsc_roundtrip_and_per_rotation_bias():
    m = RRSC(3.0, 16, bits=2)
    x = unit(16, 3)
    keys = randomness.derive_keys(2, 0, np.arange(4), domain="rrsc")
    J = m.encode(np.tile(x, (4, 1)), rng=20, keys=keys)
    assert J.dtype == np.int64 and J.max() < 4
    est = m.decode(J, keys=keys)
    assert np.allclose(np.linalg.norm(est, axis=1), 1 / m.m)
    # with one fixed rotation the estimator is biased (unbiasedness needs the random rotation)
    n = 40000
    one = np.full(n, keys[0], dtype=np.uint64)
    Z = m.decode(m.encode(np.tile(x, (n, 1)), rng=21, keys=one), keys=one)
    zs = (Z.mean(0) - x) / (Z.std(0, ddof=1) / math.sqrt(n))
    assert np.max(np.abs(zs)) > 10


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "factory",
    [
        lambda e: LaplaceMechanism(e, 4),
        lambda e: GaussianMechanism(e, 4),
        lambda e: CoordinateRR(e, 4),
        lambda e: KaryRR(e, 3),
        lambda e: SQKR(e, 4),
        lambda e: RRSC(e, 4, bits=1),
    ],
)
def test_bad_epsilon(factory):
    for e in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ParameterError):
            factory(e)


@pytest.mark.parametrize(
    "mech",
    [LaplaceMechanism(1.0, 4), GaussianMechanism(1.0, 4), CoordinateRR(1.0, 4), SQKR(1.0, 4), RRSC(1.0, 4, bits=2)],
)
def test_bad_inputs(mech):
    for bad in (np.array([1.0, np.nan, 0, 0]), np.array([np.inf, 0, 0, 0]), np.zeros(5), np.zeros((2, 3)), np.zeros((1, 1, 4))):
        with pytest.raises(InputError):
            mech.privatize(bad, rng=0)
    assert mech.privatize(np.zeros((3, 4)), rng=0).shape == (3, 4)
    assert mech.privatize(np.full(4, 0.1), rng=0).shape == (4,)


def test_invalid_parameters():
    with pytest.raises(ParameterError, match="2\\^bits <= dim"):
        RRSC(1.0, 7, bits=3)
    with pytest.raises(ParameterError):
        RRSC(1.0, 8, bits=3, top_k=8)
    with pytest.raises(ParameterError):
        SQKR(1.0, 8, bits=0)
    with pytest.raises(ParameterError):
        SQKR(1.0, 0)
    with pytest.raises(ParameterError):
        KaryRR(1.0, 1)
    with pytest.raises(ParameterError):
        GaussianMechanism(1.0, 4, delta=0.0)
    with pytest.raises(ParameterError):
        LaplaceMechanism(1.0, 4, clip=-1.0)
    with pytest.raises(InputError):
        KaryRR(1.0, 3).privatize(np.array([0, 3]))
    with pytest.raises(DecodeError):
        RRSC(1.0, 8, bits=2).decode(np.array([4]))
