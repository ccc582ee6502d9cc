"""The privacy–bits–accuracy frontier of distributed mean estimation (DME), from result rows.

A *row* is one method point: a dict with at least

    method (str), epsilon (the ε of the whole transcript the server sees), bits (per client),
    mse (DME error ‖mean x − mean x̂‖²), published (bool: a method as published in the literature)

and optionally ``mse_sem``, ``source`` ("closed_form" or "measured"), ``family`` and free-form extras.

The frontier at (ε, b) is the smallest MSE over rows with ``epsilon ≤ ε`` and ``bits ≤ b``
(:func:`frontier_table`); restricting the rows to ``published`` ones gives the best published method
at (ε, b), and :func:`compare_with_published` puts the two side by side. Rows whose transcript is
not ε-LDP (plain MRC run at ε, PFR/GPRS, rejection sampling on shared candidates) must be given
their transcript ε (or be left out): the frontier only ranks what the server's view guarantees.

Expected DME error of an unbiased per-client estimator with independent clients and per-user error
``e_i = E‖Z_i − x_i‖²`` is ``(1/n²) Σ_i e_i`` (cross terms vanish), so closed-form rows use
``per_user_mse / n``; measured rows average over trials (Shah et al. 2022, Sec. 6; Isik et al. 2023, Sec. 6).

Plots use matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

_REL_TOL = 1e-9  # ε and bit comparisons allow for rounding in ε/k splits

ROW_FIELDS = ("method", "family", "published", "source", "epsilon", "bits", "mse", "mse_sem",
              "mse_closed_form", "mse_uncompressed", "dim", "clients", "trials", "seconds", "note")


def _ok(row, epsilon: float, bits: float) -> bool:
    e, b = float(row["epsilon"]), float(row["bits"])
    return (math.isfinite(e) and e <= epsilon * (1 + _REL_TOL) and b <= bits * (1 + _REL_TOL)
            and math.isfinite(float(row["mse"])))


def best_row(rows, *, epsilon: float, bits: float, published_only: bool = False):
    """The row with the smallest MSE among those with transcript ε ≤ ``epsilon`` and ≤ ``bits``
    bits (None if there is none)."""
    best = None
    for r in rows:
        if published_only and not bool(r.get("published", False)):
            continue
        if _ok(r, epsilon, bits) and (best is None or float(r["mse"]) < float(best["mse"])):
            best = r
    return best


def frontier_table(rows, *, epsilons, bit_budgets, published_only: bool = False) -> dict:
    """``{(ε, b): best row or None}`` over the grid (see :func:`best_row`)."""
    rows = list(rows)
    return {(float(e), int(b)): best_row(rows, epsilon=float(e), bits=int(b), published_only=published_only)
            for e in epsilons for b in bit_budgets}


def compare_with_published(rows, *, epsilons, bit_budgets) -> list[dict]:
    """One record per (ε, b): our best (over all rows) and the best published row, and
    ``ratio = ours / published`` (≤ 1 by construction when published rows are among ``rows``;
    NaN where no published method exists at that budget)."""
    rows = list(rows)
    out = []
    for e in epsilons:
        for b in bit_budgets:
            ours = best_row(rows, epsilon=float(e), bits=int(b))
            pub = best_row(rows, epsilon=float(e), bits=int(b), published_only=True)
            mo = float(ours["mse"]) if ours is not None else math.nan
            mp = float(pub["mse"]) if pub is not None else math.nan
            out.append({
                "epsilon": float(e), "bits": int(b),
                "best_method": ours["method"] if ours is not None else "",
                "best_mse": mo,
                "published_method": pub["method"] if pub is not None else "",
                "published_mse": mp,
                "ratio": mo / mp if pub is not None and ours is not None else math.nan,
            })
    return out


def strictly_better(records, *, margin: float = 0.0) -> list[dict]:
    """Records of :func:`compare_with_published` where ours beats the best published method by more
    than ``margin`` (relative), or where no published method fits the budget at all."""
    return [r for r in records if (math.isnan(r["published_mse"]) and not math.isnan(r["best_mse"]))
            or r["ratio"] < 1.0 - margin]


def uncompressed_gap(compressed_mse: float, uncompressed_mse: float) -> float:
    """Relative excess error ``compressed/uncompressed − 1`` (goal: ≤ 0.05)."""
    if not uncompressed_mse > 0:
        raise ValueError("uncompressed MSE must be > 0")
    return float(compressed_mse) / float(uncompressed_mse) - 1.0


# --------------------------------------------------------------------------- I/O
def write_rows_csv(rows, path, fields=None) -> Path:
    """Write rows as CSV (columns ``fields``, default :data:`ROW_FIELDS` plus any extra keys)."""
    rows = list(rows)
    path = Path(path)
    if fields is None:
        extra = sorted({k for r in rows for k in r} - set(ROW_FIELDS))
        fields = list(ROW_FIELDS) + extra
    with path.open("x", newline="") as fh:  # results are never overwritten
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})
    return path


def read_rows_csv(path) -> list[dict]:
    """Rows back from :func:`write_rows_csv` (numbers parsed, ``published`` as bool)."""
    out = []
    with Path(path).open(newline="") as fh:
        for r in csv.DictReader(fh):
            row = {}
            for k, v in r.items():
                if k == "published":
                    row[k] = v in ("True", "true", "1")
                    continue
                try:
                    row[k] = float(v) if v != "" else None
                except ValueError:
                    row[k] = v
            out.append(row)
    return out


def markdown_frontier(table: dict, *, epsilons, bit_budgets, fmt: str = "{:.3g}") -> str:
    """The (ε × b) frontier as a markdown table of best MSE with the method underneath."""
    head = "| ε \\ b | " + " | ".join(str(int(b)) for b in bit_budgets) + " |"
    sep = "|---|" + "---|" * len(bit_budgets)
    lines = [head, sep]
    for e in epsilons:
        cells = []
        for b in bit_budgets:
            r = table.get((float(e), int(b)))
            cells.append("—" if r is None else f"{fmt.format(float(r['mse']))} {r['method']}")
        lines.append(f"| {e:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _styles(plt, n: int):
    """n distinct (colour, marker, line style) triples: tab20 colours, cycling markers and dashes."""
    colours = plt.cm.tab20(np.linspace(0, 1, 20))
    markers, dashes = "os^vDP*Xph", ["-", "--", "-.", ":"]
    return [dict(color=colours[(7 * i) % 20], marker=markers[i % len(markers)], linestyle=dashes[(i // 5) % 4])
            for i in range(n)]


def _finish_mse_plot(plt, fig, ax, path, xlabel: str, title: str) -> Path:
    """Log-MSE axis, labels, grid and legend; save and close."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_mse_vs_eps(rows, path, *, bits: int, methods=None, title: str | None = None) -> Path:
    """MSE against transcript ε for each method at ``bits`` (or its uncompressed rows, bits > 64)."""
    plt = _plt()
    rows = [r for r in rows if math.isfinite(float(r["mse"]))]
    names = methods or sorted({r["method"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, style in zip(names, _styles(plt, len(names))):
        pts = sorted((float(r["epsilon"]), float(r["mse"])) for r in rows
                     if r["method"] == name and (int(float(r["bits"])) == bits or float(r["bits"]) > 64))
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, label=name, ms=4, **style)
    return _finish_mse_plot(plt, fig, ax, path, "transcript ε", title or f"DME: MSE vs ε at {bits} bits")


def plot_mse_vs_bits(rows, path, *, epsilon: float, methods=None, title: str | None = None,
                     uncompressed: dict | None = None) -> Path:
    """MSE against bits per client at transcript ε = ``epsilon``; ``uncompressed`` maps a label to
    an MSE drawn as a horizontal line (the uncompressed LDP reference)."""
    plt = _plt()
    rows = [r for r in rows if abs(float(r["epsilon"]) - epsilon) <= 1e-9 * max(1, epsilon)
            and float(r["bits"]) <= 64 and math.isfinite(float(r["mse"]))]
    names = methods or sorted({r["method"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, style in zip(names, _styles(plt, len(names))):
        pts = sorted((float(r["bits"]), float(r["mse"])) for r in rows if r["method"] == name)
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, label=name, ms=4, **style)
    for label, v in (uncompressed or {}).items():
        ax.axhline(v, linestyle="--", color="k", lw=1)
        ax.text(ax.get_xlim()[0], v, f" {label}", va="bottom", fontsize=7)
    return _finish_mse_plot(plt, fig, ax, path, "bits per client", title or f"DME: MSE vs bits at ε = {epsilon:g}")


def plot_frontier_vs_uncompressed(records, uncompressed: dict, path, *, bit_budgets, title: str | None = None) -> Path:
    """One picture: the frontier (best MSE at each b, one curve per b) and the best published
    method against ε, with the uncompressed LDP MSE (``{ε: mse}``) as a black line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.cm.viridis(np.linspace(0, 1, len(bit_budgets)))
    for c, b in zip(colors, bit_budgets):
        pts = sorted((r["epsilon"], r["best_mse"], r["published_mse"]) for r in records if r["bits"] == b)
        if not pts:
            continue
        e, ours, pub = zip(*pts)
        ax.plot(e, ours, color=c, marker="o", label=f"frontier, {b} bits")
        ax.plot(e, pub, color=c, linestyle=":", label=f"best published, {b} bits")
    if uncompressed:
        e, v = zip(*sorted(uncompressed.items()))
        ax.plot(e, v, color="k", lw=2, label="uncompressed LDP (32·d bits)")
    ax.set_yscale("log")
    ax.set_xlabel("transcript ε")
    ax.set_ylabel("MSE")
    ax.set_title(title or "DME frontier vs published methods and uncompressed LDP")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
