"""The server strategy survives missing replies (a node that disconnects mid-round), error replies,
garbage and replayed frames: each is counted, never fatal, and the round goes on."""

from types import SimpleNamespace

import numpy as np

from ldp_rec.fl import federation as F
from ldp_rec.fl.client_app import pack_frame
from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.server import FederationServer
from ldp_rec.fl.strategy import LdpRecFedAvg


class FakeReply:
    def __init__(self, node, frame=None, error=None):
        self.metadata = SimpleNamespace(src_node_id=node)
        self.error = SimpleNamespace(reason=error)
        self.content = ({"frame": pack_frame(frame), "coins": {"private-coins": "os-entropy"}}
                        if frame is not None else {})

    def has_error(self):
        return self.error.reason is not None


def _setup():
    cfg = FLConfig(dataset="digits", partition="iid", clients=30, nodes=3, rounds=3, mode="ldp-rec", bits=6)
    server = FederationServer(cfg)
    strat = LdpRecFedAvg(server)
    server.plan(1, [11, 22, 33])
    return cfg, server, strat


def test_missing_error_garbage_and_replayed_replies_are_counted():
    cfg, server, strat = _setup()
    a, b, c = server.assigned[11], server.assigned[22], server.assigned[33]
    r1 = F.client_round(cfg, server.params, 1, a).frame
    r2 = F.client_round(cfg, server.params, 2, b).frame
    garbage = b"\x02\x01garbage"
    before = server.params.copy()
    # round 2: node 11 replays its round-1 frame, node 22 sends garbage, node 33 never replies
    strat.aggregate_train(2, [FakeReply(11, r1), FakeReply(22, garbage)])
    row = server._pending
    assert row["clients_ok"] == 0 and row["clients_failed"] == 30
    assert row["nodes_sampled"] == 3 and row["nodes_replied"] == 2
    np.testing.assert_array_equal(server.params, before)  # nothing decoded, nothing applied
    assert server.ledger.counts.sum() == 0  # nobody charged: no message decoded
    # round 2 again: an honest node, an error reply and a reply from a node never sampled
    strat.aggregate_train(2, [FakeReply(22, r2), FakeReply(33, error="disconnected"), FakeReply(99, r2)])
    row = server._pending
    assert row["clients_ok"] == b.size and row["clients_failed"] == a.size + c.size
    assert not np.array_equal(server.params, before)
    assert server.ledger.counts[b].tolist() == [1] * b.size and server.ledger.counts.sum() == b.size


def test_malformed_payload_record_fails_its_node_only():
    cfg, server, strat = _setup()
    a = server.assigned[11]
    good = F.client_round(cfg, server.params, 1, a).frame
    bad = FakeReply(22, b"x")  # truncated frame
    strat.aggregate_train(1, [FakeReply(11, good), bad])
    row = server._pending
    assert row["clients_ok"] == a.size and row["clients_failed"] == 30 - a.size
