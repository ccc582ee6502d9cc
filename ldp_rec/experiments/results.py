"""The result-file schema: every result records its config, package versions and git commit.

Results are data: a JSON object ``{"schema": ..., "meta": {...}, "config": {...}, ...figures}``
written once. :func:`write_result` refuses to overwrite an existing file unless ``force=True``.
Every table of a result is also written as CSV beside the JSON (:func:`write_table`:
``FILE.<table>.csv``; a header row, one row per record, empty cells for null, lists as JSON), so
spreadsheets and pandas read it directly: each top-level list of records (``rows``, ``rounds``, …)
and the tables a runner names (per-round rows of every FL mode, per-mode summaries, a sweep's
points and summary).
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
_PACKAGES = ("ldp-rec", "numpy", "scipy", "numba", "torch", "flwr", "opacus", "dp-accounting")


def git_commit() -> str | None:
    """The commit of the ldp-rec checkout (with ``+dirty`` when the tree has changes), if any."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def metadata() -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "versions": versions(),
        "cpu_count": os.cpu_count(),
    }


def args_config(args) -> dict:
    """The command-line options of an argparse namespace, without the dispatch internals."""
    return {k: v for k, v in vars(args).items() if not k.startswith("_")}


def _finite(o):
    """Strict JSON: a non-finite float (an unbounded ε, a non-private mode's ε, a NaN) becomes ``null``."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, (float, np.floating)) and not np.isfinite(o):
        return None
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    return o


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_result(path, result: dict, *, force: bool = False, tables: dict[str, list[dict]] | None = None) -> Path:
    """Write ``result`` (with ``meta`` added) as strict JSON (non-finite numbers as ``null``); never
    overwrite silently. Each top-level list of records of ``result`` and each of ``tables`` (name ->
    rows; these win over a list of the same name) is also written as ``<stem>.<name>.csv``."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; choose another --out or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = _finite({"meta": metadata(), **result})
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_default, allow_nan=False))
    tmp.replace(path)
    found = {k: v for k, v in result.items()
             if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)}
    for name, rows in {**found, **(tables or {})}.items():
        write_table(table_path(path, name), rows)
    return path


def table_path(path, name: str) -> Path:
    """Where :func:`write_result` puts table ``name`` of the result file ``path``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{name}.csv")


def _cell(v):
    v = _finite(v)
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=_default)
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_table(path, rows: list[dict]) -> Path:
    """``rows`` as CSV: the header is the union of the keys in order of first appearance; null and
    non-finite cells are empty, lists and dicts are JSON."""
    path = Path(path)
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cols))
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    tmp.replace(path)
    return path


def run_dir(base, name: str) -> Path:
    """A fresh folder ``base/name-YYYYmmdd-HHMMSS[-k]`` for one run."""
    base = Path(base)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        d = base / (f"{name}-{stamp}" + (f"-{k}" if k else ""))
        try:
            d.mkdir(parents=True)
            return d
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a fresh run folder under {base}")
