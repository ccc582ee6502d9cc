"""Run every default suite into ONE fresh results folder, then render the report.

    python simulations/run_all.py [--full] [--out results] [--only dme,fl,comm,cost]

Creates ``<out>/suite-<time>/`` (or ``suite-full-<time>/``) and runs, each as its own process
(own memory, own Ray session, a crash stops the chain with its exit code):

1. ``dme``:  ``simulations/dme_sweep.py [--full] --out <folder>`` (its own ``dme-<time>/`` inside);
2. ``fl``:   ``simulations/fl_suite.py [--full] --into <folder>/fl`` (config ``simulations/fl_default.toml``);
3. ``comm``: ``simulations/comm_table.py --into <folder>/comm`` (d = 500 and 650, ε = 1, 4, 8);
4. ``cost``: ``simulations/cost_scaling.py [--full] --into <folder>/cost``;

then :func:`ldp_rec.experiments.report.render` builds ``<folder>/report/report.md`` from the result
JSONs, and this script appends an index of every suite's own tables and figures (Markdown, CSV, PNG)
to it. Wall times of every part are printed and written to ``<folder>/run_all.json``; each part's
output goes to ``<folder>/logs/<part>.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldp_rec.experiments.report import render  # noqa: E402
from ldp_rec.experiments.results import metadata, run_dir  # noqa: E402

SIM = ROOT / "simulations"
PARTS = ("dme", "fl", "comm", "cost")


def plan(folder: Path, *, full: bool = False, only=PARTS) -> list[tuple[str, list[str]]]:
    """The (part, argv) list of a suite run into ``folder``."""
    py = sys.executable
    f = ["--full"] if full else []
    cmds = {
        "dme": [py, str(SIM / "dme_sweep.py"), *f, "--out", str(folder)],
        "fl": [py, str(SIM / "fl_suite.py"), *f, "--into", str(folder / "fl")],
        "comm": [py, str(SIM / "comm_table.py"), "--into", str(folder / "comm")],
        "cost": [py, str(SIM / "cost_scaling.py"), *f, "--into", str(folder / "cost")],
    }
    return [(p, cmds[p]) for p in PARTS if p in only]


def run_plan(steps: list[tuple[str, list[str]]], folder: Path, *, echo: bool = True) -> dict:
    """Run the steps in order (stdout and stderr to ``logs/<part>.log``, echoed); wall seconds per part."""
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    walls = {}
    for part, argv in steps:
        print(f"=== {part}: {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        with open(logs / f"{part}.log", "w") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            rc = proc.wait()
        walls[part] = time.perf_counter() - t0
        print(f"=== {part}: exit {rc}, {walls[part]:.0f} s", flush=True)
        if rc != 0:
            raise SystemExit(f"part {part!r} failed with exit code {rc}; see {logs / (part + '.log')}")
    return walls


def index_section(folder: Path, report_dir: Path) -> str:
    """Markdown links to every suite's own tables and figures (paths relative to the report)."""
    lines = ["", "## Suite outputs", ""]
    for path in sorted(folder.rglob("*")):
        if report_dir in path.parents or "logs" in path.parts or path.suffix not in (".md", ".csv", ".png"):
            continue
        rel = os.path.relpath(path, report_dir)
        lines.append(f"![{path.name}]({rel})" if path.suffix == ".png" else f"- [{path.relative_to(folder)}]({rel})")
    for md in ("fl/fl_suite.md", "comm/comm_table.md"):
        if (folder / md).exists():
            lines += ["", f"### {md}", "", (folder / md).read_text()]
    return "\n".join(lines) + "\n"


def finish(folder: Path, walls: dict, *, full: bool) -> Path:
    t0 = time.perf_counter()
    report = render(folder)
    with open(report, "a") as fh:
        fh.write(index_section(folder, report.parent))
    walls["report"] = time.perf_counter() - t0
    walls["total"] = sum(v for k, v in walls.items() if k != "total")
    (folder / "run_all.json").write_text(json.dumps({"meta": metadata(), "full": full, "wall_seconds": walls}, indent=2))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="every suite's full grid (hours)")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    args = ap.parse_args(argv)
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = set(only) - set(PARTS)
    if bad:
        raise SystemExit(f"unknown parts {sorted(bad)}; choose from {PARTS}")
    folder = run_dir(args.out, "suite-full" if args.full else "suite")
    walls = run_plan(plan(folder, full=args.full, only=only), folder)
    report = finish(folder, walls, full=args.full)
    print(f"\nwall seconds: {json.dumps({k: round(v) for k, v in walls.items()})}")
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
