"""The server strategy: FedAvg's round structure, with decoding of LDP-REC payloads.

:class:`LdpRecFedAvg` derives from Flower's ``FedAvg``. ``configure_train`` assigns every node a
cohort of user ids (see :mod:`.federation`); ``aggregate_train`` decodes each reply with the
cohort the server assigned to the reply's *source node* (message metadata, not payload),
averages the unbiased estimates of all users whose payload decoded, applies the server
learning rate (and momentum), and records the round. Failed nodes (error replies), missing
replies (Ray can drop a reply silently: replies are counted against the nodes sampled), bad
payloads, estimates outside the mechanism's output range (a malicious node's float estimates)
and refusals (a node whose own policy rejected the request, :mod:`.policy`) are counted and
logged, never fatal. Each row records where the nodes said their private coins came from.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import sample_nodes

from ..codec import wire
from .federation import ServerState, cohorts, load_data

log = logging.getLogger("ldp_rec.fl")


def params_record(params: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"params": Array(np.asarray(params, dtype=np.float32))})


def unpack_payloads(record: ArrayRecord) -> list[bytes]:
    blob = record["blob"].numpy().tobytes()
    lengths = record["lengths"].numpy().astype(np.int64)
    if lengths.ndim != 1 or np.any(lengths < 0) or lengths.sum() != len(blob):
        raise ValueError("malformed payload record")
    ends = np.cumsum(lengths)
    return [blob[e - n : e] for e, n in zip(ends, lengths)]


class LdpRecFedAvg(FedAvg):
    def __init__(self, state: ServerState, on_round=None) -> None:
        n = state.cfg.nodes
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
        self.state = state
        self.on_round = on_round
        self.rows: list[dict] = []
        self._assigned: dict[int, tuple[int, int]] = {}
        self._t0 = 0.0
        self.n_users = load_data(state.cfg).users.num_users

    def configure_train(self, server_round, arrays, config, grid):
        self._t0 = time.perf_counter()
        n = self.state.cfg.nodes
        node_ids, _ = sample_nodes(grid, n, n)  # waits until all nodes are connected; all take part
        self._assigned = cohorts(self.n_users, node_ids)
        base = {**self.state.cfg.to_record(), "server-round": server_round}
        msgs = []
        for node, (start, stop) in self._assigned.items():
            conf = ConfigRecord({**base, "users-start": start, "users-stop": stop})
            rec = RecordDict({"arrays": params_record(self.state.params), "config": conf})
            msgs.append(Message(content=rec, message_type=MessageType.TRAIN, dst_node_id=node))
        return msgs

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        total = np.zeros(self.state.params.size)
        n_ok = n_failed = n_refused = 0
        bits, nbytes = [], []
        seen, coins = set(), set()
        for msg in replies:
            node = msg.metadata.src_node_id
            if node not in self._assigned or node in seen:
                log.warning("round %d: reply from unexpected or duplicate node %s ignored", server_round, node)
                continue
            seen.add(node)
            start, stop = self._assigned[node]
            if msg.has_error():
                log.warning("round %d: node %s failed: %s", server_round, node, msg.error.reason)
                n_failed += stop - start
                continue
            if "refusal" in msg.content:
                log.warning("round %d: node %s refused: %s", server_round, node,
                            msg.content["refusal"].get("reason", "?"))
                n_refused += stop - start
                continue
            try:
                coins.add(str(msg.content["coins"]["private-coins"]))
                payloads = unpack_payloads(msg.content["payloads"])
                res = self.state.decode(server_round, payloads, start, stop)
            except Exception as exc:  # a malformed reply fails its node's cohort, not the round
                log.warning("round %d: node %s sent a malformed reply: %s", server_round, node, exc)
                n_failed += stop - start
                continue
            total += res.estimates[res.ok].sum(axis=0)
            n_ok += int(res.ok.sum())
            n_failed += res.n_failed
            for p, ok in zip(payloads, res.ok):
                if ok:
                    bits.append(wire.unpack_header_nbits(p))
                    nbytes.append(len(p))
        missing = [n for n in self._assigned if n not in seen]
        for node in missing:
            start, stop = self._assigned[node]
            log.warning("round %d: no reply from node %s (%d users)", server_round, node, stop - start)
            n_failed += stop - start
        self.state.apply(total, n_ok)
        eps_round, eps_basic, eps_pld = self.state.account()
        self._pending = {
            "round": server_round, "clients_ok": n_ok, "clients_failed": n_failed, "clients_refused": n_refused,
            "private_coins": sorted(coins),
            "nodes_sampled": len(self._assigned), "nodes_replied": len(seen),
            "payload_bits_per_client": float(np.mean(bits)) if bits else 0.0,
            "message_bytes_per_client": float(np.mean(nbytes)) if nbytes else 0.0,
            "epsilon_round": eps_round, "epsilon_total": eps_basic, "epsilon_total_pld": eps_pld,
        }
        return params_record(self.state.params), MetricRecord({"clients-ok": n_ok, "clients-failed": n_failed})

    def record_evaluation(self, server_round: int, loss: float, accuracy: float) -> None:
        row = {**getattr(self, "_pending", {"round": server_round}), "accuracy": accuracy, "loss": loss,
               "seconds": time.perf_counter() - self._t0}
        self.rows.append(row)
        if self.on_round is not None:
            self.on_round(row)
