"""Flower's deployment engine over loopback (simulations/deploy_loopback.py, ldp_rec.tools.deploy,
ldp_rec.tools.proctree) and the docker/ files.

The end-to-end test starts a real SuperLink and SuperNodes on 127.0.0.1, runs the ldp-rec apps
for two rounds and checks that the decoded aggregates equal those of the simulation engine
(:func:`ldp_rec.experiments.fl.run_flower`) on the same FLConfig: cohorts depend only on the
number of nodes and the seed, so both engines must produce the same model, round by round.
If the deployment engine cannot start here, the test fails with the script's message; it is
never skipped.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from ldp_rec.errors import ParameterError
from ldp_rec.tools import deploy, proctree
from ldp_rec.fl.config import FLConfig

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "simulations" / "deploy_loopback.py"
SMALL = dict(dataset="digits", partition="iid", clients=24, nodes=2, rounds=2, mode="ldp-rec", bits=8, seed=0)


def _alive(pid: int, cmd: str) -> bool:
    try:
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return now[:200] == cmd and state != "Z"


# ----------------------------------------------------------------------------- fast checks

def test_stage_app_leaves_checkout_alone_and_declares_every_key(tmp_path):
    before = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    app = deploy.stage_app(tmp_path / "app", source=ROOT)
    assert hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() == before
    with open(app / "pyproject.toml", "rb") as fh:
        staged = tomllib.load(fh)
    assert "federations" not in staged["tool"]["flwr"]
    assert staged["tool"]["flwr"]["app"]["components"] == {
        "serverapp": "ldp_rec.fl.server_app:app", "clientapp": "ldp_rec.fl.client_app:app"}
    declared = staged["tool"]["flwr"]["app"]["config"]
    assert set(FLConfig().to_record()) | {"out"} <= set(declared)
    files = [p for p in (app / "ldp_rec").rglob("*") if p.is_file()]
    assert files and all(p.suffix == ".py" for p in files)
    assert (app / "ldp_rec" / "fl" / "client_app.py").read_bytes() == (ROOT / "ldp_rec/fl/client_app.py").read_bytes()
    deploy.stage_app(app, source=ROOT)  # an earlier staged copy may be replaced ...
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(deploy.DeploymentError, match="not a staged"):  # ... any other folder never
        deploy.stage_app(tmp_path / "mine", source=ROOT)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    for bad in (ROOT, ROOT / "ldp_rec" / "x", ROOT.parent):
        with pytest.raises(deploy.DeploymentError, match="overlap"):
            deploy.stage_app(bad, source=ROOT)


def test_run_overrides_round_trip_through_flconfig(tmp_path):
    import tomli_w

    cfg = FLConfig(**{**SMALL, "epsilon": 2.5, "codec": "ppr", "fault": "corrupt:3"})
    rec = deploy.run_overrides(cfg, tmp_path / "r.json")
    assert rec["out"] == str(tmp_path / "r.json")
    back = tomllib.loads(tomli_w.dumps(rec))  # what Flower parses from --run-config FILE
    assert FLConfig.from_record({k: v for k, v in back.items() if k != "out"}) == cfg


def test_settings_refuse_non_loopback_and_bad_values():
    with pytest.raises(ParameterError, match="loopback"):
        deploy.LoopbackSettings(host="0.0.0.0")
    with pytest.raises(ParameterError, match="loopback"):
        deploy.LoopbackSettings(host="superlink")
    with pytest.raises(ParameterError, match="supernodes"):
        deploy.LoopbackSettings(supernodes=0)
    with pytest.raises(ParameterError, match="timeout"):
        deploy.LoopbackSettings(timeout=0)
    deploy.LoopbackSettings(host="::1")
    with pytest.raises(ParameterError, match="must equal the number of SuperNodes"):
        deploy.run_loopback(FLConfig(**{**SMALL, "nodes": 3}), settings=deploy.LoopbackSettings(supernodes=2))


def test_listener_table_decodes_addresses_and_ports():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        table = proctree._listeners()
        assert ("127.0.0.1", port) in table.values()
    ports = proctree.free_ports(3)
    assert len(set(ports)) == 3


def test_process_tree_stops_detached_grandchildren(tmp_path):
    """A child that spawns a grandchild in its own session (as flower-superlink does with its
    SuperExec) and ignores SIGTERM: stop() must still leave nothing running."""
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
            "time.sleep(120)\n")
    tree = proctree.ProcessTree(tmp_path)
    tree.start("parent", [sys.executable, "-c", code], dict(os.environ))
    deadline = time.monotonic() + 10
    while len(tree.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        tree.track()
    assert len(tree.seen) == 2, tree.seen
    killed = tree.stop(grace=1.0)
    assert tree.started[0][1].pid in killed  # it ignored SIGTERM, so it was SIGKILLed
    assert tree.alive() == []
    assert not any(_alive(pid, cmd[:200]) for pid, (_, cmd) in tree.seen.items())


def test_docker_files_parse_with_installed_flower_and_match_the_loopback_layout():
    """No Docker engine here: check compose.yml's commands with Flower 1.42's own argument parsers
    and that its topology is the one simulations/deploy_loopback.py --serverapp-isolation process runs."""
    import yaml
    from flwr.supercore.cli.flower_superexec import _parse_args as superexec_parser
    from flwr.superlink.cli.flower_superlink import _parse_args_run_superlink
    from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode

    parsers = {"flower-superlink": _parse_args_run_superlink, "flower-supernode": _parse_args_run_supernode,
               "flower-superexec": superexec_parser}
    services = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())["services"]
    args = {}
    for name, svc in services.items():
        cmd = svc["command"]
        args[name] = parsers[cmd[0]]().parse_args(cmd[1:])  # SystemExit on an unknown or bad flag
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
    link = args["superlink"]
    assert link.isolation == "process" and link.runtime_dependency_install is False and link.insecure
    assert args["serverapp"].runtime_api_address == f"superlink:{link.port}"
    nodes = {k: v for k, v in args.items() if k.startswith("supernode-")}
    assert len(nodes) >= 2
    for k, a in sorted(nodes.items()):
        assert a.superlink == f"superlink:{link.port}" and a.isolation == "subprocess" and a.host == "127.0.0.1"
        assert a.node_config == f"partition-id={k.split('-')[1]} num-partitions={len(nodes)}"
    published = services["superlink"]["ports"]
    assert published == [f"127.0.0.1:{link.port}:{link.port}"]  # the insecure SuperLink only on host loopback
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "torch==2.13.0" in dockerfile
    assert dockerfile.index("torch==2.13.0") < dockerfile.index("pip install .")
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()  # the same torch as the development setup


# ----------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_deployment_engine_matches_simulation_engine(tmp_path):
    from ldp_rec.experiments.fl import run_flower

    cfg = FLConfig(**SMALL)
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(SCRIPT), "--supernodes", "2", "--rounds", "2", "--clients", "24", "--partition", "iid",
           "--mode", "ldp-rec", "--bits", "8", "--seed", "0", "--timeout", "900",  # generous: CI is a loaded 2-core machine
           "--workdir", str(tmp_path / "work"), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, (
        f"the loopback deployment failed (exit {proc.returncode}); Flower's deployment engine could not run here:\n"
        f"{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}")
    print(f"loopback deployment: {wall:.1f} s wall\n{proc.stdout}")
    result = json.loads(out.read_text())
    dep = result["deployment"]
    assert dep["status"] == "finished:completed"
    assert FLConfig.from_record({k: v for k, v in result["config"].items() if k not in ("command", "engine", "supernodes")}) == cfg

    # every process is gone, and every listener of the run was on loopback
    assert dep["processes"] and not [p for p in dep["processes"] if _alive(p["pid"], p["cmd"])]
    programs = {r["process"] for r in dep["listening"]}
    assert {"flower-superlink", "flower-supernode"} <= programs, dep["listening"]
    assert all(r["address"] == "127.0.0.1" for r in dep["listening"]), dep["listening"]
    assert len(dep["processes"]) >= 1 + 2 + 3  # superlink, 2 supernodes, their SuperExecs, app processes

    rows = result["rounds"]
    assert [r["round"] for r in rows] == [1, 2]
    for r in rows:
        assert r["clients_ok"] == 24 and r["clients_failed"] == 0 and r["clients_refused"] == 0
        assert r["nodes_sampled"] == r["nodes_replied"] == 2
        assert r["payload_bits_per_client"] == 8.0
        assert r["epsilon_round"] == pytest.approx(cfg.epsilon)
        # the SuperNodes drew their private coins from OS entropy (the deployment path refuses seeded ones)
        assert r["private_coins"] == ["os-entropy"]
    assert rows[-1]["epsilon_total"] == pytest.approx(2 * cfg.epsilon)

    # the simulation engine with the same config (OS-entropy coins too): the same rows up to the
    # clients' private randomness, so only what does not depend on it is compared exactly
    sim_rows, _ = run_flower(cfg)
    for d, s in zip(rows, sim_rows, strict=True):
        for key in ("round", "clients_ok", "clients_failed", "payload_bits_per_client", "private_coins"):
            assert d[key] == s[key], (key, d, s)
        assert abs(d["accuracy"] - s["accuracy"]) < 0.25
