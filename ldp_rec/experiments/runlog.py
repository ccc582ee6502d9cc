"""Quiet runs: Flower's, Ray's and ldp-rec's own log lines go to a file, the console keeps the
progress bar (``--verbose`` keeps everything on the console, as before).

Flower logs through the ``flwr`` logger, whose console handler Flower installs at import
(``flwr.supercore.logger.console_handler``); :func:`quiet_logs` silences that handler and sends
``flwr`` and ``ldp_rec`` records to the run's log file instead, and restores both afterwards. Ray
is started by Flower's backend with :func:`ray_init_args`: its driver logs at ERROR only and the
workers' output stays in Ray's own session logs (``log_to_driver`` false) instead of the console.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

_LOGGERS = ("flwr", "ldp_rec", "py.warnings")


def ray_init_args(*, verbose: bool) -> dict:
    """Ray's ``init`` options for a quiet (or verbose) run, for Flower's ``backend_config``."""
    return {"logging_level": logging.INFO if verbose else logging.ERROR, "log_to_driver": bool(verbose)}


@contextlib.contextmanager
def quiet_logs(log_file, *, verbose: bool = False):
    """Within the block, ``flwr`` and ``ldp_rec`` log records (INFO and up) and Python warnings (Ray's
    among them) go to ``log_file`` (appended) and not to the console, unless ``verbose``. Yields the
    log file's path (None when verbose)."""
    if verbose:
        yield None
        return
    try:
        from flwr.supercore.logger import console_handler
    except ImportError:  # pragma: no cover - another Flower layout
        console_handler = None
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    saved = []
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        saved.append((lg, lg.level, lg.propagate))
        lg.addHandler(handler)
        lg.setLevel(min(lg.level or logging.INFO, logging.INFO))
        lg.propagate = False
    logging.captureWarnings(True)
    console_level = console_handler.level if console_handler is not None else None
    if console_handler is not None:
        console_handler.setLevel(logging.CRITICAL + 1)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        if console_handler is not None:
            console_handler.setLevel(console_level)
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
        handler.close()


def say(msg: str) -> None:
    """One status line on stderr (kept apart from the result tables on stdout)."""
    print(msg, file=sys.stderr, flush=True)
