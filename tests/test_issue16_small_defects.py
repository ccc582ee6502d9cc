"""Issue 16, smaller defects: bench step counts independent of --trials, dme refuses --blocks with
--codec none/native, and the chunked closed-form MSE. Fixed seeds; z-tests at 4.5 SE."""

import numpy as np
import pytest

from ldp_rec.cli import main
from ldp_rec.errors import ParameterError
from ldp_rec.experiments.bench import bench_target
from ldp_rec.experiments.dme import chunked_closed_form_mse, dme_data, run_dme
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.rec.pfr import PFR
from ldp_rec.rec.ppr import PPR


def test_bench_step_counts_do_not_depend_on_the_number_of_trials():
    """Each trial stops at its own ratio bound: PFR (deterministic given the shared streams) takes exactly the
    same steps for trial j whatever --trials is; PPR's steps on ordinary targets do not grow when one extreme
    target joins the batch (with the batch-wide bound they grew ~e^{5.6}-fold)."""
    small, large = bench_target(0.1, 50), bench_target(0.1, 400)
    np.testing.assert_array_equal(small.mu, large.mu[:50])
    s_small = [m.steps for m in PFR().encode(small)]
    s_large = [m.steps for m in PFR().encode(large)]
    assert s_small == s_large[:50]
    base = bench_target(0.1, 400)
    with_outlier = type(base)(np.append(base.mu, 1.2), base.s[0], np.append(base.keys, np.uint64(7)))
    for sim in (PFR(), PPR(alpha=2.0)):
        a = np.array([m.steps for m in sim.encode(base, rng=1)])
        b = np.array([m.steps for m in sim.encode(with_outlier, rng=1)])[:400]
        assert b.mean() < 1.3 * a.mean(), (sim.name, a.mean(), b.mean())


def test_dme_refuses_chunking_without_a_channel_simulator(capsys):
    for codec in ("none", "native"):
        mech = "rrsc" if codec == "native" else "privunitg"
        with pytest.raises(ParameterError, match="blocks"):
            run_dme(mechanism=mech, codec=codec, epsilon=1.0, dim=8, clients=10, trials=1, blocks=2)
        with pytest.raises(ParameterError, match="repetitions"):
            run_dme(mechanism=mech, codec=codec, epsilon=1.0, dim=8, clients=10, trials=1, repetitions=2)
    rc = main(["dme", "--mechanism", "privunitg", "--codec", "none", "--epsilon", "1", "--dim", "8",
               "--clients", "10", "--trials", "1", "--blocks", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--blocks" in err


def test_closed_form_is_the_chunked_value():
    X = dme_data(300, 8, rng=0)
    mech = PrivUnitG(epsilon=2.0, dim=8)
    assert chunked_closed_form_mse(mech, X) == pytest.approx(mech.expected_mse())
    # blocks of 4 coordinates at ε/2 each, per-user norms of the blocks, two repetitions averaged
    per_user = [sum(PrivUnitG(epsilon=0.5, dim=4).expected_mse(norm=float(np.linalg.norm(x[c])))
                    for c in (slice(0, 4), slice(4, 8))) / 2 for x in X]
    assert chunked_closed_form_mse(mech, X, blocks=2, repetitions=2) == pytest.approx(np.mean(per_user), rel=1e-12)
    # and dme reports it: PPR is exact, so the measured per-user error matches the chunked closed form
    res = run_dme(mechanism="privunitg", codec="ppr", epsilon=2.0, dim=8, clients=1500, trials=2, blocks=2)
    closed = res["mse_uncompressed_closed_form"] * 1500
    assert closed == pytest.approx(chunked_closed_form_mse(mech, dme_data(1500, 8, rng=np.random.SeedSequence([0, 0, 1])),
                                                           blocks=2), rel=0.02)
    assert closed > 1.2 * mech.expected_mse()  # the unchunked value it used to report
    assert abs(res["per_user_mse"] - closed) < 4.5 * res["per_user_mse_sem"]
