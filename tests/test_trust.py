"""The trust model (references.md §6): the server is the adversary.

* An adversarial server that knows everything it sees or sends (run config, run seed, round,
  cohort, codec, frames) re-runs a client on two candidate inputs with every seed it can guess
  and compares with the frame it received. With OS-entropy coins it must do no better than ε
  allows (Clopper–Pearson lower bound on ε ≤ the claim); with the old run-seed-derived coins, or
  seeded simulation coins, it wins outright, which shows the attack is real.
* Seeded mode replays bit for bit; OS-entropy mode does not.
* A node's own policy refuses what it does not allow; the server counts the refusal.
* A malicious node's float estimates outside the mechanism's output range are rejected and
  counted, and the run goes on.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, Metadata, RecordDict
from flwr.app.message.message import make_message

from ldp_rec.codec import wire
from ldp_rec.codec.core import binding_keys, cohort_binding
from ldp_rec.fl import federation as F
from ldp_rec.fl import models
from ldp_rec.fl.client_app import build_client_app, handle_train
from ldp_rec.fl.config import PRIVATE_COINS_OS, PRIVATE_COINS_SEEDED, FLConfig
from ldp_rec.fl.policy import NodePolicy
from ldp_rec.fl.server import FederationServer
from ldp_rec.fl.strategy import LdpRecFedAvg
from ldp_rec.privacy.audit import epsilon_lower_bound

BASE = dict(dataset="digits", partition="iid", clients=24, nodes=2, rounds=2, epsilon=1.0, seed=3)


# ----------------------------------------------------------------------------- the adversarial server

def _server_guesses(cfg: FLConfig, rnd: int, start: int):
    """Every private generator a server could reproduce from what it knows: the pre-fix derivation
    (run seed, round, cohort start) and the seeded simulation coins for plausible seeds."""
    yield np.random.default_rng(np.random.SeedSequence([cfg.seed, rnd, start, 13]))
    for s in {cfg.seed, 0, max(cfg.private_seed, 0)}:
        yield np.random.default_rng(F.private_coins(cfg.replace(private_seed=s), rnd, start).spawn(2)[1])


def _attack(observed: bytes, cfg, rnd, start, x, x_alt, guess_rng) -> bool:
    """The server's guess "the input was x" (True) or "x_alt" (False)."""
    for rng_x, rng_alt in zip(_server_guesses(cfg, rnd, start), _server_guesses(cfg, rnd, start)):
        if F.privatize_cohort(cfg, x[None], rnd, [start], rng_x).frame == observed:
            return True
        if F.privatize_cohort(cfg, x_alt[None], rnd, [start], rng_alt).frame == observed:
            return False
    return bool(guess_rng.random() < 0.5)


def _distinguishing_epsilon(client, cfg, trials: int, seed: int) -> tuple[float, int]:
    """Run the game ``trials`` times; return the 95% Clopper–Pearson lower bound on ε (both
    directions) and how often a replayed payload matched exactly."""
    d = F.model_dim(cfg)
    x = np.zeros(d, np.float32)
    x[0] = cfg.clip
    x_alt = -x
    rng = np.random.default_rng(seed)
    truth = rng.random(trials) < 0.5
    said_x = np.empty(trials, bool)
    for t in range(trials):
        rnd = t + 1
        observed = client(cfg, x if truth[t] else x_alt, rnd)
        said_x[t] = _attack(observed, cfg, rnd, 0, x, x_alt, rng)
    n1, n0 = int(truth.sum()), int((~truth).sum())
    k1, k0 = int(said_x[truth].sum()), int(said_x[~truth].sum())
    eps_lb = max(float(epsilon_lower_bound(k1, n1, k0, n0)), float(epsilon_lower_bound(n0 - k0, n0, n1 - k1, n1)))
    return eps_lb, int((said_x == truth).sum())


def _in_process_client(monkeypatch):
    def client(cfg, x, rnd):
        monkeypatch.setattr(F.task, "local_updates", lambda *a, **k: (x[None].copy(), np.zeros(1), np.ones(1)))
        params = np.zeros(F.model_dim(cfg), np.float32)
        return F.client_round(cfg, params, rnd, [0]).frame
    return client


def _train_message(cfg: FLConfig, params: np.ndarray, rnd: int, start: int, stop: int) -> Message:
    md = Metadata(run_id=1, message_id="", src_node_id=0, dst_node_id=7, reply_to_message_id="", group_id=str(rnd),
                  created_at=time.time(), ttl=3600.0, message_type=MessageType.TRAIN)
    return make_message(md, RecordDict({
        "arrays": ArrayRecord({"params": Array(params)}), "config": ConfigRecord(cfg.to_record()),
        "round": ConfigRecord({"server-round": rnd}),
        "users": ArrayRecord({"ids": Array(np.arange(start, stop, dtype=np.int64))})}))


def _context() -> Context:
    return Context(run_id=1, node_id=7, node_config={}, state=RecordDict(), run_config={})


def _clientapp_client(monkeypatch, policy=None):
    ctx = _context()

    def client(cfg, x, rnd):
        monkeypatch.setattr(F.task, "local_updates", lambda *a, **k: (x[None].copy(), np.zeros(1), np.ones(1)))
        msg = _train_message(cfg, np.zeros(F.model_dim(cfg), np.float32), rnd, 0, 1)
        reply = handle_train(msg, ctx, policy or NodePolicy())
        return reply.content["frame"]["frame"].numpy().tobytes()
    return client


@pytest.mark.parametrize("mode", ["ldp", "ldp-rec"])
def test_adversarial_server_cannot_replay_os_entropy_coins(monkeypatch, mode):
    cfg = FLConfig(**BASE, mode=mode, bits=6)
    eps_lb, correct = _distinguishing_epsilon(_in_process_client(monkeypatch), cfg, trials=160, seed=1)
    assert eps_lb <= cfg.epsilon, (eps_lb, correct)
    if mode == "ldp":  # float payloads: a replay with wrong coins never matches, so the server only guesses
        assert 40 <= correct <= 120


def test_adversarial_server_through_the_clientapp(monkeypatch):
    cfg = FLConfig(**BASE, mode="ldp-rec", bits=6)
    eps_lb, _ = _distinguishing_epsilon(_clientapp_client(monkeypatch), cfg, trials=120, seed=2)
    assert eps_lb <= cfg.epsilon


def test_the_attack_is_real_against_coins_the_server_knows(monkeypatch):
    """Seeded (simulation-only) coins: the same server wins every game, far beyond ε."""
    cfg = FLConfig(**BASE, mode="ldp", private_seed=0)
    eps_lb, correct = _distinguishing_epsilon(_in_process_client(monkeypatch), cfg, trials=60, seed=3)
    assert correct == 60 and eps_lb > 2 * cfg.epsilon


# ----------------------------------------------------------------------------- replay and labels

def test_seeded_mode_replays_and_os_entropy_mode_does_not():
    cfg = FLConfig(**BASE, mode="ldp-rec", bits=6)
    params = models.get_flat_params(F.make_fl_model(cfg, F.load_data(cfg)))
    seeded = cfg.replace(private_seed=5)
    ids = np.arange(12)
    assert F.client_round(seeded, params, 1, ids).frame == F.client_round(seeded, params, 1, ids).frame
    assert seeded.private_coins == PRIVATE_COINS_SEEDED and "simulation only" in PRIVATE_COINS_SEEDED
    a, b = F.client_round(cfg, params, 1, ids).frame, F.client_round(cfg, params, 1, ids).frame
    assert a != b and cfg.private_coins == PRIVATE_COINS_OS
    lb = FLConfig(**BASE, mode="ldp")
    state = FederationServer(lb, params)
    ea, eb = (state.decode(1, F.client_round(lb, params, 1, ids).frame, ids).estimates for _ in range(2))
    assert (ea != eb).any(axis=1).all()  # float estimates: every user's noise is fresh


def test_deployment_refuses_seeded_coins():
    from ldp_rec.errors import ParameterError
    from ldp_rec.tools.deploy import run_loopback

    with pytest.raises(ParameterError, match="simulations only"):
        run_loopback(FLConfig(**BASE, mode="ldp-rec", private_seed=0), workdir="/nonexistent/never-created")


# ----------------------------------------------------------------------------- the node's own policy

def _refusal(cfg: FLConfig, policy: NodePolicy, ctx=None):
    params = np.zeros(F.model_dim(cfg), np.float32)
    reply = handle_train(_train_message(cfg, params, 1, 0, 3), ctx or _context(), policy)
    return reply.content["refusal"]["reason"] if "refusal" in reply.content else None


def test_default_policy_refuses_none_high_epsilon_and_seeded_coins(monkeypatch):
    pol = NodePolicy()
    assert "mode 'none'" in _refusal(FLConfig(**BASE, mode="none"), pol)
    assert "exceeds this node's maximum" in _refusal(FLConfig(**{**BASE, "epsilon": 50.0}, mode="ldp-rec"), pol)
    assert "seeded private coins" in _refusal(FLConfig(**BASE, mode="ldp", private_seed=0), pol)
    assert _refusal(FLConfig(**BASE, mode="ldp"), pol) is None
    # a node with its own stricter policy, from the node config (inline JSON) or the environment (a file)
    strict = NodePolicy.from_node({"ldp-rec-policy": '{"modes": ["ldp-rec"], "codecs": ["subset"], '
                                                     '"max_epsilon_round": 2.0}'})
    assert "mode 'ldp'" in _refusal(FLConfig(**BASE, mode="ldp"), strict)
    assert "codec 'modified-mrc'" in _refusal(FLConfig(**BASE, mode="ldp-rec"), strict)
    assert _refusal(FLConfig(**BASE, mode="ldp-rec", codec="subset", bits=6), strict) is None
    from ldp_rec.errors import ParameterError
    with pytest.raises(ParameterError, match="unknown keys"):
        NodePolicy.parse('{"mode": ["ldp"]}')
    with pytest.raises(ParameterError, match="unknown modes"):
        NodePolicy(modes=("raw",))


def test_per_user_budget_on_the_node(tmp_path, monkeypatch):
    """The node's ledger (basic composition) refuses the participation that would pass its cap."""
    path = tmp_path / "policy.toml"
    path.write_text("max_epsilon_user = 2.5\n")
    monkeypatch.setenv("LDP_REC_NODE_POLICY", str(path))
    pol = NodePolicy.from_node({})
    assert pol.max_epsilon_user == 2.5
    cfg = FLConfig(**BASE, mode="ldp")
    ctx = _context()
    assert _refusal(cfg, pol, ctx) is None and _refusal(cfg, pol, ctx) is None  # ε = 1, then 2
    assert "per-user maximum" in _refusal(cfg, pol, ctx)  # 3 > 2.5


def test_server_counts_refusals():
    cfg = FLConfig(**BASE, mode="ldp")
    server = FederationServer(cfg)
    strat = LdpRecFedAvg(server)
    server.plan(1, [11, 22])
    a, b = server.assigned[11], server.assigned[22]
    a0, a1, b0, b1 = a[0], a[-1] + 1, b[0], b[-1] + 1
    good = handle_train(_train_message(cfg, server.params, 1, a0, a1), _context(), NodePolicy())
    refused = handle_train(_train_message(cfg.replace(mode="none"), server.params, 1, b0, b1), _context(), NodePolicy())
    def from_node(reply, node):  # the reply as the server receives it from ``node``
        return SimpleNamespace(metadata=SimpleNamespace(src_node_id=node), content=reply.content,
                               has_error=lambda: False)

    strat.aggregate_train(1, [from_node(good, 11), from_node(refused, 22)])
    row = server._pending
    assert row["clients_ok"] == a1 - a0 and row["clients_refused"] == b1 - b0 and row["clients_failed"] == 0
    assert row["private_coins"] == [PRIVATE_COINS_OS]


def test_frames_of_a_differently_configured_client_fail_the_tag():
    """The codec's configuration is bound into the tag: a client running another ε, mechanism,
    index length or clip cannot have its messages decoded silently into wrongly scaled estimates."""
    cfg = FLConfig(**{**BASE, "epsilon": 4.0}, mode="ldp-rec", bits=8)
    dim = F.model_dim(cfg)
    params = np.zeros(dim, np.float32)
    state = FederationServer(cfg, params)
    ids = np.arange(6)
    assert state.decode(1, F.client_round(cfg, params, 1, ids).frame, ids).ok.all()
    for other in (dict(epsilon=3.5), dict(mechanism="privunit2"), dict(clip=0.25), dict(codec="subset")):
        res = state.decode(1, F.client_round(cfg.replace(**other), params, 1, ids).frame, ids)
        assert not res.ok.any() and all("tag mismatch" in e or "codec id" in e for e in res.errors), other
    assert F.round_codec(cfg, dim).fingerprint != F.round_codec(cfg.replace(epsilon=3.5), dim).fingerprint


# ----------------------------------------------------------------------------- a malicious node

def forged_float_frame(cfg: FLConfig, dim: int, rnd: int, ids, rows: np.ndarray) -> bytes:
    """What a malicious node that knows the run seed and config can send: a well-formed, correctly
    tagged cohort frame of float bodies holding whatever it likes."""
    codec = F.round_codec(cfg, dim)
    ids = np.asarray(ids, dtype=np.int64)
    stream = np.frombuffer(np.ascontiguousarray(rows, dtype="<f4").tobytes(), dtype=np.uint8)
    return wire.pack_cohort(stream, np.full(ids.size, 32 * dim), codec_id=codec.codec_id, chunks=1, clients=ids,
                            user_bindings=binding_keys(cfg.seed, rnd, ids, codec.fingerprint),
                            cohort_binding=cohort_binding(cfg.seed, rnd, codec.fingerprint), fixed=True)


@pytest.mark.parametrize("mode", ["ldp", "none"])
def test_out_of_range_float_estimates_are_rejected(mode):
    cfg = FLConfig(**BASE, mode=mode)
    dim = F.model_dim(cfg)
    state = FederationServer(cfg, np.zeros(dim, np.float32))
    honest = state.decode(1, F.client_round(cfg, state.params, 1, np.arange(4)).frame, np.arange(4))
    assert honest.ok.all()
    bound = F.round_codec(cfg, dim).output_norm_bound()
    assert np.isfinite(bound)
    rows = np.zeros((4, dim))
    rows[0, 0] = 1e6
    rows[1, :] = np.finfo(np.float32).max
    rows[2, 3] = np.nan
    rows[3, 0] = 0.5 * bound  # inside the range: accepted
    forged = forged_float_frame(cfg, dim, 1, np.arange(8), np.vstack([honest.estimates, rows]))
    res = state.decode(1, forged, np.arange(8))
    assert list(res.ok) == [True] * 4 + [False, False, False, True]
    assert "output range" in res.errors[4] and "NaN or Inf" in res.errors[5] + res.errors[6]
    assert np.isfinite(res.estimates).all()


@pytest.mark.slow
def test_malicious_node_is_counted_and_the_run_completes():
    """Flower simulation, 2 nodes: the node hosting user 0 replaces its frame by huge and
    non-finite float estimates; its users are counted as failed and the model stays finite."""
    from ldp_rec.experiments.fl import run_flower
    from ldp_rec.fl.client_app import pack_frame

    cfg = FLConfig(**BASE, mode="ldp")
    honest = build_client_app(NodePolicy.simulation())
    from flwr.clientapp import ClientApp

    malicious = ClientApp()

    @malicious.train()
    def train(msg, context):
        reply = handle_train(msg, context, NodePolicy.simulation())
        ids = msg.content["users"]["ids"].numpy()
        if 0 in ids:
            dim = msg.content["arrays"]["params"].numpy().size
            rows = np.full((ids.size, dim), 1e6)
            rows[0] = np.finfo(np.float32).max
            rows[1, 0] = np.nan
            forged = forged_float_frame(cfg, dim, int(msg.content["round"]["server-round"]), ids, rows)
            reply.content["frame"] = pack_frame(forged)
        return reply

    rows, _ = run_flower(cfg, client_app=malicious)
    assert [r["round"] for r in rows] == [1, 2]
    for r in rows:
        assert r["clients_failed"] == 12 and r["clients_ok"] == 12 and r["nodes_replied"] == 2
        assert np.isfinite(r["accuracy"]) and np.isfinite(r["loss"])
    del honest


@pytest.mark.slow
def test_default_node_policy_refuses_mode_none_in_a_flower_run():
    from ldp_rec.experiments.fl import run_flower

    from ldp_rec.errors import RunFailedError

    # every node refuses, so no update is decoded: the run has no result and says why (the per-round
    # refusal counts are tested without Flower in test_server_counts_refusals)
    with pytest.raises(RunFailedError, match="mode 'none' is not allowed by this node's policy"):
        run_flower(FLConfig(**{**BASE, "rounds": 1}, mode="none"), client_app=build_client_app(NodePolicy()))
