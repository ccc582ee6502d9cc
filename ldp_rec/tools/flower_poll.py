"""Polling interval of Flower's simulation engine (flwr 1.42, in-process ``run_simulation``).

Flower's simulation runtime moves messages by polling: the ServerApp's ``InMemoryGrid`` pulls
replies every ``pull_interval`` = 0.1 s, and the runtime's extractor thread fetches queued
instructions for the virtual nodes every 0.1 s (``vce_api.add_messages_to_queue``). A round
therefore costs at least ~0.1–0.2 s whatever the work, which dominates a round whose users are
batched into a few nodes (measured: 0.2 s for a round of 100 users in 2 nodes with no privacy).

:func:`flower_poll_interval` sets both intervals for the ``run_simulation`` calls made inside it
(the message semantics are unchanged: the loops are the same, only their sleep differs) and
restores Flower's own afterwards. If the installed Flower lacks either hook, it leaves Flower as
is and logs a warning. It does not apply to ``flwr run`` or to a deployment (separate processes).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import sys
import time

log = logging.getLogger("ldp_rec.fl")

FLOWER_DEFAULT_POLL_S = 0.1


def _store_signature(state):
    """A cheap signature of the stored instructions: (count, id of the newest), or None if unknown.
    Every new instruction changes it (ids are fresh and the store keeps insertion order)."""
    store = getattr(state, "message_ins_store", None)
    if not isinstance(store, dict):
        return None
    try:
        return len(store), next(reversed(store), None)
    except RuntimeError:  # changed while read: treat as changed
        return None


def _extractor(interval: float):
    def add_messages_to_queue(state, queue, nodes_mapping, f_stop) -> None:
        """Flower's extractor loop (put each node's pending instruction on the queue), every ``interval`` s.

        Flower's ``get_message_ins`` scans every stored instruction for each node, so sweeping all nodes
        every 10 ms costs CPU that the clients need. A sweep is skipped while the store's signature
        (:func:`_store_signature`) is unchanged since the last sweep; a full sweep still runs at least
        every 0.1 s (Flower's own interval), and always when the signature is unknown."""
        last, last_sweep = None, -math.inf
        while not f_stop.is_set():
            now = time.monotonic()
            sig = _store_signature(state)
            if sig is None or sig != last or now - last_sweep >= FLOWER_DEFAULT_POLL_S:
                for node_id in nodes_mapping.keys():
                    for msg in state.get_message_ins(node_id=node_id, limit=1):
                        queue.put(msg)
                last, last_sweep = sig, now
            f_stop.wait(interval)

    return add_messages_to_queue


@contextlib.contextmanager
def flower_poll_interval(seconds: float | None):
    """Run Flower's simulation engine with polling interval ``seconds`` (None: Flower's 0.1 s)."""
    if seconds is None or seconds == FLOWER_DEFAULT_POLL_S:
        yield
        return
    if not (math.isfinite(seconds) and 0 < seconds <= 1):
        raise ValueError(f"poll interval must lie in (0, 1] seconds, got {seconds!r}")
    try:
        importlib.import_module("flwr.simulation.run_simulation")
        rs = sys.modules["flwr.simulation.run_simulation"]  # the module (the package re-exports a function)
        vce = importlib.import_module("flwr.server.superlink.fleet.vce.vce_api")
        grid_cls, extractor = rs.InMemoryGrid, vce.add_messages_to_queue
    except (ImportError, AttributeError, KeyError) as exc:
        log.warning("cannot set Flower's poll interval (%s); using Flower's default", exc)
        yield
        return
    rs.InMemoryGrid = functools.partial(grid_cls, pull_interval=float(seconds))
    vce.add_messages_to_queue = _extractor(float(seconds))
    try:
        yield
    finally:
        rs.InMemoryGrid, vce.add_messages_to_queue = grid_cls, extractor
