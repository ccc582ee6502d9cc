"""The server strategy: thin Flower glue over :class:`~ldp_rec.fl.server.FederationServer`.

:class:`LdpRecFedAvg` derives from Flower's ``FedAvg`` for its round structure only.
``configure_train`` waits for the nodes (at most :data:`NODE_WAIT_S` after the first round, then
goes on with those present if at least ``min_nodes``), lets the server sample and assign the
round's cohort, and sends each node the ids of its users; ``aggregate_train`` turns each reply
into a :class:`~ldp_rec.fl.server.Reply` (a cohort frame, a refusal, an error, or malformed) keyed by
the reply's *source node* (message metadata) and hands them to the server. Replies are counted
against the nodes sampled (Ray can drop a reply silently), and a reply from a node that was not
sampled, or a second one, is ignored.
"""

from __future__ import annotations

import logging
import re
import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from .server import FederationServer, Reply
from .stopping import RunInterrupted

log = logging.getLogger("ldp_rec.fl")

NODE_WAIT_S = 30.0  # after round 1: how long a round waits for missing nodes before going on without them


def params_record(params: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"params": Array(np.asarray(params, dtype=np.float32))})


def unpack_frame(record: ArrayRecord) -> bytes:
    """The cohort frame of a reply record (:func:`ldp_rec.fl.client_app.pack_frame`)."""
    arr = record["frame"].numpy()
    if arr.ndim != 1 or arr.dtype != np.uint8:
        raise ValueError("malformed frame record")
    return arr.tobytes()


def reply_of(msg) -> Reply:
    """A Flower reply as the server's :class:`Reply`."""
    if msg.has_error():
        return Reply(failed=str(msg.error.reason))
    content = msg.content
    if "refusal" in content:
        return Reply(refused=str(content["refusal"].get("reason", "?")))
    try:
        return Reply(frame=unpack_frame(content["frame"]), coins=str(content["coins"]["private-coins"]))
    except Exception as exc:  # noqa: BLE001 - anything malformed fails this node only
        return Reply(failed=f"malformed reply: {exc}")


def short_reason(text: str, limit: int = 300) -> str:
    """A node's failure reason on one line of at most ``limit`` characters: of a remote traceback (Ray
    sends the whole of it), its last ``SomeError: message`` line."""
    lines = [ln.strip(" '\">") for ln in str(text).splitlines()]
    errors = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)(:|$)", ln)]
    said = [ln for ln in errors if ln.partition(":")[2].strip()]  # with a message
    one = " ".join((said or errors or [str(text)])[-1].split())
    return one if len(one) <= limit else one[: limit - 1] + "…"

def wait_for_nodes(grid, want: int, minimum: int, wait_s: float, *, poll_s: float = 0.1, stop=None) -> list[int]:
    """Node ids once ``want`` are connected, or after ``wait_s`` seconds if at least ``minimum`` are
    (it keeps waiting, and logs, while fewer than ``minimum`` are there, until ``stop`` is set:
    :class:`~.stopping.RunInterrupted`)."""
    t0 = time.monotonic()
    next_log = t0 + 10.0
    while True:
        if stop is not None and stop.is_set():
            raise RunInterrupted
        nodes = sorted(int(n) for n in grid.get_node_ids())
        waited = time.monotonic() - t0
        if len(nodes) >= want or (waited >= wait_s and len(nodes) >= minimum):
            return nodes[:want]
        if time.monotonic() >= next_log:
            log.warning("waiting for nodes: %d connected, want %d (at least %d)", len(nodes), want, minimum)
            next_log += 10.0
        time.sleep(poll_s)


class LdpRecFedAvg(FedAvg):
    def __init__(self, server: FederationServer, on_round=None) -> None:
        n = server.cfg.nodes
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
        self.server = server
        self.on_round = on_round
        self.rows = server.rows
        self.last_failure = ""  # the last failure or refusal a node reported (run_federation's error message)
        self.stop_event = server.stop  # what ends the wait for nodes (run_federation adds the engine's failure)
        self.offset = server.rounds_done  # a resumed server: Flower's round 1 is the run's round offset + 1

    def configure_train(self, server_round, arrays, config, grid):
        if self.server.stop.is_set():
            raise RunInterrupted
        cfg = self.server.cfg
        wait = cfg.timeout if server_round == 1 else min(NODE_WAIT_S, cfg.timeout)
        server_round += self.offset
        node_ids = wait_for_nodes(grid, cfg.nodes, cfg.min_nodes or 1, wait, stop=self.stop_event)
        if len(node_ids) < cfg.nodes:
            log.warning("round %d: %d of %d nodes missing; the cohort goes to the %d present", server_round,
                        cfg.nodes - len(node_ids), cfg.nodes, len(node_ids))
        assigned = self.server.plan(server_round, node_ids)
        conf = ConfigRecord({**cfg.to_record()})
        msgs = []
        for node, users in assigned.items():
            rec = RecordDict({"arrays": params_record(self.server.params), "config": conf,
                              "round": ConfigRecord({"server-round": server_round}),
                              "users": ArrayRecord({"ids": Array(np.asarray(users, dtype=np.int64))})})
            msgs.append(Message(content=rec, message_type=MessageType.TRAIN, dst_node_id=node))
        return msgs

    def aggregate_train(self, server_round, replies):
        server_round += self.offset
        got: dict[int, Reply] = {}
        for msg in replies:
            node = msg.metadata.src_node_id
            if node not in self.server.assigned or node in got:
                log.warning("round %d: reply from unexpected or duplicate node %s ignored", server_round, node)
                continue
            got[node] = reply_of(msg)
        row = self.server.finish(server_round, got, log=log)
        for reply in got.values():
            if reply.failed or reply.refused:
                self.last_failure = reply.failed or f"refused: {reply.refused}"
        if row["cohort_size"] > 0 and row["clients_ok"] == 0:
            log.warning("round %d: no update decoded: all %d users of the cohort failed or were refused (%d of %d "
                        "nodes replied; last reason: %s)", server_round, row["cohort_size"],
                        row["nodes_replied"], row["nodes_sampled"], short_reason(self.last_failure) or "no reply")
        return params_record(self.server.params), MetricRecord({"clients-ok": row["clients_ok"],
                                                               "clients-failed": row["clients_failed"]})

    def record_evaluation(self, server_round: int, loss: float, accuracy: float) -> None:
        server_round += self.offset
        row = self.server.record(getattr(self.server, "_pending", {"round": server_round}), loss, accuracy)
        if self.on_round is not None:
            self.on_round(row)
