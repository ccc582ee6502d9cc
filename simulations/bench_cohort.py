"""Cohorts against one Flower node per user: the same 100 users, the same work.

    python simulations/bench_cohort.py [--users 100] [--rounds 5] [--mode ldp-rec] [--poll 0.1,0.01] [--out F]

Runs ``--mode`` on digits with ``--users`` users (IID partition) hosted (a) by 2 Flower nodes
(cohorts of 50) and (b) by one Flower node per user, on Flower's simulation engine, for each
engine polling interval in ``--poll`` (Flower's own is 0.1 s; :mod:`ldp_rec.tools.flower_poll`), and prints
the median round time per user of each and their ratio (goal: cohorts >= 10x faster per user).
The first round (Ray start-up, compilation) is excluded from the medians. Each measurement also
records the payload bits, so the two set-ups are seen to do the same work.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ldp_rec.experiments.fl import run_flower
from ldp_rec.experiments.results import write_result
from ldp_rec.fl.config import FLConfig


def measure(base: FLConfig, nodes: int, poll: float) -> dict:
    rows, wall = run_flower(base.replace(nodes=nodes), poll_interval=poll)
    users = base.clients
    if not all(r["clients_ok"] == users for r in rows):
        raise RuntimeError(f"not every user decoded: {[r['clients_ok'] for r in rows]}")
    secs = [r["seconds"] for r in rows[1:] or rows]
    return {"nodes": nodes, "seconds_per_user": float(np.median(secs)) / users,
            "round_seconds": [round(s, 4) for s in secs], "wall_seconds": wall,
            "payload_bits_per_user": float(np.mean([r["payload_bits_per_client"] for r in rows]))}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mode", default="ldp-rec", choices=["none", "ldp", "ldp-rec"])
    ap.add_argument("--poll", default="0.1,0.01", help="comma-separated engine polling intervals (s)")
    ap.add_argument("--out", default=None, help="also write the result (with config, versions, commit) here")
    args = ap.parse_args(argv)
    base = FLConfig(dataset="digits", partition="iid", clients=args.users, rounds=args.rounds, mode=args.mode)
    out = {"mode": args.mode, "users": args.users, "rounds": args.rounds, "by_poll_interval": {}}
    for poll in (float(p) for p in args.poll.split(",")):
        res = {label: measure(base, nodes, poll) for label, nodes in (("cohorts", 2), ("node-per-user", args.users))}
        res["speedup_per_user"] = res["node-per-user"]["seconds_per_user"] / res["cohorts"]["seconds_per_user"]
        out["by_poll_interval"][str(poll)] = res
    print(json.dumps(out, indent=2))
    if args.out:
        write_result(args.out, {"config": {"script": "bench_cohort", **vars(args)}, **out}, force=True)
    return out


if __name__ == "__main__":
    main()
