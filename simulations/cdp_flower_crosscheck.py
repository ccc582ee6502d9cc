"""ldp-rec's central-DP mode ``cdp`` against Flower's ``DifferentialPrivacyServerSideFixedClipping``.

    python simulations/cdp_flower_crosscheck.py [--seeds 5] [--users 20] [--rounds 30] [--sample-rate 0.5]
                                                [--clip 0.5] [--sigmas 0,2] [--out F] [--force]

Issue 12, item 3: "same σ and clip give the same accuracy within seed noise". A benchmark, not a test.
The defaults (5 seeds, σ ∈ {0, 2}, and the exact check) took 756 s on the shared 2-core machine at load
average 7–15 (each Flower run ~30–70 s, most of it Ray and actor start-up) and wrote
``simulations/figures/cdp_flower_crosscheck.json``.

The federation (identical in every arm, for each seed s)
--------------------------------------------------------
Digits (sklearn, split and IID partition seeded by s) cut into ``--users`` = U users of ~1437/U
examples each; logistic regression (d = 650) initialised by :func:`ldp_rec.fl.federation.make_fl_model`
with seed s; the local update of user k is one full-batch gradient step at local lr 1
(``Δ_k = −∇L_k(θ)``, :func:`ldp_rec.fl.task.local_updates`, FedSGD); per-user clip C; each round
a fraction q of the users takes part; the server moves by the noisy mean clipped update with server
learning rate 1 and no momentum (Flower's FedAvg has no server learning rate), for ``--rounds``
rounds; accuracy of the global model on the held-out digits after every round.

The arms
--------
* ``ldp-rec cdp, poisson`` (the mode as the issue specifies it): :func:`ldp_rec.fl.server.run_in_process`
  with ``FLConfig(mode="cdp", sampling="poisson", sample_rate=q, noise_multiplier=σ, clip=C,
  server_lr=1)``. Each user is in the cohort independently with probability q (cohort size
  Binomial(U, q)); the client clips its update to C; the server computes
  ``(Σ_k clip(Δ_k) + N(0, σ²C² I)) / (q·U)`` (fixed denominator, McMahan et al. 2018, references.md §7)
  and ``θ ← θ + that``.
* ``ldp-rec cdp, fixed``: the same with ``sampling="fixed", cohort_size=q·U``: a uniform cohort of
  exactly q·U users, so the fixed denominator q·U is also the realised cohort size. This is the ldp-rec
  run that matches Flower's arm in distribution (same sampling, same scaling, same noise law).
* ``flower dp-fixed-clipping``: Flower 1.42's Message-API ``FedAvg(fraction_train=q)`` wrapped in
  ``DifferentialPrivacyServerSideFixedClipping(strategy, noise_multiplier=σ, clipping_norm=C,
  num_sampled_clients=q·U)`` on Flower's simulation engine (``run_simulation``, Ray, 2 CPUs,
  one CPU per virtual node), with U virtual SuperNodes: node ``partition-id`` k *is* ldp-rec's user
  k (the same rows of the same split), so Flower's per-node clipping is per-user clipping. The ClientApp
  trains with ldp-rec's own functions and replies with the whole updated model
  ``θ + Δ_k`` (``ArrayRecord`` of the torch state dict) and a weight of 1 under the key
  ``weight`` (``FedAvg(weighted_by_key="weight")``: an unweighted mean, as in ldp-rec's cdp mode).

``--sigmas`` runs every arm at each σ; σ = 0 is a no-noise control of the clipping, sampling and
averaging path (the ldp-rec arms run mode ``none`` there: ``cdp`` reads ``noise_multiplier=0`` as
"calibrate σ to the ε target", and ``none`` divides by the realised cohort instead of q·U).

Unless ``--no-exact-check``, one more pair runs with q = 1 and σ = 0 (seed 0): every user every round and
no noise, so nothing random is left and the two must agree round by round up to float rounding
(:func:`exact_check`); this pins the mapping (same users, same init, same clip, same mean, same step).

Reading the result: at σ > 0 one run's accuracy depends strongly on its noise draws. Rerunning ldp-rec's
fixed arm with 6 different noise seeds on one data seed gave a run-to-run sd of 0.013–0.023 for the
mean accuracy of the last 5 rounds (σ = 2, data seeds 0 and 3), so the difference of two independent runs
has sd ≈ 0.025, and the "se" of a few paired differences that the script prints is itself very noisy.
The two ldp-rec arms share their server's noise stream (same ``private_seed``), so they are closer to
each other than either is to Flower.

How Flower's wrapper computes the round (read from flwr/serverapp/strategy/dp_fixed_clipping.py and
flwr/supercore/differential_privacy.py, flwr 1.42.0)
-------------------------------------------------------------------------------------------------
1. FedAvg samples ``int(q·U)`` nodes uniformly without replacement with Python's global ``random``;
2. for every reply the wrapper forms ``Δ_k = θ_k − θ`` per array (numpy, float32) and scales all
   arrays by ``min(1, C/‖Δ_k‖₂)`` (norm over all arrays together), then sets ``θ_k ← θ + clipped Δ_k``;
3. FedAvg averages the ``θ_k`` with weights ``weight / Σ weight`` over the *replies received*;
4. the wrapper adds ``N(0, (σ·C / num_sampled_clients)²)`` to every coordinate of that average, in
   float32, from numpy's global generator (``np.random.normal``); ``num_sampled_clients`` is the
   configured constant, not the number of replies.

So with no failures, θ_new = θ + mean_k clip(Δ_k) + N(0, (σC/(q·U))² I): exactly the ``fixed`` arm.

Differences between the arms (all of them, as far as we know)
-------------------------------------------------------------
* Sampling: Flower, fixed size ``int(q·U)`` without replacement; ldp-rec ``poisson``, size Binomial(U, q)
  (this arm's mean update is scaled by K/(q·U), K the realised cohort: a random step size with mean 1).
* Denominator: Flower divides the signal by the number of replies and the noise's std by the configured
  ``num_sampled_clients``; ldp-rec divides both by the fixed q·U. Equal here (no failures, fixed arm).
  Under node failures Flower's signal mean stays a mean while its noise stays calibrated for the full
  cohort (it only warns); ldp-rec's fixed denominator shrinks the signal instead.
* Where the clip happens: Flower clips on the server (the node sends its full model; float32 numpy);
  ldp-rec clips on the client (float64 scale with a 1e−7 margin, :func:`ldp_rec.fl.task.clip_updates`) and
  sends the clipped update. The same for a trusted server; the 1e−7 margin is far below the seed noise.
* Noise: Flower float32 draws from numpy's global RNG; ldp-rec float64 draws from its server generator
  (``private_seed`` = s here: a simulation), cast to float32 with θ.
* Replay: the ldp-rec arms replay bit for bit. The Flower arm does not, although this script seeds
  ``random`` and ``np.random`` in the ServerApp: the simulation gives its nodes fresh random ids every run
  and FedAvg samples from a set of them, so the cohorts differ between runs of the same seed.
* Randomness: the same seed s fixes the data split, the partition and the initial model in every arm;
  the cohorts and the noise are drawn by different generators, so arms differ round by round and
  agree only in distribution. Compare means over seeds, not runs.
* Accounting: ldp-rec reports ε of the Poisson-subsampled Gaussian (RDP, opacus) at δ; the result file
  records it for the poisson arm. For the fixed arm ldp-rec applies the same formula with q = K/U,
  which is the Poisson analysis, not one for sampling without replacement. Flower's wrapper is run
  without an accountant (its accountant requires ``sampling_method='no-amplification'``).
* Hosting: ldp-rec's in-process runner trains its cohort in one vectorised call (``nodes=1``); with
  full-batch local steps this equals per-user training to float rounding (tested in ldp-rec to 1e−5).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from pathlib import Path

import numpy as np

from ldp_rec.experiments.results import write_result
from ldp_rec.fl import models, task
from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.federation import load_data, make_fl_model
from ldp_rec.fl.server import run_in_process

OUT = Path(__file__).resolve().parent / "figures" / "cdp_flower_crosscheck.json"
ARMS = ("ldp-rec cdp, poisson", "ldp-rec cdp, fixed", "flower dp-fixed-clipping")


def base_config(*, users: int, rounds: int, sample_rate: float, clip: float, sigma: float, seed: int) -> FLConfig:
    """The ldp-rec configuration shared by every arm (the Flower arm reads its data, model and local
    training settings from it too)."""
    return FLConfig(dataset="digits", partition="iid", clients=users, nodes=1, rounds=rounds, mode="cdp",
                    sampling="poisson", sample_rate=sample_rate, noise_multiplier=sigma, clip=clip,
                    server_lr=1.0, server_momentum=0.0, local_lr=1.0, local_epochs=1, batch_size=0,
                    model="logreg", seed=seed, private_seed=seed)


def cohort_size(cfg: FLConfig) -> int:
    """Flower's FedAvg cohort: ``int(U · fraction_train)``."""
    return int(cfg.clients * cfg.sample_rate)


# ---- ldp-rec arms

def run_ldp_rec(cfg: FLConfig) -> dict:
    rows, wall, server = run_in_process(cfg)
    return {"accuracy": [r["accuracy"] for r in rows], "cohort_size": [r["cohort_size"] for r in rows],
            "epsilon": rows[-1]["epsilon_total"], "noise_multiplier": server.sigma, "sample_rate": server.q,
            "wall_seconds": wall, "_params": server.params}


# ---- Flower arm: ClientApp and ServerApp over ldp-rec's task/model functions

def build_client_app():
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        record = dict(msg.content["config"])
        rnd = int(record.pop("server-round"))
        cfg = FLConfig.from_record(record)
        user = int(context.node_config["partition-id"])  # virtual node k hosts ldp-rec's user k
        data = load_data(cfg)
        model = make_fl_model(cfg, data)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        theta = models.get_flat_params(model)
        U, losses, _ = task.local_updates(
            model, data.X_train, data.y_train, data.users.select(np.array([user])), epochs=cfg.local_epochs,
            lr=cfg.local_lr, batch_size=cfg.batch_size or None, rng=np.random.SeedSequence([cfg.seed, rnd, user]))
        models.set_flat_params(model, theta + U[0])  # FedAvg expects the updated model, not the update
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()),
                              "metrics": MetricRecord({"weight": 1, "train-loss": float(losses[0])})})
        return Message(content=content, reply_to=msg)

    return app


def build_server_app(cfg: FLConfig, sink: dict):
    from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # Flower draws its cohorts (random.sample) and its noise (np.random.normal) from the process-global
        # generators. Seeding them replays the noise stream, not the cohorts: the simulation gives its nodes
        # fresh random ids every run and random.sample draws from a set of them, so which users a draw picks
        # changes from run to run (and replies arrive, and are summed, in a varying order).
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        logging.getLogger("flwr").setLevel(logging.WARNING)  # a line per round and reply otherwise
        data = load_data(cfg)
        model = make_fl_model(cfg, data)
        k = cohort_size(cfg)
        def count_replies(records, weighting_key: str) -> MetricRecord:
            losses = [float(next(iter(r.metric_records.values()))["train-loss"]) for r in records]
            return MetricRecord({"replies": len(records), "train-loss": float(np.mean(losses))})

        strategy = FedAvg(fraction_train=cfg.sample_rate, fraction_evaluate=0.0, min_train_nodes=k,
                          min_available_nodes=cfg.clients, weighted_by_key="weight",
                          train_metrics_aggr_fn=count_replies)
        dp = DifferentialPrivacyServerSideFixedClipping(strategy, noise_multiplier=cfg.noise_multiplier,
                                                        clipping_norm=cfg.clip, num_sampled_clients=k)
        acc: list[float] = []

        def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model.load_state_dict(arrays.to_torch_state_dict())
            loss, a = task.evaluate(model, data.X_test, data.y_test)
            if server_round > 0:
                acc.append(a)
            return MetricRecord({"accuracy": a, "loss": loss})

        result = dp.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=cfg.rounds,
                          train_config=ConfigRecord(cfg.to_record()), evaluate_fn=evaluate_fn)
        sink["accuracy"] = acc
        sink["replies"] = [int(m["replies"]) for _, m in sorted(result.train_metrics_clientapp.items())]
        model.load_state_dict(result.arrays.to_torch_state_dict())
        sink["params"] = models.get_flat_params(model)

    return app


def run_flower(cfg: FLConfig) -> dict:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from flwr.simulation import run_simulation

    sink: dict = {}
    t0 = time.perf_counter()
    run_simulation(server_app=build_server_app(cfg, sink), client_app=build_client_app(),
                   num_supernodes=cfg.clients,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                 "log_to_driver": False}})
    wall = time.perf_counter() - t0
    if len(sink.get("accuracy", [])) != cfg.rounds:
        raise RuntimeError(f"the Flower run finished {len(sink.get('accuracy', []))} of {cfg.rounds} rounds; "
                           "see the Flower log above")
    if sink["replies"] != [cohort_size(cfg)] * cfg.rounds:
        raise RuntimeError(f"Flower rounds with missing replies: {sink['replies']}")
    return {"accuracy": sink["accuracy"], "cohort_size": sink["replies"], "wall_seconds": wall,
            "_params": sink["params"]}


def exact_check(cfg: FLConfig) -> dict:
    """Every user in every round (q = 1) and no noise: nothing random is left but float rounding, so
    ldp-rec (mode ``none``, clip C, mean) and Flower's wrapper (σ = 0) must agree round by round."""
    cfg = cfg.replace(sample_rate=1.0, noise_multiplier=0.0)
    a = run_ldp_rec(cfg.replace(mode="none", sampling="all"))
    b = run_flower(cfg)
    return {"config": "q = 1, sigma = 0, seed 0", "accuracy_ldp_rec": a["accuracy"], "accuracy_flower": b["accuracy"],
            "max_abs_accuracy_difference": float(np.max(np.abs(np.subtract(a["accuracy"], b["accuracy"])))),
            "final_params_max_abs_difference": float(np.max(np.abs(a["_params"] - b["_params"]))),
            "final_params_max_abs": float(np.max(np.abs(a["_params"]))),
            "wall_seconds": a["wall_seconds"] + b["wall_seconds"]}


def public(run: dict) -> dict:
    return {k: v for k, v in run.items() if not k.startswith("_")}


# ---- summary

def stats(x) -> dict:
    x = np.asarray(x, dtype=float)
    sd = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return {"mean": float(x.mean()), "sd": sd, "n": int(x.size), "values": x.tolist()}


def summarise(runs: dict[str, list[dict]], last: int = 5) -> dict:
    out: dict = {"final_accuracy": {}, f"mean_accuracy_last_{last}_rounds": {}, "paired_difference": {}}
    for arm, rs in runs.items():
        out["final_accuracy"][arm] = stats([r["accuracy"][-1] for r in rs])
        out[f"mean_accuracy_last_{last}_rounds"][arm] = stats([np.mean(r["accuracy"][-last:]) for r in rs])
    fl = ARMS[2]
    for arm in ARMS[:2]:
        for key in ("final_accuracy", f"mean_accuracy_last_{last}_rounds"):
            d = np.subtract(out[key][fl]["values"], out[key][arm]["values"])  # paired by seed (same data/init)
            s = stats(d)
            s["se"] = s["sd"] / np.sqrt(d.size) if d.size > 1 else float("nan")
            out["paired_difference"][f"{fl} - {arm} ({key})"] = s
    return out


def ldp_rec_arms(cfg: FLConfig) -> tuple[tuple[str, FLConfig], ...]:
    """The two ldp-rec arms of ``cfg``. σ = 0 is not a ``cdp`` run (there ``noise_multiplier=0`` means
    "calibrate σ to ``epsilon``"), so the σ = 0 control runs mode ``none`` (clip C, mean over the
    decoded users: the realised cohort, not q·U)."""
    fixed = cfg.replace(sampling="fixed", cohort_size=cohort_size(cfg))
    if cfg.noise_multiplier == 0:
        cfg, fixed = cfg.replace(mode="none"), fixed.replace(mode="none")
    return (ARMS[0], cfg), (ARMS[1], fixed)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--users", type=int, default=20, help="users = Flower virtual nodes (one user per node)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--sample-rate", type=float, default=0.5)
    ap.add_argument("--clip", type=float, default=0.5)
    ap.add_argument("--sigmas", default="0,2",
                    help="comma-separated noise multipliers σ (noise std σ·C on the sum); 0: a no-noise control")
    ap.add_argument("--no-exact-check", action="store_true", help="skip the q = 1, sigma = 0 run of both (exact_check)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to overwrite it")
    sigmas = [float(x) for x in args.sigmas.split(",")]

    t_start = time.perf_counter()
    by_sigma: dict[str, dict] = {}
    for sigma in sigmas:
        runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        for seed in range(args.seeds):
            cfg = base_config(users=args.users, rounds=args.rounds, sample_rate=args.sample_rate, clip=args.clip,
                              sigma=sigma, seed=seed)
            for arm, c in ldp_rec_arms(cfg):
                runs[arm].append({"seed": seed, "mode": c.mode, **public(run_ldp_rec(c))})
            runs[ARMS[2]].append({"seed": seed, **public(run_flower(cfg))})
            for arm in ARMS:
                r = runs[arm][-1]
                print(f"sigma {sigma:g}  seed {seed}  {arm:26s} final accuracy {r['accuracy'][-1]:.4f}  "
                      f"({r['wall_seconds']:.1f} s)", flush=True)
        by_sigma[f"{sigma:g}"] = {"summary": summarise(runs), "runs": runs}
    exact = None
    if not args.no_exact_check:
        exact = exact_check(cfg.replace(seed=0, private_seed=0))
        print(f"exact check (q = 1, sigma = 0): max |accuracy difference| over rounds "
              f"{exact['max_abs_accuracy_difference']:.2e}, final parameters max |difference| "
              f"{exact['final_params_max_abs_difference']:.2e} (of max |theta| {exact['final_params_max_abs']:.2f})",
              flush=True)
    wall = time.perf_counter() - t_start
    load = os.getloadavg()

    print(f"\ndigits, U = {args.users} users = Flower nodes, q = {args.sample_rate} (cohort "
          f"{cohort_size(cfg)}), C = {args.clip}, {args.rounds} rounds, seeds 0..{args.seeds - 1}")
    for sigma, res in by_sigma.items():
        summary = res["summary"]
        eps = res["runs"][ARMS[0]][0].get("epsilon")
        print(f" sigma = {sigma}" + (f" (epsilon {eps:.2f} at delta 1e-5, poisson arm)" if eps and sigma != "0" else
                                     " (no noise; ldp-rec arms in mode none)"))
        for arm in ARMS:
            s = summary["final_accuracy"][arm]
            print(f"  {arm:26s} final accuracy {s['mean']:.4f} ± {s['sd']:.4f} (sd over {s['n']} seeds)")
        for name, s in summary["paired_difference"].items():
            if "final" in name:
                print(f"  {name.split(' (')[0]}: {s['mean']:+.4f} ± {s['se']:.4f} (se, paired by seed)")
    print(f" wall {wall:.0f} s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    config = {"script": "cdp_flower_crosscheck", **{k: str(v) if isinstance(v, Path) else v
                                                    for k, v in vars(args).items()},
              "ldp_rec_config_seed0": base_config(users=args.users, rounds=args.rounds, sample_rate=args.sample_rate,
                                                  clip=args.clip, sigma=sigmas[-1], seed=0).to_record(),
              "flower": {"strategy": "FedAvg(fraction_train=q, fraction_evaluate=0, min_train_nodes=int(q*U), "
                                     "min_available_nodes=U, weighted_by_key='weight')",
                         "wrapper": "DifferentialPrivacyServerSideFixedClipping(noise_multiplier=sigma, "
                                    "clipping_norm=C, num_sampled_clients=int(q*U))",
                         "num_supernodes": args.users,
                         "backend_config": {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                            "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                          "log_to_driver": False}}}}
    result = {"config": config, "by_sigma": by_sigma, "exact_check": exact, "wall_seconds": wall,
              "load_average": list(load)}
    write_result(args.out, result, force=args.force)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
