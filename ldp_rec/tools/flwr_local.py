"""The local SuperLink that ``flwr run .`` starts, listed and stopped (Linux).

With Flower 1.42, ``flwr run .`` on the default ``local`` connection of Flower's configuration
(``$FLWR_HOME/config.toml``, ``address = ":local:"``) does not run the simulation itself: it starts a
*managed* ``flower-superlink --simulation`` in the background (listening on 127.0.0.1, logging to
``$FLWR_HOME/local-superlink/superlink.log``), submits the run to it and returns. That SuperLink and
its SuperExec keep running for later runs (``flwr ls``, ``flwr log`` talk to it) until stopped::

    python -m ldp_rec.tools.flwr_local status   # the managed SuperLink of this FLWR_HOME, if running
    python -m ldp_rec.tools.flwr_local stop     # stop it and every process it started

Only the SuperLink whose ``--log-file`` is this ``FLWR_HOME``'s (``~/.flwr`` when unset) is
matched, by pid from ``/proc``, with its descendants; nothing else is signalled.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def flwr_home() -> Path:
    """Flower's folder: ``$FLWR_HOME``, else ``~/.flwr``."""
    return Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr").expanduser()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def managed_superlinks(home: Path | None = None) -> list[int]:
    """Pids of the ``flower-superlink`` processes that ``flwr`` started for ``home`` (module doc)."""
    log_file = str((home or flwr_home()) / "local-superlink" / "superlink.log")
    found = []
    for pid in _pids():
        argv = _cmdline(pid)
        if any(Path(a).name == "flower-superlink" for a in argv[:2]) and "--log-file" in argv:
            if argv[argv.index("--log-file") + 1 :][:1] == [log_file]:
                found.append(pid)
    return found


def descendants(roots: list[int]) -> list[int]:
    """``roots`` and every process below them (by parent pid), parents first."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        parent = _ppid(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo += children.get(pid, [])
    return out


def stop(home: Path | None = None, *, grace: float = 10.0) -> list[int]:
    """SIGTERM the managed SuperLink(s) of ``home`` and their descendants, SIGKILL what is left after
    ``grace`` seconds; returns the pids that were signalled."""
    pids = descendants(managed_superlinks(home))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if _state(p) == "alive"]
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_state(p) == "alive" for p in alive):
            time.sleep(0.1)
    return pids


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return "zombie" if stat[stat.rindex(")") + 2] == "Z" else "alive"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in (["status"], ["stop"]):
        print("usage: python -m ldp_rec.tools.flwr_local {status|stop}", file=sys.stderr)
        return 2
    home = flwr_home()
    if args == ["status"]:
        pids = managed_superlinks(home)
        state = f"running (pid {', '.join(map(str, pids))})" if pids else "not running"
        print(f"local SuperLink of {home}: {state}")
        return 0
    pids = stop(home)
    print(f"stopped the local SuperLink of {home} ({len(pids)} processes)" if pids
          else f"no local SuperLink of {home} is running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
