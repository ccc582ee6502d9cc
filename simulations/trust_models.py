"""Trust-model comparison: non-private, central DP (trusted server), LDP with floats, LDP with REC.

For each data set of the config (digits with every example its own user; Synthetic(1,1) with its
own device split), a population with a Poisson-sampled cohort each round, every ε per
participation in the grid and every seed, this runs (in-process, :func:`ldp_rec.fl.server.run_in_process`,
the Flower apps' own server round and client work):

* ``none``: FedSGD/FedAvg without privacy;
* ``ldp``: PrivUnitG at ε per participation, sent as floats;
* ``ldp-rec``: the same mechanism sent by modified MRC (transcript ε), ``max_bits`` index bits at most;
* ``cdp``: user-level DP-FedAvg (McMahan et al. 2018) calibrated so that every user's final ε equals
  the **maximum** per-user ε that the ``ldp`` run reached (equal per-user ε at δ): the same privacy
  number under a different trust model (the server is trusted).

Per-user ε under LDP is the PLD composition over the rounds that user took part in (no
amplification by sampling); the figure plots final accuracy (mean ± 1.96·sem over seeds) against the
max per-user ε. Private coins are seeded (``private_seed = seed``) so the suite replays exactly:
simulation only, as every result row records.

    python simulations/trust_models.py [--full] [--out results] [--only digits]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldp_rec.experiments.fl import summarise  # noqa: E402
from ldp_rec.experiments.results import run_dir, write_result  # noqa: E402
from ldp_rec.fl.config import FLConfig  # noqa: E402
from ldp_rec.fl.federation import default_bits  # noqa: E402
from ldp_rec.fl.server import run_in_process  # noqa: E402

DEFAULT = {
    "default": {
        "seeds": [0, 1], "epsilons": [1.0, 4.0], "max_bits": 10,
        "digits": {"dataset": "digits", "partition": "per_example", "clients": 0, "sampling": "poisson",
                   "sample_rate": 0.348, "rounds": 100, "clip": 0.5, "server_lr": 4.0},
        "synthetic": {"dataset": "synthetic", "partition": "iid", "clients": 1000, "sampling": "poisson",
                      "sample_rate": 0.2, "rounds": 50, "clip": 0.5, "server_lr": 4.0,
                      "synthetic_min_samples": 20, "synthetic_max_samples": 200},
    },
}
DEFAULT["full"] = {**DEFAULT["default"], "seeds": [0, 1, 2], "epsilons": [0.5, 1.0, 2.0, 4.0, 8.0],
                   "digits": {**DEFAULT["default"]["digits"], "rounds": 100},
                   "synthetic": {**DEFAULT["default"]["synthetic"], "rounds": 100}}


def run_one(cfg: FLConfig) -> dict:
    rows, wall, server = run_in_process(cfg)
    return {"config": cfg.to_record(), "summary": {**summarise(rows), "wall_seconds": wall},
            "privacy": server.final_record(), "rounds": rows}


def suite(settings: dict, name: str, out: Path, log=print) -> list[dict]:
    base = FLConfig(**settings[name])
    table = []
    for seed in settings["seeds"]:
        scfg = base.replace(seed=int(seed), private_seed=int(seed))
        none = run_one(scfg.replace(mode="none"))
        log(f"[{name}] seed {seed} none: acc {none['summary']['final_accuracy']:.3f}")
        table.append({"dataset": name, "seed": seed, "mode": "none", "epsilon": None,
                      "accuracy": none["summary"]["final_accuracy"], "epsilon_user_max": None,
                      "bits": none["summary"]["payload_bits_per_client"]})
        write_result(out / f"{name}_none_seed{seed}.json", none)
        for eps in settings["epsilons"]:
            ldp_cfg = scfg.replace(mode="ldp", epsilon=float(eps))
            rec_cfg = scfg.replace(mode="ldp-rec", codec="modified-mrc", epsilon=float(eps))
            if (default_bits(rec_cfg) or 0) > settings["max_bits"]:
                rec_cfg = rec_cfg.replace(bits=int(settings["max_bits"]))
            runs = {"ldp": run_one(ldp_cfg), "ldp-rec": run_one(rec_cfg)}
            target = runs["ldp"]["summary"]["epsilon_user_max"]
            runs["cdp"] = run_one(scfg.replace(mode="cdp", epsilon=float(target)))
            for mode, r in runs.items():
                s = r["summary"]
                table.append({"dataset": name, "seed": seed, "mode": mode, "epsilon": eps,
                              "accuracy": s["final_accuracy"], "epsilon_user_max": s["epsilon_user_max"],
                              "epsilon_user_median": s["epsilon_user_median"],
                              "bits": s["payload_bits_per_client"], "wall_seconds": s["wall_seconds"]})
                write_result(out / f"{name}_{mode}_eps{eps:g}_seed{seed}.json", r)
                log(f"[{name}] seed {seed} eps {eps:g} {mode:8s} acc {s['final_accuracy']:.3f}  user eps max "
                    f"{s['epsilon_user_max']:.3g} median {s['epsilon_user_median']:.3g}  {s['payload_bits_per_client']:.0f} "
                    f"bits  ({s['wall_seconds']:.0f} s)")
    return table


def aggregate(table: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["dataset"], r["mode"], r["epsilon"] if r["epsilon"] is not None else -1) for r in table})
    for ds, mode, eps in keys:
        rs = [r for r in table if r["dataset"] == ds and r["mode"] == mode and (r["epsilon"] or -1) == eps]
        acc = np.array([r["accuracy"] for r in rs])
        half = 1.96 * acc.std(ddof=1) / np.sqrt(acc.size) if acc.size > 1 else 0.0
        ue = [r["epsilon_user_max"] for r in rs if r["epsilon_user_max"] is not None]
        out.append({"dataset": ds, "mode": mode, "epsilon_per_participation": None if eps == -1 else eps,
                    "seeds": len(rs), "accuracy_mean": float(acc.mean()), "accuracy_halfwidth": float(half),
                    "epsilon_user_max_mean": float(np.mean(ue)) if ue else None,
                    "bits_per_user_round": float(np.mean([r["bits"] for r in rs]))})
    return out


def plot(agg: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in agg})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.2), squeeze=False)
    styles = {"cdp": ("tab:green", "s", "cdp (trusted server)"), "ldp": ("tab:blue", "o", "ldp (floats)"),
              "ldp-rec": ("tab:red", "^", "ldp-rec (modified MRC)")}
    for ax, ds in zip(axes[0], datasets):
        rows = [r for r in agg if r["dataset"] == ds]
        for mode, (color, marker, label) in styles.items():
            rs = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["epsilon_user_max_mean"])
            if rs:
                ax.errorbar([r["epsilon_user_max_mean"] for r in rs], [r["accuracy_mean"] for r in rs],
                            yerr=[r["accuracy_halfwidth"] for r in rs], color=color, marker=marker, capsize=3,
                            label=label)
        for r in rows:
            if r["mode"] == "none":
                ax.axhline(r["accuracy_mean"], color="k", ls="--", lw=1, label="none (non-private)")
        ax.set_xscale("log")
        ax.set(xlabel="per-user epsilon spent (max over users, PLD, delta = 1e-5)", ylabel="final test accuracy",
               title=ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--out", default="results")
    ap.add_argument("--only", default="digits,synthetic")
    ap.add_argument("--config", default=None, help="TOML with [default]/[full] sections overriding the built-in grid")
    args = ap.parse_args(argv)
    settings = DEFAULT["full" if args.full else "default"]
    if args.config:
        settings = {**settings, **tomllib.loads(Path(args.config).read_text())["full" if args.full else "default"]}
    out = run_dir(args.out, "trust-models")
    t0 = time.perf_counter()
    table = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        table += suite(settings, name, out)
    agg = aggregate(table)
    png = plot(agg, out / "trust_models.png",
               f"Poisson-sampled cohorts; cdp calibrated to ldp's max per-user epsilon; seeds {settings['seeds']}; "
               f"bands 1.96 sem")
    write_result(out / "trust_models.json", {"config": {"command": "trust_models", **settings},
                                             "table": table, "aggregate": agg, "plot": str(png),
                                             "wall_seconds": time.perf_counter() - t0})
    (out / "trust_models.md").write_text("| dataset | mode | eps/participation | seeds | accuracy | max user eps | bits |\n"
                                         "|---|---|---|---|---|---|---|\n" + "".join(
        f"| {r['dataset']} | {r['mode']} | {r['epsilon_per_participation'] or '-'} | {r['seeds']} | "
        f"{r['accuracy_mean']:.3f} ± {r['accuracy_halfwidth']:.3f} | "
        f"{'-' if r['epsilon_user_max_mean'] is None else format(r['epsilon_user_max_mean'], '.3g')} | "
        f"{r['bits_per_user_round']:.0f} |\n" for r in agg))
    print(json.dumps(agg, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
