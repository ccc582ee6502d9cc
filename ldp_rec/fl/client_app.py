"""Flower ClientApp (Message API): a node trains, privatises and encodes its cohort of users.

Thin glue over :func:`ldp_rec.fl.federation.client_round`. The run configuration and the cohort
of user ids come from the server's message, but the node checks the request against its *own*
:class:`~ldp_rec.fl.policy.NodePolicy` first and refuses what the policy does not allow (for example
``mode="none"``, an ε above its maximum, or seeded private coins), replying with a ``refusal``
record that the server counts. Private coins come from OS entropy on the node
(:func:`~ldp_rec.fl.federation.private_coins`).

The reply carries only what the privacy analysis accounts for: the cohort's frame (wire format
v2, one uint8 array holding every user's message, :mod:`ldp_rec.codec.wire`) and where the node's
private coins came from. Nothing computed from private data leaves outside the frame (no training loss, no example counts, no count of users
whose update was non-finite; those are logged on the node only).
"""

from __future__ import annotations

import logging
import os

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from ..codec import wire
from .config import FLConfig, parse_faults
from .federation import client_round, round_codec
from .policy import NodePolicy

log = logging.getLogger("ldp_rec.fl.client")

LEDGER = "ldp-rec-ledger"  # key of the node's per-user ledger in Context.state


def _match_thread_budget() -> None:
    """Use as many numba threads as the node was given CPUs (Ray sets OMP_NUM_THREADS for a
    virtual node with ``num_cpus``), so concurrent nodes do not oversubscribe the cores."""
    import numba

    budget = os.environ.get("OMP_NUM_THREADS")
    if budget and budget.isdigit():
        numba.set_num_threads(max(1, min(int(budget), numba.config.NUMBA_NUM_THREADS)))


def pack_frame(frame: bytes) -> ArrayRecord:
    """The reply record of a cohort frame: one uint8 array."""
    return ArrayRecord({"frame": Array(np.frombuffer(frame, dtype=np.uint8).copy())})


def _ledger(context: Context) -> dict[int, float]:
    """The node's record of transcript ε spent per user id (basic composition), for the run."""
    rec = context.state[LEDGER] if LEDGER in context.state else None
    if rec is None:
        return {}
    ids, eps = rec["ids"].numpy(), rec["eps"].numpy()
    return dict(zip(ids.tolist(), eps.tolist()))


def _store_ledger(context: Context, ledger: dict[int, float]) -> None:
    ids = np.fromiter(ledger.keys(), dtype=np.int64, count=len(ledger))
    eps = np.fromiter(ledger.values(), dtype=np.float64, count=len(ledger))
    context.state[LEDGER] = ArrayRecord({"ids": Array(ids), "eps": Array(eps)})


def _epsilon_round(cfg: FLConfig, dim: int) -> float:
    from ..privacy.accountant import plan_epsilon
    from ..privacy.events import NonPrivateEvent

    event = round_codec(cfg, dim).transcript_event()
    return float("inf") if isinstance(event, NonPrivateEvent) else plan_epsilon(event, 1, cfg.delta, "basic").epsilon


def refusal_reply(msg: Message, reason: str) -> Message:
    return Message(RecordDict({"refusal": ConfigRecord({"reason": reason})}), reply_to=msg)


def handle_train(msg: Message, context: Context, policy: NodePolicy) -> Message:
    """The node's work for one train message, under ``policy``."""
    _match_thread_budget()
    cfg = FLConfig.from_record(msg.content["config"])
    params = msg.content["arrays"]["params"].numpy()
    ids = msg.content["users"]["ids"].numpy().astype(np.int64)
    rnd = int(msg.content["round"]["server-round"])
    ledger = _ledger(context)
    spent = max((ledger.get(int(u), 0.0) for u in ids), default=0.0)
    # the nominal ε first (a lower bound on the transcript's, and it needs no codec), then the transcript's
    eps = float("inf") if cfg.mode in ("none", "cdp") else float(cfg.epsilon)
    reason = policy.refusal(cfg, eps, spent)
    if reason is None:
        eps = _epsilon_round(cfg, params.size)
        reason = policy.refusal(cfg, eps, spent)
    if reason is not None:
        log.warning("round %d: refusing the server's request: %s", rnd, reason)
        return refusal_reply(msg, reason)
    faults = parse_faults(cfg.fault)  # the test-only hook, validated by FLConfig
    if ("raise", 0) in faults and 0 in ids:
        raise RuntimeError("injected client failure (fault='raise')")
    res = client_round(cfg, params, rnd, ids)
    if res.replaced:
        log.warning("round %d: %d local updates were non-finite and were replaced by 0 (not reported)",
                    rnd, res.replaced)
    if eps != float("inf"):
        for u in ids.tolist():
            ledger[u] = ledger.get(u, 0.0) + eps
        _store_ledger(context, ledger)
    frame = res.frame
    for kind, user in faults:
        if kind == "corrupt" and user in ids:  # corrupt that user's tag: its row alone must fail
            at = wire.user_tag_offset(frame, int(np.flatnonzero(ids == user)[0]), n=ids.size)
            bad = bytearray(frame)
            bad[at] ^= 0x5A
            frame = bytes(bad)
    coins = ConfigRecord({"private-coins": cfg.private_coins})
    return Message(RecordDict({"frame": pack_frame(frame), "coins": coins}), reply_to=msg)


def build_client_app(policy: NodePolicy | None = None) -> ClientApp:
    """A ClientApp under ``policy`` (None: the node's own, :meth:`NodePolicy.from_node`)."""
    client = ClientApp()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        return handle_train(msg, context, policy or NodePolicy.from_node(context.node_config))

    return client


app = build_client_app()
