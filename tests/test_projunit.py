"""ProjUnit / FastProjUnit (ldp_rec.mechanisms.projection, .projunit) and the projection front end
(ldp_rec.codec.projection): the SRHT's algebra and cost, the closed-form constants, unbiasedness and MSE,
regeneration of W at both ends, codec round trips, the transcript bound, refusals.

Statistical checks use fixed seeds; Z_TOL is the |z| bound (two-sided p ≈ 7e-6 per check). Independent
references: scipy.linalg.hadamard, dense matrices built column by column, and PrivUnitG's own closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import hadamard

from ldp_rec.codec.projection import ProjectedCodec
from ldp_rec.codec.registry import default_bits, make_codec
from ldp_rec.errors import InputError, ParameterError
from ldp_rec.mechanisms import projection as P
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.mechanisms.projunit import FastProjUnit, ProjUnit, default_proj_dim, projected_mse
from ldp_rec.privacy.events import PureEvent
from ldp_rec.rec.base import MechanismTarget
from ldp_rec.rec.mrc import ModifiedMRC
from ldp_rec.rec.subset import SubsetSelection

Z_TOL = 4.5


def _unit(rng, n, d):
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _dense(kind, d, k, key):
    """W (k, d) of one key, column by column: W e_j."""
    return P.project(np.eye(d), np.full(d, key, dtype=np.uint64), kind=kind, proj_dim=k).T


# --------------------------------------------------------------------------- SRHT algebra and cost
def test_fwht_is_the_orthonormal_sylvester_hadamard_and_its_own_inverse():
    x = np.random.default_rng(0).standard_normal((3, 64))
    assert np.allclose(P.fwht(x), x @ hadamard(64).T / 8.0, atol=1e-12)
    assert np.allclose(P.fwht(P.fwht(x)), x, atol=1e-12)


@pytest.mark.parametrize("d", [64, 100])
def test_srht_rows_orthogonal_with_scaling_and_isotropic_in_expectation(d):
    k, D = 8, P.padded_dim(d)
    W = _dense("srht", d, k, 7)
    # the padded W (k, D) has orthogonal rows of squared norm D/k; truncated to d columns each row keeps d/k
    Wpad = P.project(np.eye(D), np.full(D, 7, dtype=np.uint64), kind="srht", proj_dim=k).T
    assert np.allclose(Wpad @ Wpad.T, (D / k) * np.eye(k), atol=1e-10)
    assert np.allclose(np.diag(W @ W.T), d / k, atol=1e-10)
    # entries are ±√(D/k)/√D = ±1/√k exactly
    assert np.allclose(np.abs(Wpad), 1 / math.sqrt(k), atol=1e-12)
    # E[WᵀW] = I over keys (400 keys; entry-wise sd of the mean ≈ √(1/k · (1/k)·D/k... )): tolerance 0.1
    acc = np.zeros((d, d))
    for key in range(400):
        Wk = _dense("srht", d, k, key)
        acc += Wk.T @ Wk
    assert np.abs(acc / 400 - np.eye(d)).max() < 0.15


def test_srht_cost_is_d_log_d_by_operation_count():
    """Butterflies executed by one projection: exactly D·log2 D per user, for D = 2^8 … 2^16 (a size sweep;
    the count comes from the kernel's loop, not from a formula)."""
    ratios = []
    for L in range(8, 17, 2):
        D = 1 << L
        X = np.ones((3, D - 5))  # padded to D
        P.STATS.reset()
        P.project(X, np.arange(3), kind="srht", proj_dim=4)
        ops = P.STATS.butterflies / 3
        assert ops == D * L
        ratios.append(ops / (D * math.log2(D)))
    assert max(ratios) == min(ratios) == 1.0


def test_subset_of_rows_is_uniform_without_replacement():
    _, rows = P.srht_draws(np.arange(28_000), 8, 3)  # D = 8: C(8, 3) = 56 subsets
    assert all(len(set(r)) == 3 for r in rows[:1000])
    counts = np.unique(rows, axis=0, return_counts=True)[1]
    assert counts.size == 56
    chi2 = ((counts - 500) ** 2 / 500).sum()
    assert chi2 < 110  # χ²_55: P[> 110] ≈ 1e-5


@pytest.mark.parametrize("kind", P.KINDS)
def test_project_and_lift_are_w_and_its_transpose_and_regenerate_from_the_key(kind):
    d, k = 40, 6
    rng = np.random.default_rng(1)
    W = _dense(kind, d, k, 99)
    x, z = rng.standard_normal(d), rng.standard_normal(k)
    keys = np.array([99, 99], dtype=np.uint64)
    assert np.allclose(P.project(np.stack([x, x]), keys, kind=kind, proj_dim=k), W @ x, atol=1e-10)
    assert np.allclose(P.lift(np.stack([z, z]), keys, kind=kind, dim=d), W.T @ z, atol=1e-10)
    assert not np.allclose(_dense(kind, d, k, 100), W)  # another key, another W


# --------------------------------------------------------------------------- closed-form constants
def test_constants_against_monte_carlo_and_exact_limits():
    rng = np.random.default_rng(2)
    d, k = 32, 4
    v = _unit(rng, 1, d)[0]
    for kind in ("gaussian", "orthonormal", "srht"):
        norms = np.linalg.norm(P.project(np.tile(v, (20_000, 1)), np.arange(20_000), kind=kind, proj_dim=k), axis=1)
        assert abs(norms.mean() - P.norm_mean(kind, d, k)) < Z_TOL * norms.std() / math.sqrt(norms.size)
    # exact limits: k = d (orthonormal / srht without padding) is an isometry
    assert P.norm_mean("orthonormal", 50, 50) == 1.0 and P.lift_norm2("orthonormal", 50, 50) == 1.0
    assert P.norm_mean("srht", 64, 64) == 1.0
    # ... and then ProjUnit's closed form is PrivUnitG's, to rounding
    for eps in (1.0, 4.0, 8.0):
        assert projected_mse(eps, 50, 50, kind="orthonormal") == pytest.approx(PrivUnitG(eps, 50).expected_mse(), rel=1e-12)


def test_default_k_is_the_least_k_within_the_tolerance():
    for eps, d in ((4.0, 650), (4.0, 69_050), (8.0, 10_000)):
        full = PrivUnitG(eps, d).expected_mse()
        k = default_proj_dim(eps, d)
        assert projected_mse(eps, d, k) <= 1.05 * full < projected_mse(eps, d, k - 1)
    assert default_proj_dim(4.0, 20) == 20  # no smaller k meets 5% in 20 dimensions
    assert default_proj_dim(8.0, 69_050) > default_proj_dim(4.0, 69_050)  # k grows with ε (k = Θ(ε))
    assert FastProjUnit(4.0, 69_050).proj_dim == default_proj_dim(4.0, 69_050)


# --------------------------------------------------------------------------- unbiasedness and MSE
@pytest.mark.parametrize("kind,d,k", [("gaussian", 48, 4), ("orthonormal", 48, 4), ("srht", 48, 4), ("srht", 256, 16)])
def test_unbiased_and_mse_matches_closed_form(kind, d, k):
    """k = 4 makes the 1/c correction ≈ 6%: a missing or wrong c fails the unbiasedness check by > 6 z."""
    n = 60_000
    mech = ProjUnit(4.0, d, proj_dim=k, projection=kind, clip=2.0)
    rng = np.random.default_rng(3)
    x = _unit(rng, 1, d)[0] * 1.5  # below the clip: the rounding onto the sphere is part of the error
    Z = mech.privatize(np.tile(x, (n, 1)), rng=rng)
    proj = Z @ (x / 1.5)
    assert abs(proj.mean() - 1.5) < Z_TOL * proj.std() / math.sqrt(n)
    if k == 4:
        assert abs(proj.mean() - 1.5 * P.norm_mean(kind, d, k)) > 6 * proj.std() / math.sqrt(n)
    err = ((Z - x) ** 2).sum(1)
    assert err.mean() == pytest.approx(mech.expected_mse(norm=1.5), rel=Z_TOL * err.std() / err.mean() / math.sqrt(n) + 0.005)
    assert np.linalg.norm(Z, axis=1).max() <= mech.output_norm_bound()


# --------------------------------------------------------------------------- the codec
@pytest.mark.parametrize("codec", ["none", "subset", "modified-mrc"])
@pytest.mark.parametrize("mech", ["fastprojunit", "projunit"])
def test_codec_round_trip_unbiased_bits_and_transcript(codec, mech):
    d, eps, n = 300, 4.0, 3000
    enc = make_codec(mech, codec, epsilon=eps, dim=d, clip=1.0)
    dec = make_codec(mech, codec, epsilon=eps, dim=d, clip=1.0)  # the server builds its own: same W, same candidates
    assert isinstance(enc, ProjectedCodec) and enc.fingerprint == dec.fingerprint
    k = enc.mechanism.proj_dim
    rng = np.random.default_rng(4)
    x = _unit(rng, 1, d)[0]
    X = np.tile(x, (n, 1))
    ids = np.arange(n)
    payloads = enc.encode(X, run_seed=11, round=3, clients=ids, rng=rng)
    res = dec.decode(payloads, run_seed=11, round=3, clients=ids)
    assert res.ok.all()
    assert enc.payload_bits(payloads[0]) == (32 * k if codec == "none" else default_bits(eps))
    assert enc.transcript_event() == PureEvent(eps)
    proj = res.estimates @ x
    assert abs(proj.mean() - 1.0) < Z_TOL * proj.std() / math.sqrt(n)
    err = ((res.estimates - X) ** 2).sum(1).mean()
    assert err == pytest.approx(enc.mechanism.expected_mse(), rel=0.12)  # the codecs' own losses are a few %
    # the cohort frame (wire version 2) decodes to the same law; a frame of another projection fails every row
    frame = enc.encode_cohort(X[:50], run_seed=11, round=4, clients=ids[:50], rng=rng)
    res2 = dec.decode_cohort(frame, run_seed=11, round=4, clients=ids[:50])
    assert res2.ok.all() and abs((res2.estimates @ x).mean() - 1.0) < Z_TOL * proj.std() / math.sqrt(50)
    other = make_codec(mech, codec, epsilon=eps, dim=d, clip=1.0, proj_dim=k + 1)
    assert not other.decode_cohort(frame, run_seed=11, round=4, clients=ids[:50]).ok.any()


def test_decoder_lifts_with_the_encoders_projection():
    """d = D: every decoded estimate lies in the row space of that user's W (k/D · WᵀW est = est), and the
    projection keys are public functions of (run seed, round, user)."""
    d = 256
    cod = make_codec("fastprojunit", "subset", epsilon=2.0, dim=d, proj_dim=8)
    X = _unit(np.random.default_rng(5), 5, d)
    ids = np.array([3, 9, 27, 81, 243])
    res = cod.decode(cod.encode(X, run_seed=1, round=2, clients=ids, rng=0), run_seed=1, round=2, clients=ids)
    keys = cod.projection_keys(1, 2, ids)
    assert np.array_equal(keys, make_codec("fastprojunit", "subset", epsilon=2.0, dim=d, proj_dim=8).projection_keys(1, 2, ids))
    for est, key in zip(res.estimates, keys):
        W = _dense("srht", d, 8, key)
        assert np.allclose((8 / d) * W.T @ (W @ est), est, atol=1e-9)
        other = _dense("srht", d, 8, key + np.uint64(1))
        assert not np.allclose((8 / d) * other.T @ (other @ est), est, atol=1e-3)


def test_mismatched_projection_fails_the_tag_check():
    d, ids = 200, np.arange(4)
    X = _unit(np.random.default_rng(6), 4, d)
    enc = make_codec("projunit", "subset", epsilon=4.0, dim=d, proj_dim=20)
    payloads = enc.encode(X, run_seed=0, round=0, clients=ids, rng=0)
    for other in (make_codec("fastprojunit", "subset", epsilon=4.0, dim=d, proj_dim=20),  # same k, other kind
                  make_codec("projunit", "subset", epsilon=4.0, dim=d, proj_dim=21),
                  make_codec("projunit", "subset", epsilon=4.0, dim=d, proj_dim=20, projection="orthonormal")):
        res = other.decode(payloads, run_seed=0, round=0, clients=ids)
        assert not res.ok.any()
    assert not enc.decode(payloads, run_seed=0, round=1, clients=ids).ok.any()  # a replay in another round
    assert enc.decode(payloads, run_seed=0, round=0, clients=ids).ok.all()


@pytest.mark.parametrize("sim", ["subset", "modified-mrc"])
def test_transcript_bound_over_adversarial_input_pairs(sim):
    """Given the public W, the transcript is the inner simulator's on u = Wx/‖Wx‖: the exact selection law's
    log-ratio between any two inputs x, x' ∈ R^d is ≤ ε over candidate sets, with inputs x, −x (u' = −u),
    x' with Wx' ⊥ Wx, x' ⊥ x, and random pairs; the bound is attained."""
    d, k, eps, bits = 64, 6, 1.5, 5
    mech = FastProjUnit(eps, d, proj_dim=k)
    inner = PrivUnitG(eps, k)
    simulator = SubsetSelection(bits=bits, epsilon=eps) if sim == "subset" else ModifiedMRC(bits=bits, epsilon=eps)
    law = simulator.selection_law(inner)
    rng = np.random.default_rng(7)
    worst = 0.0
    for trial in range(30):
        key = np.uint64(rng.integers(0, 2**62))
        W = _dense("srht", d, k, key)
        x = _unit(rng, 1, d)[0]
        wx, t = W @ x, rng.standard_normal(k)
        t -= (t @ wx) / (wx @ wx) * wx
        y = W.T @ np.linalg.solve(W @ W.T, t)  # W y = t ⊥ W x
        perp = rng.standard_normal(d)
        perp -= (perp @ x) * x
        xs = np.stack([x, -x, y / np.linalg.norm(y), perp / np.linalg.norm(perp), *_unit(rng, 4, d)])
        U = mech.project(xs, np.full(len(xs), key), rng=0)
        assert abs(U[2] @ U[0]) < 1e-9 and np.allclose(U[1], -U[0])
        cand = np.uint64(rng.integers(0, 2**62))
        logp = law.log_pmf(MechanismTarget(inner, U, np.full(len(xs), cand)))
        spread = (logp[:, None, :] - logp[None, :, :]).max()
        assert spread <= eps + 1e-9
        worst = max(worst, spread)
    assert worst == pytest.approx(eps, rel=1e-9)


# --------------------------------------------------------------------------- refusals
def test_bad_parameters_and_inputs():
    with pytest.raises(ParameterError, match="exceeds the input dimension"):
        ProjUnit(4.0, 10, proj_dim=11)
    with pytest.raises(ParameterError, match="proj_dim"):
        ProjUnit(4.0, 10, proj_dim=-1)
    with pytest.raises(ParameterError, match="proj_dim"):
        P.Projection("srht", 10, 0)
    with pytest.raises(ParameterError, match="unknown projection"):
        ProjUnit(4.0, 10, projection="fourier")
    with pytest.raises(ParameterError, match="unknown projection"):
        make_codec("projunit", "subset", epsilon=4.0, dim=10, projection="fourier")
    with pytest.raises(ParameterError, match="SRHT"):
        FastProjUnit(4.0, 10, projection="gaussian")
    with pytest.raises(ParameterError, match="epsilon"):
        FastProjUnit(0.0, 10)
    with pytest.raises(InputError):
        FastProjUnit(4.0, 10).privatize(np.full(10, np.nan))
    with pytest.raises(InputError):
        FastProjUnit(4.0, 10).privatize(np.ones(11))
    # edge inputs: zero rows (a random direction, as round_to_sphere) and rows whose ‖x‖² overflows
    edge = FastProjUnit(4.0, 10).privatize(np.stack([np.zeros(10), np.full(10, 1e200)]), rng=0)
    assert np.isfinite(edge).all()
    cod = make_codec("fastprojunit", "none", epsilon=4.0, dim=10)
    with pytest.raises(ParameterError):
        cod.encode(np.ones((2, 10)) / 4, run_seed=0, round=0, clients=[1])
    with pytest.raises(InputError):
        P.fwht(np.ones(12))


# --------------------------------------------------------------------------- the FL path
def test_fl_config_projection_and_wide_models():
    from ldp_rec.fl import models
    from ldp_rec.fl.config import FLConfig
    from ldp_rec.fl.federation import make_fl_model, load_data, privatize_cohort, round_codec

    cfg = FLConfig(model="mlp", width=320, mode="ldp-rec", codec="subset", projection="srht", private_seed=0)
    dim = models.num_params(make_fl_model(cfg, load_data(cfg)))
    assert dim == 64 * 320 + 320 + 320 * 10 + 10 >= 20_000
    cod = round_codec(cfg, dim)
    assert isinstance(cod, ProjectedCodec) and cod.mechanism.proj_dim == default_proj_dim(4.0, dim)
    assert FLConfig.from_record(cfg.to_record()) == cfg
    U = np.random.default_rng(8).standard_normal((6, dim)) * 1e-3
    res = privatize_cohort(cfg, U, 1, np.arange(6), np.random.default_rng(9))  # one cohort frame (wire v2)
    dec = round_codec(cfg, dim).decode_cohort(res.frame, run_seed=cfg.seed, round=1, clients=np.arange(6))
    assert dec.ok.all() and np.all(dec.bits == default_bits(4.0))
    assert isinstance(round_codec(cfg.replace(mode="ldp"), dim).inner.name, str)  # floats of R^k
    assert models.num_params(models.make_model("cnn", (1, 28, 28), 10, channels=32)) > 20_000
    # the non-private baselines send the clipped update itself, unprojected, whatever the projection setting
    for mode in ("none", "cdp"):
        assert round_codec(cfg.replace(mode=mode), dim).dim == dim and not hasattr(round_codec(cfg.replace(mode=mode), dim), "inner")
    for bad in ({"projection": "fourier"}, {"projection": "srht", "mechanism": "privunit2"},
                {"proj_dim": -1}, {"width": -2}):
        with pytest.raises(ParameterError):
            FLConfig(**bad)
