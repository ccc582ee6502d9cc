"""ProjUnit / FastProjUnit in front of channel simulation: DME figures (issue 13). A benchmark, not a test.

Two-cluster DME data (:func:`ldp_rec.experiments.dme.dme_data`: half N(10, 1)^d, half N(1, 1)^d, unit
rows), generated and encoded in batches so d = 10^6 fits in memory. For each (d, ε) and method:

* per-user MSE E‖x̂_i − x_i‖² (mean over users) relative to full-d PrivUnitG's exact closed form
  (uncompressed floats), and ``n·MSE`` of the mean (n·‖mean x̂ − mean x‖², comparable across n);
* payload bits, and encode / decode µs per user (wall clock, medians over batches; the same run).

Methods: ``privunitg/none`` (full-d floats: the reference), ``fastprojunit/none`` (k floats),
``fastprojunit/subset``, ``projunit/none`` and ``projunit/subset`` (dense Gaussian W), and today's
``privunitg/subset`` on full d. The slow methods run on fewer users at large d (the table says n).
Then a k-sweep at d = 69,050, ε = 4 (FastProjUnit, floats and subset, 500 users each).

    python simulations/projunit_dme.py [--quick] [--out simulations/projunit_dme]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from ldp_rec.codec.registry import default_bits, make_codec
from ldp_rec.mechanisms.privunitg import PrivUnitG

DIMS = (650, 10_000, 69_050, 1_000_000)
EPSILONS = (4.0, 8.0)
# users per method and dimension (fewer where a method's encode is slow; the table reports n)
USERS = {
    ("privunitg", "none"): {650: 5000, 10_000: 5000, 69_050: 2000, 1_000_000: 100},
    ("fastprojunit", "none"): {650: 5000, 10_000: 5000, 69_050: 5000, 1_000_000: 200},
    ("fastprojunit", "subset"): {650: 5000, 10_000: 5000, 69_050: 5000, 1_000_000: 200},
    ("projunit", "none"): {650: 5000, 10_000: 1000, 69_050: 100, 1_000_000: 8},
    ("projunit", "subset"): {650: 5000, 10_000: 1000, 69_050: 100, 1_000_000: 8},
    ("privunitg", "subset"): {650: 1000, 10_000: 200, 69_050: 30, 1_000_000: 3},
}
EPS8_SUBSET_FULL = {650: 200, 10_000: 20, 69_050: 4, 1_000_000: 0}  # 2^16 candidates of width d per user
SWEEP_K = (16, 32, 57, 128, 256, 512, 1000, 2000)


def batches(n: int, d: int, *, seed: int, batch: int):
    """Two-cluster unit rows in batches: user i is in the N(10, 1) cluster iff i < ⌈n/2⌉."""
    h = (n + 1) // 2
    for s in range(0, n, batch):
        m = min(batch, n - s)
        rng = np.random.default_rng(np.random.SeedSequence([seed, d, s]))
        X = rng.standard_normal((m, d))
        X += np.where(np.arange(s, s + m) < h, 10.0, 1.0)[:, None]
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        yield s, X


def measure(codec, *, n: int, d: int, seed: int, batch: int) -> dict:
    """Encode and decode n users in batches; per-user MSE, n·MSE of the mean, bits, µs per user."""
    sum_x, sum_e, err, enc, dec, nbits, fails = np.zeros(d), np.zeros(d), 0.0, [], [], None, 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    warm = next(batches(1, d, seed=seed + 1, batch=1))[1]  # compile the numba kernels outside the timing
    codec.decode(codec.encode(warm, run_seed=seed, round=1, clients=[0], rng=rng), run_seed=seed, round=1, clients=[0])
    for s, X in batches(n, d, seed=seed, batch=batch):
        ids = np.arange(s, s + X.shape[0])
        t0 = time.perf_counter()
        payloads = codec.encode(X, run_seed=seed, round=0, clients=ids, rng=rng)
        t1 = time.perf_counter()
        res = codec.decode(payloads, run_seed=seed, round=0, clients=ids)
        t2 = time.perf_counter()
        enc.append((t1 - t0) / X.shape[0])
        dec.append((t2 - t1) / X.shape[0])
        fails += res.n_failed
        nbits = codec.payload_bits(payloads[0])
        err += float(np.sum((res.estimates - X) ** 2))
        sum_x += X.sum(0)
        sum_e += res.estimates.sum(0)
    return {"n": n, "per_user_mse": err / n, "n_times_dme_mse": n * float(np.sum((sum_e - sum_x) ** 2)) / n**2,
            "payload_bits": int(nbits), "encode_us": 1e6 * float(np.median(enc)),
            "decode_us": 1e6 * float(np.median(dec)), "failed": fails}


def _users(mech: str, codec: str, d: int, eps: float, quick: bool) -> int:
    n = USERS[(mech, codec)][d]
    if eps == 8.0 and (mech, codec) == ("privunitg", "subset"):
        n = EPS8_SUBSET_FULL[d]
    if eps == 8.0 and codec == "subset" and mech != "privunitg":
        n = min(n, 1000)  # 2^16 candidates of width k per user
    return max(1, n // 10) if (quick and n) else n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the users (smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dims", type=int, nargs="*", default=list(DIMS))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "projunit_dme"))
    args = ap.parse_args(argv)
    load = [os.getloadavg()]
    commit = git_commit()
    rows, sweep = [], []
    for d in args.dims:
        for eps in EPSILONS:
            full = PrivUnitG(eps, d).expected_mse()
            for mech, codec in USERS:
                n = _users(mech, codec, d, eps, args.quick)
                if n == 0:
                    continue
                cdc = make_codec(mech, codec, epsilon=eps, dim=d)
                batch = max(1, min(500, int(2e7 // d)))
                r = measure(cdc, n=n, d=d, seed=args.seed, batch=batch)
                m = cdc.mechanism
                r.update(dim=d, epsilon=eps, mechanism=mech, codec=codec, k=int(getattr(m, "proj_dim", d)),
                         bits=default_bits(eps) if codec == "subset" else None,
                         closed_form_mse=float(m.expected_mse()), full_d_closed_form_mse=float(full),
                         mse_ratio=r["per_user_mse"] / full)
                rows.append(r)
                print(json.dumps(r), flush=True)
        load.append(os.getloadavg())
    if 69_050 in args.dims:
        d, eps = 69_050, 4.0
        full = PrivUnitG(eps, d).expected_mse()
        for k in SWEEP_K:
            for codec in ("none", "subset"):
                cdc = make_codec("fastprojunit", codec, epsilon=eps, dim=d, proj_dim=k)
                n = 500 if not args.quick else 50
                r = measure(cdc, n=n, d=d, seed=args.seed + 1, batch=250)
                r.update(dim=d, epsilon=eps, mechanism="fastprojunit", codec=codec, k=k,
                         closed_form_mse=float(cdc.mechanism.expected_mse()), mse_ratio=r["per_user_mse"] / full)
                sweep.append(r)
                print(json.dumps(r), flush=True)
        load.append(os.getloadavg())
    save({"rows": rows, "k_sweep": sweep, "load_average": load, "seed": args.seed, "commit": commit}, args.out, render)
    return 0


def git_commit() -> str:
    """The checkout's commit (record it when a run starts: the code it loaded)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def save(out: dict, base: str, render) -> None:
    """Write ``base``.json (with the commit the run started at, numpy version and the private-coin mode) and
    ``base``.md."""
    out = {"commit": git_commit(), **out, "numpy": np.__version__, "private_coins": "seeded (simulation only)"}
    with open(base + ".json", "w") as f:
        json.dump(out, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(render(out))


def render(out: dict) -> str:
    """Markdown tables of a result file."""
    lines = ["# ProjUnit / FastProjUnit in front of channel simulation: DME (issue 13)", "",
             f"Commit {out['commit']}, seed {out['seed']}, numpy {out['numpy']}; load average (1, 5, 15 min) "
             f"during the run: {', '.join('(%.2f, %.2f, %.2f)' % tuple(x) for x in out['load_average'])} on a "
             "2-core machine shared with other jobs. Private coins seeded (simulation only).", "",
             "MSE ratio = per-user E‖x̂ − x‖² / full-d PrivUnitG's closed form (uncompressed floats). "
             "n·MSE = n·‖mean x̂ − mean x‖² (≈ the per-user MSE for independent unbiased users). "
             "µs: medians over batches.", "",
             "| d | ε | method | k | n | bits | MSE ratio | closed-form ratio | n·MSE / full-d closed form | "
             "encode µs | decode µs |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        full = r["full_d_closed_form_mse"]
        lines.append(f"| {r['dim']} | {r['epsilon']:g} | {r['mechanism']}/{r['codec']} | {r['k']} | {r['n']} | "
                     f"{r['payload_bits']} | {r['mse_ratio']:.3f} | {r['closed_form_mse'] / full:.3f} | "
                     f"{r['n_times_dme_mse'] / full:.3f} | {r['encode_us']:.0f} | {r['decode_us']:.0f} |")
    goal = [r for r in out["rows"] if r["dim"] == 69_050 and r["epsilon"] == 4.0]
    fast = next((r for r in goal if (r["mechanism"], r["codec"]) == ("fastprojunit", "subset")), None)
    full_sub = next((r for r in goal if (r["mechanism"], r["codec"]) == ("privunitg", "subset")), None)
    if fast and full_sub:
        lines += ["", f"**Goal row** (d = 69,050, ε = 4, {fast['payload_bits']} bits): FastProjUnit + subset MSE ratio "
                      f"{fast['mse_ratio']:.3f} (goal ≤ 1.10); encode {full_sub['encode_us'] / fast['encode_us']:.0f}× "
                      f"faster than full-d subset (goal ≥ 50×); decode {full_sub['decode_us'] / fast['decode_us']:.2f}× "
                      "the full-d subset's speed."]
    if out["k_sweep"]:
        lines += ["", "## k-sweep (d = 69,050, ε = 4, FastProjUnit, n = 500 users each)", "",
                  "| codec | k | bits | MSE ratio | closed-form ratio | encode µs | decode µs |",
                  "|---|---|---|---|---|---|---|"]
        full = next((r["full_d_closed_form_mse"] for r in goal), None) or 1.0
        for r in out["k_sweep"]:
            lines.append(f"| {r['codec']} | {r['k']} | {r['payload_bits']} | {r['mse_ratio']:.3f} | "
                         f"{r['closed_form_mse'] / full:.3f} | {r['encode_us']:.0f} | {r['decode_us']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
