"""A sweep's summary across seeds: mean ± 95% confidence interval per grid point (and FL mode).

Reads a sweep folder (:mod:`.sweep`: ``manifest.json`` and one ``result.json`` per point), groups
the points by their swept values other than ``seed``, and for each group reports, over its seeds,
the mean and the half-width of the two-sided 95% Student-t interval,

    mean ± t_{0.975, n−1} · s / √n,   s the sample standard deviation (ddof = 1),

for FL: final accuracy, payload bits per user per round, the population's largest user ε (PLD) and
seconds per round (median over the rounds after the first, which carries the start-up); for DME:
MSE, payload bits, transcript ε and encode seconds per user. With one seed the interval is null
(not zero). Null values (a non-private mode's ε) are left out; a metric with none is null.
Interrupted or missing points are counted, never averaged in.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

FL_METRICS = {"final_accuracy": "final accuracy", "payload_bits_per_client": "bits/client",
              "epsilon_user_max": "user ε", "round_seconds": "s/round"}
DME_METRICS = {"mse": "MSE", "payload_bits": "bits/client", "epsilon_transcript": "ε transcript",
               "encode_seconds_per_client": "encode s/client"}


def mean_ci(values, *, confidence: float = 0.95) -> tuple[float | None, float | None, int]:
    """(mean, half-width of the two-sided t-interval, n) of the finite values (module doc)."""
    from scipy import stats

    x = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))])
    if x.size == 0:
        return None, None, 0
    if x.size == 1:
        return float(x[0]), None, 1
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half), int(x.size)


def _fl_values(obj: dict) -> dict[str, dict]:
    out = {}
    for mode, s in (obj.get("summary") or {}).items():
        secs = s.get("median_round_seconds_after_first", s.get("median_round_seconds"))
        out[mode] = {"final_accuracy": s.get("final_accuracy"), "payload_bits_per_client": s.get("payload_bits_per_client"),
                     "epsilon_user_max": s.get("epsilon_user_max"), "round_seconds": secs}
    return out


def summarise_sweep(folder) -> tuple[dict, list[dict]]:
    """(manifest, rows): one row per grid point (and FL mode) with ``<metric>_mean``,
    ``<metric>_ci95`` (half-width), ``seeds`` (n) and ``seeds_missing``."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    fl = manifest.get("command") == "fl"
    metrics = FL_METRICS if fl else DME_METRICS
    groups: dict[tuple, dict] = {}
    for point in manifest["points"]:
        params = {k: v for k, v in point["params"].items() if k != "seed"}
        key = tuple(sorted(params.items()))
        g = groups.setdefault(key, {"params": params, "values": {}, "missing": 0})
        path = folder / point["result"]
        obj = json.loads(path.read_text()) if path.exists() else None
        if obj is None or obj.get("interrupted") or point.get("status") != "done":
            g["missing"] += 1
            continue
        per_mode = _fl_values(obj) if fl else {"": {k: obj.get(k) for k in metrics}}
        for mode, vals in per_mode.items():
            for k, v in vals.items():
                g["values"].setdefault(mode, {}).setdefault(k, []).append(v)
    rows = []
    for g in groups.values():
        for mode, vals in g["values"].items() or {"": {}}.items():
            row = {**g["params"], **({"mode": mode} if fl else {})}
            n = 0
            for k in metrics:
                m, h, _ = mean_ci(vals.get(k, []))
                row[f"{k}_mean"], row[f"{k}_ci95"] = m, h
                n = max(n, len(vals.get(k, [])))
            row["seeds"], row["seeds_missing"] = n, g["missing"]
            rows.append(row)
    return manifest, rows


def _pm(mean, half, spec: str) -> str:
    if mean is None:
        return "–"
    return format(mean, spec) + ("" if half is None else f" ± {format(half, spec)}")


def markdown(manifest: dict, rows: list[dict]) -> list[str]:
    """The summary as a Markdown table (mean ± 95% CI half-width)."""
    fl = manifest.get("command") == "fl"
    metrics = FL_METRICS if fl else DME_METRICS
    axes = [k for k in manifest.get("axes", {}) if k != "seed"]
    head = axes + (["mode"] if fl else []) + ["seeds"] + list(metrics.values())
    seeds = manifest.get("axes", {}).get("seed", [])
    lines = ["## Sweep summary", "",
             f"`ldp-rec {manifest.get('command')}` over {', '.join(axes) or 'seeds only'}; seeds {seeds}. "
             "Mean ± half-width of the 95% t-interval across seeds (none with one seed).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.get(a)) for a in axes] + ([r.get("mode", "")] if fl else [])
        cells.append(f"{r['seeds']}" + (f" ({r['seeds_missing']} missing)" if r["seeds_missing"] else ""))
        cells += [_pm(r[f"{k}_mean"], r[f"{k}_ci95"], ".4g") for k in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]
