"""Unit tests of the DME frontier computation (ldp_rec.experiments.frontier) on synthetic rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ldp_rec.experiments import frontier as fr


def _row(method, eps, bits, mse, published=False):
    return {"method": method, "epsilon": eps, "bits": bits, "mse": mse, "published": published}


ROWS = [
    _row("pub-a", 1.0, 4, 10.0, True),
    _row("pub-a", 2.0, 4, 5.0, True),
    _row("pub-b", 2.0, 8, 3.0, True),
    _row("ours", 2.0, 8, 2.0),
    _row("ours", 1.0, 2, 12.0),
    _row("ours-2x-eps", 4.0, 2, 0.1),  # a transcript at 4: must not count at ε = 2
    _row("uncompressed", 2.0, 32 * 500, 1.0, True),
    _row("nan", 2.0, 1, float("nan")),
]


def test_best_row_respects_epsilon_and_bits():
    assert fr.best_row(ROWS, epsilon=2.0, bits=8)["method"] == "ours"
    assert fr.best_row(ROWS, epsilon=2.0, bits=7)["method"] == "pub-a"  # 5.0 at ε 2, 4 bits
    assert fr.best_row(ROWS, epsilon=1.0, bits=3)["method"] == "ours"  # only 12.0 fits
    assert fr.best_row(ROWS, epsilon=1.0, bits=1) is None
    # a point whose transcript ε exceeds the budget never enters, however good
    assert fr.best_row(ROWS, epsilon=3.9, bits=2)["mse"] == 12.0
    assert fr.best_row(ROWS, epsilon=4.0, bits=2)["method"] == "ours-2x-eps"
    # the uncompressed point costs 32 d bits
    assert fr.best_row(ROWS, epsilon=2.0, bits=16000)["method"] == "uncompressed"
    assert fr.best_row(ROWS, epsilon=2.0, bits=8, published_only=True)["method"] == "pub-b"


def test_rounding_tolerance_in_epsilon_split():
    # k repetitions at ε/k must count at ε even when (ε/k)·k rounds above ε
    eps = 0.3
    rows = [_row("chunked", sum([0.1] * 3), 3, 1.0)]
    assert sum([0.1] * 3) > eps
    assert fr.best_row(rows, epsilon=eps, bits=3) is not None
    assert fr.best_row(rows, epsilon=0.2999, bits=3) is None


def test_frontier_monotone_and_below_published():
    rng = np.random.default_rng(3)
    rows = []
    for m in range(12):
        for e in (1, 2, 4, 8):
            for b in range(1, 17):
                rows.append(_row(f"m{m}", e, b, float(rng.lognormal()), published=bool(m % 3 == 0)))
    eps, bits = [1, 2, 4, 8], list(range(1, 17))
    tab = fr.frontier_table(rows, epsilons=eps, bit_budgets=bits)
    # more ε or more bits can only help
    for e in eps:
        v = [tab[(float(e), b)]["mse"] for b in bits]
        assert all(x >= y for x, y in zip(v, v[1:]))
    for b in bits:
        v = [tab[(float(e), b)]["mse"] for e in eps]
        assert all(x >= y for x, y in zip(v, v[1:]))
    rec = fr.compare_with_published(rows, epsilons=eps, bit_budgets=bits)
    assert len(rec) == len(eps) * len(bits)
    assert all(r["ratio"] <= 1.0 for r in rec)
    # brute force check of one cell
    cell = min(r["mse"] for r in rows if r["epsilon"] <= 2 and r["bits"] <= 5)
    assert tab[(2.0, 5)]["mse"] == cell


def test_compare_and_strictly_better():
    rec = fr.compare_with_published(ROWS, epsilons=[1.0, 2.0], bit_budgets=[2, 4, 8])
    by = {(r["epsilon"], r["bits"]): r for r in rec}
    assert by[(2.0, 8)]["ratio"] == pytest.approx(2.0 / 3.0)
    assert by[(2.0, 4)]["ratio"] == 1.0
    assert math.isnan(by[(1.0, 2)]["ratio"])  # no published method fits 2 bits at ε = 1
    better = fr.strictly_better(rec, margin=0.01)
    keys = {(r["epsilon"], r["bits"]) for r in better}
    assert (2.0, 8) in keys and (1.0, 2) in keys and (2.0, 4) not in keys


def test_uncompressed_gap():
    assert fr.uncompressed_gap(1.05, 1.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        fr.uncompressed_gap(1.0, 0.0)


def test_csv_round_trip_never_overwrites(tmp_path):
    rows = [dict(r, source="closed_form") for r in ROWS[:4]]
    p = fr.write_rows_csv(rows, tmp_path / "rows.csv")
    back = fr.read_rows_csv(p)
    assert [r["method"] for r in back] == [r["method"] for r in rows]
    assert [r["mse"] for r in back] == [r["mse"] for r in rows]
    assert [r["published"] for r in back] == [r["published"] for r in rows]
    with pytest.raises(FileExistsError):
        fr.write_rows_csv(rows, p)


def test_markdown_and_plots(tmp_path):
    eps, bits = [1.0, 2.0], [1, 4, 8]
    tab = fr.frontier_table(ROWS, epsilons=eps, bit_budgets=bits)
    md = fr.markdown_frontier(tab, epsilons=eps, bit_budgets=bits)
    assert md.count("\n") == 3 and "ours" in md and "—" in md
    rec = fr.compare_with_published(ROWS, epsilons=eps, bit_budgets=bits)
    for path in (fr.plot_mse_vs_eps(ROWS, tmp_path / "e.png", bits=4),
                 fr.plot_mse_vs_bits(ROWS, tmp_path / "b.png", epsilon=2.0, uncompressed={"unc": 1.0}),
                 fr.plot_frontier_vs_uncompressed(rec, {1.0: 2.0, 2.0: 1.0}, tmp_path / "f.png", bit_budgets=bits)):
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
