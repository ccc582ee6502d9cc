"""``ldp-rec mechanisms``: closed-form against measured per-user MSE of every mechanism.

For each ε and mechanism, privatises ``--samples`` random unit vectors (unit L1 for Laplace, whose
domain is the L1 ball) (uncompressed) and prints
E‖Z − x‖² measured (with its standard error) next to ``expected_mse()``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..codec.registry import MECHANISMS, make_mechanism
from ..errors import ParameterError
from .results import args_config, write_result


def measure(name: str, epsilon: float, dim: int, samples: int, seed: int) -> dict:
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(epsilon * 1000), dim]))
    X = rng.standard_normal((samples, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    if name == "laplace":  # its input domain is the L1 ball (clipping would add a bias term)
        X /= np.abs(X).sum(axis=1, keepdims=True)
    mech = make_mechanism(name, epsilon=epsilon, dim=dim)
    t0 = time.perf_counter()
    Z = mech.privatize(X, rng=rng)
    dt = time.perf_counter() - t0
    err = np.sum((Z - X) ** 2, axis=1)
    g = mech.guarantee
    return {"mechanism": name, "epsilon": epsilon, "delta": g.delta, "dim": dim,
            "mse_closed_form": float(mech.expected_mse()), "mse_measured": float(err.mean()),
            "mse_sem": float(err.std(ddof=1) / np.sqrt(samples)), "us_per_user": 1e6 * dt / samples}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epsilon", type=float, nargs="+", default=[1, 2, 4, 6, 8])
    p.add_argument("--dim", type=int, default=500)
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--force", action="store_true")


def check_args(args) -> None:
    """Every option before any mechanism runs (ParameterError, one line): ε > 0, dimension, sample size,
    known mechanism names, memory."""
    from .._validation import check_epsilon, check_memory, check_positive_int

    for eps in args.epsilon:
        check_epsilon(eps)
    check_positive_int(args.dim, "--dim")
    check_positive_int(args.samples, "--samples", minimum=2)  # a standard error needs two
    unknown = sorted(set(args.mechanisms) - set(MECHANISMS))
    if unknown:
        raise ParameterError(f"unknown mechanisms {unknown}; choose from {sorted(MECHANISMS)}")
    check_memory(4.0 * 8 * args.samples * args.dim, f"{args.samples} samples in dimension {args.dim}",
                 "lower --samples or --dim")


def run(args) -> int:
    check_args(args)
    rows = []
    print(f"{'mechanism':10s} {'eps':>4s} {'closed form':>12s} {'measured':>12s} {'± sem':>9s} {'ratio':>6s} {'us/user':>8s}")
    for eps in args.epsilon:
        for name in args.mechanisms:
            try:
                r = measure(name, float(eps), args.dim, args.samples, args.seed)
            except ParameterError as exc:
                print(f"{name:10s} {eps:4g}  skipped: {exc}")
                continue
            rows.append(r)
            print(f"{name:10s} {eps:4g} {r['mse_closed_form']:12.4g} {r['mse_measured']:12.4g} {r['mse_sem']:9.2g} "
                  f"{r['mse_measured'] / r['mse_closed_form']:6.3f} {r['us_per_user']:8.1f}")
    if args.out:
        write_result(args.out, {"config": args_config(args) | {"command": "mechanisms"}, "rows": rows}, force=args.force)
    return 0
