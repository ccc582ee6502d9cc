"""FL on digits with a 24,010-parameter model, with and without the projection front end (issue 13).
A benchmark, not a test.

Digits, one user per training example (1437 users, all in every round), ``mlp`` with 320 hidden units
(64·320 + 320 + 320·10 + 10 = 24,010 parameters), ε = 4 per round (transcript), the library defaults
otherwise (clip 0.5, server lr 4, FedSGD full batch). Methods: non-private floats; ``ldp`` (PrivUnitG,
d floats); ``ldp`` + srht (FastProjUnit, k floats); ``ldp-rec`` subset and modified MRC + srht
(FastProjUnit behind the channel simulator, ⌈ε log2 e⌉ + 4 = 10 bits); and today's full-d
``ldp-rec`` modified MRC, which draws 1437 × 2^10 × 24,010 shared normals per round, so it runs
``--full-d-rounds`` rounds only (its accuracy is reported at that round).

Rounds run through :func:`ldp_rec.fl.server.run_in_process`: the same server round and client work as
the Flower apps, without Ray (the machine is 2 shared cores). Seeded private coins (simulation only).

    python simulations/projunit_fl.py [--rounds 10] [--full-d-rounds 2] [--out simulations/projunit_fl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.federation import model_dim, round_codec
from ldp_rec.fl.server import run_in_process

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from projunit_dme import git_commit, save  # noqa: E402

METHODS = (  # label, FLConfig overrides
    ("non-private floats", {"mode": "none"}),
    ("ldp: PrivUnitG floats (full d)", {"mode": "ldp"}),
    ("ldp: FastProjUnit floats (k)", {"mode": "ldp", "projection": "srht"}),
    ("ldp-rec: FastProjUnit + subset", {"mode": "ldp-rec", "codec": "subset", "projection": "srht"}),
    ("ldp-rec: FastProjUnit + modified-mrc", {"mode": "ldp-rec", "codec": "modified-mrc", "projection": "srht"}),
    ("ldp-rec: PrivUnitG + modified-mrc (full d)", {"mode": "ldp-rec", "codec": "modified-mrc", "full_d": True}),
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--full-d-rounds", type=int, default=2)
    ap.add_argument("--epsilon", type=float, default=4.0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "projunit_fl"))
    args = ap.parse_args(argv)
    base = FLConfig(dataset="digits", model="mlp", width=args.width, epsilon=args.epsilon, private_seed=0,
                    rounds=args.rounds)
    dim = model_dim(base)
    runs, load, commit = [], [os.getloadavg()], git_commit()
    for label, over in METHODS:
        over = dict(over)
        rounds = args.full_d_rounds if over.pop("full_d", False) else args.rounds
        cfg = base.replace(rounds=rounds, **over)
        codec = round_codec(cfg, dim)
        t0 = time.perf_counter()
        rows, secs, _ = run_in_process(cfg)
        wall = time.perf_counter() - t0
        per_round = [r["seconds"] for r in rows if not r.get("warm_up")] or [r["seconds"] for r in rows]
        run = {"method": label, "config": cfg.to_record(), "dim": dim, "rounds": rounds,
               "k": int(getattr(codec.mechanism, "proj_dim", dim)) if codec.mechanism is not None else dim,
               "accuracy": [r["accuracy"] for r in rows], "final_accuracy": rows[-1]["accuracy"],
               "payload_bits_per_client": rows[-1]["payload_bits_per_client"],
               "seconds_per_round_median": float(np.median(per_round)),
               "wall_seconds": wall, "epsilon_round": rows[-1].get("epsilon_round")}
        runs.append(run)
        load.append(os.getloadavg())
        print(json.dumps({k: v for k, v in run.items() if k != "config"}), flush=True)
    save({"runs": runs, "load_average": load, "runner": "ldp_rec.fl.server.run_in_process", "commit": commit},
         args.out, render)
    return 0


def render(out: dict) -> str:
    r0 = out["runs"][0]
    lines = ["# FL with the projection front end: digits, 24,010-parameter mlp (issue 13)", "",
             f"Commit {out['commit']}; {r0['dim']} parameters; 1437 users per round; ε = 4 per round (transcript); "
             f"in-process rounds ({out['runner']}, the Flower apps' code path without Ray); seeded private coins "
             "(simulation only). Load average (1, 5, 15 min) before and after each method: "
             + ", ".join("(%.2f, %.2f, %.2f)" % tuple(x) for x in out["load_average"])
             + " on 2 shared cores.", "",
             "| method | k | rounds | final accuracy | accuracy by round | bits per user | s per round (median, warm-up round excluded) |",
             "|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        acc = " ".join(f"{a:.3f}" for a in r["accuracy"])
        lines.append(f"| {r['method']} | {r['k']} | {r['rounds']} | {r['final_accuracy']:.3f} | {acc} | "
                     f"{r['payload_bits_per_client']:.0f} | {r['seconds_per_round_median']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
