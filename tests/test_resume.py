"""Resume (issue 15 item 5): a run checkpointed after each round, interrupted and resumed, ends
exactly where the uninterrupted run ends (seeded private coins); a foreign checkpoint is refused."""

import json

import numpy as np
import pytest

from ldp_rec.errors import ParameterError
from ldp_rec.fl import checkpoint
from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.server import FederationServer, run_in_process

# seeded private coins (simulation only): the runs replay bit for bit
TINY = dict(dataset="digits", partition="iid", clients=12, nodes=2, rounds=3, epsilon=4.0, bits=6, private_seed=0,
            server_momentum=0.5)


def _interrupted_then_resumed(cfg: FLConfig, path):
    first = FederationServer(cfg)
    first.checkpoint = path

    def stop_after_round_1(row):
        if row["round"] == 1:
            first.stop.set()

    run_in_process(cfg, server=first, progress=stop_after_round_1)
    assert first.rounds_done == 1 and checkpoint.exists(path)
    resumed = FederationServer.resume(cfg, path)
    assert resumed.rounds_done == 1
    resumed.checkpoint = path
    run_in_process(cfg, server=resumed)
    return resumed


@pytest.mark.parametrize("mode", ["ldp-rec", "cdp"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, mode):
    extra = {"sampling": "poisson", "sample_rate": 0.5} if mode == "cdp" else {"sampling": "fixed", "cohort_size": 6}
    cfg = FLConfig(**{**TINY, "mode": mode, **extra})
    whole = run_in_process(cfg)[2]
    resumed = _interrupted_then_resumed(cfg, tmp_path / mode)
    np.testing.assert_array_equal(resumed.params, whole.params)
    np.testing.assert_array_equal(resumed.velocity, whole.velocity)
    np.testing.assert_array_equal(resumed.ledger.counts, whole.ledger.counts)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole.rows]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.rows] == strip
    assert resumed.rows[-1]["accuracy"] == whole.rows[-1]["accuracy"]
    assert resumed.final_record() == whole.final_record()
    assert json.loads(checkpoint.paths(tmp_path / mode)[1].read_text())["round"] == 3


def test_checkpoint_of_another_config_or_version_is_refused(tmp_path):
    cfg = FLConfig(**{**TINY, "mode": "ldp", "rounds": 1})
    server = FederationServer(cfg)
    server.checkpoint = tmp_path / "ldp"
    run_in_process(cfg, server=server)
    with pytest.raises(ParameterError, match=r"different configuration \(epsilon 4.0 there, 8.0 here\)"):
        FederationServer.resume(cfg.replace(epsilon=8.0), tmp_path / "ldp")
    js = checkpoint.paths(tmp_path / "ldp")[1]
    doc = json.loads(js.read_text())
    js.write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(ParameterError, match="version 1"):
        FederationServer.resume(cfg, tmp_path / "ldp")
    js.write_text(json.dumps({**doc, "round": 7}))
    with pytest.raises(ParameterError, match="torn write"):
        FederationServer.resume(cfg, tmp_path / "ldp")
