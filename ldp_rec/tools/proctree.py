"""The processes of a local Flower deployment: start, track every descendant, stop (Linux).

Flower's daemons spawn helpers the caller never sees: ``flower-superlink`` starts a SuperExec
*in a new session* (so it escapes the caller's process group), and every SuperExec starts one
``flwr-serverapp`` / ``flwr-clientapp`` process per task. :class:`ProcessTree` therefore

* starts each daemon in its own session with ``PR_SET_PDEATHSIG = SIGTERM`` (it is told to stop
  if the driver dies, even by SIGKILL),
* records every descendant by ``(pid, start time)`` from ``/proc`` each time :meth:`track` is
  called (a pid alone could be reused by an unrelated process later),
* and :meth:`stop` sends SIGTERM to every recorded process still alive, waits, SIGKILLs the
  survivors and reaps what it can. It never signals a process it did not start or see
  descend from one it started.

:func:`become_subreaper` (optional, for a driver script) makes orphaned descendants come back to
the driver instead of init, so they can be reaped. :meth:`ProcessTree.listening` reports the TCP
listeners of the tree, used to prove that a loopback deployment listens on loopback only.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports that were free on ``host`` a moment ago (bind to port 0)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux), so a SuperExec whose
    parent died is re-parented here rather than to init. Returns False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of ``pid`` from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _short(cmd: str) -> str:
    """The Flower program of a command line (``flower-superlink``, ``flwr-clientapp`` …)."""
    names = [Path(tok).name for tok in cmd.split()]
    return next((n for n in names if n.startswith(("flower-", "flwr"))), names[0] if names else "?")


def _pdeathsig() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _listeners() -> dict[int, tuple[str, int]]:
    """socket inode → (address, port) of every listening TCP socket (IPv4 and IPv6)."""
    out = {}
    for name, v6 in (("tcp", False), ("tcp6", True)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A":  # TCP_LISTEN
                continue
            hexaddr, hexport = parts[1].split(":")
            raw = bytes.fromhex(hexaddr)
            # /proc prints the address as 32-bit words in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            out[int(parts[9])] = (str(ipaddress.ip_address(raw)), int(hexport, 16))
    return out


@dataclass
class ProcessTree:
    """The processes of one deployment, their descendants, and their shutdown."""

    logdir: Path
    started: list = field(default_factory=list)  # (name, Popen)
    seen: dict = field(default_factory=dict)  # pid -> (start time, cmdline)

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, preexec_fn=_pdeathsig)
        finally:
            log.close()
        self.started.append((name, proc))
        self.track()
        return proc

    def track(self) -> None:
        """Record every live descendant of the started processes (by pid and start time), also
        below recorded processes that were re-parented after their parent exited."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (st := _proc_stat(int(entry))) is not None:
                children.setdefault(st[0], []).append(int(entry))
        stack = [p.pid for _, p in self.started] + self.alive()
        while stack:
            pid = stack.pop()
            st = _proc_stat(pid)
            if st is not None and pid not in self.seen:
                self.seen[pid] = (st[1], _cmdline(pid))
            stack.extend(children.get(pid, []))

    def alive(self) -> list[int]:
        """Recorded pids still running the process recorded (not a reused pid, not a zombie)."""
        out = []
        for pid, (start, _) in self.seen.items():
            st = _proc_stat(pid)
            if st is not None and st[1] == start:
                try:
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                if state != "Z":
                    out.append(pid)
        return out

    def exited(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.started if p.poll() is not None]

    def listening(self) -> list[dict]:
        socks = _listeners()
        out = []
        for pid in self.alive():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and (inode := int(link[8:-1])) in socks:
                    addr, port = socks[inode]
                    out.append({"process": _short(self.seen[pid][1]), "pid": pid, "address": addr, "port": port})
        return sorted(out, key=lambda r: (r["port"], r["pid"]))

    def _signal(self, sig: int) -> None:
        for pid in self.alive():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float) -> list[int]:
        """SIGTERM every recorded process, wait up to ``grace`` s, SIGKILL survivors, reap.
        Returns the pids that had to be killed."""
        self.track()
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        killed = self.alive()
        if killed:
            self._signal(signal.SIGKILL)
            time.sleep(0.2)
        for _, p in self.started:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._reap()
        return killed

    def _reap(self) -> None:
        for pid in list(self.seen):  # orphans re-parented to us (subreaper) are our children
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for name, _ in self.started:
            text = (self.logdir / f"{name}.log").read_text(errors="replace").splitlines()
            parts.append(f"--- {name}.log (last {lines} lines)\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)
