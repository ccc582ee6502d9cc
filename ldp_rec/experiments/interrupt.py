"""Ctrl-C for long runs: the first press asks the run to stop after the work in flight, the second
forces it.

:class:`StopOnInterrupt` installs a SIGINT handler (main thread only) for the block. The first
SIGINT sets ``event`` (a ``FederationServer.stop``: the runners stop after the round in progress,
:mod:`ldp_rec.fl.stopping`) and says so once; the run then writes what it completed. A second SIGINT
stops the Ray instance this process started (if any) and raises ``KeyboardInterrupt``. The previous
handler is restored on exit.
"""

from __future__ import annotations

import signal
import threading

from .runlog import say


class StopOnInterrupt:
    def __init__(self, message: str = "") -> None:
        self.event = threading.Event()
        self.message = message
        self._previous = None

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            _stop_ray()
            raise KeyboardInterrupt
        self.event.set()
        say(f"\ninterrupted: {self.message or 'stopping after the work in progress'} "
            "(press Ctrl-C again to force)")

    def __enter__(self) -> "StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _stop_ray() -> None:
    """Stop the Ray instance this process started (its raylet and workers), if Ray is loaded."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None:
        try:
            if ray.is_initialized():
                ray.shutdown()
        except Exception:  # noqa: BLE001 - best effort while forcing a stop
            pass
