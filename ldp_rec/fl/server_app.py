"""Flower ServerApp (Message API): thin glue that runs :class:`~ldp_rec.fl.strategy.LdpRecFedAvg`.

``flwr run .`` uses the module-level ``app`` (run config from ``[tool.flwr.app.config]`` and
``--run-config``; the result is written to the absolute path in the ``out`` key, in the layout of
``ldp-rec fl``'s result so that ``ldp-rec report`` reads it); ``ldp-rec fl`` builds an app around an
in-memory config with :func:`build_server_app`.
"""

from __future__ import annotations

import time

from flwr.app import Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from .config import FLConfig
from .server import FederationServer
from .stopping import RunInterrupted, StoppableGrid
from .strategy import LdpRecFedAvg, params_record, short_reason


class EitherEvent:
    """Set when any of ``events`` is (the ``is_set``/``wait`` that :class:`~.stopping.StoppableGrid` uses)."""

    def __init__(self, *events) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)

    def wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self.is_set() and time.monotonic() < end:
            time.sleep(min(0.01, timeout))
        return self.is_set()


def run_federation(grid: Grid, cfg: FLConfig, on_round=None, sink: dict | None = None,
                   server: FederationServer | None = None, abort=None) -> list[dict]:
    """Run ``cfg.rounds`` rounds on ``grid``; returns the per-round rows (``sink`` gets the server's
    final per-user privacy record as ``sink["privacy"]``). A given ``server`` (a resumed one)
    continues after its last completed round; once ``server.stop`` is set the run ends after the
    completed rounds (:mod:`.stopping`). ``abort`` (an Event): set by the runner when the simulation
    engine itself failed, so that this ServerApp thread stops waiting for replies that cannot come."""
    if server is None:
        server = FederationServer(cfg)  # refuses an impossible per-user budget before any training
    strategy = LdpRecFedAvg(server, on_round)
    strategy.stop_event = stop = EitherEvent(server.stop, abort)

    def evaluate_fn(server_round, arrays):
        if server_round == 0:
            return None
        loss, acc = server.evaluate()
        strategy.record_evaluation(server_round, loss, acc)
        return MetricRecord({"accuracy": acc, "loss": loss})

    try:
        strategy.start(grid=StoppableGrid(grid, stop), initial_arrays=params_record(server.params),
                       num_rounds=cfg.rounds - server.rounds_done, timeout=cfg.timeout, evaluate_fn=evaluate_fn)
    except RunInterrupted:
        if abort is not None and abort.is_set():
            return strategy.rows  # the engine failed; the runner reports it
    if sink is not None:
        sink["privacy"] = server.final_record()
    check_some_update(strategy.rows, strategy.last_failure)
    return strategy.rows


def check_some_update(rows: list[dict], reason: str = "") -> None:
    """Raise :class:`~ldp_rec.errors.RunFailedError` when not one user's update was decoded in any round
    of the run (every node failed, refused or did not reply): such a run has no result."""
    from ..errors import RunFailedError

    if rows and all(r["clients_ok"] == 0 for r in rows):
        raise RunFailedError(f"no user's update was decoded in any of the {len(rows)} rounds: every node failed, "
                             f"refused or did not reply (last reason: {short_reason(reason) or 'no reply'})")



def build_server_app(cfg: FLConfig, sink: list | None = None, on_round=None, extra: dict | None = None,
                     server: FederationServer | None = None, abort=None) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        rows = run_federation(grid, cfg, on_round, extra, server, abort)
        if sink is not None:
            sink.extend(rows)

    return app


app = ServerApp()


def result_path(out: str):
    """The ``out`` run-config value as an absolute, checked path (None for ""): refused before any round if
    the file exists or its folder cannot be written. A relative path resolves against the ServerApp's
    working directory, which under ``flwr run`` is the folder the SuperLink was started from; the
    ServerApp logs the absolute path at the start and at the end of the run."""
    if not out:
        return None
    from pathlib import Path

    from .._validation import check_output_path

    return check_output_path(Path(out).expanduser().resolve(), name="run config 'out'")


def flwr_run_result(cfg: FLConfig, rows: list[dict], privacy, wall: float) -> dict:
    """The result of a ``flwr run`` in the layout of ``ldp-rec fl``'s (``runs`` and ``summary`` per mode),
    so ``ldp-rec report`` reads it; ``rounds`` and ``privacy`` as the deployment tools read them."""
    from ..experiments.fl import summarise

    return {"config": {"command": "fl", **cfg.to_record(), "engine": {"runner": "flwr run"}},
            "private_coins": cfg.private_coins, "summary": {cfg.mode: {**summarise(rows), "wall_seconds": wall}},
            "runs": {cfg.mode: rows}, "rounds": rows, "privacy": privacy}


@app.main()
def main(grid: Grid, context: Context) -> None:
    """``flwr run``: the run config is the :class:`FLConfig` record plus ``out`` (the result file)."""
    from logging import INFO

    from flwr.common.logger import log as flwr_log

    from ..experiments.results import write_result

    cfg = FLConfig.from_record({k: v for k, v in context.run_config.items() if k != "out"})
    out = result_path(str(context.run_config.get("out", "") or ""))
    flwr_log(INFO, "ldp-rec: %s, %d rounds on %d nodes; result: %s", cfg.mode, cfg.rounds, cfg.nodes,
             out or "not written (set the run config's out to an absolute path)")
    extra: dict = {}
    t0 = time.perf_counter()
    rows = run_federation(grid, cfg, sink=extra)
    if out is not None and rows:
        write_result(out, flwr_run_result(cfg, rows, extra.get("privacy"), time.perf_counter() - t0))
        flwr_log(INFO, "ldp-rec: wrote %s (read it with: ldp-rec report %s)", out, out.parent)
