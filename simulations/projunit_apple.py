"""ldp-rec's ProjUnit / FastProjUnit with floats against apple/ml-projunit's own code on the same settings.

Runs the authors' ``PrivUnitAlgs.privatize_vector`` unmodified, imported from a checkout of
https://github.com/apple/ml-projunit (nothing of it is copied here), next to ldp-rec's mechanisms: one
unit x ∈ R^d (Gaussian direction, seed 0), the error ‖x̂ − x‖² averaged over repetitions, as in the
authors' ``experiments.find_err``; d = 2^13 (their k-sweep's dimension), ε ∈ {4, 8}, k ∈ {100, 1000}
(their ``choose_best_k`` uses k = 1000). Their dense ProjUnit QR-factorises a d×k matrix per call, so it runs
few repetitions. ldp-rec's numbers: the Monte-Carlo mean and the closed form.

    python simulations/projunit_apple.py --apple-dir /path/to/ml-projunit [--out simulations/projunit_apple]
    python simulations/projunit_apple.py --render simulations/projunit_apple.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np

from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.mechanisms.projunit import FastProjUnit, ProjUnit

D = 2**13
CASES = (("PrivUnitG", D, 200, 2000), ("FastProjUnit", 1000, 100, 2000), ("FastProjUnit", 100, 100, 2000),
         ("ProjUnit", 100, 60, 200), ("ProjUnit", 1000, 12, 30))  # mechanism, k, their reps, our users


def run(apple_dir: str) -> list[dict]:
    sys.path.insert(0, apple_dir)
    cwd = os.getcwd()
    os.chdir(apple_dir)  # their FWHT helper reads dict_perm.npy from the working directory
    try:
        import PrivUnitAlgs as A  # noqa: N813 - the authors' module, unmodified
        import utilities as U
    finally:
        os.chdir(cwd)
    np.random.seed(0)
    random.seed(0)
    x = np.random.normal(size=D)
    x /= np.linalg.norm(x)
    rows = []
    for eps in (4.0, 8.0):
        p = A.priv_unit_G_get_p(eps)
        gamma, sigma = U.get_gamma_sigma(p, eps)
        for mech, k, reps, n_ours in CASES:
            t = time.perf_counter()
            errs = np.array([np.sum((A.privatize_vector(x, eps, k, mech, p, gamma, sigma) - x) ** 2) for _ in range(reps)])
            t_apple = (time.perf_counter() - t) / reps
            ours = {"PrivUnitG": lambda: PrivUnitG(eps, D), "FastProjUnit": lambda: FastProjUnit(eps, D, proj_dim=k),
                    "ProjUnit": lambda: ProjUnit(eps, D, proj_dim=k, projection="orthonormal")}[mech]()
            t = time.perf_counter()
            e = ((ours.privatize(np.tile(x, (n_ours, 1)), rng=1) - x) ** 2).sum(1)
            rows.append({"epsilon": eps, "d": D, "mechanism": mech, "k": k,
                         "apple_mse": float(errs.mean()), "apple_sem": float(errs.std(ddof=1) / math.sqrt(reps)),
                         "apple_reps": reps, "apple_p": float(p), "apple_sigma": float(sigma),
                         "apple_d_sigma2": float(D * sigma**2),
                         "ours_mse": float(e.mean()), "ours_sem": float(e.std(ddof=1) / math.sqrt(n_ours)),
                         "ours_n": n_ours, "ours_closed_form": float(ours.expected_mse()),
                         "ours_sigma": float(PrivUnitG(eps, 2).sigma),
                         "apple_s_per_call": t_apple, "ours_s_per_user": (time.perf_counter() - t) / n_ours})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def render(rows: list[dict]) -> str:
    lines = ["# ProjUnit with floats: ldp-rec against apple/ml-projunit's code (same settings)", "",
             f"One unit x ∈ R^{D}, error ‖x̂ − x‖² averaged over repetitions (their `find_err`); ± one standard error.",
             "", "| ε | mechanism | k | apple/ml-projunit (reps) | ldp-rec Monte Carlo (users) | ldp-rec closed form | "
             "ratio apple / ldp-rec closed form | their σ (p on a 0.01 grid) / ours |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['epsilon']:g} | {r['mechanism']} | {r['k']} | {r['apple_mse']:.0f} ± {r['apple_sem']:.0f} "
                     f"({r['apple_reps']}) | {r['ours_mse']:.0f} ± {r['ours_sem']:.0f} ({r['ours_n']}) | "
                     f"{r['ours_closed_form']:.0f} | {r['apple_mse'] / r['ours_closed_form']:.3f} | "
                     f"{r['apple_sigma']:.5f} / {r['ours_sigma']:.5f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apple-dir", help="a checkout of github.com/apple/ml-projunit")
    ap.add_argument("--render", help="only render this result file's table")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "projunit_apple"))
    args = ap.parse_args(argv)
    if args.render:  # the table only (the result file keeps its own load averages)
        with open(args.render) as f:
            rows = json.load(f)["rows"]
    else:
        load = [os.getloadavg()]
        rows = run(args.apple_dir)
        with open(args.out + ".json", "w") as f:
            json.dump({"rows": rows, "load_average": load + [os.getloadavg()]}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
