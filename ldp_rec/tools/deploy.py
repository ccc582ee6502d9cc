"""Run the ldp-rec Flower apps on Flower's *deployment* engine over loopback (testing only).

The same ``ClientApp`` and ``ServerApp`` that ``ldp-rec fl`` runs on the simulation engine
(:mod:`.client_app`, :mod:`.server_app`) run here as separate processes talking HTTP on
127.0.0.1, the way a real federation runs (Flower 1.42, "Run Flower with the Deployment
Runtime"):

    flower-superlink --insecure --host 127.0.0.1 --port P          (Fleet, Control and Runtime
                                                                    HTTP APIs share port P; it
                                                                    starts a SuperExec that runs
                                                                    the ServerApp in a subprocess)
    flower-supernode --insecure --superlink 127.0.0.1:P --port Q_k  (k = 0 … N−1; each runs its
                     --node-config "partition-id=k num-partitions=N"  ClientApp in a subprocess)
    flwr run <staged app> loopback --run-config overrides.toml     (submits the run)

Nothing here re-implements the apps: this module only stages the app, starts and stops the
processes, submits the run, waits for it and reads the results file the module-level ServerApp
writes to the run-config key ``out``. Settings reach the apps only through the run config
(:meth:`FLConfig.to_record`), exactly as with ``flwr run .``.

Why a staged copy of the app
----------------------------
``flwr run DIR`` migrates a ``[tool.flwr.federations]`` section of ``DIR/pyproject.toml`` into
the Flower configuration and *comments it out in place*, and it refuses run-config overrides of
keys that ``[tool.flwr.app.config]`` does not declare. So the run uses a copy
(:func:`stage_app`): ``pyproject.toml`` without the federations section, with every
:class:`FLConfig` key (and ``out``) declared, plus the package's ``.py`` files. The SuperLink
connection lives in a private ``FLWR_HOME/config.toml`` (:func:`write_connection`); the user's
``~/.flwr`` and the checkout are never touched. Flower puts the installed FAB's folder first on
``sys.path``, so the apps that run are the staged copy of this working tree.

Processes
---------
:class:`~ldp_rec.tools.proctree.ProcessTree` starts the daemons, records every process they spawn
(SuperExec, ``flwr-serverapp``, ``flwr-clientapp``) and stops all of them, by pid, in a
``finally`` block: on success, on failure and on timeout.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import LdpRecError, ParameterError
from ..fl.config import FLConfig
from ..fl.policy import ENV_VAR, NodePolicy
from .proctree import ProcessTree, free_ports

CONNECTION = "loopback"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_STAGED_MARKER = ".ldp-rec-staged-app"


class DeploymentError(LdpRecError, RuntimeError):
    """The deployment engine could not start, or the run did not complete."""


@dataclass(frozen=True)
class LoopbackSettings:
    """Process layout and time limits of a loopback deployment.

    ``supernodes`` SuperNodes connect to one SuperLink on ``host`` (must be a loopback address:
    every process runs with ``--insecure``). ``timeout`` bounds the whole run in seconds.
    ``serverapp_isolation``: ``"subprocess"`` (the SuperLink starts the SuperExec that runs the
    ServerApp) or ``"process"`` (the SuperLink runs with ``--isolation process`` and a separate
    ``flower-superexec`` process serves it, the layout of ``docker/compose.yml``).
    """

    supernodes: int = 2
    host: str = "127.0.0.1"
    serverapp_isolation: str = "subprocess"
    timeout: float = 240.0
    startup_timeout: float = 30.0
    poll_seconds: float = 0.5
    status_seconds: float = 10.0
    grace_seconds: float = 10.0
    node_policy: str = ""  # the SuperNodes' NodePolicy (file path or inline JSON); "" = the default policy

    def __post_init__(self) -> None:
        if isinstance(self.supernodes, bool) or not isinstance(self.supernodes, int) or not 1 <= self.supernodes <= 16:
            raise ParameterError(f"supernodes must be an integer in 1..16, got {self.supernodes!r}")
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ParameterError(f"host must be a loopback IP address (insecure mode), got {self.host!r}")
        if self.serverapp_isolation not in ("subprocess", "process"):
            raise ParameterError(f"serverapp_isolation must be 'subprocess' or 'process', got {self.serverapp_isolation!r}")
        for name in ("timeout", "startup_timeout", "poll_seconds", "status_seconds", "grace_seconds"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be > 0")


@dataclass(frozen=True)
class DeploymentResult:
    """What a loopback run returned: the ServerApp's per-round rows and how the run went."""

    rows: list
    config: dict
    run_id: int
    status: str
    wall_seconds: float
    listening: list  # [{"process", "pid", "address", "port"}] TCP listeners of the whole process tree
    processes: list  # every process the run started or spawned: [{"pid", "cmd"}]
    workdir: str
    flwr_version: str

    def to_record(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- staging

def _flwr_version() -> str:
    import flwr

    return str(getattr(flwr, "__version__", "unknown"))


def stage_app(dest: Path, *, source: Path = PROJECT_ROOT) -> Path:
    """Copy the Flower app at ``source`` to ``dest`` for ``flwr run`` (see the module docstring).

    ``[tool.flwr.app.config]`` of the copy declares the source's keys, every :class:`FLConfig`
    key (defaults from ``FLConfig()``) and ``out = ""``, so any of them can be overridden with
    ``--run-config``; ``[tool.flwr.federations]`` is dropped. Only ``*.py`` files of the
    ``ldp_rec`` package are copied (a FAB carries only source and config files).
    """
    import tomli_w  # a dependency of flwr

    source, dest = Path(source), Path(dest)
    if not (source / "pyproject.toml").is_file() or not (source / "ldp_rec").is_dir():
        raise DeploymentError(f"{source} is not the ldp-rec source tree (pyproject.toml and ldp_rec/ expected)")
    with open(source / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)
    flwr_tool = project.get("tool", {}).get("flwr", {})
    if "app" not in flwr_tool:
        raise DeploymentError(f"{source / 'pyproject.toml'} has no [tool.flwr.app] section")
    flwr_tool.pop("federations", None)
    flwr_tool["app"]["config"] = {**flwr_tool["app"].get("config", {}), **FLConfig().to_record(), "out": ""}
    d, src = dest.resolve(), source.resolve()
    if d == src or d in src.parents or src / "ldp_rec" in (d, *d.parents):
        raise DeploymentError(f"refusing to stage the app at {dest}: it would overlap the source tree {source}")
    if dest.exists():  # replace only an earlier staged copy, never an arbitrary folder
        if not (dest / _STAGED_MARKER).is_file() and any(dest.iterdir()):
            raise DeploymentError(f"{dest} exists and is not a staged ldp-rec app; choose an empty or new folder")
        shutil.rmtree(dest)
    shutil.copytree(source / "ldp_rec", dest / "ldp_rec",
                    ignore=lambda folder, names: [n for n in names if n == "__pycache__"
                                                  or (not n.endswith(".py") and not (Path(folder) / n).is_dir())])
    (dest / "pyproject.toml").write_text(tomli_w.dumps(project))
    for extra in ("README.md", "LICENSE"):
        if (source / extra).is_file():
            shutil.copy2(source / extra, dest / extra)
    (dest / _STAGED_MARKER).write_text("staged by ldp_rec.tools.deploy.stage_app; safe to delete\n")
    return dest


def run_overrides(cfg: FLConfig, out: Path) -> dict:
    """The ``--run-config`` overrides: the whole :class:`FLConfig` record and the results path
    (``out``, read by the module-level ServerApp). Every key is declared in the app's
    ``[tool.flwr.app.config]``, as Flower requires of overrides."""
    return {**cfg.to_record(), "out": str(out)}


def write_connection(flwr_home: Path, address: str, *, name: str = CONNECTION) -> Path:
    """A Flower configuration with one insecure SuperLink connection ``name`` → ``address``."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    path.write_text(f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\naddress = "{address}"\ninsecure = true\n')
    return path


def find_executable(name: str) -> str:
    """``name`` from this interpreter's ``bin`` directory (the venv), else from ``PATH``."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise DeploymentError(f"{name!r} not found next to {sys.executable} or on PATH; is flwr installed?")
    return found


# --------------------------------------------------------------------------- the run

def _env(flwr_home: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(FLWR_HOME=str(flwr_home), FLWR_DISABLE_UPDATE_CHECK="1",
               FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1", PYTHONUNBUFFERED="1")
    return env


def _node_env(flwr_home: Path, policy: str) -> dict:
    """A SuperNode's environment: its own node policy (:mod:`.policy`), which its ClientApp
    processes inherit; without one they run under the default policy."""
    env = _env(flwr_home)
    env.pop(ENV_VAR, None)
    if policy:
        NodePolicy.parse(policy)  # refuse a bad policy before starting anything
        env[ENV_VAR] = policy
    return env


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float, tree: ProcessTree) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeploymentError(f"flower-superlink exited with code {proc.returncode} during startup\n"
                                  + tree.log_tails())
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise DeploymentError(f"the SuperLink did not answer {url} within {timeout:.0f} s\n" + tree.log_tails())


def _cli(args: list[str], env: dict, cwd: Path, timeout: float = 60.0) -> dict:
    """Run ``flwr ARGS --format json`` and return its JSON answer."""
    try:
        res = subprocess.run([find_executable("flwr"), *args, "--format", "json"], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise DeploymentError(f"`flwr {' '.join(args)}` took more than {timeout:.0f} s") from exc
    start = res.stdout.find("{")
    try:
        answer = json.loads(res.stdout[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        answer = {}
    if not answer.get("success"):
        raise DeploymentError(f"`flwr {' '.join(args)}` failed (exit {res.returncode}): "
                              f"{answer.get('error-message', '')}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return answer


def _run_log(run_id: int, env: dict, cwd: Path, dest: Path) -> str:
    """Save the run's ServerApp log (``flwr log --show``) to ``dest``; returns its text."""
    try:
        res = subprocess.run([find_executable("flwr"), "log", str(run_id), CONNECTION, "--show"], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        text = res.stdout + res.stderr
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    dest.write_text(text)
    return text


def run_loopback(cfg: FLConfig, *, settings: LoopbackSettings | None = None, workdir: Path | str | None = None,
                 source: Path = PROJECT_ROOT) -> DeploymentResult:
    """Run ``cfg`` on a SuperLink and ``settings.supernodes`` SuperNodes on loopback.

    ``cfg.nodes`` must equal the number of SuperNodes (the strategy waits for that many nodes).
    Logs, the staged app and the Flower homes go to ``workdir`` (a fresh temporary folder if
    None; it is left in place for inspection). Raises :class:`DeploymentError` with the tails
    of the logs if a process fails to start, the run fails, or ``settings.timeout`` passes.
    Every process started is stopped before this returns or raises.
    """
    settings = settings or LoopbackSettings()
    if cfg.private_seed >= 0:
        raise ParameterError("seeded private coins (private_seed >= 0) are for simulations only; the deployment "
                             "path runs with OS-entropy coins on every node (private_seed = -1)")
    if cfg.nodes != settings.supernodes:
        raise ParameterError(f"cfg.nodes ({cfg.nodes}) must equal the number of SuperNodes ({settings.supernodes})")
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="ldp-rec-deploy-"))
    workdir = workdir.resolve()
    logdir = workdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    app = stage_app(workdir / "app", source=source)
    out = workdir / "server-results.json"
    out.unlink(missing_ok=True)
    overrides = workdir / "run-config.toml"
    import tomli_w

    overrides.write_text(tomli_w.dumps(run_overrides(cfg, out)))

    host = settings.host
    ports = free_ports(1 + settings.supernodes, host)
    link_addr = f"[{host}]:{ports[0]}" if ":" in host else f"{host}:{ports[0]}"
    cli_env = _env(workdir / "home" / "cli")
    write_connection(workdir / "home" / "cli", link_addr)

    tree = ProcessTree(logdir)
    t0 = time.perf_counter()
    try:
        superlink = tree.start("superlink", [
            find_executable("flower-superlink"), "--insecure", "--host", host, "--port", str(ports[0]),
            "--isolation", settings.serverapp_isolation, "--disable-runtime-dependency-installation",
        ], _env(workdir / "home" / "superlink"))
        _wait_healthy(f"http://{link_addr}/health", superlink, settings.startup_timeout, tree)
        if settings.serverapp_isolation == "process":  # the ServerApp's SuperExec as its own process
            tree.start("serverapp", [find_executable("flower-superexec"), "--insecure", "--runtime-api-address",
                                     link_addr], _env(workdir / "home" / "serverapp"))
        n = settings.supernodes
        for k in range(n):
            tree.start(f"supernode-{k}", [
                find_executable("flower-supernode"), "--insecure", "--superlink", link_addr,
                "--host", host, "--port", str(ports[1 + k]), "--isolation", "subprocess",
                "--node-config", f"partition-id={k} num-partitions={n}",
            ], _node_env(workdir / "home" / f"supernode-{k}", settings.node_policy))
        answer = _cli(["run", str(app), CONNECTION, "--run-config", str(overrides)], cli_env, workdir, timeout=120)
        run_id = int(answer["run-id"])
        deadline = time.monotonic() + settings.timeout
        status, next_status = "", time.monotonic() + settings.status_seconds
        listening: dict = {}
        while True:
            tree.track()
            for row in tree.listening():
                listening[(row["pid"], row["port"])] = row
            if dead := tree.exited():
                raise DeploymentError(f"{dead} exited during the run\n" + tree.log_tails())
            # `flwr ls` costs about a CPU second: ask when the results file appears, else now and then
            if out.is_file() or time.monotonic() >= next_status:
                runs = _cli(["ls", CONNECTION, "--run-id", str(run_id)], cli_env, workdir).get("runs", [])
                status = runs[0]["status"] if runs else ""
                if status.startswith("finished"):
                    break
                next_status = time.monotonic() + settings.status_seconds
            if time.monotonic() >= deadline:
                _run_log(run_id, cli_env, workdir, logdir / "run.log")
                raise DeploymentError(f"run {run_id} did not finish within {settings.timeout:.0f} s "
                                      f"(status {status!r}); logs in {logdir}\n" + tree.log_tails())
            time.sleep(settings.poll_seconds)
        wall = time.perf_counter() - t0
        run_log = _run_log(run_id, cli_env, workdir, logdir / "run.log")
        if status != "finished:completed" or not out.is_file():
            raise DeploymentError(f"run {run_id} ended with status {status!r}"
                                  f"{'' if out.is_file() else ' and wrote no results'}; logs in {logdir}\n"
                                  + "\n".join(run_log.splitlines()[-30:]) + "\n" + tree.log_tails())
        server = json.loads(out.read_text())
        return DeploymentResult(rows=server["rounds"], config=server["config"], run_id=run_id, status=status,
                                wall_seconds=wall, listening=sorted(listening.values(), key=lambda r: (r["port"], r["pid"])),
                                processes=[{"pid": pid, "cmd": cmd[:200]} for pid, (_, cmd) in tree.seen.items()],
                                workdir=str(workdir), flwr_version=_flwr_version())
    finally:
        tree.stop(settings.grace_seconds)
