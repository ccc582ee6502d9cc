"""Federated learning: the Flower-free round, seeds, the max-epsilon guard, and Flower simulations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldp_rec.errors import ParameterError
from ldp_rec.fl import federation as F
from ldp_rec.fl import models
from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.server import FederationServer, run_in_process
from ldp_rec.rec import randomness

# seeded private coins: these tests compare replays bit for bit (simulation only)
SMALL = dict(dataset="digits", partition="iid", clients=24, nodes=2, rounds=2, epsilon=4.0, bits=8, private_seed=0)


def _direct_rounds(cfg: FLConfig) -> np.ndarray:
    """The rounds computed with the library alone (no Flower): the one server round, in-process."""
    return run_in_process(cfg)[2].params


def test_rounds_are_reproducible():
    cfg = FLConfig(**{**SMALL, "mode": "ldp-rec", "rounds": 1})
    np.testing.assert_array_equal(_direct_rounds(cfg), _direct_rounds(cfg))
    assert not np.array_equal(_direct_rounds(cfg), _direct_rounds(cfg.replace(seed=1)))


@settings(max_examples=30, deadline=None)
@given(run=st.integers(0, 2**62), rounds=st.integers(1, 6), clients=st.integers(1, 40), chunks=st.integers(1, 3))
def test_seeds_never_reused(run, rounds, clients, chunks):
    keys = [int(k) for r in range(rounds) for c in range(chunks)
            for k in randomness.derive_keys(run, r, np.arange(clients), c)]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("mechanism", ["privunitg", "privunit2", "duchi"])
def test_max_epsilon_budget_is_checked_at_the_real_dimension(mechanism):
    """The per-user budget is planned with the model's real dimension (cap mechanisms on the sphere
    need dim >= 2); a budget that not one participation fits is refused before any work."""
    cfg = FLConfig(**{**SMALL, "mode": "ldp-rec", "mechanism": mechanism, "rounds": 50, "max_epsilon": 100.0})
    assert F.model_dim(cfg) == 650
    FederationServer(cfg)  # 25 participations fit
    with pytest.raises(ParameterError, match="no user could ever take part"):
        FederationServer(cfg.replace(max_epsilon=3.0))
    FederationServer(cfg.replace(mode="none"))  # non-private: nothing to guard


def test_nonfinite_updates_are_privatised_as_zero_and_look_like_any_other(monkeypatch):
    """A user whose update is NaN/Inf sends a payload of the same form and length as every other
    user (the public value 0, privatised), and the server decodes it like any other."""
    cfg = FLConfig(**{**SMALL, "mode": "ldp-rec", "rounds": 1})
    data = F.load_data(cfg)
    params = models.get_flat_params(F.make_fl_model(cfg, data))
    real = F.task.local_updates

    def poisoned(*a, **k):
        U, losses, nex = real(*a, **k)
        U[1, 0] = np.nan
        U[3, 5] = np.inf
        return U, losses, nex

    monkeypatch.setattr(F.task, "local_updates", poisoned)
    res = F.client_round(cfg, params, 1, np.arange(5))
    assert res.replaced == 2
    dec = FederationServer(cfg, params).decode(1, res.frame, np.arange(5))
    assert dec.n_failed == 0 and dec.ok.all() and len(set(dec.bits.tolist())) == 1  # one body length for all
    for mode in ("ldp", "none"):  # float payloads too: same length, all decode
        out = F.client_round(cfg.replace(mode=mode), params, 1, np.arange(5))
        dec = FederationServer(cfg.replace(mode=mode), params).decode(1, out.frame, np.arange(5))
        assert out.replaced == 2 and dec.ok.all() and len(set(dec.bits.tolist())) == 1


@pytest.mark.slow
def test_flower_simulation_matches_library_and_counts_faults():
    from ldp_rec.experiments.fl import run_flower

    cfg = FLConfig(**{**SMALL, "mode": "ldp-rec"})
    captured = {}
    orig = FederationServer.apply

    def spy(self, total, n_ok):
        orig(self, total, n_ok)
        captured["params"] = self.params.copy()

    FederationServer.apply = spy
    try:
        rows, _ = run_flower(cfg)
    finally:
        FederationServer.apply = orig
    assert [r["round"] for r in rows] == [1, 2]
    assert all(r["clients_ok"] == 24 and r["clients_failed"] == 0 and r["nodes_replied"] == 2 for r in rows)
    assert all(r["private_coins"] == [cfg.private_coins] and r["clients_refused"] == 0 for r in rows)
    assert rows[-1]["epsilon_total"] == pytest.approx(8.0)
    assert 0 < rows[0]["payload_bits_per_client"] <= 8
    # the server's decoded aggregate equals the library's codec applied directly, bit for bit
    np.testing.assert_array_equal(captured["params"], _direct_rounds(cfg))
    # a failing node and a corrupted payload are counted, not fatal
    # (with the engine's polling interval shortened: same messages, same result)
    rows, _ = run_flower(cfg.replace(fault="raise,corrupt:17", rounds=1), poll_interval=0.01)
    assert rows[0]["clients_failed"] == 13 and rows[0]["clients_ok"] == 11 and rows[0]["nodes_replied"] == 2


def test_flower_poll_interval_patches_and_restores():
    import sys

    import flwr.server.superlink.fleet.vce.vce_api as vce
    from ldp_rec.tools.flower_poll import flower_poll_interval

    import flwr.simulation.run_simulation  # noqa: F401
    rs = sys.modules["flwr.simulation.run_simulation"]
    grid, extractor = rs.InMemoryGrid, vce.add_messages_to_queue
    with flower_poll_interval(0.02):
        assert rs.InMemoryGrid.keywords == {"pull_interval": 0.02}
        assert vce.add_messages_to_queue is not extractor
    assert rs.InMemoryGrid is grid and vce.add_messages_to_queue is extractor
    with flower_poll_interval(None):
        assert rs.InMemoryGrid is grid
    for bad in (0.0, -1.0, float("nan"), 5.0):
        with pytest.raises(ValueError):
            with flower_poll_interval(bad):
                pass
    assert rs.InMemoryGrid is grid


def test_extractor_sweeps_only_on_change_and_delivers_everything():
    import queue
    import threading
    import time as _time

    from ldp_rec.tools.flower_poll import _extractor, _store_signature

    class FakeState:
        def __init__(self):
            self.message_ins_store = {}
            self.calls = 0

        def get_message_ins(self, node_id, limit):
            self.calls += 1
            out = [k for k, v in self.message_ins_store.items() if v == (node_id, False)][:limit]
            for k in out:
                self.message_ins_store[k] = (node_id, True)
            return out

    st, q, stop = FakeState(), queue.Queue(), threading.Event()
    assert _store_signature(st) == (0, None) and _store_signature(object()) is None
    th = threading.Thread(target=_extractor(0.002), args=(st, q, {1: 0, 2: 1}, stop))
    th.start()
    _time.sleep(0.05)
    idle_calls = st.calls
    assert idle_calls <= 2 * 2  # one sweep (2 nodes) at start, maybe one 0.1 s refresh: no sweep per poll
    st.message_ins_store.update({"a": (1, False), "b": (2, False)})
    got = [q.get(timeout=1.0), q.get(timeout=1.0)]
    stop.set()
    th.join()
    assert sorted(got) == ["a", "b"]


def test_raw_candidate_draw_baseline_counts_the_codec_dimension_and_stops():
    """The timing baseline counts users × 2^bits × (model d, or the projection's k) normals, times a
    bounded sample of them (so a large model does not make it take minutes) and honours Ctrl-C."""
    import threading

    from ldp_rec.experiments.fl import candidate_normals_per_round, raw_candidate_draw_seconds
    from ldp_rec.fl.federation import model_dim

    cfg = FLConfig(dataset="digits", partition="iid", clients=20, mode="ldp-rec", bits=5, epsilon=2.0)
    d = model_dim(cfg)
    assert candidate_normals_per_round(cfg) == 20 * 32 * d
    assert candidate_normals_per_round(cfg.replace(projection="srht", proj_dim=16)) == 20 * 32 * 16
    assert raw_candidate_draw_seconds(cfg, reps=1) > 0
    stop = threading.Event()
    stop.set()
    assert raw_candidate_draw_seconds(cfg, stop=stop) is None
