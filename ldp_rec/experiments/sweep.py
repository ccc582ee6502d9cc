"""Single runs, sweeps and resumes of ``ldp-rec fl`` and ``ldp-rec dme``: one driver for both.

:func:`main` merges the config file and the command line (:mod:`.runconfig`). Without sweep axes
it is one run, ``run_one(args)``, exactly as before. With axes it expands the grid (seeds fastest),
checks *every* point with ``check`` before running any, and writes one folder::

    OUT/manifest.json        the invocation, the axes, and every point's params, result and status
    OUT/manifest.points.csv  the same points as CSV
    OUT/<point>/result.json  one result per point (its CSV tables beside it), e.g. epsilon=2_seed=0/

The manifest is rewritten after every point (status ``pending``, ``done``, ``failed`` or
``interrupted``). ``ldp-rec report OUT`` summarises a sweep across seeds (:mod:`.report`).

Resume (``--resume OUT``): for a sweep folder, the points not done are run again from the saved
invocation (an interrupted FL point continues from its last checkpointed round); for a single FL
run, ``OUT`` is its result file (or folder), and the run continues from the invocation saved in
its checkpoint folder (:func:`checkpoint_dir`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ParameterError
from .results import write_result
from .runconfig import expand, given, option_table, resolve
from .runlog import say

INTERRUPTED = 130  # exit status of a run stopped by Ctrl-C (128 + SIGINT)
MANIFEST = "manifest.json"
INVOCATION = "invocation.json"


def checkpoint_dir(out) -> Path:
    """The checkpoint folder of the result file ``out``: ``FILE.checkpoint/`` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".checkpoint")


def save_invocation(folder, args: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INVOCATION
    path.write_text(json.dumps({k: v for k, v in args.items() if not k.startswith("_")}, indent=1))
    return path


def _options(add_arguments) -> dict:
    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    return option_table(p)


def main(args, *, command: str, add_arguments, run_one, check=None) -> int:
    """``ldp-rec <command>``: resume, a sweep, or one run (module doc). ``run_one(args) -> int``
    writes one result to ``args.out``; ``check(args)`` raises for a bad point before any work."""
    if getattr(args, "resume", None):
        return resume(args, command=command, run_one=run_one)
    base, axes = resolve(args, _options(add_arguments))
    if not axes:
        return run_one(base)
    return run_sweep(base, axes, command=command, run_one=run_one, check=check)


def _manifest_rows(manifest: dict) -> list[dict]:
    return [{"name": p["name"], **p["params"], "status": p["status"], "result": p["result"]}
            for p in manifest["points"]]


def _write_manifest(folder: Path, manifest: dict) -> None:
    write_result(folder / MANIFEST, manifest, force=True, tables={"points": _manifest_rows(manifest)})


def run_sweep(base: argparse.Namespace, axes: dict, *, command: str, run_one, check=None,
              manifest: dict | None = None) -> int:
    """Run every point of the grid into one folder (module doc); returns 0, or the first non-zero
    status of a point (130: interrupted; the manifest says which points are done)."""
    from .results import run_dir

    points = expand(base, axes)
    if manifest is None:
        if base.out and Path(base.out).suffix == ".json":
            raise ParameterError(f"--out {base.out}: a sweep writes a folder of results; give a folder")
        if base.out:
            folder = Path(base.out)
            if (folder / MANIFEST).exists() and not getattr(base, "force", False):
                raise ParameterError(f"--out {folder} already holds a sweep; choose another folder, pass --force, "
                                     f"or continue it with --resume {folder}")
        else:
            folder = run_dir("results", f"{command}-sweep")
    else:
        folder = Path(manifest["folder"])
    for p in points:
        p.args.out = str(folder / p.name / "result.json")
        p.args.force = True if manifest is not None else bool(getattr(base, "force", False))
    if check is not None:
        for p in points:
            try:
                check(p.args)
            except ParameterError as exc:
                raise ParameterError(f"sweep point {p.name}: {exc}") from None
    if manifest is None:
        manifest = {"command": command, "folder": str(folder), "axes": axes,
                    "invocation": {k: v for k, v in vars(base).items() if not k.startswith("_")},
                    "points": [{"name": p.name, "params": p.params, "result": f"{p.name}/result.json",
                                "status": "pending"} for p in points]}
    folder.mkdir(parents=True, exist_ok=True)
    _write_manifest(folder, manifest)
    status = {e["name"]: e for e in manifest["points"]}
    todo = [p for p in points if status[p.name]["status"] != "done"]
    say(f"sweep: {len(points)} points ({len(points) - len(todo)} done) into {folder}")
    rc = 0
    for i, p in enumerate(todo, 1):
        entry = status[p.name]
        say(f"[{i}/{len(todo)}] {p.name}")
        if entry["status"] == "interrupted":
            p.args.resume = p.args.out
        try:
            rc = int(run_one(p.args) or 0)
        except KeyboardInterrupt:
            rc = INTERRUPTED
        entry["status"] = {0: "done", INTERRUPTED: "interrupted"}.get(rc, "failed")
        _write_manifest(folder, manifest)
        if rc:
            break
    if rc == INTERRUPTED:
        say(f"sweep interrupted; continue it with: ldp-rec {command} --resume {folder}")
    elif rc == 0:
        say(f"sweep done: {folder}; summarise with: ldp-rec report {folder}")
    return rc


def _given(args) -> list[str]:
    """The options given on the command line besides ``--resume`` and ``--verbose``."""
    return sorted(given(args) - {"resume", "verbose"})


def resume(args, *, command: str, run_one) -> int:
    """Continue the sweep folder or the single run at ``args.resume`` (module doc); its settings
    come from the files it saved, and only ``--verbose`` may be given with it."""
    extra = _given(args)
    if extra:
        raise ParameterError(f"--resume continues a run with its own settings; drop --{extra[0].replace('_', '-')}")
    target = Path(args.resume)
    verbose = bool(getattr(args, "verbose", False))
    if (target / MANIFEST).exists():
        manifest = json.loads((target / MANIFEST).read_text())
        if manifest.get("command") != command:
            raise ParameterError(f"{target} is a sweep of 'ldp-rec {manifest.get('command')}', not of '{command}'")
        manifest["folder"] = str(target)
        base = argparse.Namespace(**{**manifest["invocation"], "verbose": verbose, "resume": None})
        return run_sweep(base, manifest["axes"], command=command, run_one=run_one, manifest=manifest)
    result = target / "result.json" if target.is_dir() else target
    saved = checkpoint_dir(result) / INVOCATION
    if not saved.exists():
        raise ParameterError(f"nothing to resume at {target}: no sweep manifest and no checkpoint "
                             f"({saved} missing; a completed run keeps none)")
    inv = json.loads(saved.read_text())
    return run_one(argparse.Namespace(**{**inv, "verbose": verbose, "resume": str(result)}))
