"""Populations, sampled cohorts, per-user ledgers and the central-DP baseline (one server round)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ldp_rec.codec import wire
from ldp_rec.errors import ParameterError
from ldp_rec.fl import federation as F
from ldp_rec.fl.cohort import assign, sample_cohort
from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.server import FederationServer, Reply, run_in_process
from ldp_rec.privacy.events import PureEvent
from ldp_rec.privacy.ledger import UserLedger, dpfedavg_epsilon, dpfedavg_noise_multiplier

BASE = dict(dataset="digits", partition="iid", clients=60, nodes=2, rounds=3, epsilon=1.0, private_seed=0)


# ----------------------------------------------------------------------------- samplers
@pytest.mark.parametrize("sampling", ["poisson", "fixed"])
def test_samplers_have_the_right_marginals(sampling):
    """Every user's inclusion count over R rounds is Binomial(R, q): a dispersion χ² test of the
    counts (p > 1e-3) and a z-test of the mean cohort size (4 SE) catch a wrong rate."""
    U, R, q = 400, 300, 0.15
    rng = np.random.default_rng(12)
    counts = np.zeros(U)
    sizes = []
    for _ in range(R):
        c = sample_cohort(U, sampling=sampling, cohort_size=int(q * U), rate=q, rng=rng)
        assert np.all(np.diff(c) > 0)  # sorted, distinct
        counts[c] += 1
        sizes.append(c.size)
    stat = np.sum((counts - R * q) ** 2) / (R * q * (1 - q))
    df = U if sampling == "poisson" else U - 1
    assert stats.chi2.sf(stat, df) > 1e-3 and stats.chi2.cdf(stat, df) > 1e-3
    if sampling == "fixed":
        assert set(sizes) == {int(q * U)}
    else:
        assert abs(np.mean(sizes) - q * U) < 4 * math.sqrt(q * (1 - q) * U / R)
    # a sampler at rate 1.3q is caught by the same test
    wrong = np.zeros(U)
    for _ in range(R):
        wrong[sample_cohort(U, sampling="poisson", rate=1.3 * q, rng=rng)] += 1
    assert stats.chi2.sf(np.sum((wrong - R * q) ** 2) / (R * q * (1 - q)), U) < 1e-6


def test_cohort_is_independent_of_the_nodes_and_only_eligible_users_are_sampled():
    rng = np.random.default_rng(0)
    eligible = np.zeros(100, bool)
    eligible[::3] = True
    c = sample_cohort(100, sampling="all", eligible=eligible, rng=rng)
    assert np.array_equal(c, np.arange(0, 100, 3))
    parts = assign(c, [7, 3, 11])
    assert sorted(parts) == [3, 7, 11] and np.array_equal(np.concatenate([parts[3], parts[7], parts[11]]), c)
    assert all(np.all(eligible[sample_cohort(100, sampling="poisson", rate=0.5, eligible=eligible, rng=rng)])
               for _ in range(20))
    with pytest.raises(ParameterError):
        sample_cohort(10, sampling="bogus", rng=rng)


# ----------------------------------------------------------------------------- ledger
def test_user_epsilon_equals_a_hand_composed_pld():
    from dp_accounting.pld import privacy_loss_distribution as pld

    led = UserLedger(6, PureEvent(1.0), 1e-5)
    led.charge([0, 1, 2])
    led.charge([1, 2])
    led.charge([2])
    eps = led.user_epsilons()
    for u, k in enumerate([1, 2, 3, 0, 0, 0]):
        want = 0.0 if k == 0 else pld.from_privacy_parameters(
            pld.common.DifferentialPrivacyParameters(1.0, 0.0), value_discretization_interval=1e-4
        ).self_compose(k).get_epsilon_for_delta(1e-5)
        assert eps[u] == pytest.approx(want, rel=1e-3, abs=1e-6), (u, k)
    s = led.summary()
    assert s["epsilon_user_max"] == eps[2] and s["epsilon_user_median"] == pytest.approx(np.median(eps))
    assert led.distribution()["users"] == [3, 1, 1, 1]


def test_budget_retires_users_and_they_are_never_sampled_again():
    cfg = FLConfig(**{**BASE, "rounds": 6, "max_epsilon": 2.5}, mode="ldp", sampling="poisson", sample_rate=0.6)
    rows, _, server = run_in_process(cfg)
    counts = server.ledger.counts
    assert counts.max() == 2  # ε = 1 per participation, budget 2.5: at most 2 participations
    assert rows[-1]["users_retired"] == int((counts == 2).sum()) > 0
    assert [r["users_retired"] for r in rows] == sorted(r["users_retired"] for r in rows)
    assert rows[-1]["epsilon_user_max"] <= 2.5 and rows[-1]["epsilon_total_pld"] == rows[-1]["epsilon_user_max"]
    assert all(r["cohort_size"] == r["clients_ok"] for r in rows)


def test_ledger_charges_only_decoded_users():
    cfg = FLConfig(**BASE, mode="ldp-rec", bits=6)
    server = FederationServer(cfg)
    server.plan(1, [1, 2])
    a = server.assigned[1]
    frame = bytearray(F.client_round(cfg, server.params, 1, a).frame)
    frame[wire.user_tag_offset(frame, 0, n=a.size)] ^= 1  # corrupt one user's message
    row = server.finish(1, {1: Reply(frame=bytes(frame), coins="os-entropy")})  # node 2 never replies
    assert row["clients_ok"] == a.size - 1 and row["clients_failed"] == cfg.clients - a.size + 1
    assert server.ledger.counts.sum() == a.size - 1 and server.ledger.counts[a[0]] == 0


# ----------------------------------------------------------------------------- central DP
def test_dpfedavg_epsilon_matches_dp_accounting():
    import dp_accounting

    for q, sigma, T in ((0.35, 1.0, 100), (0.01, 0.8, 500), (1.0, 5.0, 20)):
        ours = dpfedavg_epsilon(sample_rate=q, noise_multiplier=sigma, rounds=T, delta=1e-5)
        acc = dp_accounting.rdp.RdpAccountant()
        acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), T)
        assert ours == pytest.approx(acc.get_epsilon(1e-5), rel=0.03), (q, sigma, T)
    s = dpfedavg_noise_multiplier(target_epsilon=4.0, sample_rate=0.35, rounds=100, delta=1e-5)
    assert dpfedavg_epsilon(sample_rate=0.35, noise_multiplier=s, rounds=100, delta=1e-5) <= 4.0
    assert dpfedavg_epsilon(sample_rate=0.35, noise_multiplier=0.99 * s, rounds=100, delta=1e-5) > 4.0


def test_cdp_round_is_dpfedavg():
    """Clipped sum + N(0, σ²C²) over the expected cohort size q·U; every user has the same ε."""
    cfg = FLConfig(**{**BASE, "rounds": 2}, mode="cdp", sampling="poisson", sample_rate=0.5, noise_multiplier=2.0)
    server = FederationServer(cfg)
    server.plan(1, [1, 2])
    replies, total = {}, np.zeros(server.params.size)
    for node, users in server.assigned.items():
        res = F.client_round(cfg, server.params, 1, users)
        replies[node] = Reply(frame=res.frame, coins=cfg.private_coins)
        total += server.decode(1, res.frame, users).estimates.sum(0)
    before = server.params.copy()
    noise_rng = np.random.default_rng(np.random.SeedSequence([cfg.private_seed, 0x5E]))
    row = server.finish(1, replies)
    want = before + cfg.server_lr * (total + noise_rng.normal(0, 2.0 * cfg.clip, total.shape)) / (0.5 * 60)
    np.testing.assert_allclose(server.params, want.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert row["epsilon_user_max"] == row["epsilon_user_median"] == pytest.approx(
        dpfedavg_epsilon(sample_rate=0.5, noise_multiplier=2.0, rounds=1, delta=cfg.delta))
    # calibrated: the run's total ε is the target
    cal = FederationServer(cfg.replace(noise_multiplier=0.0, epsilon=3.0))
    assert dpfedavg_epsilon(sample_rate=0.5, noise_multiplier=cal.sigma, rounds=2, delta=cfg.delta) <= 3.0


# ----------------------------------------------------------------------------- config
def test_unknown_run_config_key_is_an_error():
    rec = FLConfig().to_record()
    assert FLConfig.from_record(rec) == FLConfig()
    with pytest.raises(ParameterError, match="unknown run-config keys"):
        FLConfig.from_record({**rec, "epsilom": 3.0})
    with pytest.raises(ParameterError):
        FLConfig(sampling="poisson")  # no rate
    with pytest.raises(ParameterError):
        FLConfig(nodes=2, min_nodes=3)


# ----------------------------------------------------------------------------- nodes and the command line
class _Grid:
    """A grid whose nodes connect and vanish on a schedule of calls."""

    def __init__(self, schedule):
        self.schedule, self.calls = schedule, 0

    def get_node_ids(self):
        self.calls += 1
        return self.schedule[min(self.calls - 1, len(self.schedule) - 1)]


def test_a_round_goes_on_with_the_nodes_it_has():
    from ldp_rec.fl.strategy import wait_for_nodes

    # all 3 nodes come: no waiting beyond that
    assert wait_for_nodes(_Grid([[1], [1, 2], [3, 2, 1]]), 3, 1, wait_s=60, poll_s=0.001) == [1, 2, 3]
    # one node is gone for good: after the wait the round goes on with the 2 present
    assert wait_for_nodes(_Grid([[1, 2]]), 3, 2, wait_s=0.05, poll_s=0.001) == [1, 2]
    # below the minimum it keeps waiting until enough nodes are back
    g = _Grid([[1]] * 30 + [[1, 5]])
    assert wait_for_nodes(g, 3, 2, wait_s=0.0, poll_s=0.001) == [1, 5] and g.calls == 31
    # the server assigns the whole cohort to the nodes present and counts the missing one
    server = FederationServer(FLConfig(**{**BASE, "nodes": 3}, mode="ldp"))
    assigned = server.plan(1, [1, 2])
    assert sum(u.size for u in assigned.values()) == 60 and server.nodes_missing == 1


def test_every_config_field_is_a_command_line_option_and_a_run_config_key():
    import dataclasses
    import tomllib
    from pathlib import Path

    from ldp_rec.cli import build_parser

    parser = build_parser("fl")
    fl = parser._subparsers._group_actions[0].choices["fl"]
    opts = {o for a in fl._actions for o in a.option_strings}
    declared = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = declared["tool"]["flwr"]["app"]["config"]
    for f in dataclasses.fields(FLConfig):
        key = f.name.replace("_", "-")
        assert key in declared, key
        if f.name != "fault":
            assert "--" + key in opts, key
    args = parser.parse_args(["fl", "--sampling", "poisson", "--sample-rate", "0.3", "--clients", "100",
                              "--partition", "iid", "--max-epsilon", "12"])
    from ldp_rec.experiments.fl import config_from_args

    cfg = config_from_args(args, "ldp-rec")
    assert (cfg.sampling, cfg.sample_rate, cfg.clients, cfg.max_epsilon) == ("poisson", 0.3, 100, 12.0)


def test_result_files_are_strict_json(tmp_path):
    """Non-finite numbers (a non-private mode's ε, cdp's per-round ε) are written as null, so any strict
    JSON parser reads the file; the report renders them as a dash."""
    import json

    from ldp_rec.experiments.report import _fmt
    from ldp_rec.experiments.results import write_result

    p = write_result(tmp_path / "r.json", {"a": float("inf"), "b": [1.0, float("nan")], "c": np.float64("-inf"),
                                           "d": np.array([0.5, np.inf])})
    obj = json.loads(p.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert obj["a"] is None and obj["b"] == [1.0, None] and obj["c"] is None and obj["d"] == [0.5, None]
    assert _fmt(None, ".3g") == "–" and _fmt(float("inf"), ".3g") == "–" and _fmt(2.0, ".3g") == "2"
