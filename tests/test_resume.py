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
    timing = ("seconds", "warm_up")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in whole.rows]
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed.rows] == strip
    assert [r["warm_up"] for r in resumed.rows] == [True, True, False]  # the resumed process warmed up again
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



def test_stoppable_grid_returns_replies_and_gives_up_once_stopped():
    import threading
    from types import SimpleNamespace

    from ldp_rec.fl.stopping import RunInterrupted, StoppableGrid

    class Grid:
        pull_interval = 0.01
        pulls = 0

        def push_messages(self, messages):
            return [1, 2]

        def pull_messages(self, ids):
            self.pulls += 1
            return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=1))] if self.pulls == 2 else []

        def get_node_ids(self):
            return [7]

    stop = threading.Event()
    grid = StoppableGrid(Grid(), stop)
    assert grid.get_node_ids() == [7]  # everything else is the wrapped grid's
    assert len(grid.send_and_receive([], timeout=0.2)) == 1  # one reply in, the other timed out
    threading.Timer(0.05, stop.set).start()
    with pytest.raises(RunInterrupted):  # raised (not a timed-out return): it gave up once stopped
        grid.send_and_receive([], timeout=600)


def _session_processes(sid: int) -> list[int]:
    import os

    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(d))
    return pids


@pytest.mark.slow
def test_ctrl_c_on_ldp_rec_fl_then_resume(tmp_path):
    """The one Ray test here: Ctrl-C (SIGINT to the process group, as a terminal sends it) stops
    `ldp-rec fl` on the first press, writes the completed rounds marked interrupted, and leaves no
    process behind; --resume then ends exactly where the uninterrupted in-process run ends."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run" / "result.json"
    conf = tmp_path / "run.toml"
    conf.write_text('dataset = "digits"\npartition = "iid"\nclients = 12\nnodes = 1\nrounds = 60\nmode = "ldp"\n'
                    "private-seed = 0\n")
    cmd = [sys.executable, "-m", "ldp_rec.cli", "fl", "--config", str(conf), "--out", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = checkpoint.paths(out.parent / "result.checkpoint" / "ldp")[1]
    deadline = time.monotonic() + 500  # Ray's start-up on a loaded 2-core machine
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), proc.communicate()[0][-3000:]
    os.killpg(proc.pid, signal.SIGINT)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, log[-3000:]
    res = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in the result"))
    done = res["rounds_completed"]["ldp"]
    assert res["interrupted"] is True and 1 <= done < 60 and len(res["runs"]["ldp"]) == done
    assert "ldp-rec fl --resume" in log and "Traceback" not in log
    time.sleep(5)
    assert _session_processes(proc.pid) == []  # Ray's raylet, GCS and workers are gone
    again = subprocess.run([sys.executable, "-m", "ldp_rec.cli", "fl", "--resume", str(out)], capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["interrupted"] is False and res["summary"]["ldp"]["resumed_from_round"] == done
    cfg = FLConfig(dataset="digits", partition="iid", clients=12, nodes=1, rounds=60, mode="ldp", private_seed=0)
    whole = run_in_process(cfg)[2]
    timing = ("seconds", "warm_up", "private_coins")
    assert [{k: v for k, v in r.items() if k not in timing} for r in res["runs"]["ldp"]] == \
        [{k: v for k, v in r.items() if k not in timing} for r in whole.rows]
    assert not (out.parent / "result.checkpoint").exists()  # removed once the run completed
