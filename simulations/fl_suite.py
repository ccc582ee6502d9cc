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

**Same code path as Flower.** The sweep's inner loop (:func:`run_rounds`) calls the functions the
Flower apps call — :func:`ldp_rec.fl.federation.client_round` (the ClientApp's work),
``ServerState.decode / apply / account`` and :func:`ldp_rec.fl.task.evaluate` (the ServerApp's
``LdpRecFedAvg``) — with the same cohorts (:func:`ldp_rec.fl.federation.cohorts`: ranges depend only
on the number of nodes) and therefore the same seeds, without Ray's start-up cost per run. The
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

from ldp_rec.experiments.fl import summarise  # noqa: E402
from ldp_rec.experiments.results import run_dir, write_result  # noqa: E402
from ldp_rec.fl import models, task  # noqa: E402
from ldp_rec.fl.config import FLConfig  # noqa: E402
from ldp_rec.fl.federation import ServerState, client_round, cohorts, default_bits, load_data, make_fl_model  # noqa: E402
from ldp_rec.codec import wire  # noqa: E402

LOG2E = math.log2(math.e)
DEFAULT_CONFIG = ROOT / "simulations" / "fl_default.toml"


# --------------------------------------------------------------------------- methods
def mechanism_epsilon(mode: str, codec: str, epsilon: float, *, alpha: float = 2.0) -> float:
    """ε of the mechanism whose transcript is ε-LDP (references.md §4): ε for the float baseline and
    modified MRC, ε/2 for plain MRC, ε/(2α) for PPR(α)."""
    if mode != "ldp-rec":
        return float(epsilon)
    factor = {"modified-mrc": 1.0, "mrc": 2.0, "ppr": 2.0 * alpha}.get(codec)
    if factor is None:
        raise ValueError(f"codec {codec!r} has no ε-LDP transcript for a given mechanism ε; use modified-mrc, mrc or ppr")
    return float(epsilon) / factor


def method_label(mode: str, codec: str) -> str:
    return f"ldp-rec/{codec}" if mode == "ldp-rec" else mode


def method_config(base: FLConfig, mode: str, codec: str, epsilon: float, *, max_bits: int) -> FLConfig:
    """The FLConfig of one method at transcript ε per round."""
    eps_mech = mechanism_epsilon(mode, codec, epsilon, alpha=base.alpha)
    cfg = base.replace(mode=mode, codec=codec if mode == "ldp-rec" else base.codec, epsilon=eps_mech, bits=0)
    b = default_bits(cfg)
    if mode == "ldp-rec" and b is not None and b > max_bits:
        cfg = cfg.replace(bits=int(max_bits))
    return cfg


# --------------------------------------------------------------------------- the round loop
def run_rounds(cfg: FLConfig, *, progress=None) -> tuple[list[dict], float]:
    """``cfg.rounds`` rounds of the federation in-process; the rows have the fields and values of
    :class:`ldp_rec.fl.strategy.LdpRecFedAvg`'s rows (see the module docstring)."""
    t_start = time.perf_counter()
    data = load_data(cfg)
    model = make_fl_model(cfg, data)
    state = ServerState(cfg, models.get_flat_params(model))
    state.check_plan()
    assigned = cohorts(data.users.num_users, range(cfg.nodes))
    rows = []
    for rnd in range(1, cfg.rounds + 1):
        t0 = time.perf_counter()
        total = np.zeros(state.params.size)
        n_ok = n_failed = 0
        bits, nbytes = [], []
        for start, stop in assigned.values():
            res = client_round(cfg, state.params, rnd, start, stop)
            dec = state.decode(rnd, res.payloads, start, stop)
            total += dec.estimates[dec.ok].sum(axis=0)
            n_ok += int(dec.ok.sum())
            n_failed += dec.n_failed
            for p, ok in zip(res.payloads, dec.ok):
                if ok:
                    bits.append(wire.unpack_header_nbits(p))
                    nbytes.append(len(p))
        state.apply(total, n_ok)
        eps_round, eps_basic, eps_pld = state.account()
        models.set_flat_params(model, state.params)
        loss, acc = task.evaluate(model, data.X_test, data.y_test)
        row = {"round": rnd, "clients_ok": n_ok, "clients_failed": n_failed, "nodes_sampled": len(assigned),
               "nodes_replied": len(assigned), "payload_bits_per_client": float(np.mean(bits)) if bits else 0.0,
               "message_bytes_per_client": float(np.mean(nbytes)) if nbytes else 0.0,
               "epsilon_round": eps_round, "epsilon_total": eps_basic, "epsilon_total_pld": eps_pld,
               "accuracy": acc, "loss": loss, "seconds": time.perf_counter() - t0}
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows, time.perf_counter() - t_start


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
    for (ds, method, eps), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
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
        rows = sorted((r for r in table if r["dataset"] == dataset and r["method"] == m), key=lambda r: r["epsilon"])
        if not rows:
            continue
        x = np.array([r["epsilon"] for r in rows])
        y = np.array([r["final_accuracy"] for r in rows])
        e = np.array([r["final_ci95"] for r in rows])
        ax.errorbar(x, y, yerr=e, fmt="o-", capsize=3, color=colors[m], label=m)
    ax.set(xlabel="ε per round (transcript)", ylabel="final test accuracy", title="final accuracy vs ε", xscale="log", xticks=eps_grid)
    ax.set_xticklabels([f"{e:g}" for e in eps_grid])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- the suite
def dataset_base(cfg: dict, name: str) -> FLConfig:
    ds = dict(cfg["datasets"][name])
    rounds = int(cfg["rounds"])
    return FLConfig(**{**ds, "rounds": rounds, "mechanism": cfg.get("mechanism", "privunitg"),
                       "alpha": float(cfg.get("ppr_alpha", 2.0))})


def method_list(cfg: dict) -> list[tuple[str, str]]:
    out = []
    for mode in cfg["modes"]:
        if mode == "ldp-rec":
            out += [("ldp-rec", c) for c in cfg["codecs"]]
        else:
            out.append((mode, "none"))
    return out


def run_suite(cfg: dict, out: Path, *, log=print) -> dict:
    """Run the grid of ``cfg`` (one section of fl_default.toml) into the folder ``out``."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    max_bits = int(cfg.get("max_bits", 64))
    records, curves, walls = [], {}, {}
    t_suite = time.perf_counter()
    for name in cfg["datasets"]:
        base = dataset_base(cfg, name)
        data = load_data(base)
        users, dim = data.users.num_users, models.num_params(make_fl_model(base, data))
        log(f"[{name}] {base.dataset}: {users} users, d = {dim}, {base.rounds} rounds, seeds {cfg['seeds']}")
        t_ds = time.perf_counter()
        for seed in cfg["seeds"]:
            for eps in cfg["epsilons"]:
                runs, summary, configs = {}, {}, {}
                for mode, codec in method_list(cfg):
                    label = method_label(mode, codec)
                    if mode == "none" and eps != cfg["epsilons"][0]:  # ε-independent: run once per seed
                        src = curves_key = (name, label, None)
                        rows = runs_cache[(name, seed)]
                    else:
                        mcfg = method_config(base.replace(seed=int(seed)), mode, codec, eps, max_bits=max_bits)
                        rows, wall = run_rounds(mcfg)
                        if mode == "none":
                            runs_cache = locals().get("runs_cache", {})
                            runs_cache[(name, seed)] = rows
                        if mode != "none" and not math.isclose(rows[-1]["epsilon_round"], eps, rel_tol=1e-9):
                            raise RuntimeError(f"{label} at ε={eps}: accountant reports ε_round = {rows[-1]['epsilon_round']}")
                        configs[label] = {**mcfg.to_record(), "transcript-epsilon": eps, "wall-seconds": wall}
                        log(f"  {name} seed={seed} ε={eps:g} {label:22s} acc={rows[-1]['accuracy']:.3f} "
                            f"bits={summarise(rows)['payload_bits_per_client']:.0f} "
                            f"{np.median([r['seconds'] for r in rows]):.2f} s/round ({wall:.0f} s)")
                    runs[label] = rows
                    summary[label] = summarise(rows)
                    key = (name, label, None if mode == "none" else eps)
                    curves.setdefault(key, {})[seed] = [r["accuracy"] for r in rows]
                    mcfg_rec = configs.get(label)
                    records.append({"dataset": name, "method": label, "epsilon": eps if mode != "none" else math.inf,
                                    "seed": seed, "summary": summary[label], "users": users, "dim": dim,
                                    "rounds": base.rounds,
                                    "mechanism_epsilon": mechanism_epsilon(mode, codec, eps, alpha=base.alpha) if mode != "none" else math.inf,
                                    "index_bits": (mcfg_rec or {}).get("bits", 0)})
                first = next(iter(configs.values()))
                result = {"config": {"command": "fl-suite", **first, "epsilon": eps, "codec": "/".join(cfg["codecs"]),
                                     "modes": list(runs), "configs": configs, "suite_dataset": name},
                          "summary": summary, "runs": runs}
                write_result(out / f"fl_{name}_eps{eps:g}_seed{seed}.json", result)
        walls[name] = time.perf_counter() - t_ds
    # ε-independent runs appear once per seed in the table
    seen, recs = set(), []
    for r in records:
        k = (r["dataset"], r["method"], r["epsilon"], r["seed"])
        if k not in seen:
            seen.add(k)
            recs.append(r)
    table = aggregate(recs)
    curves_arr = {k: np.array([v[s] for s in sorted(v)]) for k, v in curves.items()}
    for name in cfg["datasets"]:
        for (ds, m, e), acc in list(curves_arr.items()):  # draw the non-private band in every ε panel
            if ds == name and e is None:
                for eps in cfg["epsilons"]:
                    curves_arr.setdefault((ds, m, eps), acc)
    figures = []
    for name in cfg["datasets"]:
        b = dataset_base(cfg, name)
        title = (f"{name}: {b.dataset}, partition {b.partition}, {b.model}, {cfg['mechanism']}, {b.rounds} rounds, "
                 f"seeds {cfg['seeds']}, bands mean ± 1.96·sem; MRC-type bits ≤ {max_bits}")
        figures.append(str(plot_dataset(name, curves_arr, table, out / f"fl_suite_{name}.png", title)))
    write_csv(table, out / "fl_suite.csv")
    (out / "fl_suite.md").write_text(markdown_table(table) + "\n")
    return {"table": table, "figures": figures, "dataset_wall_seconds": walls,
            "wall_seconds": time.perf_counter() - t_suite}


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
        lines.append(f"| {r['dataset']} | {r['method']} | {r['epsilon']:g} | {r['mechanism_epsilon']:.3g} | "
                     f"{r['bits_per_user_round']:.0f} | {r['final_accuracy']:.3f} ± {r['final_ci95']:.3f} | "
                     f"{r['best_accuracy']:.3f} ± {r['best_ci95']:.3f} | {r['epsilon_total_pld']:.4g} | "
                     f"{r['median_round_seconds']:.2f} |")
    return "\n".join(lines)
