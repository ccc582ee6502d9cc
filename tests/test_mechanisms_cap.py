"""Cap mechanisms (PrivUnit2, PrivUnitG, Duchi L2): closed forms, privacy, optimality, samplers.

Statistical tests use fixed seeds and state their tolerance. Independent reference formulas come from
scipy.stats (Beta law of t², truncated normals) and from the papers' own expressions (Bhowmick et al.'s
incomplete-Beta(α, α) form of m, Duchi et al.'s Gamma-function B), not from the module under test.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from ldp_rec.errors import InputError, ParameterError
from ldp_rec.mechanisms.cap import CapMechanism, sphere_cap_mass, sphere_projection_isf
from ldp_rec.mechanisms.duchi import DuchiL2, duchi_l2_radius
from ldp_rec.mechanisms.privunit2 import (
    PrivUnit2,
    privunit2_mse,
    privunit2_parameters,
    privunit2_sufficient_parameters,
)
from ldp_rec.mechanisms.privunitg import PrivUnitG, privunitg_parameters
from ldp_rec.rec import randomness as R
from ldp_rec.rec.base import MechanismTarget

MECHS = (PrivUnit2, PrivUnitG, DuchiL2)
DIMS = (2, 3, 16, 500)
EPSILONS = (0.5, 1.0, 4.0, 8.0)
SPHERE = (PrivUnit2, DuchiL2)


# ----------------------------------------------------------------------------- independent references


def sphere_sf(t, d):
    """P[<V,u> >= t] for V uniform on S^{d-1}, from t^2 ~ Beta(1/2, (d-1)/2) and a symmetric sign."""
    t = np.asarray(t, dtype=float)
    half = 0.5 * stats.beta.sf(t * t, 0.5, (d - 1) / 2)
    return np.where(t >= 0, half, 1 - half)


def mixture_cdf(sf, p, q):
    """CDF of t under the cap mechanism: cap w.p. p (S(t) <= q), complement otherwise."""

    def cdf(t):
        s = sf(t)
        return p * np.maximum(q - s, 0) / q + (1 - p) * np.minimum(1 - s, 1 - q) / (1 - q)

    return cdf


def bhowmick_m(p, gamma, d):
    """m from Bhowmick et al. (2018) Alg. 1:
    (1-γ²)^α / (2^{d-2}(d-1)) [p/(B(α,α) - B(τ;α,α)) - (1-p)/B(τ;α,α)],
    α = (d-1)/2, τ = (1+γ)/2, evaluated in log space."""
    al, tau = (d - 1) / 2, (1 + gamma) / 2
    ib, ibc = special.betainc(al, al, tau), special.betaincc(al, al, tau)  # ibc = 1 - ib, accurately
    log_pre = al * np.log1p(-gamma**2) - (d - 2) * np.log(2) - np.log(d - 1) - special.betaln(al, al)
    return np.exp(log_pre) * (p / ibc - (1 - p) / ib)


def unit(d, seed):
    u = np.random.default_rng(seed).standard_normal(d)
    return u / np.linalg.norm(u)


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.5, 0.93, -0.4])
def test_sphere_cap_closed_forms(gamma):
    # d = 3: t is uniform on [-1, 1] (Archimedes); d = 2: t = cos θ with θ uniform
    assert sphere_cap_mass(gamma, 3) == pytest.approx((1 - gamma) / 2, rel=1e-13)
    assert sphere_cap_mass(gamma, 2) == pytest.approx(np.arccos(gamma) / np.pi, rel=1e-13)
    for d in (2, 3, 16, 500, 10**5):
        assert sphere_cap_mass(gamma, d) == pytest.approx(float(sphere_sf(gamma, d)), rel=1e-12, abs=1e-300)
        s = float(sphere_sf(gamma, d))
        if 1e-300 < s < 1:
            assert sphere_projection_isf(s, d) == pytest.approx(gamma, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("gamma", [0.0, 0.05, 0.3])
def test_sphere_cap_means_match_quadrature_and_paper(d, gamma):
    mech = PrivUnit2(60.0, d, p_override=0.9, gamma_override=gamma)  # large ε: any (p, γ) is feasible
    a, b = mech.cap_means
    q = float(sphere_sf(gamma, d))
    assert mech.cap_mass == pytest.approx(q, rel=1e-12)
    if d == 3:
        assert (a, b) == pytest.approx(((1 + gamma) / 2, (gamma - 1) / 2), rel=1e-13)
    if d <= 16:  # direct quadrature of t (1-t²)^{(d-3)/2} / B((d-1)/2, 1/2)
        dens = lambda t: t * (1 - t * t) ** ((d - 3) / 2) / special.beta((d - 1) / 2, 0.5)  # noqa: E731
        assert a == pytest.approx(integrate.quad(dens, gamma, 1)[0] / q, rel=1e-8)
        assert b == pytest.approx(integrate.quad(dens, -1, gamma)[0] / (1 - q), rel=1e-8)
    assert mech.m() == pytest.approx(bhowmick_m(0.9, gamma, d), rel=1e-12)
    assert mech.m() == pytest.approx(0.9 * a + 0.1 * b, rel=1e-15)


@pytest.mark.parametrize("eps", EPSILONS)
def test_gaussian_cap_means_and_second_moment(eps):
    mech = PrivUnitG(eps, 10)
    g, p = mech.gamma, mech.p
    cap = stats.truncnorm(g, np.inf)
    off = stats.truncnorm(-np.inf, g)
    assert mech.cap_mass == pytest.approx(stats.norm.sf(g), rel=1e-14)
    assert mech.cap_means == pytest.approx((cap.mean(), off.mean()), rel=1e-10)
    ew2 = p * cap.moment(2) + (1 - p) * off.moment(2)
    assert mech.expected_mse() == pytest.approx((9 + ew2) / mech.m() ** 2 - 1, rel=1e-10)
    assert mech.sigma == pytest.approx(1 / (stats.norm.pdf(g) * (p / stats.norm.sf(g) - (1 - p) / stats.norm.cdf(g))))


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("eps", [0.5, 1.0, 4.0])
def test_duchi_radius_equals_paper_constant(d, eps):
    # Duchi, Jordan & Wainwright (2013) Sec. 4.2.3: B = C (e^ε+1)/(e^ε-1) · √π d Γ((d-1)/2+1) / (2 Γ(d/2+1))
    mech = DuchiL2(eps, d, clip=2.5)
    paper = 2.5 * (math.exp(eps) + 1) / (math.exp(eps) - 1) * math.sqrt(math.pi) * d
    paper *= math.gamma((d - 1) / 2 + 1) / (2 * math.gamma(d / 2 + 1)) if d < 300 else math.exp(
        special.gammaln((d - 1) / 2 + 1) - special.gammaln(d / 2 + 1)) / 2
    assert mech.radius == pytest.approx(paper, rel=1e-12)
    assert duchi_l2_radius(eps, d, 2.5) == pytest.approx(paper, rel=1e-12)
    assert (mech.p, mech.gamma, mech.cap_mass) == (pytest.approx(1 / (1 + math.exp(-eps)), rel=1e-15), 0.0, 0.5)
    z = mech.privatize(np.full((50, d), 0.1 / math.sqrt(d)), rng=0)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), mech.radius, rtol=1e-12)


def test_duchi_radius_large_d_asymptotics():
    # B/C → coth(ε/2) √(π d / 2) as d → ∞ (relative correction ~ 1/(4d))
    d, eps = 10**5, 1.0
    assert DuchiL2(eps, d).radius == pytest.approx(math.sqrt(math.pi * d / 2) / math.tanh(eps / 2), rel=1e-5)


# ----------------------------------------------------------------------------- privacy


@pytest.mark.parametrize("cls", MECHS)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("eps", EPSILONS)
def test_privacy_worst_case_log_ratio(cls, d, eps):
    mech = cls(eps, d)
    lo, hi = mech.log_ratio_bounds()
    p, q = mech.p, mech.cap_mass
    assert hi - lo <= eps + 1e-9
    assert hi == pytest.approx(math.log(p / q), rel=1e-14)
    assert lo == pytest.approx(math.log((1 - p) / (1 - q)), rel=1e-14)
    assert q * math.exp(hi) + (1 - q) * math.exp(lo) == pytest.approx(1.0, rel=1e-14)  # ∫ r dP = p + (1 - p)
    # adversarial inputs: u, -u, an orthogonal u, random units; outputs: reference draws and the cap boundary
    u0 = unit(d, 1)
    perp = unit(d, 2)
    perp -= (perp @ u0) * u0
    perp /= np.linalg.norm(perp)
    us = np.stack([u0, -u0, perp, unit(d, 3), unit(d, 4)])
    base = mech.reference.sample(400, rng=5)
    # boundary points: t = <z, u> = γ exactly (with ‖z‖ = 1 on the sphere), for each adversarial u
    w = np.random.default_rng(6).standard_normal(us.shape)
    w -= np.sum(w * us, axis=1, keepdims=True) * us
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    radial = math.sqrt(1 - mech.gamma**2) if cls in SPHERE else 3.0
    bnd = mech.gamma * us + radial * w
    zs = np.concatenate([base, bnd, -bnd, us, -us])
    lr = mech.log_ratio(zs, us)  # (n_u, m)
    assert lr.shape == (us.shape[0], zs.shape[0])
    assert set(np.unique(lr)) <= {lo, hi}
    assert np.max(lr.max(0) - lr.min(0)) <= eps + 1e-9
    assert np.max(lr) == hi and np.min(lr) == lo  # both levels are attained: the spread is exactly it
    e1, e2 = np.eye(d)[0], np.eye(d)[1]  # exact arithmetic: <z, e1> = γ exactly
    if cls is PrivUnitG:  # a point exactly on the boundary belongs to the cap
        assert mech.log_ratio((mech.gamma * e1 + 3 * e2)[None, :], e1)[0] == hi
    elif mech.gamma == 0:
        assert mech.log_ratio(e2[None, :], e1)[0] == hi
    r = 1.0 if cls in SPHERE else abs(mech.gamma) + 1.0  # u itself (scaled into the cap) and -u
    assert mech.log_ratio(r * u0[None, :], u0)[0] == hi and mech.log_ratio(-r * u0[None, :], u0)[0] == lo


@pytest.mark.parametrize("cls", MECHS)
def test_ratio_integrates_to_one_under_reference(cls):
    # E_P[r_u(Z)] = 1 (q must be the true cap mass): z-test over 200k reference draws, |z| < 4.5
    mech = cls(4.0, 16)
    z = mech.reference.sample(200_000, rng=11)
    r = np.exp(mech.log_ratio(z, unit(16, 0)))
    assert abs(r.mean() - 1) < 4.5 * r.std() / math.sqrt(r.size)
    assert np.mean(r > 1) == pytest.approx(mech.cap_mass, abs=4.5 * math.sqrt(mech.cap_mass / r.size))


# ----------------------------------------------------------------------------- parameter optimisation


@pytest.mark.parametrize("d", (3, 16, 500))
@pytest.mark.parametrize("eps", EPSILONS)
def test_privunit2_beats_paper_sufficient_parameters(d, eps):
    opt = PrivUnit2(eps, d).expected_mse()
    best = np.inf
    for theta in np.linspace(0.02, 0.98, 49):
        p, g = privunit2_sufficient_parameters(eps, d, eps0_fraction=theta)
        q = float(sphere_sf(g, d))
        assert math.log(p / q) - math.log((1 - p) / (1 - q)) <= eps + 1e-9  # Thm 1 is sufficient (d >= 3)
        best = min(best, 1 / bhowmick_m(p, g, d) ** 2 - 1)
    assert opt <= best * (1 - 1e-3)  # strictly better than the best split of Thm 1


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("eps", EPSILONS)
def test_privunit2_optimum_against_grid_search(d, eps):
    opt = PrivUnit2(eps, d).expected_mse()
    assert opt == pytest.approx(privunit2_mse(*privunit2_parameters(eps, d), d), rel=1e-12)
    # independent 2-D grid over γ in (-1, 1) and p ≤ tight p (the feasible pairs of the exact constraint)
    gam = np.concatenate([np.linspace(-0.99, 0.999, 800), np.geomspace(1e-5, 0.5, 800)])
    with np.errstate(all="ignore"):  # the grid's extremes under/overflow harmlessly and are dropped
        q = sphere_sf(gam, d)
        ps = (np.exp(eps) * q / (np.exp(eps) * q + 1 - q))[:, None] * np.linspace(0.9, 1.0, 11)[None, :]
        G, Q = np.broadcast_arrays(gam[:, None], q[:, None], ps)[:2]
        ok = (np.log(ps / Q) - np.log((1 - ps) / (1 - Q)) <= eps + 1e-12) & (ps > Q) & (Q > 0)
        m = bhowmick_m(ps[ok], G[ok], d)
        grid_best = np.min(1 / m[np.isfinite(m) & (m > 0)] ** 2 - 1)
    assert grid_best >= opt * (1 - 1e-9)  # nothing feasible beats the optimum
    assert grid_best <= opt * (1 + 5e-3)  # and the grid comes within 0.5 %
    assert privunit2_parameters(eps, d)[1] > 0  # optimum has γ > 0 (γ < 0 is provably worse)


@pytest.mark.parametrize("eps", EPSILONS + (0.1, 16.0))
def test_privunitg_optimum_against_grid_search(eps):
    p_opt, g_opt = privunitg_parameters(eps)
    mech = PrivUnitG(eps, 8)
    assert (mech.p, mech.gamma) == pytest.approx((p_opt, g_opt), rel=1e-9)

    def sigma(p):  # independent: γ from the constraint by root finding on norm.sf
        q = p / (p + np.exp(eps) * (1 - p))
        g = stats.norm.isf(q)
        return 1 / (stats.norm.pdf(g) * (p / q - (1 - p) / stats.norm.cdf(g)))

    ps = np.linspace(1e-4, 1 - 1e-4, 20001)
    s = sigma(ps)
    s = s[s > 0]
    assert s.min() >= mech.sigma * (1 - 1e-9)
    assert s.min() <= mech.sigma * (1 + 5e-3)
    assert mech.sigma == pytest.approx(sigma(p_opt), rel=1e-12)


def test_privunit2_tends_to_privunitg_in_high_dimension():
    # √d t → N(0, 1): the optimised PrivUnit2 at d = 1e5 matches PrivUnitG to ~1e-4
    for eps in (1.0, 4.0):
        p2, pg = PrivUnit2(eps, 10**5), PrivUnitG(eps, 10**5)
        assert p2.p == pytest.approx(pg.p, rel=2e-4)
        assert p2.gamma * math.sqrt(10**5) == pytest.approx(pg.gamma, rel=2e-3)
        assert p2.expected_mse() == pytest.approx(pg.expected_mse(), rel=2e-4)
        assert p2.expected_mse() <= pg.expected_mse()


def test_privunit2_beats_duchi_and_mse_scale():
    for d in DIMS:
        for eps in EPSILONS:
            assert PrivUnit2(eps, d).expected_mse() < DuchiL2(eps, d).expected_mse()


# ----------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("cls", MECHS)
@pytest.mark.parametrize("d", (2, 3, 16, 500))
@pytest.mark.parametrize("eps", (1.0, 8.0))
def test_projection_law_ks_and_cap_fraction(cls, d, eps):
    # KS of t = <V,u> (normalised on the sphere) against the closed-form mixture CDF, p-value > 1e-3;
    # the cap fraction is p (binomial z-test, |z| < 4.5); log_ratio agrees with the side drawn
    mech = cls(eps, d)
    n = 20_000 if d < 500 else 6_000
    u = unit(d, 7)
    v = mech.sample(np.tile(u, (n, 1)), rng=np.random.default_rng(100 + d))
    t = v @ u
    if cls is PrivUnitG:
        sf = stats.norm.sf
    else:
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-12)
        sf = lambda x: sphere_sf(x, d)  # noqa: E731
    q = float(sf(mech.gamma))
    cdf = mixture_cdf(sf, mech.p, q)
    assert stats.kstest(t, cdf).pvalue > 1e-3
    frac = np.mean(t >= mech.gamma)
    assert abs(frac - mech.p) < 4.5 * math.sqrt(mech.p * (1 - mech.p) / n)
    lr = mech.log_ratio(v, u)
    np.testing.assert_array_equal(lr == mech.log_ratio_bounds()[1], t >= mech.gamma)


@pytest.mark.parametrize("cls", MECHS)
@pytest.mark.parametrize("d", (2, 3, 16))
def test_orthogonal_part_is_isotropic(cls, d):
    # the part of V orthogonal to u, projected on a fixed orthogonal unit e: KS against its law
    # (Gaussian: N(0, 1); sphere: the normalised part w has <w,e>² ~ Beta(1/2, (d-2)/2), d=2: a fair sign)
    mech = cls(4.0, d)
    n = 20_000
    u = unit(d, 8)
    e = unit(d, 9)
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    v = mech.sample(np.tile(u, (n, 1)), rng=3)
    t = v @ u
    if cls is PrivUnitG:
        assert stats.kstest(v @ e, "norm").pvalue > 1e-3
        return
    w = v - t[:, None] * u
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    s = w @ e
    if d == 2:
        np.testing.assert_allclose(np.abs(s), 1, rtol=1e-9)
        assert abs(np.mean(s > 0) - 0.5) < 4.5 * 0.5 / math.sqrt(n)
    else:
        cdf = lambda x: 0.5 + 0.5 * np.sign(x) * stats.beta.cdf(x * x, 0.5, (d - 2) / 2)  # noqa: E731
        assert stats.kstest(s, cdf).pvalue > 1e-3
    # independence of the side: within the cap, the orthogonal direction has the same law
    s_cap = s[t >= mech.gamma]
    assert abs(s_cap.mean()) < 4.5 * s_cap.std() / math.sqrt(s_cap.size)


@pytest.mark.parametrize("cls", MECHS)
@pytest.mark.parametrize(("d", "eps"), [(16, 1.0), (3, 4.0)])
def test_unbiased_z_test(cls, d, eps):
    # mean of 20k privatised copies of x: per-coordinate z-scores, chi²(d) p-value > 1e-4 and |z| < 4.5;
    # inputs below C, above C (clipped to C x/‖x‖) and zero
    clip = 2.0
    mech = cls(eps, d, clip=clip)
    n = 20_000
    rng = np.random.default_rng(2024)
    for x, target in [
        (0.4 * clip * unit(d, 10), None),
        (3.0 * clip * unit(d, 11), clip * unit(d, 11)),
        (np.zeros(d), None),
    ]:
        target = x if target is None else target
        z = mech.privatize(np.tile(x, (n, 1)), rng=rng)
        zs = (z.mean(0) - target) / (z.std(0) / math.sqrt(n))
        assert np.max(np.abs(zs)) < 4.5
        assert stats.chi2.sf(np.sum(zs**2), d) > 1e-4
        # along the input direction (where a wrong m shows first)
        if np.any(target):
            dirn = target / np.linalg.norm(target)
            proj = z @ dirn
            assert abs(proj.mean() - np.linalg.norm(target)) < 4.5 * proj.std() / math.sqrt(n)


@pytest.mark.parametrize("cls", MECHS)
@pytest.mark.parametrize(("d", "eps", "norm_frac"), [(16, 4.0, 1.0), (500, 8.0, 1.0), (16, 1.0, 0.5)])
def test_empirical_mse_matches_closed_form(cls, d, eps, norm_frac):
    # within 3 % with 20k draws (500-d: 10k; the sample MSE has relative s.e. < 1 %)
    clip = 1.5
    mech = cls(eps, d, clip=clip)
    n = 20_000 if d < 500 else 10_000
    x = norm_frac * clip * unit(d, 12)
    z = mech.privatize(np.tile(x, (n, 1)), rng=np.random.default_rng(77))
    err = np.sum((z - x) ** 2, axis=1)
    want = mech.expected_mse(norm=norm_frac * clip)
    assert err.mean() == pytest.approx(want, rel=0.03)
    assert abs(err.mean() - want) < 4.5 * err.std() / math.sqrt(n)


def test_privunitg_dimension_one_is_unbiased():
    mech = PrivUnitG(2.0, 1)
    z = mech.privatize(np.full((40_000, 1), 0.3), rng=4)
    assert abs(z.mean() - 0.3) < 4.5 * z.std() / math.sqrt(z.size)
    assert np.mean((z - 0.3) ** 2) == pytest.approx(mech.expected_mse(norm=0.3), rel=0.03)


def test_prepare_rounding_is_unbiased_and_clips():
    mech = PrivUnit2(1.0, 5, clip=2.0)
    n = 40_000
    x = np.array([0.6, -0.8, 0.0, 0.0, 0.0])  # norm 1 = C/2: + w.p. 3/4
    u = mech.prepare(np.tile(x, (n, 1)), rng=0)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1, rtol=1e-12)
    assert abs(np.mean(u @ x > 0) - 0.75) < 4.5 * math.sqrt(0.75 * 0.25 / n)
    big = mech.prepare(np.tile(10 * x, (100, 1)), rng=0)  # clipped: always +
    np.testing.assert_allclose(big, np.tile(x, (100, 1)), rtol=1e-12)
    zero = mech.prepare(np.zeros((n, 5)), rng=1)  # uniform direction: mean 0
    assert np.max(np.abs(zero.mean(0))) < 4.5 * math.sqrt(1 / 5 / n)
    huge = mech.prepare(np.full((2, 5), 1e200), rng=0)  # overflow-safe norm
    np.testing.assert_allclose(huge, 1 / math.sqrt(5), rtol=1e-12)


# ----------------------------------------------------------------------------- REC interface


@pytest.mark.parametrize("cls", MECHS)
@pytest.mark.parametrize("d", (2, 16, 300))
def test_fused_projection_path_matches_materialised(cls, d):
    mech = cls(4.0, d)
    keys = R.derive_keys(3, 1, np.arange(4))
    U = mech.prepare(np.random.default_rng(0).standard_normal((4, d)), rng=1)
    target = MechanismTarget(mech, U, keys)
    fused = target.log_ratio_block(5, 3000)
    mat = mech.log_ratio(target.candidate_block(5, 3000), U)
    assert fused.shape == mat.shape == (4, 3000)
    assert np.mean(fused != mat) <= 1 / 12_000  # at most a boundary tie from float rounding
    assert target.bounds == mech.log_ratio_bounds()
    # fraction of candidates in the cap is q (binomial, |z| < 4.5 over 12k candidates)
    q = mech.cap_mass
    assert abs(np.mean(fused == target.bounds[1]) - q) < 4.5 * math.sqrt(q * (1 - q) / 12_000)


def test_m_and_unbias_with_effective_probability():
    mech = PrivUnit2(4.0, 16, clip=3.0)
    a, b = mech.cap_means
    assert mech.m() == pytest.approx(mech.p * a + (1 - mech.p) * b, rel=1e-15)
    assert mech.m(mech.p) == pytest.approx(mech.m(), rel=1e-15)
    pe = np.array([0.7, mech.p, 0.95])
    v = mech.sample(np.tile(unit(16, 0), (3, 1)), rng=0)
    out = mech.unbias(v, p_eff=pe)
    np.testing.assert_allclose(out, 3.0 * v / (pe * a + (1 - pe) * b)[:, None], rtol=1e-14)
    np.testing.assert_allclose(mech.unbias(v[0]), 3.0 * v[0] / mech.m(), rtol=1e-14)
    with pytest.raises(ParameterError):
        mech.m(mech.cap_mass * 0.5)  # E<V,u> <= 0
    with pytest.raises(ParameterError):
        mech.m(1.5)


def test_overrides():
    m = PrivUnit2(2.0, 16, gamma_override=0.2)
    lo, hi = m.log_ratio_bounds()
    assert hi - lo == pytest.approx(2.0, abs=1e-12) and m.gamma == 0.2
    m = PrivUnitG(2.0, 16, p_override=0.7)
    lo, hi = m.log_ratio_bounds()
    assert hi - lo == pytest.approx(2.0, abs=1e-9) and m.p == 0.7
    m = PrivUnit2(2.0, 16, p_override=0.6, gamma_override=0.1)  # looser than tight: fine
    assert m.log_ratio_bounds()[1] - m.log_ratio_bounds()[0] < 2.0
    with pytest.raises(ParameterError):
        PrivUnit2(0.5, 16, p_override=0.9, gamma_override=0.5)  # violates ε
    with pytest.raises(ParameterError):
        PrivUnit2(4.0, 16, p_override=0.2, gamma_override=0.0)  # p <= q
    with pytest.raises(ParameterError):
        PrivUnit2(4.0, 16, gamma_override=1.0)
    with pytest.raises(ParameterError):
        PrivUnitG(4.0, 16, gamma_override=float("nan"))
    with pytest.raises(ParameterError):
        PrivUnitG(4.0, 16, p_override=1.0)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", MECHS)
def test_bad_parameters(cls):
    for eps in (0, -1.0, float("nan"), float("inf"), "a"):
        with pytest.raises(ParameterError):
            cls(eps, 4)
    for d in (0, -3, 2.5, True):
        with pytest.raises(ParameterError):
            cls(1.0, d)
    for clip in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ParameterError):
            cls(1.0, 4, clip=clip)
    if cls in SPHERE:
        with pytest.raises(ParameterError):
            cls(1.0, 1)  # S^0 has no continuous cap
    else:
        cls(1.0, 1)
    assert isinstance(cls(1.0, 4), CapMechanism) and cls(1.0, 4).guarantee.epsilon == 1.0
    assert cls.name in ("privunit2", "privunitg", "duchi")


@pytest.mark.parametrize("cls", MECHS)
def test_bad_inputs(cls):
    mech = cls(1.0, 4)
    for x in (np.array([1.0, np.nan, 0, 0]), np.array([np.inf, 0, 0, 0]), np.zeros(3), np.zeros((2, 2, 4)),
              np.array(["a", "b", "c", "d"])):
        with pytest.raises(InputError):
            mech.privatize(x, rng=0)
    with pytest.raises(InputError):
        mech.sample(np.ones((2, 4)), rng=0)  # not unit norm
    with pytest.raises(InputError):
        mech.log_ratio(np.zeros(4), np.ones(4))  # z needs (m, d)
    with pytest.raises(InputError):
        mech.log_ratio(np.zeros((3, 5)), np.ones(4))
    with pytest.raises(InputError):
        mech.log_ratio(np.zeros((2, 3, 4)), np.ones((5, 4)))  # batch mismatch
    with pytest.raises(InputError):
        mech.log_ratio(np.full((3, 4), np.nan), np.ones(4))
    with pytest.raises(ParameterError):
        mech.expected_mse(norm=2.0)
    out = mech.privatize(np.array([0.1, 0.2, 0.0, 0.0]), rng=0)
    assert out.shape == (4,)


def test_paper_condition_i_fails_in_dimension_two():
    # Finding: Bhowmick et al. Thm 1 (i), γ = tanh(ε1/2) √(π/(2(d-1))), is not sufficient for d = 2:
    # with the exact cap mass arccos(γ)/π the cap ratio exceeds e^{ε1} (so we compare only for d >= 3)
    eps1 = 2.0
    g = math.tanh(eps1 / 2) * math.sqrt(math.pi / 2)
    q = math.acos(g) / math.pi
    assert math.log((1 - q) / q) > eps1 + 0.2
    with pytest.raises(ParameterError):
        privunit2_sufficient_parameters(4.0, 2, eps0_fraction=0.5)
