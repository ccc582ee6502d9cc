"""``ldp-rec fl``: federated learning under LDP with REC on Flower's simulation engine.

    ldp-rec fl --dataset digits --clients K --rounds R --mode {none,ldp,ldp-rec} --mechanism M --codec C \
               --epsilon E --seed S --out FILE.json

``--mode`` takes a comma-separated list (``none,ldp,ldp-rec``) to run several modes in one
invocation; they share the users, data split, seeds and hyperparameters. ``--clients`` is the
number of users (default: every training example its own user); ``--nodes`` the number of Flower
nodes hosting them in cohorts.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..codec.registry import FIXED_CANDIDATE_CODECS
from ..fl.config import MODES, FLConfig
from .results import write_result


def run_flower(cfg: FLConfig, *, progress=None, poll_interval: float | None = None,
               client_app=None, sink: dict | None = None) -> tuple[list[dict], float]:
    """Run one mode on Flower's simulation engine (Ray, one CPU per virtual node); ``poll_interval``:
    the engine's message polling interval in seconds (None: Flower's 0.1 s; :mod:`ldp_rec.tools.flower_poll`).
    The simulated nodes run under :meth:`NodePolicy.simulation` (the operator runs both ends) unless
    ``client_app`` is given."""
    from ..tools.flower_poll import flower_poll_interval
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from flwr.simulation import run_simulation

    from ..fl.client_app import build_client_app
    from ..fl.policy import NodePolicy
    from ..fl.server_app import build_server_app

    if client_app is None:
        client_app = build_client_app(NodePolicy.simulation())

    rows: list[dict] = []

    def on_round(row):
        if progress is not None:
            progress(row)

    t0 = time.perf_counter()
    with flower_poll_interval(poll_interval):
        run_simulation(
            server_app=build_server_app(cfg, rows, on_round, sink),
            client_app=client_app,
            num_supernodes=cfg.nodes,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                             "init_args": {"num_cpus": max(1, min(cfg.nodes, os.cpu_count() or 1)),
                                           "include_dashboard": False, "log_to_driver": False}},
        )
    wall = time.perf_counter() - t0
    if len(rows) != cfg.rounds:
        raise RuntimeError(f"the simulation finished {len(rows)} of {cfg.rounds} rounds; see the Flower log above")
    return rows, wall


def raw_candidate_draw_seconds(cfg: FLConfig, *, reps: int = 3) -> float:
    """Baseline measured in the same run: seconds to draw one round's candidates (users × N × d
    float32 normals) with numpy's default generator, the cost any REC encoder has to pay."""
    from ..fl.federation import default_bits, load_data, make_fl_model
    from ..fl.models import num_params

    data = load_data(cfg)
    d = num_params(make_fl_model(cfg, data))
    bits = default_bits(cfg) or 0
    total = data.users.num_users * (1 << bits) * d
    rng = np.random.default_rng(0)
    chunk = 1 << 24
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        left = total
        while left > 0:
            rng.standard_normal(min(chunk, left), dtype=np.float32)
            left -= chunk
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def summarise(rows: list[dict]) -> dict:
    last = rows[-1]
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
        "user_updates_per_second": float(np.sum([r["clients_ok"] for r in rows]) / np.sum([r["seconds"] for r in rows])),
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
    choices = {"dataset": ["digits", "synthetic", "mnist", "cifar10", "femnist"], "model": ["logreg", "mlp", "cnn"],
               "partition": ["per_example", "iid", "dirichlet"], "sampling": list(SAMPLINGS)}
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
    p.add_argument("--out", default=None, help="result JSON (default: results/fl-<time>/result.json)")
    p.add_argument("--force", action="store_true")


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
    if part is None or part == "per_example":
        cfg = FLConfig(**common, partition="per_example", clients=0)
        n_examples = load_data(cfg).users.num_users
        if args.clients in (0, n_examples) or part == "per_example":
            return cfg
        part = "iid"
    return FLConfig(**common, partition=part, clients=args.clients)


def run(args) -> int:
    from tqdm import tqdm

    from .results import run_dir

    logging.getLogger("flwr").setLevel(logging.WARNING)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}; choose from {MODES}")
    out = Path(args.out) if args.out else run_dir("results", "fl") / "result.json"
    if out.exists() and not args.force:
        raise SystemExit(f"{out} exists; choose another --out or pass --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    runs, summary, configs, walls, privacy = {}, {}, {}, {}, {}
    for mode in modes:
        cfg = config_from_args(args, mode)
        from ..fl.server import FederationServer

        FederationServer(cfg)  # refuses, before any work, a per-user budget no participation fits
        bar = tqdm(total=cfg.rounds, desc=f"{mode:8s}", unit="round")

        def progress(row, bar=bar):
            eps = row.get("epsilon_user_max")
            bar.set_postfix(acc=f"{row['accuracy']:.3f}", eps="-" if eps is None else f"{eps:.1f}")
            bar.update(1)

        sink: dict = {}
        rows, wall = run_flower(cfg, progress=progress, poll_interval=args.poll_interval, sink=sink)
        privacy[mode] = sink.get("privacy")
        bar.close()
        runs[mode], configs[mode], walls[mode] = rows, cfg.to_record(), wall
        summary[mode] = {**summarise(rows), "wall_seconds": wall}
    if "ldp" in summary and "ldp-rec" in summary and config_from_args(args, "ldp-rec").codec_name in FIXED_CANDIDATE_CODECS:
        raw = raw_candidate_draw_seconds(config_from_args(args, "ldp-rec"))
        t_ldp, t_rec = summary["ldp"]["median_round_seconds"], summary["ldp-rec"]["median_round_seconds"]
        summary["ldp-rec"]["raw_candidate_draw_seconds"] = raw
        summary["ldp-rec"]["round_time_ratio"] = t_rec / (t_ldp + raw)  # goal: <= 1.5
        summary["ldp-rec"]["bits_saved_factor"] = summary["ldp"]["payload_bits_per_client"] / summary["ldp-rec"]["payload_bits_per_client"]
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
              "summary": summary, "privacy": privacy, "runs": runs, "rounds": runs[modes[-1]], "plot": str(png)}
    write_result(out, result, force=args.force)
    print(f"\n{'mode':8s} {'acc':>6s} {'bits/user/round':>16s} {'eps/round':>9s} "
          f"{'user eps max / median (PLD)':>28s} {'s/round':>8s}")
    for mode, s in summary.items():
        er = "-" if s["epsilon_round"] is None else f"{s['epsilon_round']:.3g}"
        eu = "-" if s["epsilon_user_max"] is None else f"{s['epsilon_user_max']:.4g} / {s['epsilon_user_median']:.4g}"
        print(f"{mode:8s} {s['final_accuracy']:6.3f} {s['payload_bits_per_client']:16.1f} {er:>9s} {eu:>28s} "
              f"{s['median_round_seconds']:8.2f}")
    rec = summary.get("ldp-rec", {})
    if "round_time_ratio" in rec:
        print(f"ldp-rec round time / (ldp round time + raw candidate draw {rec['raw_candidate_draw_seconds']:.2f} s) = "
              f"{rec['round_time_ratio']:.2f}; payload bits saved vs ldp: {rec['bits_saved_factor']:.0f}x")
    for mode, s in summary.items():
        print(f"{mode:8s} user updates per second: {s['user_updates_per_second']:.0f}")
    print(f"private coins: {coins}")
    print(f"wrote {out} and {png}")
    return 0
