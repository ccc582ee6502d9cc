"""``ldp-rec report RESULTS_DIR``: a self-contained Markdown report with matplotlib figures.

Reads every result JSON under RESULTS_DIR (never reruns anything) and renders, where the data
exist: for a sweep folder (``manifest.json``, :mod:`.sweep`), the summary across seeds with 95%
confidence intervals (:mod:`.sweep_summary`, also written as ``report/sweep.json`` and
``report/sweep.csv``); accuracy against round, accuracy against cumulative bits and ε spent against round (FL
results), MSE against ε, MSE against bits and encode time against ε (DME results), and the audit
table. Every figure's caption states the config, seeds and commit it came from. The report and
its figures go into RESULTS_DIR/report/ (a fresh folder; an existing one is not overwritten
without --force).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np


def load_results(root: Path) -> list[tuple[Path, dict]]:
    out = []
    for p in sorted(root.rglob("*.json")):
        if "report" in p.parts:
            continue
        try:
            obj = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(obj, dict):
            out.append((p, obj))
    return out


def _provenance(objs) -> str:
    commits = sorted({str((o.get("meta") or {}).get("git_commit")) for _, o in objs})
    seeds = sorted({str((o.get("config") or {}).get("seed")) for _, o in objs})
    files = ", ".join(str(p.name) for p, _ in objs[:4]) + (" …" if len(objs) > 4 else "")
    return f"source: {files}; seeds {', '.join(seeds)}; commit {', '.join(c[:12] for c in commits)}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fl_figures(fl, outdir: Path) -> list[str]:
    plt = _plt()
    lines = ["## Federated learning", ""]
    for path, obj in fl:
        runs = obj["runs"]
        cfg = obj["config"]
        fig, ax = plt.subplots(1, 3, figsize=(15, 4))
        for mode, rows in runs.items():
            r = [x["round"] for x in rows]
            acc = [x["accuracy"] for x in rows]
            ax[0].plot(r, acc, label=mode)
            ax[1].semilogx(np.maximum(np.cumsum([x["payload_bits_per_client"] for x in rows]), 1), acc, label=mode)
            eps = [_float(x.get("epsilon_total_pld")) for x in rows]
            if np.all(np.isfinite(eps)):
                ax[2].plot(r, eps, label=f"{mode} (PLD)")
                ax[2].plot(r, [_float(x.get("epsilon_total")) for x in rows], "--", label=f"{mode} (basic)")
        ax[0].set(xlabel="round", ylabel="test accuracy", title="accuracy vs round")
        ax[1].set(xlabel="cumulative payload bits per user", ylabel="test accuracy", title="accuracy vs bits")
        ax[2].set(xlabel="round", ylabel="ε spent (δ=%g)" % cfg.get("delta", 1e-5), title="privacy spent")
        for a in ax:
            a.grid(alpha=0.3)
            a.legend(fontsize=7)
        cap = (f"{cfg.get('dataset')} · {cfg.get('mechanism')}+{cfg.get('codec')} · ε={cfg.get('epsilon')}/round · "
               f"{_provenance([(path, obj)])}")
        fig.suptitle(cap, fontsize=8)
        fig.tight_layout()
        name = f"fl_{path.parent.name}_{path.stem}.png"
        fig.savefig(outdir / name, dpi=100)
        plt.close(fig)
        lines += [f"![{name}]({name})", "", f"*{cap}*", "", "| mode | final acc | bits/user/round | ε/round | ε total basic | ε total PLD | s/round |",
                  "|---|---|---|---|---|---|---|"]
        for mode, s in obj.get("summary", {}).items():
            lines.append(f"| {mode} | {s['final_accuracy']:.3f} | {s['payload_bits_per_client']:.1f} | "
                         f"{_fmt(s.get('epsilon_round'), '.3g')} | {_fmt(s.get('epsilon_total_basic'), '.4g')} | "
                         f"{_fmt(s.get('epsilon_total_pld'), '.4g')} | {s['median_round_seconds']:.2f} |")
        lines.append("")
    return lines


def _float(v) -> float:
    """A number from a result file: ``null`` (unbounded or not applicable, see results.py) reads as inf."""
    return math.inf if v is None else float(v)


def _fmt(v, spec: str) -> str:
    """``v`` formatted, or "–" for null / non-finite (non-private modes, cdp's per-round ε)."""
    return "–" if v is None or not math.isfinite(float(v)) else format(float(v), spec)


def dme_figures(dme, outdir: Path) -> list[str]:
    plt = _plt()
    groups = defaultdict(list)
    for _, o in dme:
        c = o["config"]
        groups[f"{c['mechanism']}+{c['codec']}"].append(o)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for label, objs in sorted(groups.items()):
        objs = sorted(objs, key=lambda o: (o["config"]["epsilon"], o["payload_bits"]))
        eps = [o["config"]["epsilon"] for o in objs]
        ax[0].semilogy(eps, [o["mse"] for o in objs], "o-", label=label)
        ax[1].loglog([o["payload_bits"] for o in objs], [o["mse"] for o in objs], "o", label=label)
        ax[2].semilogy(eps, [1e6 * o["encode_seconds_per_client"] for o in objs], "o-", label=label)
    ax[0].set(xlabel="ε (mechanism)", ylabel="MSE", title="MSE vs ε")
    ax[1].set(xlabel="payload bits per client", ylabel="MSE", title="MSE vs bits")
    ax[2].set(xlabel="ε", ylabel="encode µs per client", title="time vs ε")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=6)
    cap = f"DME ({len(dme)} results) · {_provenance(dme)}"
    fig.suptitle(cap, fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / "dme.png", dpi=100)
    plt.close(fig)
    lines = ["## Distributed mean estimation", "", "![dme](dme.png)", "", f"*{cap}*", "",
             "| mechanism | codec | ε | bits | MSE | ± std | ε transcript | encode µs/client | decode µs/client |",
             "|---|---|---|---|---|---|---|---|---|"]
    for o in sorted((o for _, o in dme), key=lambda o: (o["config"]["mechanism"], o["config"]["codec"], o["config"]["epsilon"])):
        c = o["config"]
        lines.append(f"| {c['mechanism']} | {c['codec']} | {c['epsilon']} | {o['payload_bits']:.1f} | {o['mse']:.4g} | "
                     f"{o['mse_std']:.2g} | {o['epsilon_transcript']} | {1e6 * o['encode_seconds_per_client']:.1f} | "
                     f"{1e6 * o['decode_seconds_per_client']:.1f} |")
    return lines + [""]


def audit_table(audits) -> list[str]:
    lines = ["## Privacy audits", "", "| mechanism | codec | ε | claimed | audited lower bound | confidence |", "|---|---|---|---|---|---|"]
    for _, o in audits:
        c = o.get("config", {})
        lines.append(f"| {c.get('mechanism')} | {c.get('codec')} | {c.get('epsilon')} | {o['epsilon_claimed']} | "
                     f"{o['epsilon_lower_bound']:.3f} | {o['confidence']} |")
    return lines + [""]


def render(root: Path, *, force: bool = False) -> Path:
    results = [(p, o) for p, o in load_results(root) if p.name != "manifest.json"]
    outdir = root / "report"
    if outdir.exists() and not force:
        raise FileExistsError(f"{outdir} exists; pass --force to replace it")
    outdir.mkdir(parents=True, exist_ok=True)
    fl = [(p, o) for p, o in results if "runs" in o]
    dme = [(p, o) for p, o in results if "mse" in o and "config" in o]
    audits = [(p, o) for p, o in results if "epsilon_lower_bound" in o]
    lines = [f"# ldp-rec report: {root}", "", f"{len(results)} result files.", ""]
    if (root / "manifest.json").exists():
        from .results import write_result, write_table
        from .sweep_summary import markdown, summarise_sweep

        manifest, rows = summarise_sweep(root)
        write_result(outdir / "sweep.json", {"sweep": str(root), "command": manifest.get("command"),
                                             "axes": manifest.get("axes"), "summary": rows}, force=True)
        write_table(outdir / "sweep.csv", rows)
        lines += markdown(manifest, rows)
    if fl:
        lines += fl_figures(fl, outdir)
    if dme:
        lines += dme_figures(dme, outdir)
    if audits:
        lines += audit_table(audits)
    if not (fl or dme or audits):
        lines.append("No FL, DME or audit results found.")
    path = outdir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results_dir")
    p.add_argument("--force", action="store_true")


def run(args) -> int:
    root = Path(args.results_dir)
    if not root.is_dir():
        raise SystemExit(f"{root} is not a folder")
    print("wrote", render(root, force=args.force))
    return 0
