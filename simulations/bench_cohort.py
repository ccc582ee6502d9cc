"""Cohorts against one Flower node per user: the same 100 users, the same work.

    python simulations/bench_cohort.py [--users 100] [--rounds 3]

Runs the ``--mode`` (default ldp-rec) on digits with ``--users`` users (IID partition) hosted (a) by 2 Flower nodes
(cohorts of 50) and (b) by one Flower node per user, on Flower's simulation engine, and prints the
median round time per user of each and their ratio (goal: cohorts >= 10x faster per user).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ldp_rec.experiments.fl import run_flower
from ldp_rec.fl.config import FLConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", default="ldp-rec", choices=["none", "ldp", "ldp-rec"])
    args = ap.parse_args()
    base = FLConfig(dataset="digits", partition="iid", clients=args.users, rounds=args.rounds, mode=args.mode)
    out = {"mode": args.mode}
    for label, nodes in (("cohorts", 2), ("node-per-user", args.users)):
        rows, wall = run_flower(base.replace(nodes=nodes))
        assert all(r["clients_ok"] == args.users for r in rows), rows
        per_user = float(np.median([r["seconds"] for r in rows[1:] or rows])) / args.users
        out[label] = {"nodes": nodes, "seconds_per_user": per_user, "wall_seconds": wall}
    out["speedup_per_user"] = out["node-per-user"]["seconds_per_user"] / out["cohorts"]["seconds_per_user"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
