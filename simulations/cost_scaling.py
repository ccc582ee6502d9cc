"""Cost scaling: encode and decode time per client against ε, against d and against the number of clients.

    python simulations/cost_scaling.py [--full] [--out results]

PrivUnitG (the FL mechanism) through ``none`` (float32), ``mrc``, ``modified-mrc`` and ``ppr``
(:func:`ldp_rec.codec.registry.make_codec`), on the DME unit vectors. MRC-type codecs use the FL
default index length b = ⌈ε·log2 e⌉ + 4, i.e. N = 2^b ≈ 16·e^ε candidates: the encoder draws
N·d shared normals per client (time ∝ e^ε·d), the decoder regenerates one candidate (time ∝ d).
PPR (Liu et al. 2024) searches until no later point can win; its expected work is about the ratio
bound c_max rather than a fixed N. ε on the axes is the *mechanism's* ε (the transcript ε is ε for
``none`` and modified MRC, 2ε for MRC and 2αε for PPR; references.md §4).

Each point is the minimum over ``repeats`` runs (the machine is shared; the minimum is the least
disturbed run) of the batch time divided by the number of clients. The fitted slopes of
log(encode time) against ε (MRC-type: ≈ 1 per nat, from N ∝ e^ε) and against log d (≈ 1) are
reported (the ε slope over ε ≥ 4, where the candidate work dominates the fixed cost per client).
Writes ``cost_scaling.csv``, ``cost_scaling.png`` and ``cost_scaling.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldp_rec.codec.registry import make_codec  # noqa: E402
from ldp_rec.experiments.dme import dme_data  # noqa: E402
from ldp_rec.experiments.results import run_dir, write_result  # noqa: E402

LOG2E = math.log2(math.e)
CODECS = ("none", "mrc", "modified-mrc", "ppr")
GRIDS = {  # (epsilons at d0, dims at eps0, clients at (eps0, d0)), d0, eps0, clients per point, repeats
    "default": {"epsilons": [1, 2, 3, 4, 5, 6, 7, 8], "dims": [100, 250, 500, 1000, 2000], "clients": [4, 16, 64, 256],
                "d0": 500, "eps0": 4.0, "n0": 16, "repeats": 3},
    "full": {"epsilons": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "dims": [100, 250, 500, 1000, 2000, 5000, 10000],
             "clients": [4, 16, 64, 256, 1024], "d0": 500, "eps0": 4.0, "n0": 32, "repeats": 3},
}


def index_bits(codec: str, epsilon: float) -> int | None:
    """b = ⌈ε·log2 e⌉ + 4 for MRC-type codecs (the FL default), None otherwise."""
    return int(math.ceil(epsilon * LOG2E)) + 4 if codec in ("mrc", "modified-mrc") else None


def time_codec(codec: str, *, epsilon: float, dim: int, clients: int, repeats: int, seed: int = 0) -> dict:
    """Seconds per client of encode and of decode (minimum over ``repeats``) and mean payload bits."""
    cod = make_codec("privunitg", codec, epsilon=float(epsilon), dim=int(dim), bits=index_bits(codec, epsilon))
    X = dme_data(clients, dim, rng=np.random.SeedSequence([seed, dim, clients]))
    ids = np.arange(clients)
    enc, dec = [], []
    for r in range(repeats):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r]))
        t0 = time.perf_counter()
        pay = cod.encode(X, run_seed=seed, round=r, clients=ids, rng=rng)
        t1 = time.perf_counter()
        res = cod.decode(pay, run_seed=seed, round=r, clients=ids)
        t2 = time.perf_counter()
        if res.n_failed:
            raise RuntimeError(f"{codec}: {res.n_failed} payloads failed to decode")
        enc.append((t1 - t0) / clients)
        dec.append((t2 - t1) / clients)
    return {"codec": codec, "epsilon": float(epsilon), "dim": int(dim), "clients": int(clients),
            "index_bits": index_bits(codec, epsilon) or "", "payload_bits": float(np.mean([cod.payload_bits(p) for p in pay])),
            "encode_s_per_client": float(min(enc)), "decode_s_per_client": float(min(dec)), "repeats": repeats}


def sweep(grid: dict, *, codecs=CODECS, seed: int = 0, log=print) -> list[dict]:
    rows = []
    axes = [("epsilon", {"epsilon": e, "dim": grid["d0"], "clients": grid["n0"]}) for e in grid["epsilons"]]
    axes += [("dim", {"epsilon": grid["eps0"], "dim": d, "clients": grid["n0"]}) for d in grid["dims"]]
    axes += [("clients", {"epsilon": grid["eps0"], "dim": grid["d0"], "clients": n}) for n in grid["clients"]]
    for axis, kw in axes:
        for c in codecs:
            r = {"axis": axis, **time_codec(c, **kw, repeats=grid["repeats"], seed=seed)}
            rows.append(r)
            log(f"  {axis:8s} ε={r['epsilon']:<4g} d={r['dim']:<6d} n={r['clients']:<5d} {c:13s} "
                f"encode {1e3 * r['encode_s_per_client']:9.3f} ms/client, decode {1e3 * r['decode_s_per_client']:7.3f} ms/client, "
                f"{r['payload_bits']:.0f} bits")
    return rows


def slopes(rows: list[dict], *, min_epsilon: float = 4.0) -> dict:
    """Least-squares slopes of log(encode s/client) against ε (per nat, over ε ≥ ``min_epsilon``, where
    the candidate work dominates the fixed per-client cost) and against log d."""
    out = {}
    for c in sorted({r["codec"] for r in rows}):
        e = [r for r in rows if r["codec"] == c and r["axis"] == "epsilon" and r["epsilon"] >= min_epsilon]
        d = [r for r in rows if r["codec"] == c and r["axis"] == "dim"]
        le = np.log([r["encode_s_per_client"] for r in e])
        ld = np.log([r["encode_s_per_client"] for r in d])
        out[c] = {"log_time_per_nat_eps": float(np.polyfit([r["epsilon"] for r in e], le, 1)[0]) if len(e) > 1 else None,
                  "log_time_per_log_dim": float(np.polyfit(np.log([r["dim"] for r in d]), ld, 1)[0]) if len(d) > 1 else None}
    return out


def plot(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, axis, xlabel in zip(axes, ("epsilon", "dim", "clients"), ("ε (mechanism)", "d", "clients in the batch")):
        for i, c in enumerate(sorted({r["codec"] for r in rows})):
            rs = sorted((r for r in rows if r["axis"] == axis and r["codec"] == c), key=lambda r: r[axis])
            x = [r[axis] for r in rs]
            ax.plot(x, [1e3 * r["encode_s_per_client"] for r in rs], "o-", color=f"C{i}", label=f"{c} encode")
            ax.plot(x, [1e3 * r["decode_s_per_client"] for r in rs], "s--", color=f"C{i}", alpha=0.6, label=f"{c} decode")
        if axis == "epsilon":  # reference: ∝ 2^b with b = ⌈ε log2 e⌉ + 4, anchored at the largest MRC point
            rs = sorted((r for r in rows if r["axis"] == axis and r["codec"] == "mrc"), key=lambda r: r["epsilon"])
            if rs:
                N = np.array([2.0 ** r["index_bits"] for r in rs])
                ax.plot([r["epsilon"] for r in rs], 1e3 * rs[-1]["encode_s_per_client"] * N / N[-1], ":", color="k",
                        label="∝ 2^b ≈ 16·e^ε")
        ax.set(xlabel=xlabel, ylabel="ms per client", yscale="log", xscale="linear" if axis == "epsilon" else "log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--into", default=None, help="write into this existing folder (used by run_all.py)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    grid = GRIDS["full" if args.full else "default"]
    out = Path(args.into) if args.into else run_dir(args.out, "cost-scaling")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = sweep(grid, seed=args.seed, log=lambda m: print(m, flush=True))
    wall = time.perf_counter() - t0
    with open(out / "cost_scaling.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    sl = slopes(rows)
    title = (f"PrivUnitG encode/decode time per client (min of {grid['repeats']}); ε axis at d={grid['d0']}, "
             f"d axis at ε={grid['eps0']:g}, batch {grid['n0']}; MRC bits = ceil(ε log2 e)+4")
    png = plot(rows, out / "cost_scaling.png", title)
    write_result(out / "cost_scaling.json", {"table": "cost-scaling", "grid": grid, "rows": rows, "slopes": sl,
                                              "figure": str(png), "wall_seconds": wall})
    print(json.dumps({"slopes": sl, "figure": str(png), "wall_seconds": wall}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
