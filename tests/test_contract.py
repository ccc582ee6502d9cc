"""The shared contract every mechanism and every codec passes (house rule 5)."""

import numpy as np
import pytest

from ldp_rec.codec.registry import CODECS, MECHANISMS, make_codec, make_mechanism
from ldp_rec.errors import IncompatibleError, InputError, ParameterError
from ldp_rec.mechanisms.base import RatioMechanism

D = 16


def _inputs(name, n, seed):
    X = np.random.default_rng(seed).standard_normal((n, D))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    if name == "laplace":
        X /= np.abs(X).sum(axis=1, keepdims=True)
    return X * 0.9


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_bad_input_raises(name):
    with pytest.raises(ParameterError):
        make_mechanism(name, epsilon=0.0, dim=D)
    with pytest.raises(ParameterError):
        make_mechanism(name, epsilon=-1.0, dim=D)
    mech = make_mechanism(name, epsilon=2.0, dim=D)
    for bad in (np.full(D, np.nan), np.full(D, np.inf), np.ones(D + 1), np.ones((2, 3, D))):
        with pytest.raises(InputError):
            mech.privatize(bad, rng=0)


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_unbiased_and_mse(name):
    """z-test of the mean and the empirical MSE against expected_mse for a unit-norm input."""
    mech = make_mechanism(name, epsilon=2.0, dim=D)
    n = 40000
    x = _inputs(name, 1, 3)[0] / 0.9
    Z = mech.privatize(np.tile(x, (n, 1)), rng=4)
    se = Z.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(Z.mean(0) - x) < 4.5 * se)
    mse = np.sum((Z - x) ** 2, axis=1)
    rel_se = mse.std() / np.sqrt(n) / mse.mean()
    expected = mech.expected_mse()
    if name == "sqkr":  # expected_mse is an upper bound at the boundary (exact for k = 1)
        assert mse.mean() <= expected * (1 + 5 * rel_se)
    else:
        assert abs(mse.mean() / expected - 1) < max(0.03, 5 * rel_se)


@pytest.mark.parametrize("name", [n for n in sorted(MECHANISMS) if n not in ("sqkr", "sqkr-faithful", "rrsc")])
def test_log_ratio_spread_at_most_epsilon(name):
    eps = 1.5
    mech = make_mechanism(name, epsilon=eps, dim=D)
    if not isinstance(mech, RatioMechanism):
        pytest.skip(f"{name} has no density ratio (its own code; privacy tested in its module)")
    lo, hi = mech.log_ratio_bounds()
    if mech.guarantee.delta > 0:
        assert lo == -np.inf and hi == np.inf  # (ε, δ): unbounded ratio
        return
    assert hi - lo <= eps + 1e-9
    rng = np.random.default_rng(0)
    U = mech.prepare(_inputs(name, 64, 1), rng=rng)
    U = np.concatenate([U, -U])  # adversarial pairs u, −u
    z = mech.reference.sample(4000, rng=rng)
    lr = np.stack([mech.log_ratio(z, u) for u in U])  # (2·64, 4000)
    spread = lr.max(axis=0) - lr.min(axis=0)
    assert spread.max() <= eps + 1e-9
    if hasattr(mech, "cap_mass"):  # cap mechanisms attain the bound on these pairs: the test has power
        assert spread.max() >= 0.99 * (hi - lo) - 1e-9


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_round_trip_and_bad_payload(codec):
    mech = "rrsc" if codec == "native" else "privunitg"
    try:
        cod = make_codec(mech, codec, epsilon=2.0, dim=D, bits=4 if codec in ("native", "mrc", "modified-mrc", "orc") else None)
    except IncompatibleError as exc:
        pytest.fail(f"{codec} should accept {mech}: {exc}")
    X = _inputs(mech, 8, 5)
    ids = np.arange(8)
    p = cod.encode(X, run_seed=1, round=3, clients=ids, rng=0)
    r1 = cod.decode(p, run_seed=1, round=3, clients=ids)
    r2 = cod.decode(list(p), run_seed=1, round=3, clients=ids)
    assert r1.ok.all()
    np.testing.assert_array_equal(r1.estimates, r2.estimates)
    bad = [q[: len(q) // 2] for q in p[:4]] + p[4:]
    r3 = cod.decode(bad, run_seed=1, round=3, clients=ids)
    assert list(r3.ok) == [False] * 4 + [True] * 4
    np.testing.assert_array_equal(r3.estimates[4:], r1.estimates[4:])
