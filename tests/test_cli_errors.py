"""Every user error of the ``ldp-rec`` command is refused before any work (issue 15 item 1): exit code 2,
one line ``ldp-rec: error: …`` on stderr, no traceback, and nothing created (no result file, no run
folder). The commands run in-process through :func:`ldp_rec.cli.main` (fast: the refusal comes before
Ray, Flower or any computation); two run as real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ldp_rec.cli import main
from ldp_rec.errors import ParameterError, RunFailedError
from ldp_rec.fl.config import FLConfig

ROOT = Path(__file__).resolve().parents[1]
DME = ["dme", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1", "--dim", "8", "--clients", "10",
       "--trials", "1"]
FL = ["fl", "--rounds", "1", "--mode", "ldp-rec"]


def refused(argv, capsys, tmp_path, monkeypatch, *, match: str, keep=()) -> str:
    """Run ``ldp-rec argv`` in the empty folder ``tmp_path``: exit 2, one error line containing
    ``match``, no traceback, and the folder holds nothing but ``keep``."""
    monkeypatch.chdir(tmp_path)
    rc = main(list(argv))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("ldp-rec: error: "), err
    assert "Traceback" not in err + out
    assert match in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep), "the refused command created files"
    return lines[0]


# ---------------------------------------------------------------------------------------------- fl
@pytest.mark.parametrize("extra, match", [
    (["--codec", "foo"], "unknown codec 'foo'"),
    (["--mechanism", "foo"], "unknown mechanism 'foo'"),
    (["--mechanism", "gaussian", "--codec", "mrc"], "bounded density ratio"),
    (["--epsilon", "0"], "epsilon must be finite and > 0"),
    (["--rounds", "0"], "rounds must be >= 1"),
    (["--nodes", "0"], "nodes must be >= 1"),
    (["--clients", "-5"], "clients must be >= 0"),
    (["--max-epsilon", "1"], "above the per-user budget"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--model", "no_such_module_xyz:factory"], "cannot import 'no_such_module_xyz'"),
    (["--dataset", "json:no_such_loader"], "has no attribute 'no_such_loader'"),
    (["--partition", "natural"], "no natural split"),
    (["--bits", "40"], "lower --bits"),
    (["--poll-interval", "0"], "--poll-interval"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--delta", "0"], "delta must be in (0, 1)"),
    (["--batch-size", "-1"], "batch_size must be >= 0"),
    (["--bits", "-1"], "bits must be >= 0"),
    (["--max-epsilon", "-1"], "max_epsilon must be finite and >= 0"),
    (["--nodes", "100000"], "cannot exceed the number of users (1437)"),
    (["--sampling", "fixed", "--cohort-size", "5000"], "cohort_size (5000) cannot exceed"),
    (["--partition", "iid", "--clients", "5000"], "exceeds the number of examples"),
    (["--partition", "iid"], "give clients >= 1"),
    (["--dataset", "synthetic", "--clients", "100000", "--synthetic-min-samples", "1000"], "max_samples"),
])
def test_fl_refuses_before_any_work(extra, match, capsys, tmp_path, monkeypatch):
    refused(FL + extra, capsys, tmp_path, monkeypatch, match=match)  # and no results/ folder


def test_fl_refuses_an_unknown_mode_among_several(capsys, tmp_path, monkeypatch):
    # the last mode's error is found before the first mode runs
    refused(["fl", "--rounds", "1", "--mode", "none,ldp,foo"], capsys, tmp_path, monkeypatch, match="'none,ldp,foo'")
    refused(["fl", "--rounds", "1", "--mode", "none,ldp-rec", "--codec", "foo"], capsys, tmp_path, monkeypatch,
            match="unknown codec")


def test_fl_refuses_an_existing_or_unwritable_out(capsys, tmp_path, monkeypatch):
    (tmp_path / "r.json").write_text("{}")
    refused(FL + ["--out", "r.json"], capsys, tmp_path, monkeypatch, match="exists", keep=["r.json"])
    refused(FL + ["--out", "r.json/x.json"], capsys, tmp_path, monkeypatch, match="not a folder", keep=["r.json"])
    refused(FL + ["--out", "."], capsys, tmp_path, monkeypatch, match="is a folder", keep=["r.json"])


def test_fault_hook_is_strict():
    for bad in ("corrupt:abc", "corrupt:", "crash", "raise,corrupt:-1"):
        with pytest.raises(ParameterError, match="unknown fault"):
            FLConfig(fault=bad)
    with pytest.raises(ParameterError, match="unknown fault"):
        FLConfig.from_record({"fault": "corrupt:abc"})  # the run config of `flwr run`
    assert FLConfig(fault="raise,corrupt:3").fault == "raise,corrupt:3"


def test_a_run_in_which_every_reply_failed_is_an_error():
    from ldp_rec.fl.server_app import check_some_update

    check_some_update([{"clients_ok": 0}, {"clients_ok": 5}])  # one round went through: a result
    with pytest.raises(RunFailedError, match="no user's update was decoded in any of the 2 rounds.*boom"):
        check_some_update([{"clients_ok": 0}, {"clients_ok": 0}], "boom")
    with pytest.raises(RunFailedError) as info:  # a remote traceback as the reason: one line, cut short
        check_some_update([{"clients_ok": 0}], "Traceback\n" + "x" * 5000)
    assert "\n" not in str(info.value) and len(str(info.value)) < 500


@pytest.mark.slow
def test_a_flower_run_whose_every_node_fails_is_an_error_not_a_result():
    """On Flower's simulation engine: every node fails every round, so the run raises RunFailedError
    (the command prints it in one line and exits 2) instead of returning rows with no update."""
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp

    from ldp_rec.experiments.fl import run_flower

    failing = ClientApp()

    @failing.train()
    def train(msg: Message, context: Context) -> Message:
        raise RuntimeError("this node always fails")

    cfg = FLConfig(dataset="digits", partition="iid", clients=10, nodes=2, rounds=2, mode="ldp-rec", bits=6,
                   timeout=300)
    with pytest.raises(RunFailedError, match="in any of the 2 rounds.*this node always fails"):
        run_flower(cfg, client_app=failing)


# --------------------------------------------------------------------------------------------- dme
@pytest.mark.parametrize("extra, match", [
    (["--clients", "0"], "clients must be >= 1"),
    (["--trials", "0"], "trials must be >= 1"),
    (["--dim", "0"], "dim must be"),
    (["--epsilon", "0"], "epsilon must be finite and > 0"),
    (["--bits", "40"], "lower --bits"),
    (["--codec", "modified-mrc", "--bits", "34"], "memory"),
    (["--dim", "100000000", "--clients", "100000"], "lower --clients or --dim"),
    (["--blocks", "9"], "--blocks (9) cannot exceed --dim (8)"),
    (["--mechanism", "gaussian"], "bounded density ratio"),
])
def test_dme_refuses_before_any_work(extra, match, capsys, tmp_path, monkeypatch):
    refused(DME + extra, capsys, tmp_path, monkeypatch, match=match)


def test_dme_refuses_an_existing_out_before_computing(capsys, tmp_path, monkeypatch):
    (tmp_path / "r.json").write_text("{}")
    refused(DME + ["--out", "r.json"], capsys, tmp_path, monkeypatch, match="r.json exists", keep=["r.json"])
    assert (tmp_path / "r.json").read_text() == "{}"


def test_dme_refuses_an_unwritable_out(capsys, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    refused(DME + ["--out", "file/r.json"], capsys, tmp_path, monkeypatch, match="not a folder", keep=["file"])
    if os.path.isdir("/proc/self"):  # a folder nobody can create files in, even root
        refused(DME + ["--out", "/proc/self/ldp-rec.json"], capsys, tmp_path, monkeypatch, match="cannot write",
                keep=["file"])


# ---------------------------------------------------------------------------- mechanisms, audit, …
@pytest.mark.parametrize("argv, match", [
    (["mechanisms", "--epsilon", "0"], "epsilon must be finite and > 0"),
    (["mechanisms", "--epsilon", "1", "--samples", "1"], "--samples must be >= 2"),
    (["mechanisms", "--epsilon", "1", "--dim", "0"], "--dim must be >= 1"),
    (["mechanisms", "--epsilon", "1", "--mechanisms", "foo"], "unknown mechanisms ['foo']"),
    (["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "0"], "epsilon"),
    (["bench", "rec"], "needs --out"),
    (["bench", "rec", "--out", "b.json", "--trials", "1"], "--trials must be >= 2"),
    (["report", "no-such-folder"], "is not a folder"),
    (["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1", "--bits", "40"], "lower --bits"),
    (["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1", "--trials", "100000000000"],
     "lower --trials"),
    (DME + ["--seed", "-1"], "--seed must be >= 0"),
    (["mechanisms", "--epsilon", "1", "--seed", "-1"], "--seed must be >= 0"),
    (["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1", "--seed", "-1"], "--seed must be >= 0"),
    (["bench", "mrc", "--quick", "--seed", "-1"], "--seed must be >= 0"),
])
def test_other_commands_refuse_before_any_work(argv, match, capsys, tmp_path, monkeypatch):
    refused(argv, capsys, tmp_path, monkeypatch, match=match)


@pytest.mark.parametrize("cmd", [
    ["mechanisms", "--epsilon", "1"],
    ["audit", "--mechanism", "privunitg", "--codec", "mrc", "--epsilon", "1"],
    ["bench", "rec"],
])
def test_every_file_writing_command_refuses_an_existing_out(cmd, capsys, tmp_path, monkeypatch):
    (tmp_path / "r.json").write_text("{}")
    refused(cmd + ["--out", "r.json"], capsys, tmp_path, monkeypatch, match="exists", keep=["r.json"])


# ------------------------------------------------------------------------------------- subprocess
def _cli(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ldp_rec.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_subprocess_fl_refusal_is_one_line_and_creates_nothing(tmp_path):
    proc = _cli(FL + ["--codec", "foo"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "unknown codec 'foo'" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no empty results/fl-<time>/ folder


def test_subprocess_dme_memory_refusal(tmp_path):
    proc = _cli(DME + ["--bits", "40", "--out", "r.json"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "lower --bits" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_fl_exits_when_the_simulation_engine_cannot_start(capsys, tmp_path, monkeypatch):
    """Ray cannot start (here: the backend's constructor fails): the command reports it in one line and
    returns, and the ServerApp thread stops instead of waiting for nodes (it used to wait forever)."""
    import threading

    import flwr.server.superlink.fleet.vce.backend.raybackend as raybackend

    def unreachable(self, *a, **k):
        raise ConnectionError("Could not connect to Ray at 10.255.255.1:6379")

    monkeypatch.setattr(raybackend.RayBackend, "__init__", unreachable)
    monkeypatch.chdir(tmp_path)
    before = set(threading.enumerate())
    rc = main(FL + ["--rounds", "3", "--out", "r.json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("ldp-rec: error: Flower's simulation engine failed (ConnectionError: "
                                          "Could not connect to Ray"), err
    for t in set(threading.enumerate()) - before:
        if not t.daemon:  # the ServerApp thread; Python would wait for it at exit
            t.join(timeout=120)  # a generous deadline: it ends within a polling interval
            assert not t.is_alive(), f"thread {t.name} still running"
    assert not (tmp_path / "r.json").exists()
