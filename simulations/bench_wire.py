"""Benchmark (not a test): encode and decode µs per user, and bytes on the wire per user, before and after
issue 14's array-valued simulator contract and cohort frame (wire version 2).

Setting: PrivUnitG, d = 650, ε = 4, 1437 users, codecs ``subset`` and ``modified-mrc`` (band-tuned, by name) at
N = 8 (bits = 3) and N = 1024 (bits = 10), run seed 1, round 1, seeded private coins (simulation only).

* **before**: commit adef378, from a git worktree (``git worktree add /tmp/before adef378``), per-user frames
  (wire version 1: ``Codec.encode`` / ``Codec.decode``);
* **after**: this tree, the same per-user frames, and the cohort frame (``Codec.encode_cohort`` /
  ``Codec.decode_cohort``).

Both sides run in one invocation of this script, each in its own subprocesses (``PYTHONPATH`` selects the
tree), alternating before/after ``--rounds`` times so that a change of machine load hits both sides alike;
each subprocess makes one warm-up call (numba compilation, tuning caches), then ``--repeats`` timed calls.
The figure is the median of all ``rounds × repeats`` timings of a side. ``uptime``'s load averages are read
before each configuration of each subprocess; the table shows the range of the 1-minute figure. Wire bytes: the sum of
the per-user frames' lengths / n (v1) and the cohort frame's length / n (v2, lengths and tags included).

    .venv/bin/python simulations/bench_wire.py [--before /tmp/before] [--repeats 5] [--out simulations/bench_wire.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = [("subset", 3), ("subset", 10), ("modified-mrc", 3), ("modified-mrc", 10)]
USERS, DIM, EPS = 1437, 650, 4.0
ROOT = Path(__file__).resolve().parent.parent


def _uptime() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True).stdout
    return out.split("load average:")[-1].strip()


def _times_us(fn, repeats: int) -> list[float]:
    """µs per user of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1e6 * (time.perf_counter() - t0) / USERS)
    return times


def child(side: str, repeats: int) -> list[dict]:
    import numpy as np

    from ldp_rec.codec.registry import make_codec

    X = np.random.default_rng(0).standard_normal((USERS, DIM))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ids = np.arange(USERS)
    rows = []
    for codec, bits in CONFIGS:
        load = _uptime()
        cod = make_codec("privunitg", codec, epsilon=EPS, dim=DIM, bits=bits)
        kw = dict(run_seed=1, round=1, clients=ids)
        p = cod.encode(X, rng=0, **kw)  # warm-up
        assert cod.decode(p, **kw).ok.all()
        row = {"side": side, "codec": codec, "N": 1 << bits, "load": load,
               "encode_v1_us": _times_us(lambda: cod.encode(X, rng=1, **kw), repeats),
               "decode_v1_us": _times_us(lambda: cod.decode(p, **kw), repeats),
               "bytes_v1": sum(len(q) for q in p) / USERS}
        if hasattr(cod, "encode_cohort"):
            f = cod.encode_cohort(X, rng=0, **kw)
            assert cod.decode_cohort(f, **kw).ok.all()
            row.update(encode_v2_us=_times_us(lambda: cod.encode_cohort(X, rng=1, **kw), repeats),
                       decode_v2_us=_times_us(lambda: cod.decode_cohort(f, **kw), repeats),
                       bytes_v2=len(f) / USERS)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _median(v: list[float]) -> float:
    v = sorted(v)
    return v[len(v) // 2]


def _merge(rows: list[dict]) -> list[dict]:
    """One row per (side, codec, N): medians over every subprocess's timings, the range of 1-min loads."""
    out: dict = {}
    for r in rows:
        key = (r["side"], r["codec"], r["N"])
        m = out.setdefault(key, {"side": r["side"], "codec": r["codec"], "N": r["N"], "loads": [], "samples": {}})
        m["loads"].append(r["load"])
        for k, v in r.items():
            if k.endswith("_us"):
                m["samples"].setdefault(k, []).extend(v)
            elif k.startswith("bytes"):
                m[k] = v
    for m in out.values():
        for k, v in m.pop("samples").items():
            m[k] = _median(v)
        ones = [float(x.split(",")[0]) for x in m["loads"]]
        m["load"] = f"{min(ones):.2f}–{max(ones):.2f}"
    return list(out.values())


def _run_side(side: str, tree: Path, repeats: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--repeats", str(repeats)]
    out = subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{side} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.1f}"


def report(rows: list[dict], repeats: int, commit: str) -> str:
    by = {(r["side"], r["codec"], r["N"]): r for r in rows}
    lines = [
        "# Wire and simulator-contract benchmark (issue 14)", "",
        f"PrivUnitG, d = {DIM}, ε = {EPS:g}, {USERS} users; median of {repeats} timed calls per figure (subprocesses "
        f"alternating before/after, each after one warm-up call); µs per user. Before: commit adef378 (worktree), per-user frames (v1). After: commit {commit}, per-user "
        "frames (v1) and one cohort frame (v2). Load: the range of `uptime`'s 1-minute load average "
        "read before each configuration of each subprocess; the machine has 2 cores shared with other work, so "
        "the figures carry that noise. Bytes per user include every header, length and tag.", "",
        "| codec | N | side | encode v1 | decode v1 | encode v2 | decode v2 | bytes/user v1 | bytes/user v2 | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for codec, bits in CONFIGS:
        for side in ("before", "after"):
            r = by[(side, codec, 1 << bits)]
            b2 = "—" if r.get("bytes_v2") is None else f"{r['bytes_v2']:.3f}"
            lines.append(f"| {codec} | {1 << bits} | {side} | {_fmt(r['encode_v1_us'])} | {_fmt(r['decode_v1_us'])} | "
                         f"{_fmt(r.get('encode_v2_us'))} | {_fmt(r.get('decode_v2_us'))} | {r['bytes_v1']:.3f} | "
                         f"{b2} | {r['load']} |")
    lines += ["", "Generated by `simulations/bench_wire.py`.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="/tmp/before")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "simulations" / "bench_wire.md"))
    ap.add_argument("--child", choices=("before", "after"))
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.repeats)))
        return
    rows = []
    for _ in range(a.rounds):
        rows += _run_side("before", Path(a.before), a.repeats) + _run_side("after", ROOT, a.repeats)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    text = report(_merge(rows), a.repeats * a.rounds, commit)
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
