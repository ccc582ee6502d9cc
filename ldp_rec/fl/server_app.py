"""Flower ServerApp (Message API): thin glue that runs :class:`~ldp_rec.fl.strategy.LdpRecFedAvg`.

``flwr run .`` uses the module-level ``app`` (run config from ``[tool.flwr.app.config]``, results
written to the ``out`` key if given); ``ldp-rec fl`` builds an app around an in-memory config with
:func:`build_server_app`.
"""

from __future__ import annotations

import json

from flwr.app import Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from . import models, task
from .config import FLConfig
from .federation import ServerState, load_data, make_fl_model
from .strategy import LdpRecFedAvg, params_record


def run_federation(grid: Grid, cfg: FLConfig, on_round=None) -> list[dict]:
    """Run ``cfg.rounds`` rounds on ``grid``; returns the per-round rows."""
    data = load_data(cfg)
    model = make_fl_model(cfg, data)
    state = ServerState(cfg, models.get_flat_params(model))
    state.check_plan()  # the max-epsilon guard, before any training
    strategy = LdpRecFedAvg(state, on_round)

    def evaluate_fn(server_round, arrays):
        if server_round == 0:
            return None
        models.set_flat_params(model, state.params)
        loss, acc = task.evaluate(model, data.X_test, data.y_test)
        strategy.record_evaluation(server_round, loss, acc)
        return MetricRecord({"accuracy": acc, "loss": loss})

    strategy.start(grid=grid, initial_arrays=params_record(state.params), num_rounds=cfg.rounds,
                   timeout=cfg.timeout, evaluate_fn=evaluate_fn)
    return strategy.rows


def build_server_app(cfg: FLConfig, sink: list | None = None, on_round=None) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        rows = run_federation(grid, cfg, on_round)
        if sink is not None:
            sink.extend(rows)

    return app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = FLConfig.from_record(context.run_config)
    rows = run_federation(grid, cfg)
    out = context.run_config.get("out", "")
    if out:
        with open(out, "w") as fh:
            json.dump({"config": cfg.to_record(), "private_coins": cfg.private_coins, "rounds": rows}, fh, indent=2)
