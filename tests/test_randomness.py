"""Shared randomness: random access, determinism, distribution and seed derivation."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from ldp_rec.errors import ParameterError, StreamError
from ldp_rec.rec import randomness as R


def test_random_access_matches_block():
    keys = R.derive_keys(7, 3, np.arange(4))
    blk = R.block(keys, 10, 300, 37)
    idx = np.array([0, 299, 17, 150])
    one = R.gather(keys, idx + 10, 37)
    np.testing.assert_array_equal(one, blk[np.arange(4), idx])
    s = R.CandidateStream(int(keys[2]), 37)
    np.testing.assert_array_equal(s.candidate(27), blk[2, 17])
    np.testing.assert_array_equal(s.block(10, 300), blk[2])


@pytest.mark.parametrize("width", [64, 65, 1])
def test_project_matches_materialised(width):
    keys = R.derive_keys(1, 1, np.arange(3))
    xs = np.random.default_rng(0).standard_normal((3, width))
    dots, sq = R.project_block(keys, 5, 200, xs)
    blk = R.block(keys, 5, 200, width).astype(np.float64)
    np.testing.assert_allclose(dots, np.einsum("cmd,cd->cm", blk, xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sq, (blk**2).sum(-1), rtol=1e-12)


def test_decoder_touches_one_candidate():
    s = R.CandidateStream(123, 500)
    R.STATS.reset()
    s.candidate(2**20)
    assert R.STATS.candidates == 1


def test_normals_distribution():
    # 2e6 normals: KS (tolerance p > 1e-3), mean, variance, kurtosis and the tail mass beyond r
    z = R.block(R.derive_keys(0, 0, [0, 1]), 0, 2000, 500).astype(np.float64).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 4.5 * se
    assert abs(z.var() - 1) < 4.5 * np.sqrt(2) * se
    assert abs(np.mean(z**4) - 3) < 4.5 * np.sqrt(96) * se
    tail = np.mean(np.abs(z) > 3.442619855899)
    p = 2 * stats.norm.sf(3.442619855899)
    assert abs(tail - p) < 5 * np.sqrt(p / z.size)
    # the two normals of one 64-bit word (coordinates 2j, 2j+1) are independent: correlation of
    # values, of squares and of signs, each within 4.5 standard errors
    a, b = z.reshape(-1, 2).T
    for f in (lambda v: v, lambda v: v * v, np.sign):
        assert abs(np.corrcoef(f(a), f(b))[0, 1]) < 4.5 / np.sqrt(a.size)


def test_uniforms_distribution():
    u = R.block([99], 0, 4000, 50, "uniform").ravel()
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_candidates_independent_across_keys_and_indices():
    blk = R.block(R.derive_keys(0, 0, [0, 1]), 0, 2000, 8).astype(np.float64)
    c = np.corrcoef(blk[0].ravel(), blk[1].ravel())[0, 1]
    assert abs(c) < 5 / np.sqrt(blk[0].size)
    c2 = np.corrcoef(blk[0, :-1].ravel(), blk[0, 1:].ravel())[0, 1]
    assert abs(c2) < 5 / np.sqrt(blk[0].size)


def test_seed_derivation_distinct_and_deterministic():
    keys = {int(R.derive_key(5, r, c, k)) for r in range(20) for c in range(50) for k in range(3)}
    assert len(keys) == 20 * 50 * 3
    assert R.derive_key(5, 1, 2, 0) == R.derive_key(5, 1, 2, 0)
    assert R.derive_key(5, 1, 2, 0, domain="rotation") != R.derive_key(5, 1, 2, 0)
    assert R.derive_key(5, 1, 2) != R.derive_key(6, 1, 2)
    with pytest.raises(ParameterError):
        R.derive_key(1.5, 0, 0)


def test_bad_access_raises():
    s = R.CandidateStream(1, 4, length=16)
    with pytest.raises(StreamError):
        s.candidate(16)
    with pytest.raises(StreamError):
        s.candidate(-1)
    with pytest.raises(StreamError):
        s.block(10, 7)
    with pytest.raises(ParameterError):
        R.CandidateStream(1, 0)
    with pytest.raises(ParameterError):
        R.CandidateStream(1, 4, kind="cauchy")


def test_same_candidates_in_another_process():
    s = R.CandidateStream(int(R.derive_key(3, 4, 5)), 16)
    here = s.candidate(1000)
    code = (
        "import pickle,sys; from ldp_rec.rec import randomness as R; s=pickle.loads(sys.stdin.buffer.read());"
        "sys.stdout.buffer.write(pickle.dumps(s.candidate(1000)))"
    )
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(s), capture_output=True, check=True).stdout
    np.testing.assert_array_equal(pickle.loads(out), here)
