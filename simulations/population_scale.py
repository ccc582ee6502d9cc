"""Population scale: a large population with a small cohort costs what the cohort costs (not a test).

Synthetic(1,1) with ``--users`` devices (``--samples`` examples each), a fixed cohort of
``--cohort`` users per round, ``--rounds`` rounds of ldp-rec (PrivUnitG + modified MRC) in-process
(:func:`ldp_rec.fl.server.run_in_process`: the Flower apps' server round and client work). Prints the
data-generation time, the median seconds per round and the peak resident memory, and writes a result
file. The population enters each round only through O(U) work (sampling, the ledger).

    python simulations/population_scale.py [--users 100000] [--cohort 1000] [--rounds 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ldp_rec.experiments.results import write_result  # noqa: E402
from ldp_rec.fl.config import FLConfig  # noqa: E402
from ldp_rec.fl.federation import load_data  # noqa: E402
from ldp_rec.fl.server import run_in_process  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--cohort", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--samples", type=int, default=10, help="examples per device (min = max)")
    ap.add_argument("--out", default="results/population_scale.json")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    if Path(args.out).exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force")
    cfg = FLConfig(dataset="synthetic", partition="iid", clients=args.users, synthetic_min_samples=args.samples,
                   synthetic_max_samples=args.samples, rounds=args.rounds, mode="ldp-rec", sampling="fixed",
                   cohort_size=args.cohort, private_seed=0, server_lr=1.0)
    t0 = time.perf_counter()
    data = load_data(cfg)
    gen_s, gen_mb = time.perf_counter() - t0, peak_mb()
    print(f"population {data.users.num_users} users, {data.X_train.shape[0]} training examples: "
          f"generated in {gen_s:.1f} s, peak {gen_mb:.0f} MB")
    rows, wall, server = run_in_process(cfg, progress=lambda r: print(
        f"round {r['round']:3d}: {r['seconds']:.2f} s, cohort {r['cohort_size']}, acc {r['accuracy']:.3f}, "
        f"user eps max {r['epsilon_user_max']:.3g}"))
    secs = [r["seconds"] for r in rows]
    summary = {"users": data.users.num_users, "cohort": args.cohort, "rounds": args.rounds,
               "data_generation_seconds": gen_s, "peak_mb_after_data": gen_mb, "peak_mb": peak_mb(),
               "median_round_seconds": float(np.median(secs)), "first_round_seconds": secs[0],
               "load_average": os.getloadavg(), "final_accuracy": rows[-1]["accuracy"]}
    print(summary)
    write_result(args.out, {"config": {"command": "population_scale", **cfg.to_record()}, "summary": summary,
                            "rounds": rows, "privacy": server.final_record()}, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
