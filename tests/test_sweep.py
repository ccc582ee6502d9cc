"""Config files, sweeps, CSV tables and the sweep report (issue 15 item 3)."""

import argparse
import csv
import json
import math

import pytest

from ldp_rec import cli
from ldp_rec.errors import ParameterError
from ldp_rec.experiments import dme, fl, runconfig
from ldp_rec.experiments.results import write_result
from ldp_rec.experiments.sweep_summary import mean_ci, summarise_sweep


def _strict(path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _resolve(module, argv, tmp_path=None, toml=None):
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    if toml is not None:
        (tmp_path / "run.toml").write_text(toml)
        argv = ["--config", str(tmp_path / "run.toml"), *argv]
    return runconfig.resolve(p.parse_args(argv), runconfig.option_table(p))


def test_config_file_keys_types_and_precedence(tmp_path):
    toml = 'epsilon = 8\nserver-lr = 2\nlocal_epochs = 3\nmode = ["ldp", "ldp-rec"]\nrounds = 7\n'
    args, axes = _resolve(fl, ["--rounds", "50", "--clip", "0.25"], tmp_path, toml)
    assert axes == {}
    assert args.epsilon == 8.0 and isinstance(args.epsilon, float)  # the file's, as the option's type
    assert args.server_lr == 2.0 and args.local_epochs == 3 and args.mode == "ldp,ldp-rec"
    assert args.rounds == 50  # the command line wins, even when it repeats the default
    assert args.clip == 0.25 and args.seed == 0  # command line; default


@pytest.mark.parametrize("toml, match", [
    ("epsilom = 4\n", r"unknown key 'epsilom' \(did you mean 'epsilon'\?\)"),
    ("rounds = 2.5\n", "--rounds takes a int"),
    ("sampling = 'sometimes'\n", "--sampling must be one of"),
    ("[sweep]\nfoo = [1, 2]\n", r"\[sweep\]: unknown key 'foo'"),
    ("epsilon = [2, 4]\n", r"lists go in \[sweep\]"),
    ("rounds = \n", "not valid TOML"),
])
def test_config_file_errors_are_one_line(tmp_path, toml, match):
    with pytest.raises(ParameterError, match=match) as exc:
        _resolve(fl, [], tmp_path, toml)
    assert "\n" not in str(exc.value)


def test_unknown_key_through_the_command_is_exit_2_and_one_line(tmp_path, capsys):
    (tmp_path / "run.toml").write_text("mechanism = 'privunitg'\ncodec = 'none'\nepsilon = 1\ntrails = 3\n")
    assert cli.main(["dme", "--config", str(tmp_path / "run.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ldp-rec: error:") and "unknown key 'trails'" in err and "\n" not in err


def test_pyproject_run_config_is_read(tmp_path):
    toml = '[tool.flwr.app.config]\nrounds = 3\nprivate-seed = 0\n[tool.other]\nx = 1\n'
    args, _ = _resolve(fl, [], tmp_path, toml)
    assert args.rounds == 3 and args.private_seed == 0


def test_grid_expansion_and_cli_sweeps_override_the_file(tmp_path):
    toml = "epsilon = 4\n[sweep]\nepsilon = [2, 4, 8]\nseeds = [0, 1]\nclip = [0.5, 1.0]\n"
    args, axes = _resolve(fl, ["--sweep", "clip=0.25", "--seeds", "5,6,7"], tmp_path, toml)
    assert axes == {"epsilon": [2.0, 4.0, 8.0], "clip": [0.25], "seed": [5, 6, 7]}
    points = runconfig.expand(args, axes)
    assert len(points) == 9
    assert [p.name for p in points[:4]] == ["epsilon=2_clip=0.25_seed=5", "epsilon=2_clip=0.25_seed=6",
                                            "epsilon=2_clip=0.25_seed=7", "epsilon=4_clip=0.25_seed=5"]
    assert points[4].args.epsilon == 4.0 and points[4].args.seed == 6 and points[4].args.clip == 0.25
    args, axes = _resolve(fl, ["--epsilon", "1"], tmp_path, toml)  # a plain option fixes a swept key
    assert args.epsilon == 1.0 and "epsilon" not in axes
    with pytest.raises(ParameterError, match="expected KEY=V1,V2"):
        _resolve(fl, ["--sweep", "epsilon"])


def test_mean_ci_is_the_student_t_interval():
    m, h, n = mean_ci([0.80, 0.90, 0.85])
    sd = math.sqrt(((0.80 - 0.85) ** 2 + (0.90 - 0.85) ** 2 + 0) / 2)
    assert n == 3 and m == pytest.approx(0.85)
    assert h == pytest.approx(4.302652729911275 * sd / math.sqrt(3))  # t_{0.975, 2}
    assert mean_ci([0.5]) == (0.5, None, 1)
    assert mean_ci([None, float("inf")]) == (None, None, 0)


def _fake_fl_sweep(folder):
    acc = {(2.0, 0): 0.70, (2.0, 1): 0.74, (2.0, 2): 0.78, (8.0, 0): 0.90, (8.0, 1): 0.92, (8.0, 2): None}
    points = []
    for (eps, seed), a in acc.items():
        name = f"epsilon={eps:g}_seed={seed}"
        points.append({"name": name, "params": {"epsilon": eps, "seed": seed}, "result": f"{name}/result.json",
                       "status": "done" if a is not None else "interrupted"})
        if a is not None:
            s = {"final_accuracy": a, "payload_bits_per_client": 10.0 + seed, "epsilon_user_max": eps * 3,
                 "median_round_seconds": 9.0, "median_round_seconds_after_first": 1.0 + seed}
            write_result(folder / name / "result.json", {"config": {"seed": seed}, "runs": {},
                                                         "summary": {"ldp-rec": s, "none": {**s, "epsilon_user_max": math.inf}}})
    write_result(folder / "manifest.json", {"command": "fl", "axes": {"epsilon": [2.0, 8.0], "seed": [0, 1, 2]},
                                            "points": points})


def test_sweep_summary_numbers_csv_and_report(tmp_path):
    _fake_fl_sweep(tmp_path)
    _, rows = summarise_sweep(tmp_path)
    by = {(r["epsilon"], r["mode"]): r for r in rows}
    r = by[(2.0, "ldp-rec")]
    assert r["seeds"] == 3 and r["seeds_missing"] == 0
    assert r["final_accuracy_mean"] == pytest.approx(0.74)
    assert r["final_accuracy_ci95"] == pytest.approx(4.302652729911275 * 0.04 / math.sqrt(3))
    assert r["payload_bits_per_client_mean"] == pytest.approx(11.0) and r["round_seconds_mean"] == pytest.approx(2.0)
    assert r["epsilon_user_max_mean"] == 6.0 and r["epsilon_user_max_ci95"] == 0.0
    r8 = by[(8.0, "ldp-rec")]  # the interrupted seed is counted as missing, never averaged
    assert r8["seeds"] == 2 and r8["seeds_missing"] == 1
    assert r8["final_accuracy_ci95"] == pytest.approx(12.706204736174703 * math.sqrt(0.0002) / math.sqrt(2))
    assert by[(2.0, "none")]["epsilon_user_max_mean"] is None  # a non-private mode's ε: null, not inf
    assert cli.main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Sweep summary" in md and "0.74 ± 0.09937" in md and "(1 missing)" in md
    table = _csv(tmp_path / "report" / "sweep.csv")
    assert len(table) == 4 and float(table[0]["final_accuracy_mean"]) == pytest.approx(0.74)
    assert _strict(tmp_path / "report" / "sweep.json")["summary"][0]["epsilon"] == 2.0
    none_row = [t for t in table if t["mode"] == "none"][0]
    assert none_row["epsilon_user_max_mean"] == ""  # null as an empty cell


DME = "mechanism = 'privunitg'\ncodec = 'modified-mrc'\nepsilon = 2\ndim = 6\nclients = 16\ntrials = 2\n"


def test_dme_sweep_end_to_end_then_resume(tmp_path, capsys):
    (tmp_path / "run.toml").write_text(DME + "[sweep]\nseed = [0, 1]\n")
    out = tmp_path / "sweep"
    assert cli.main(["dme", "--config", str(tmp_path / "run.toml"), "--sweep", "epsilon=1,2", "--out", str(out)]) == 0
    manifest = _strict(out / "manifest.json")
    assert [p["name"] for p in manifest["points"]] == ["epsilon=1_seed=0", "epsilon=1_seed=1",
                                                       "epsilon=2_seed=0", "epsilon=2_seed=1"]
    assert all(p["status"] == "done" for p in manifest["points"])
    assert [r["status"] for r in _csv(out / "manifest.points.csv")] == ["done"] * 4
    res = _strict(out / "epsilon=2_seed=1" / "result.json")
    assert res["config"]["epsilon"] == 2.0 and res["config"]["seed"] == 1 and res["config"]["dim"] == 6
    row = _csv(out / "epsilon=2_seed=1" / "result.table.csv")[0]
    assert float(row["mse"]) == pytest.approx(res["mse"]) and row["codec"] == "modified-mrc"
    # a sweep folder is not overwritten; --resume runs only the points not done
    assert cli.main(["dme", "--config", str(tmp_path / "run.toml"), "--out", str(out)]) == 2
    manifest["points"][1]["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(manifest))
    stamp = (out / "epsilon=1_seed=0" / "result.json").stat().st_mtime_ns
    capsys.readouterr()
    assert cli.main(["dme", "--resume", str(out)]) == 0
    assert "[1/1] epsilon=1_seed=1" in capsys.readouterr().err
    assert (out / "epsilon=1_seed=0" / "result.json").stat().st_mtime_ns == stamp
    assert all(p["status"] == "done" for p in _strict(out / "manifest.json")["points"])
    assert cli.main(["dme", "--resume", str(out), "--epsilon", "3"]) == 2  # a resume takes the run's settings
    assert cli.main(["report", str(out)]) == 0
    assert len(_csv(out / "report" / "sweep.csv")) == 2


def test_a_bad_point_is_refused_before_any_point_runs(tmp_path):
    (tmp_path / "run.toml").write_text(DME.replace("epsilon = 2\n", ""))
    out = tmp_path / "sweep"
    assert cli.main(["dme", "--config", str(tmp_path / "run.toml"), "--sweep", "epsilon=1,2", "--out", str(out)]) == 0
    assert cli.main(["dme", "--sweep", "epsilon=1,2", "--out", str(tmp_path / "b")]) == 2  # no mechanism
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("module, name", [(fl, "fl"), (dme, "dme")])
def test_example_run_configs_parse(module, name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "simulations" / f"{name}_run_example.toml"
    args, axes = _resolve(module, ["--config", str(path)])
    assert len(runconfig.expand(args, axes)) == 9 and args.out.startswith("results/")
    with pytest.raises(ParameterError, match=r"unknown table \[default\]"):  # the suites' grid files are not run configs
        _resolve(module, ["--config", str(path.with_name(f"{name}_default.toml"))])


def test_quiet_logs_go_to_the_file_and_are_restored(tmp_path, capsys):
    import logging
    import warnings

    from flwr.supercore.logger import console_handler

    from ldp_rec.experiments.runlog import quiet_logs

    level, handlers = console_handler.level, list(logging.getLogger("flwr").handlers)
    with quiet_logs(tmp_path / "run.log") as path:
        logging.getLogger("flwr").info("flower says hello")
        logging.getLogger("ldp_rec.fl").warning("node 3 failed")
        warnings.warn("ray tip", FutureWarning)
    text = path.read_text()
    assert "flower says hello" in text and "node 3 failed" in text and "ray tip" in text
    captured = capsys.readouterr()
    assert "hello" not in captured.out + captured.err and "node 3" not in captured.out + captured.err
    assert console_handler.level == level and logging.getLogger("flwr").handlers == handlers
    with quiet_logs(tmp_path / "other.log", verbose=True) as path:
        assert path is None
    assert not (tmp_path / "other.log").exists()


def test_every_table_of_a_result_is_csv_beside_it(tmp_path):
    rows = [{"eps": 1.0, "mse": math.inf, "ids": [1, 2]}, {"eps": 2.0, "mse": 0.5, "note": "x"}]
    write_result(tmp_path / "r.json", {"config": {}, "rows": rows, "plain": [1, 2]}, tables={"extra": rows[:1]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.extra.csv", "r.json", "r.rows.csv"]
    table = _csv(tmp_path / "r.rows.csv")
    assert list(table[0]) == ["eps", "mse", "ids", "note"]
    assert table[0]["mse"] == "" and json.loads(table[0]["ids"]) == [1, 2] and table[1]["note"] == "x"
    assert _strict(tmp_path / "r.json")["rows"][0]["mse"] is None
