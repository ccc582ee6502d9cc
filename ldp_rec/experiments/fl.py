"""``ldp-rec fl``: federated learning under LDP with REC on Flower's simulation engine.

    ldp-rec fl --dataset digits --clients K --rounds R --mode {none,ldp,ldp-rec} --mechanism M --codec C \
               --epsilon E --seed S --out FILE.json
    ldp-rec fl --config run.toml [--sweep epsilon=2,4,8] [--seeds 0,1,2] [--out DIR]
    ldp-rec fl --resume OUT

``--mode`` takes a comma-separated list (``none,ldp,ldp-rec``) to run several modes in one
invocation; they share the users, data split, seeds and hyperparameters. ``--clients`` is the
number of users (default: every training example its own user); ``--nodes`` the number of Flower
nodes hosting them in cohorts.

Config files and sweeps: :mod:`.runconfig` and :mod:`.sweep`. A run writes ``FILE.json``, its
tables as CSV beside it (``FILE.rounds.csv``, ``FILE.summary.csv``), a plot, Flower's and Ray's
log (``FILE.log``, unless ``--verbose``) and, while it runs, a checkpoint after every round
(``FILE.checkpoint/``, removed once the run completes). Ctrl-C stops after the round in
progress and writes the completed rounds (the result says ``"interrupted": true``); ``--resume``
continues from the last completed round.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from pathlib import Path

import numpy as np

from ..codec.registry import FIXED_CANDIDATE_CODECS
from ..fl.config import MODES, FLConfig, is_import_spec
from .results import write_result


def run_flower(cfg: FLConfig, *, progress=None, poll_interval: float | None = None,
               client_app=None, sink: dict | None = None, server=None,
               verbose: bool = True) -> tuple[list[dict], float]:
    """Run one mode on Flower's simulation engine (Ray, one CPU per virtual node); ``poll_interval``:
    the engine's message polling interval in seconds (None: Flower's 0.1 s; :mod:`ldp_rec.tools.flower_poll`).
    The simulated nodes run under :meth:`NodePolicy.simulation` (the operator runs both ends) unless
    ``client_app`` is given. A given ``server`` (a resumed one, or one with a checkpoint path or a
    stop event in use) runs the rounds after its completed ones; with its ``stop`` set the run ends
    early with the completed rounds. ``verbose`` False: Ray's driver logs at ERROR only."""
    from ..tools.flower_poll import flower_poll_interval
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from flwr.simulation import run_simulation

    from ..fl.client_app import build_client_app
    from ..fl.policy import NodePolicy
    from ..fl.server_app import build_server_app
    from .runlog import ray_init_args

    if client_app is None:
        client_app = build_client_app(NodePolicy.simulation())

    rows: list[dict] = []

    def on_round(row):
        if progress is not None:
            progress(row)

    t0 = time.perf_counter()
    abort = threading.Event()  # set if the engine fails: the ServerApp thread then stops waiting for replies
    with flower_poll_interval(poll_interval), engine_failure(abort):
        run_simulation(
            server_app=build_server_app(cfg, rows, on_round, sink, server, abort),
            client_app=client_app,
            num_supernodes=cfg.nodes,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                             "init_args": {"num_cpus": max(1, min(cfg.nodes, os.cpu_count() or 1)),
                                           "include_dashboard": False, "log_to_driver": False,
                                           **({} if verbose else ray_init_args(verbose=False))}},
        )
    wall = time.perf_counter() - t0
    if server is not None:
        rows = server.rows  # with the rounds of an earlier, interrupted invocation
    if len(rows) != cfg.rounds and not (server is not None and server.stop.is_set()):
        raise RuntimeError(f"the simulation finished {len(rows)} of {cfg.rounds} rounds; see the Flower log above")
    return rows, wall


@contextlib.contextmanager
def engine_failure(abort: threading.Event):
    """Around ``run_simulation``: if it raises (Ray cannot start, the engine crashed), set ``abort`` so
    the ServerApp thread ends instead of waiting for replies that never come, and report the engine's
    failure as a :class:`~ldp_rec.errors.RunFailedError` (one line) naming its root cause."""
    from ..errors import LdpRecError, RunFailedError

    try:
        yield
    except LdpRecError:  # the ServerApp's own (for example every reply failed)
        abort.set()
        raise
    except Exception as exc:
        abort.set()
        root = exc
        while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
            root = root.__cause__ or root.__context__
        raise RunFailedError(f"Flower's simulation engine failed ({type(root).__name__}: "
                             f"{' '.join(str(root).split()) or 'no message'}); the run was stopped") from exc
    except BaseException:
        abort.set()
        raise


def candidate_normals_per_round(cfg: FLConfig) -> int:
    """users × 2^bits × k: the normals of one round's candidates, k the dimension the codec draws them
    in (the model's d, or the projection's k behind a projected codec)."""
    from ..fl.federation import default_bits, load_data, make_fl_model, round_codec
    from ..fl.models import num_params

    data = load_data(cfg)
    codec = round_codec(cfg, num_params(make_fl_model(cfg, data)))
    k = getattr(codec, "inner", codec).dim
    return data.users.num_users * (1 << (default_bits(cfg) or 0)) * k


RAW_DRAW_SAMPLE = 1 << 26  # normals timed per repetition (~0.3 s); the round's total is extrapolated linearly


def raw_candidate_draw_seconds(cfg: FLConfig, *, reps: int = 3, stop=None) -> float | None:
    """Baseline measured in the same run: seconds to draw one round's candidates (users × N × k
    float32 normals, k the dimension the codec draws candidates in: the model's d, or the projection's
    k) with numpy's default generator, the cost any REC encoder has to pay. The time of at most
    :data:`RAW_DRAW_SAMPLE` normals is measured (median of ``reps``) and scaled linearly to the round's
    total, so the baseline costs a second whatever the model size. None if the event ``stop`` is set
    before it is done."""
    total = candidate_normals_per_round(cfg)
    sample = min(total, RAW_DRAW_SAMPLE)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(reps):
        if stop is not None and stop.is_set():
            return None
        t0 = time.perf_counter()
        rng.standard_normal(sample, dtype=np.float32)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * total / sample


def summarise(rows: list[dict]) -> dict:
    """The run's figures from its rows. Round seconds run from a round's planning to its evaluation
    (never the run's start-up); ``user_updates_per_second`` and ``median_round_seconds_after_first``
    also leave out the warm-up rounds (a run's round 1 and a resumed run's first round, ``warm_up``),
    which carry the nodes' start-up (Ray workers, imports, compilation, first allocation)."""
    last = rows[-1]
    steady = [r for r in rows if not r.get("warm_up", r is rows[0])] or rows
    return {
        "final_accuracy": last["accuracy"], "best_accuracy": max(r["accuracy"] for r in rows),
        "payload_bits_per_client": float(np.mean([r["payload_bits_per_client"] for r in rows])),
        "epsilon_round": last["epsilon_round"], "epsilon_total_basic": last["epsilon_total"],
        "epsilon_total_pld": last["epsilon_total_pld"], "epsilon_user_max": last.get("epsilon_user_max"),
        "epsilon_user_median": last.get("epsilon_user_median"), "epsilon_user_mean": last.get("epsilon_user_mean"),
        "users_retired": last.get("users_retired", 0),
        "cohort_size_mean": float(np.mean([r.get("cohort_size", r["clients_ok"]) for r in rows])),
        "clients_failed": int(sum(r["clients_failed"] for r in rows)),
        "clients_refused": int(sum(r.get("clients_refused", 0) for r in rows)),
        "median_round_seconds": float(np.median([r["seconds"] for r in rows])),
        "first_round_seconds": float(rows[0]["seconds"]),
        "median_round_seconds_after_first": float(np.median([r["seconds"] for r in steady])),
        "user_updates_per_second": float(np.sum([r["clients_ok"] for r in steady]) / np.sum([r["seconds"] for r in steady])),
    }


def plot_runs(runs: dict[str, list[dict]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for mode, rows in runs.items():
        acc = [r["accuracy"] for r in rows]
        rnd = [r["round"] for r in rows]
        bits = np.cumsum([r["payload_bits_per_client"] for r in rows])
        axes[0].plot(rnd, acc, label=mode)
        axes[1].semilogx(np.maximum(bits, 1), acc, label=mode)
        eps = [r.get("epsilon_user_max") for r in rows]
        if all(e is not None and np.isfinite(e) for e in eps):
            axes[2].plot(eps, acc, label=mode)
    axes[0].set(xlabel="round", ylabel="test accuracy")
    axes[1].set(xlabel="cumulative payload bits per user", ylabel="test accuracy")
    axes[2].set(xlabel="per-user epsilon spent (max over users, delta = 1e-5)", ylabel="test accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One option per :class:`FLConfig` field (kebab-case, its type and default, help from
    :data:`~ldp_rec.fl.config.HELP`), plus ``--mode`` as a comma-separated list and the runner's own."""
    import dataclasses

    from ..fl.config import HELP, SAMPLINGS

    d = FLConfig()
    from ..fl.config import PARTITIONS

    # --dataset and --model also take your own 'package.module:callable': FLConfig checks the names
    choices = {"partition": list(PARTITIONS), "sampling": list(SAMPLINGS)}
    for f in dataclasses.fields(FLConfig):
        if f.name in ("mode", "fault"):
            continue
        typ = {"int": int, "float": float, "str": str}[f.type]
        default = None if f.name == "partition" else getattr(d, f.name)
        p.add_argument("--" + f.name.replace("_", "-"), type=typ, default=default, choices=choices.get(f.name),
                       help=HELP[f.name])
    p.add_argument("--mode", default="none,ldp,ldp-rec", help=f"comma-separated subset of {MODES}")
    p.add_argument("--poll-interval", type=float, default=0.01,
                   help="Flower simulation engine's message polling interval in s (Flower's own: 0.1)")
    p.add_argument("--out", default=None, help="result JSON (default: results/fl-<time>/result.json); "
                   "a sweep's folder")
    p.add_argument("--force", action="store_true")
    p.add_argument("--verbose", action="store_true", help="Flower's and Ray's logs on the console, not in OUT.log")
    from .runconfig import add_config_arguments

    add_config_arguments(p, resume=True)


def config_from_args(args, mode: str) -> FLConfig:
    """FLConfig from the command line. ``--clients`` 0 or equal to the number of training examples
    means every example its own user; another count splits the examples IID (or ``--partition``)."""
    import dataclasses

    from ..fl.federation import load_data

    common = {f.name: getattr(args, f.name) for f in dataclasses.fields(FLConfig)
              if f.name not in ("mode", "fault", "clients", "partition")}
    common["mode"] = mode
    part = args.partition
    if args.dataset == "synthetic" and part is None:  # Synthetic(α, β) comes with its own device split
        return FLConfig(**common, partition="iid", clients=args.clients)
    if part is None and args.dataset == "femnist":  # one user per writer (LEAF)
        return FLConfig(**common, partition="natural", clients=0)
    if part is None and is_import_spec(args.dataset):  # your own loader: its users, if it gives them
        from ..fl.federation import load_custom_data

        if load_custom_data(args.dataset, seed=args.seed, clients=args.clients).users is not None:
            return FLConfig(**common, partition="natural", clients=args.clients)
    if part is None or part == "per_example":
        cfg = FLConfig(**common, partition="per_example", clients=0)
        n_examples = load_data(cfg).users.num_users
        if args.clients in (0, n_examples) or part == "per_example":
            return cfg
        part = "iid"
    return FLConfig(**common, partition=part, clients=args.clients)


def fresh_result_path(base="results", name: str = "fl") -> Path:
    """``base/name-YYYYmmdd-HHMMSS[-k]/result.json`` in a folder that does not exist yet; nothing is
    created (the result writer makes the folder once there is a result)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        d = Path(base) / (f"{name}-{stamp}" + (f"-{k}" if k else ""))
        if not d.exists():
            return d / "result.json"
    raise FileExistsError(f"could not find a fresh run folder under {base}")


def validate(args) -> tuple[list[str], Path, dict[str, FLConfig]]:
    """Everything a run needs, checked in this process before Ray or Flower start and before any folder
    is made: the modes, the output path, every mode's config (names, ranges, the model and data set,
    your own included), memory, and the codec built at the model's real dimension (pairs, budgets).
    Returns ``(modes, out, configs)``; raises an :class:`~ldp_rec.errors.LdpRecError` (one line)."""
    from .._validation import check_output_path
    from ..errors import ParameterError
    from ..fl.federation import check_resources
    from ..fl.server import FederationServer

    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        raise ParameterError(f"--mode {args.mode!r}: give a comma-separated subset of {MODES}")
    if args.poll_interval is not None and not 0 < args.poll_interval <= 1:
        raise ParameterError(f"--poll-interval must be in (0, 1] seconds, got {args.poll_interval}")
    out = check_output_path(args.out if args.out else fresh_result_path(), force=args.force)
    cfgs = {}
    for mode in modes:
        cfg = cfgs[mode] = config_from_args(args, mode)
        check_resources(cfg)
        FederationServer(cfg)  # the codec at the model's dimension; refuses a budget no participation fits
    return modes, out, cfgs


def run(args) -> int:
    from .sweep import main

    return main(args, command="fl", add_arguments=add_arguments, run_one=run_one, check=validate)


def _server(cfg: FLConfig, checkpoint: Path, resume: bool):
    from ..fl import checkpoint as ckpt
    from ..fl.server import FederationServer

    if resume and ckpt.exists(checkpoint):
        server = FederationServer.resume(cfg, checkpoint)
    else:
        server = FederationServer(cfg)  # refuses, before any work, a per-user budget no participation fits
    server.checkpoint = checkpoint
    return server


def run_one(args) -> int:
    """One ``ldp-rec fl`` run (all its modes) into ``args.out``; 130 if interrupted (Ctrl-C)."""
    import shutil

    from tqdm import tqdm

    from .interrupt import StopOnInterrupt
    from .runlog import quiet_logs, say
    from .sweep import checkpoint_dir, save_invocation

    resume = bool(getattr(args, "resume", None))
    if resume:  # the interrupted run's own result file is replaced
        args = argparse.Namespace(**{**vars(args), "force": True})
    modes, out, _ = validate(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckdir = checkpoint_dir(out)
    save_invocation(ckdir, {**vars(args), "out": str(out), "resume": None})
    log_file = out.with_suffix(".log")
    runs, summary, configs, privacy, done = {}, {}, {}, {}, {}
    stopper = StopOnInterrupt("finishing the round in progress, then writing the completed rounds")
    servers = {mode: _server(config_from_args(args, mode), ckdir / mode, resume) for mode in modes}
    with stopper, quiet_logs(log_file, verbose=args.verbose) as logged:
        if logged:
            say(f"Flower and Ray logs: {logged}")
        for mode, server in servers.items():
            cfg = server.cfg
            server.stop = stopper.event
            done[mode] = server.rounds_done
            configs[mode] = cfg.to_record()
            if server.rounds_done < cfg.rounds and not stopper.requested:
                bar = tqdm(total=cfg.rounds, initial=server.rounds_done, desc=f"{mode:8s}", unit="round")

                def progress(row, bar=bar):
                    eps = row.get("epsilon_user_max")
                    bar.set_postfix(acc=f"{row['accuracy']:.3f}", eps="-" if eps is None else f"{eps:.1f}")
                    bar.update(1)

                sink: dict = {}
                try:
                    rows, wall = run_flower(cfg, progress=progress, poll_interval=args.poll_interval, sink=sink,
                                            server=server, verbose=args.verbose)
                except RuntimeError as exc:
                    if not stopper.requested:
                        raise RuntimeError(f"{exc}" + (f" (log: {logged})" if logged else "")) from exc
                    rows, wall = server.rows, float("nan")
                finally:
                    bar.close()
            else:
                rows, wall = server.rows, 0.0
            privacy[mode] = server.final_record()
            if rows:
                runs[mode] = rows
                summary[mode] = {**summarise(rows), "wall_seconds": wall, "resumed_from_round": done[mode]}
            if stopper.requested:
                break
        interrupted = any(len(runs.get(m, [])) < servers[m].cfg.rounds for m in modes)
        if summary and not interrupted and "ldp" in summary and "ldp-rec" in summary and \
                servers["ldp-rec"].cfg.codec_name in FIXED_CANDIDATE_CODECS:
            rcfg = servers["ldp-rec"].cfg
            say(f"measuring the raw candidate-draw timing baseline ({rcfg.codec}: every user's 2^bits candidate "
                "normals, timed on up to 2^26 and scaled; Ctrl-C skips it)...")
            raw = raw_candidate_draw_seconds(rcfg, stop=stopper.event)
            if raw is not None:
                t_ldp, t_rec = summary["ldp"]["median_round_seconds"], summary["ldp-rec"]["median_round_seconds"]
                summary["ldp-rec"]["raw_candidate_draw_seconds"] = raw
                summary["ldp-rec"]["round_time_ratio"] = t_rec / (t_ldp + raw)  # goal: <= 1.5
                summary["ldp-rec"]["bits_saved_factor"] = (summary["ldp"]["payload_bits_per_client"]
                                                           / summary["ldp-rec"]["payload_bits_per_client"])
    if not runs:
        say("interrupted before the first round completed: nothing to write")
        return 130
    title = f"{args.dataset}, eps={args.epsilon}/round, {args.mechanism}+{args.codec}, seed={args.seed}"
    png = plot_runs(runs, out.with_suffix(".png"), title)
    coins = config_from_args(args, modes[0]).private_coins
    result = {"config": {"command": "fl", **configs[modes[0]], "modes": modes, "configs": configs,
                         "engine": {"poll_interval_s": args.poll_interval}},
              "private_coins": coins,
              "privacy_claim": ("transcript epsilon against a server that knows the run seed, configs and payloads"
                                if args.private_seed < 0 else
                                "none against the server (it could recompute the seeded private coins); the "
                                "epsilon columns hold only against an observer who does not know the private seed"),
              "interrupted": interrupted,
              "rounds_completed": {m: len(r) for m, r in runs.items()},
              "summary": summary, "privacy": privacy, "runs": runs, "rounds": runs[list(runs)[-1]], "plot": str(png)}
    tables = {"rounds": [{"mode": m, **r} for m, rows in runs.items() for r in rows],
              "summary": [{"mode": m, **s} for m, s in summary.items()]}
    write_result(out, result, force=True, tables=tables)
    print(f"\n{'mode':8s} {'acc':>6s} {'bits/user/round':>16s} {'eps/round':>9s} "
          f"{'user eps max / median (PLD)':>28s} {'s/round':>8s}")
    for mode, s in summary.items():
        er = "-" if s["epsilon_round"] is None or not np.isfinite(s["epsilon_round"]) else f"{s['epsilon_round']:.3g}"
        eu = "-" if s["epsilon_user_max"] is None else f"{s['epsilon_user_max']:.4g} / {s['epsilon_user_median']:.4g}"
        print(f"{mode:8s} {s['final_accuracy']:6.3f} {s['payload_bits_per_client']:16.1f} {er:>9s} {eu:>28s} "
              f"{s['median_round_seconds']:8.2f}")
    rec = summary.get("ldp-rec", {})
    if "round_time_ratio" in rec:
        print(f"ldp-rec round time / (ldp round time + raw candidate draw {rec['raw_candidate_draw_seconds']:.2f} s) = "
              f"{rec['round_time_ratio']:.2f}; payload bits saved vs ldp: {rec['bits_saved_factor']:.0f}x")
    for mode, s in summary.items():
        print(f"{mode:8s} user updates per second (without warm-up rounds): {s['user_updates_per_second']:.0f}")
    print(f"private coins: {coins}")
    print(f"wrote {out} (+ .rounds.csv, .summary.csv) and {png}")
    if interrupted:
        say(f"interrupted: wrote the completed rounds {result['rounds_completed']}; continue with: "
            f"ldp-rec fl --resume {out}")
        return 130
    shutil.rmtree(ckdir, ignore_errors=True)
    return 0
