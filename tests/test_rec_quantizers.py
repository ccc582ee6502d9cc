"""Dithered and layered quantisers: exact error laws (KS, large n), round trip, bad input."""

import numpy as np
import pytest
from scipy import stats

from ldp_rec.errors import DecodeError, InputError, ParameterError
from ldp_rec.rec import randomness as R
from ldp_rec.rec.quantizers import (
    DitheredQuantizer,
    LayeredQuantizer,
    elias_gamma_bits,
    index_entropy_bits,
)

KEYS = R.derive_keys(3, 0, np.arange(400), domain="quantizer")
D = 500  # 400 clients × 500 coordinates = 2e5 errors per KS test (reject at p < 1e-3)


def _inputs():
    return np.random.default_rng(0).normal(2.0, 5.0, (KEYS.size, D))


def test_dithered_error_uniform():
    q = DitheredQuantizer(0.7)
    y = _inputs()
    K = q.encode(y, KEYS)
    err = (q.decode(K, KEYS) - y).ravel()
    assert np.all(np.abs(err) <= 0.35 + 1e-12)
    assert stats.kstest(err, stats.uniform(-0.35, 0.7).cdf).pvalue > 1e-3
    assert abs(np.corrcoef(err, y.ravel())[0, 1]) < 5 / np.sqrt(err.size)  # independent of the input


@pytest.mark.parametrize("noise,scale,dist", [
    ("gaussian", 0.8, stats.norm(0, 0.8)),
    ("laplace", 0.5, stats.laplace(0, 0.5)),
])
def test_layered_error_exact(noise, scale, dist):
    q = LayeredQuantizer(noise, scale)
    y = _inputs()
    K = q.encode(y, KEYS)
    err = (q.decode(K, KEYS) - y).ravel()
    assert stats.kstest(err, dist.cdf).pvalue > 1e-3
    assert abs(err.var() / q.error_variance() - 1) < 0.02
    assert abs(np.corrcoef(err, y.ravel())[0, 1]) < 5 / np.sqrt(err.size)
    # a wrong layer law (e.g. half-width scaled by 1.05) is rejected by the same test
    U, w = q.layer(KEYS, D)
    wrong = 2.1 * w * (np.rint(y / (2.1 * w) + U) - U) - y
    assert stats.kstest(wrong.ravel(), dist.cdf).pvalue < 1e-6


def test_round_trip_and_shapes():
    q = LayeredQuantizer("gaussian", 1.0)
    y = _inputs()[:5]
    K = q.encode(y, KEYS[:5])
    assert K.dtype == np.int64 and K.shape == y.shape
    np.testing.assert_array_equal(q.decode(K, KEYS[:5]), q.decode(K.copy(), KEYS[:5]))
    one = q.encode(y[2], KEYS[2:3])
    np.testing.assert_array_equal(one, K[2])
    np.testing.assert_array_equal(q.decode(one, KEYS[2:3]), q.decode(K, KEYS[:5])[2])


def test_bits():
    K = LayeredQuantizer("laplace", 1.0).encode(_inputs(), KEYS)
    h = index_entropy_bits(K)
    assert 0 < h < np.mean(elias_gamma_bits(K))
    np.testing.assert_array_equal(elias_gamma_bits([0, -1, 1, -2]), [1, 3, 3, 5])


def test_bad_input():
    with pytest.raises(ParameterError):
        DitheredQuantizer(0.0)
    with pytest.raises(ParameterError):
        LayeredQuantizer("cauchy", 1.0)
    with pytest.raises(ParameterError):
        LayeredQuantizer("gaussian", -1.0)
    with pytest.raises(InputError):
        DitheredQuantizer(1.0).encode(np.array([1.0, np.nan]), KEYS[:1])
    with pytest.raises(DecodeError):
        DitheredQuantizer(1.0).decode(np.array([0.5, 1.0]), KEYS[:1])
    assert DitheredQuantizer.transcript.kind == "unbounded"
