"""Smoke and correctness tests of the experiment suites in simulations/ (tiny settings, < 60 s)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "simulations" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


fl_suite = _load("fl_suite")
comm_table = _load("comm_table")
cost_scaling = _load("cost_scaling")
run_all = _load("run_all")

from ldp_rec.experiments.report import render  # noqa: E402
from ldp_rec.fl.config import FLConfig  # noqa: E402
from ldp_rec.fl.federation import round_codec  # noqa: E402
from ldp_rec.privacy.events import event_epsilon  # noqa: E402
from ldp_rec.codec.registry import default_bits  # noqa: E402

TINY = FLConfig(dataset="digits", partition="iid", clients=30, rounds=2, private_seed=0)  # replayable coins


# --------------------------------------------------------------------------- fl_suite
@pytest.mark.parametrize("codec", ["modified-mrc", "mrc", "ppr"])
@pytest.mark.parametrize("eps", [2.0, 8.0])
def test_transcript_epsilon_equals_grid_epsilon(codec, eps):
    """The suite's ε is the transcript's: MRC runs the mechanism at ε/2, PPR(α) at ε/(2α)."""
    cfg = fl_suite.method_config(TINY, "ldp-rec", codec, eps, max_bits=11)
    ev = round_codec(cfg, 650).transcript_event()
    assert event_epsilon(ev) == pytest.approx(eps, rel=1e-12)
    ldp = fl_suite.method_config(TINY, "ldp", "none", eps, max_bits=11)
    assert event_epsilon(round_codec(ldp, 650).transcript_event()) == pytest.approx(eps, rel=1e-12)


def test_max_bits_caps_only_mrc_type_codecs():
    assert fl_suite.method_config(TINY, "ldp-rec", "modified-mrc", 8.0, max_bits=11).bits == 11  # default 16
    assert fl_suite.method_config(TINY, "ldp-rec", "modified-mrc", 2.0, max_bits=11).bits == 0  # default 7 kept
    assert fl_suite.method_config(TINY, "ldp-rec", "ppr", 8.0, max_bits=3).bits == 0
    from ldp_rec.fl.federation import mechanism_epsilon

    with pytest.raises(ValueError):  # GPRS's transcript has no established ε: no mechanism ε reaches a target
        mechanism_epsilon(TINY.replace(mode="ldp-rec", codec="gprs"), 650, 4.0)


def test_band_is_196_sem_and_covers_at_the_t_rate():
    v = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    mean, hw = fl_suite.band(v)
    np.testing.assert_allclose(mean, [3.0, 2.0])
    np.testing.assert_allclose(hw, [1.96 * 2.0 / math.sqrt(3), 0.0])
    assert fl_suite.band(v[:1])[1].tolist() == [0.0, 0.0]
    # Coverage of mean ± 1.96·sem over n = 5 normal seeds is P(|T_4| ≤ 1.96) = 0.878 (ddof = 0 would give
    # 0.85, a z-quantile of 1.645 0.82); 4000 draws: sd 0.0052, tolerance 0.02.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4000, 5)).T
    m, h = fl_suite.band(x)
    cover = np.mean(np.abs(m) <= h)
    assert cover == pytest.approx(2 * stats.t.cdf(1.96, 4) - 1, abs=0.02)


def _tiny_suite_cfg():
    return {"rounds": 2, "seeds": [0, 1], "epsilons": [2, 4], "modes": ["none", "ldp", "ldp-rec"],
            "codecs": ["modified-mrc", "mrc"], "mechanism": "privunitg", "ppr_alpha": 2.0, "max_bits": 8,
            "datasets": {"digits": {"dataset": "digits", "partition": "iid", "clients": 30}}}


def test_fl_suite_tiny_writes_results_the_report_renders(tmp_path):
    s = fl_suite.run_suite(_tiny_suite_cfg(), tmp_path, log=lambda m: None, flower=False)
    names = sorted(p.name for p in tmp_path.glob("fl_digits_eps*_seed*.json"))
    assert names == [f"fl_digits_eps{e}_seed{k}.json" for e in (2, 4) for k in (0, 1)]
    table = {(r["method"], r["epsilon"]): r for r in s["table"]}
    assert set(table) == {("none", None), ("ldp", 2.0), ("ldp", 4.0), ("ldp-rec/modified-mrc", 2.0),
                          ("ldp-rec/modified-mrc", 4.0), ("ldp-rec/mrc", 2.0), ("ldp-rec/mrc", 4.0)}
    for (method, eps), r in table.items():
        assert r["seeds"] == 2
        finals = [json.loads((tmp_path / f"fl_digits_eps{2 if eps is None else int(eps)}_seed{k}.json").read_text())
                  ["summary"][method]["final_accuracy"] for k in (0, 1)]
        assert r["final_accuracy"] == pytest.approx(np.mean(finals))
        assert r["final_ci95"] == pytest.approx(1.96 * np.std(finals, ddof=1) / math.sqrt(2))
        if eps is not None:
            assert r["epsilon_round"] == pytest.approx(eps)
    # bits: modified MRC at ε = 4 wants 10 bits, capped at 8; ε = 2 keeps its default ⌈2 log2 e⌉ + 4 = 7
    assert table[("ldp-rec/modified-mrc", 4.0)]["bits_per_user_round"] == 8
    assert table[("ldp-rec/modified-mrc", 2.0)]["bits_per_user_round"] == 7
    assert table[("ldp-rec/mrc", 4.0)]["bits_per_user_round"] == 7  # mechanism at ε/2 = 2
    assert table[("ldp", 2.0)]["bits_per_user_round"] == 32 * 650
    assert (tmp_path / "fl_suite_digits.png").stat().st_size > 10_000
    assert (tmp_path / "fl_suite.csv").read_text().count("\n") == 8
    report = render(tmp_path).read_text()
    assert report.count("fl_digits_eps") >= 4 and "ldp-rec/modified-mrc" in report


def test_in_process_rounds_equal_flower_rounds():
    """run_rounds is the Flower apps' code path: same rows (accuracy, bits, ε) as run_flower."""
    import logging

    from ldp_rec.experiments.fl import run_flower

    logging.getLogger("flwr").setLevel(logging.WARNING)
    cfg = TINY.replace(mode="ldp-rec", codec="modified-mrc", epsilon=2.0)
    a, _ = fl_suite.run_rounds(cfg)
    b, _ = run_flower(cfg)
    drop = {"seconds"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [{k: v for k, v in r.items() if k not in drop} for r in b]


# --------------------------------------------------------------------------- comm_table
def test_comm_table_measures_real_payloads():
    kw = dict(epsilon=4.0, dim=500, clients=3)
    mm = comm_table.measure_pair("privunitg", "modified-mrc", **kw)
    assert mm["status"] == "ok" and mm["bits_mean"] == default_bits(4.0) == 10
    assert mm["transcript_epsilon"] == pytest.approx(4.0)
    assert mm["info_bound_bits"] == pytest.approx(4.0 / math.log(2))
    assert mm["saving_vs_float32"] == pytest.approx(16000 / 10)
    plain = comm_table.measure_pair("privunitg", "mrc", **kw)
    assert plain["transcript_epsilon"] == pytest.approx(8.0)
    assert comm_table.measure_pair("privunitg", "none", **kw)["bits_mean"] == 32 * 500
    na = comm_table.measure_pair("gaussian", "mrc", **kw)
    assert na["status"] == "n/a" and "unbounded" in na["reason"]
    md = comm_table.markdown([mm, plain, na])
    assert "| privunitg | modified-mrc | 4 | 10.0, 10 |" in md and "| gaussian | mrc |" in md


# --------------------------------------------------------------------------- cost_scaling
def test_cost_scaling_times_and_slopes():
    for c in cost_scaling.CODECS:
        r = cost_scaling.time_codec(c, epsilon=2.0, dim=40, clients=3, repeats=1)
        assert r["encode_s_per_client"] > 0 and r["decode_s_per_client"] > 0
    assert cost_scaling.index_bits("mrc", 2.0) == 7 and cost_scaling.index_bits("ppr", 2.0) is None
    rows = [{"codec": "mrc", "axis": "epsilon", "epsilon": e, "dim": 500, "encode_s_per_client": 1e-6 * math.exp(e) * 500}
            for e in (4, 5, 6, 7)]
    rows += [{"codec": "mrc", "axis": "dim", "epsilon": 4, "dim": d, "encode_s_per_client": 1e-6 * math.exp(4) * d}
             for d in (100, 1000)]
    sl = cost_scaling.slopes(rows)["mrc"]
    assert sl["log_time_per_nat_eps"] == pytest.approx(1.0) and sl["log_time_per_log_dim"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- run_all
def test_run_all_plan_and_report(tmp_path):
    steps = dict(run_all.plan(tmp_path, full=True))
    assert set(steps) == set(run_all.PARTS)
    assert "--full" in steps["dme"] and "--full" in steps["fl"] and "--full" not in steps["comm"]
    assert steps["fl"][-1] == str(tmp_path / "fl")
    tiny = [("comm", [sys.executable, str(ROOT / "simulations" / "comm_table.py"), "--into", str(tmp_path / "comm"),
                      "--epsilons", "2", "--dims", "64", "--clients", "2"])]
    walls = run_all.run_plan(tiny, tmp_path, echo=False)
    report = run_all.finish(tmp_path, walls, full=False).read_text()
    assert "## Suite outputs" in report and "comm_table.md" in report and "| privunitg | modified-mrc | 2 |" in report
    assert json.loads((tmp_path / "run_all.json").read_text())["wall_seconds"]["comm"] > 0
    with pytest.raises(SystemExit, match="failed"):
        run_all.run_plan([("bad", [sys.executable, "-c", "raise SystemExit(3)"])], tmp_path, echo=False)
