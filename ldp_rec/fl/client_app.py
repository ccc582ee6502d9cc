"""Flower ClientApp (Message API): a node trains, privatises and encodes its cohort of users.

Thin glue over :func:`ldp_rec.fl.federation.client_round`; the run configuration and the cohort
of user ids come from the server's message, so the same app serves ``flwr run .`` and
``ldp-rec fl``. The reply carries the users' payloads as one uint8 array plus their lengths.
"""

from __future__ import annotations

import os

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from .config import FLConfig
from .federation import client_round

app = ClientApp()


def _match_thread_budget() -> None:
    """Use as many numba threads as the node was given CPUs (Ray sets OMP_NUM_THREADS for a
    virtual node with ``num_cpus``), so concurrent nodes do not oversubscribe the cores."""
    import numba

    budget = os.environ.get("OMP_NUM_THREADS")
    if budget and budget.isdigit():
        numba.set_num_threads(max(1, min(int(budget), numba.config.NUMBA_NUM_THREADS)))


def pack_payloads(payloads: list[bytes]) -> ArrayRecord:
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    blob = np.frombuffer(b"".join(payloads), dtype=np.uint8).copy()
    return ArrayRecord({"blob": Array(blob), "lengths": Array(lengths)})


@app.train()
def train(msg: Message, context: Context) -> Message:
    _match_thread_budget()
    conf = msg.content["config"]
    cfg = FLConfig.from_record(conf)
    params = msg.content["arrays"]["params"].numpy()
    start, stop = int(conf["users-start"]), int(conf["users-stop"])
    faults = [f for f in cfg.fault.split(",") if f]
    if "raise" in faults and start == 0:
        raise RuntimeError("injected client failure (fault='raise')")
    res = client_round(cfg, params, int(conf["server-round"]), start, stop)
    for f in faults:
        if f.startswith("corrupt:") and start <= int(f[8:]) < stop:
            k = int(f[8:]) - start
            bad = bytearray(res.payloads[k])
            bad[len(bad) // 2] ^= 0x5A
            res.payloads[k] = bytes(bad)
    metrics = MetricRecord({"num-examples": res.num_examples, "loss": res.loss, "rejected": res.rejected})
    return Message(RecordDict({"payloads": pack_payloads(res.payloads), "metrics": metrics}), reply_to=msg)
