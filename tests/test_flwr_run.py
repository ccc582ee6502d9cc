"""``flwr run .`` without surprises (issue 15 item 6): it never edits tracked files, its result file is
in ``ldp-rec fl``'s layout and ``ldp-rec report`` reads it, and the local SuperLink it leaves running can
be stopped (:mod:`ldp_rec.tools.flwr_local`)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ldp_rec.errors import ParameterError
from ldp_rec.fl.config import FLConfig

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_has_no_section_that_flower_would_migrate():
    """Flower 1.42's `flwr run DIR` moves [tool.flwr.federations] into $FLWR_HOME/config.toml and comments
    it out in DIR/pyproject.toml; without it nothing in the checkout is rewritten."""
    flwr = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]
    assert "federations" not in flwr
    assert flwr["app"]["components"]["serverapp"] == "ldp_rec.fl.server_app:app"
    assert flwr["app"]["config"]["out"] == ""


def test_out_is_checked_before_any_round(tmp_path, monkeypatch):
    from ldp_rec.fl.server_app import result_path

    assert result_path("") is None
    monkeypatch.chdir(tmp_path)
    assert result_path("r/result.json") == tmp_path / "r" / "result.json"  # absolute, nothing created
    assert not (tmp_path / "r").exists()
    (tmp_path / "done.json").write_text("{}")
    with pytest.raises(ParameterError, match="exists"):
        result_path(str(tmp_path / "done.json"))
    with pytest.raises(ParameterError, match="not a folder"):
        result_path(str(tmp_path / "done.json" / "x.json"))


def test_flwr_run_result_is_read_by_ldp_rec_report(tmp_path):
    from ldp_rec.experiments.report import render
    from ldp_rec.experiments.results import write_result
    from ldp_rec.fl.server import run_in_process
    from ldp_rec.fl.server_app import flwr_run_result

    cfg = FLConfig(dataset="digits", partition="iid", clients=20, nodes=2, rounds=2, mode="ldp-rec", bits=6)
    rows, wall, server = run_in_process(cfg)
    out = tmp_path / "flwr-run" / "result.json"
    write_result(out, flwr_run_result(cfg, rows, server.final_record(), wall))
    res = json.loads(out.read_text())
    assert res["runs"]["ldp-rec"] == res["rounds"]
    assert res["summary"]["ldp-rec"]["final_accuracy"] == rows[-1]["accuracy"]
    # the deployment tools rebuild the config from it
    assert FLConfig.from_record({k: v for k, v in res["config"].items() if k not in ("command", "engine")}) == cfg
    report = render(out.parent).read_text()
    assert "## Federated learning" in report and "| ldp-rec |" in report


@pytest.mark.slow
def test_flwr_run_in_the_checkout_edits_nothing_and_stops_cleanly(tmp_path):
    """The documented workflow, end to end, in a private FLWR_HOME on free ports: `flwr run . --stream`,
    `flwr ls`, the result file, then `python -m ldp_rec.tools.flwr_local stop`."""
    from ldp_rec.tools import flwr_local
    from ldp_rec.tools.proctree import free_ports

    http, control = free_ports(2)
    home = tmp_path / "flwr-home"
    env = {**os.environ, "FLWR_HOME": str(home), "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(http),
           "FLWR_LOCAL_CONTROL_API_PORT": str(control), "FLWR_DISABLE_UPDATE_CHECK": "1",
           "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    before = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    names = {p.name for p in ROOT.iterdir()}
    out = tmp_path / "results" / "result.json"
    flwr = str(Path(sys.executable).parent / "flwr")
    try:
        proc = subprocess.run([flwr, "run", ".", "--stream", "--run-config",
                               f"rounds=2 clients=24 partition='iid' bits=6 mode='ldp-rec' out='{out}'"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"ldp-rec: wrote {out}" in proc.stdout + proc.stderr
        ls = subprocess.run([flwr, "ls", "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
        runs = json.loads(ls.stdout[ls.stdout.find("{"):])["runs"]
        assert [r["status"] for r in runs] == ["finished:completed"], runs
        res = json.loads(out.read_text())
        assert [r["round"] for r in res["runs"]["ldp-rec"]] == [1, 2]
        assert flwr_local.managed_superlinks(home)  # flwr left its SuperLink running ...
    finally:
        stopped = subprocess.run([sys.executable, "-m", "ldp_rec.tools.flwr_local", "stop"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
    assert "stopped the local SuperLink" in stopped.stdout
    assert not flwr_local.managed_superlinks(home)  # ... and it is gone
    assert hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() == before  # not rewritten
    assert {p.name for p in ROOT.iterdir()} <= names  # nothing new in the checkout (.flwr, a FAB, …)
