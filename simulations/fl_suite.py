"""FL privacy–utility suite: accuracy against rounds and against ε per round, with seed bands.

    python simulations/fl_suite.py [--full] [--config simulations/fl_default.toml] [--out results]

For every data set of the config (digits and Synthetic(1,1)), every ε in the grid, every seed and
every method (``none``: non-private FedSGD; ``ldp``: PrivUnitG sent as float32; ``ldp-rec/<codec>``:
PrivUnitG compressed by a channel simulator) the suite runs one federation and writes one result
JSON per (data set, ε, seed) in the schema of ``ldp-rec fl`` (``config``, ``summary``, ``runs``), so
``ldp-rec report`` renders it, plus ``suite.json``, ``fl_suite.csv`` and one PNG per data set
(accuracy vs round, final accuracy vs ε; bands are mean ± 1.96·sem over seeds).

**ε is the transcript's ε per round** (what the server sees, references.md §4), so the methods are
compared at equal privacy: the mechanism runs at ε for ``ldp`` and modified MRC (Shah et al. 2022,
Sec. 4), at ε/2 for plain MRC (its transcript is 2ε), and at ε/(2α) for PPR(α) (Liu et al. 2024,
transcript 2αε). The ε each run's accountant reports is checked against the grid value.

**Same code path as Flower.** The sweep's inner loop (:func:`run_rounds`) is
:func:`ldp_rec.fl.server.run_in_process`: the same server round (:class:`~ldp_rec.fl.server.FederationServer`,
which the Flower strategy drives) and the same client work (:func:`ldp_rec.fl.federation.client_round`),
with the same cohorts and therefore the same seeds, without Ray's start-up cost per run. The
headline runs (one per data set, ``[headline]`` of the config) go through Flower's simulation engine
(:func:`ldp_rec.experiments.fl.run_flower`) and the suite records whether their accuracies equal
the in-process loop's, round by round.

Index bits of MRC-type codecs are the library default ⌈ε_mech·log2 e⌉ + 4, capped at ``max_bits``
(the encoder draws users × 2^bits × d shared normals per round, so ε = 8 at the default 16 bits
costs ~10 min per digits round on 2 cores). Modified MRC stays ε-LDP at any N (its band does not
depend on N); fewer bits only raise the MSE, and the bits actually sent are recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldp_rec.experiments.fl import run_flower, summarise  # noqa: E402
from ldp_rec.experiments.results import run_dir, write_result  # noqa: E402
from ldp_rec.fl import models  # noqa: E402
from ldp_rec.fl.config import FLConfig  # noqa: E402
from ldp_rec.fl.federation import default_bits, load_data, make_fl_model, mechanism_epsilon, model_dim  # noqa: E402
from ldp_rec.fl.server import run_in_process  # noqa: E402

LOG2E = math.log2(math.e)
DEFAULT_CONFIG = ROOT / "simulations" / "fl_default.toml"


# --------------------------------------------------------------------------- methods
def method_label(mode: str, codec: str) -> str:
    return f"ldp-rec/{codec}" if mode == "ldp-rec" else mode


def method_config(base: FLConfig, mode: str, codec: str, epsilon: float, *, max_bits: int) -> FLConfig:
    """The FLConfig of one method at transcript ε per round (the mechanism ε from the codec's own
    transcript event, :func:`ldp_rec.fl.federation.mechanism_epsilon`)."""
    cfg = base.replace(mode=mode, codec=codec if mode == "ldp-rec" else base.codec, bits=0)
    cfg = cfg.replace(epsilon=mechanism_epsilon(cfg, model_dim(cfg), epsilon))
    b = default_bits(cfg)
    if mode == "ldp-rec" and b is not None and b > max_bits:
        cfg = cfg.replace(bits=int(max_bits))
    return cfg


# --------------------------------------------------------------------------- the round loop
def run_rounds(cfg: FLConfig, *, progress=None) -> tuple[list[dict], float]:
    """``cfg.rounds`` rounds in-process: :func:`ldp_rec.fl.server.run_in_process`, the Flower apps' round."""
    rows, wall, _ = run_in_process(cfg, progress=progress)
    return rows, wall


# --------------------------------------------------------------------------- statistics
def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width 1.96·sem over axis 0 (seeds); the half-width is 0 for one seed."""
    v = np.asarray(values, dtype=np.float64)
    mean = v.mean(axis=0)
    if v.shape[0] < 2:
        return mean, np.zeros_like(mean)
    return mean, 1.96 * v.std(axis=0, ddof=1) / math.sqrt(v.shape[0])


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (data set, method, ε): final and best accuracy (mean ± 1.96·sem over seeds),
    bits per user per round, transcript ε per round, PLD ε after all rounds, seconds per round."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["method"], r["epsilon"]), []).append(r)
    out = []
    for (ds, method, eps), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0.0)):
        fin, fin_hw = band(np.array([[r["summary"]["final_accuracy"]] for r in rs]))
        best, best_hw = band(np.array([[r["summary"]["best_accuracy"]] for r in rs]))
        s0 = rs[0]["summary"]
        out.append({"dataset": ds, "method": method, "epsilon": eps, "seeds": len(rs),
                    "final_accuracy": float(fin[0]), "final_ci95": float(fin_hw[0]),
                    "best_accuracy": float(best[0]), "best_ci95": float(best_hw[0]),
                    "bits_per_user_round": float(np.mean([r["summary"]["payload_bits_per_client"] for r in rs])),
                    "mechanism_epsilon": rs[0]["mechanism_epsilon"], "index_bits": rs[0]["index_bits"],
                    "epsilon_round": s0["epsilon_round"], "epsilon_total_pld": s0["epsilon_total_pld"],
                    "median_round_seconds": float(np.median([r["summary"]["median_round_seconds"] for r in rs])),
                    "users": rs[0]["users"], "dim": rs[0]["dim"], "rounds": rs[0]["rounds"]})
    return out


# --------------------------------------------------------------------------- plots
def plot_dataset(dataset: str, curves: dict, table: list[dict], path: Path, title: str) -> Path:
    """Accuracy vs round (one panel per ε) and final accuracy vs ε, with mean ± 1.96·sem bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    eps_grid = sorted({e for (ds, _, e) in curves if ds == dataset and e is not None})
    methods = sorted({m for (ds, m, _) in curves if ds == dataset})
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(eps_grid) + 1, figsize=(4.2 * (len(eps_grid) + 1), 3.8), squeeze=False)
    axes = axes[0]
    for k, eps in enumerate(eps_grid):
        ax = axes[k]
        for m in methods:
            acc = curves.get((dataset, m, eps))
            if acc is None:
                continue
            mean, hw = band(acc)
            r = np.arange(1, mean.size + 1)
            ax.plot(r, mean, color=colors[m], label=m)
            ax.fill_between(r, mean - hw, mean + hw, color=colors[m], alpha=0.2)
        ax.set(xlabel="round", ylabel="test accuracy", title=f"ε = {eps:g} per round (transcript)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[-1]
    for m in methods:
        rows = sorted((r for r in table if r["dataset"] == dataset and r["method"] == m), key=lambda r: r["epsilon"] or 0)
        if not rows:
            continue
        if rows[0]["epsilon"] is None:  # ε-independent (non-private): a horizontal band
            y, e = rows[0]["final_accuracy"], rows[0]["final_ci95"]
            ax.axhline(y, color=colors[m], ls="--", label=m)
            ax.axhspan(y - e, y + e, color=colors[m], alpha=0.15)
            continue
        x = np.array([r["epsilon"] for r in rows])
        y = np.array([r["final_accuracy"] for r in rows])
        e = np.array([r["final_ci95"] for r in rows])
        ax.errorbar(x, y, yerr=e, fmt="o-", capsize=3, color=colors[m], label=m)
    ax.set(xlabel="ε per round (transcript)", ylabel="final test accuracy", title="final accuracy vs ε", xscale="log", xticks=eps_grid)
    ax.set_xticklabels([f"{e:g}" for e in eps_grid])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- the suite
def dataset_settings(cfg: dict, name: str) -> dict:
    """The suite keys of ``cfg`` overridden by the data set's own table (``[<section>.datasets.<name>]``);
    keys that are FLConfig fields go to the FLConfig, the rest steer the grid."""
    grid_keys = ("rounds", "seeds", "epsilons", "modes", "codecs", "max_bits")
    ds = dict(cfg["datasets"][name])
    grid = {k: ds.pop(k, cfg.get(k)) for k in grid_keys}
    ds.setdefault("mechanism", cfg.get("mechanism", "privunitg"))
    ds.setdefault("alpha", float(cfg.get("ppr_alpha", 2.0)))
    grid["base"] = FLConfig(**{**ds, "rounds": int(grid["rounds"])})
    return grid


def _index_bits(conf: dict) -> int:
    """Index bits of an MRC-type run (0 for the float baselines and variable-length codes)."""
    if conf["mode"] != "ldp-rec":
        return 0
    known = FLConfig().to_record()
    return int(conf["bits"] or default_bits(FLConfig.from_record({k: v for k, v in conf.items() if k in known})) or 0)


def method_list(modes, codecs) -> list[tuple[str, str]]:
    out = []
    for mode in modes:
        out += [("ldp-rec", c) for c in codecs] if mode == "ldp-rec" else [(mode, "none")]
    return out


def _one_run(cfg: FLConfig, label: str, eps: float | None, log) -> tuple[list[dict], dict]:
    rows, wall = run_rounds(cfg)
    if eps is not None and not math.isclose(rows[-1]["epsilon_round"], eps, rel_tol=1e-9):
        raise RuntimeError(f"{label} at ε={eps}: the accountant reports ε_round = {rows[-1]['epsilon_round']}")
    s = summarise(rows)
    log(f"  seed={cfg.seed} ε={'-' if eps is None else f'{eps:g}':>3s} {label:22s} final acc {rows[-1]['accuracy']:.3f}  "
        f"{s['payload_bits_per_client']:6.0f} bits/user/round  {s['median_round_seconds']:.2f} s/round  ({wall:.0f} s)")
    return rows, {**cfg.to_record(), "transcript-epsilon": eps, "wall-seconds": wall}


def run_dataset(cfg: dict, name: str, out: Path, *, log=print) -> tuple[list[dict], dict]:
    """Every (seed, ε, method) of one data set; writes ``fl_<name>_eps<ε>_seed<s>.json`` per (ε, seed).
    Returns (per-run records, accuracy curves keyed by (name, method, ε or None))."""
    g = dataset_settings(cfg, name)
    base, max_bits = g["base"], int(g["max_bits"] or 64)
    data = load_data(base)
    users, dim = data.users.num_users, models.num_params(make_fl_model(base, data))
    log(f"[{name}] {base.dataset}, partition {base.partition}: {users} users, d = {dim}, {base.rounds} rounds, "
        f"seeds {g['seeds']}, ε {g['epsilons']}, codecs {g['codecs']}, MRC bits ≤ {max_bits}")
    records, curves = [], {}
    for seed in g["seeds"]:
        scfg = base.replace(seed=int(seed), private_seed=int(seed))  # seeded coins: replayable (simulation only)
        fixed = {}
        if "none" in g["modes"]:  # non-private: independent of ε, run once per seed
            fixed["none"] = _one_run(scfg.replace(mode="none"), "none", None, log)
        for eps in g["epsilons"]:
            runs, summary, configs = {}, {}, {}
            for mode, codec in method_list(g["modes"], g["codecs"]):
                label = method_label(mode, codec)
                if label in fixed:
                    rows, conf = fixed[label]
                else:
                    mcfg = method_config(scfg, mode, codec, float(eps), max_bits=max_bits)
                    rows, conf = _one_run(mcfg, label, float(eps), log)
                runs[label], configs[label], summary[label] = rows, conf, summarise(rows)
                key_eps = None if label in fixed else float(eps)
                curves.setdefault((name, label, key_eps), {})[int(seed)] = [r["accuracy"] for r in rows]
                if label not in fixed or eps == g["epsilons"][0]:
                    records.append({"dataset": name, "method": label, "epsilon": None if label in fixed else float(eps),
                                    "seed": int(seed), "summary": summary[label], "users": users, "dim": dim,
                                    "rounds": base.rounds, "index_bits": _index_bits(conf),
                                    "mechanism_epsilon": None if label in fixed else conf["epsilon"]})
            first = configs[next(iter(configs))]
            result = {"config": {"command": "fl-suite", **first, "epsilon": float(eps), "codec": "/".join(g["codecs"]),
                                 "suite-dataset": name, "modes": list(runs), "configs": configs},
                      "summary": summary, "runs": runs}
            write_result(out / f"fl_{name}_eps{eps:g}_seed{seed}.json", result)
    return records, curves


def run_headline(cfg: dict, curves: dict, out: Path, *, log=print) -> dict:
    """The ``[headline]`` runs on Flower's simulation engine; checks them against the in-process loop."""
    h = dict(cfg["headline"])
    g = dataset_settings(cfg, h["dataset"])
    eps, seed = float(h["epsilon"]), int(h.get("seed", g["seeds"][0]))
    runs, summary, configs, match = {}, {}, {}, {}
    for mode, codec in method_list(h.get("modes", g["modes"]), [h.get("codec", "modified-mrc")]):
        label = method_label(mode, codec)
        mcfg = method_config(g["base"].replace(seed=seed, private_seed=seed), mode, codec, eps,
                             max_bits=int(g["max_bits"] or 64))
        rows, wall = run_flower(mcfg)
        runs[label], summary[label] = rows, {**summarise(rows), "wall_seconds": wall}
        configs[label] = {**mcfg.to_record(), "transcript-epsilon": eps, "engine": "flower simulation"}
        ref = curves.get((h["dataset"], label, None if mode == "none" else eps), {}).get(seed)
        match[label] = None if ref is None else bool(ref == [r["accuracy"] for r in rows])
        log(f"  flower {h['dataset']} seed={seed} ε={eps:g} {label:22s} final acc {rows[-1]['accuracy']:.3f} "
            f"({wall:.0f} s; equals in-process loop: {match[label]})")
    first = configs[next(iter(configs))]
    result = {"config": {"command": "fl-suite-headline", **first, "epsilon": eps, "suite-dataset": h["dataset"],
                         "modes": list(runs), "configs": configs},
              "summary": summary, "runs": runs, "flower_equals_in_process": match}
    write_result(out / f"fl_headline_{h['dataset']}_eps{eps:g}_flower.json", result)
    return {"dataset": h["dataset"], "epsilon": eps, "seed": seed, "flower_equals_in_process": match,
            "final_accuracy": {k: v["final_accuracy"] for k, v in summary.items()},
            "wall_seconds": {k: v["wall_seconds"] for k, v in summary.items()}}


def run_suite(cfg: dict, out: Path, *, log=print, flower: bool = True) -> dict:
    """Run the grid of ``cfg`` (one section of fl_default.toml) into the folder ``out``."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    records, curves, walls = [], {}, {}
    t_suite = time.perf_counter()
    for name in cfg["datasets"]:
        t0 = time.perf_counter()
        r, c = run_dataset(cfg, name, out, log=log)
        records += r
        curves.update(c)
        walls[name] = time.perf_counter() - t0
    headline = None
    if flower and cfg.get("headline"):
        t0 = time.perf_counter()
        headline = run_headline(cfg, curves, out, log=log)
        walls["headline (flower)"] = time.perf_counter() - t0
    table = aggregate(records)
    arr = {k: np.array([v[s] for s in sorted(v)]) for k, v in curves.items()}
    figures = []
    for name in cfg["datasets"]:
        g = dataset_settings(cfg, name)
        b = g["base"]
        for (ds, m, e), acc in list(arr.items()):  # the ε-independent bands in every ε panel
            if ds == name and e is None:
                for eps in g["epsilons"]:
                    arr.setdefault((ds, m, float(eps)), acc)
        title = (f"{name}: {b.dataset}, partition {b.partition}, {b.model}, {b.mechanism}, clip {b.clip}, "
                 f"server lr {b.server_lr}, {b.rounds} rounds, seeds {g['seeds']}; bands mean ± 1.96·sem; "
                 f"MRC-type bits ≤ {g['max_bits']}")
        figures.append(str(plot_dataset(name, arr, table, out / f"fl_suite_{name}.png", title)))
    write_csv(table, out / "fl_suite.csv")
    (out / "fl_suite.md").write_text(markdown_table(table) + "\n")
    summary = {"suite": "fl", "settings": cfg, "table": table, "headline": headline, "figures": figures,
               "wall_seconds": {**walls, "total": time.perf_counter() - t_suite}}
    write_result(out / "fl_suite.json", summary)
    return summary


def write_csv(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def markdown_table(table: list[dict]) -> str:
    lines = ["| data set | method | ε/round | mech ε | bits/user/round | final acc ± 95% | best acc ± 95% | ε PLD total | s/round |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        eps = "–" if r["epsilon"] is None else f"{r['epsilon']:g}"
        meps = "–" if r["mechanism_epsilon"] is None else f"{r['mechanism_epsilon']:.3g}"
        lines.append(f"| {r['dataset']} | {r['method']} | {eps} | {meps} | "
                     f"{r['bits_per_user_round']:.0f} | {r['final_accuracy']:.3f} ± {r['final_ci95']:.3f} | "
                     f"{r['best_accuracy']:.3f} ± {r['best_ci95']:.3f} | {r['epsilon_total_pld']:.4g} | "
                     f"{r['median_round_seconds']:.2f} |")
    return "\n".join(lines)


def load_config(path, *, full: bool) -> dict:
    return tomllib.loads(Path(path).read_text())["full" if full else "default"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the [full] section: 50 rounds, 5 seeds, the full grid")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    ap.add_argument("--out", default=str(ROOT / "results"), help="parent folder (a fresh fl-suite-<time>/ is made)")
    ap.add_argument("--into", default=None, help="write into this existing folder instead (used by run_all.py)")
    ap.add_argument("--no-flower", action="store_true", help="skip the headline runs on Flower's engine")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, full=args.full)
    out = Path(args.into) if args.into else run_dir(args.out, "fl-suite-full" if args.full else "fl-suite")
    out.mkdir(parents=True, exist_ok=True)
    s = run_suite(cfg, out, log=lambda m: print(m, flush=True), flower=not args.no_flower)
    print(markdown_table(s["table"]))
    print(json.dumps({"out": str(out), "wall_seconds": s["wall_seconds"], "figures": s["figures"],
                      "headline": s["headline"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
