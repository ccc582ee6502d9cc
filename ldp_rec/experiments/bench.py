"""``ldp-rec bench rec|mrc``: steps, message bits and encode time of the channel simulators.

``bench rec`` runs the Gaussian channel of Flamich (2023, §5): ``P = N(0, 1)``, ``X ~ N(0, 1 − s²)``,
``Q_X = N(X, s²)``, so ``I[X; Z] = −log2 s`` bits, at ``I ∈ {0.1, 1, 3.5, 6, 12}`` with ``--trials``
draws of X each (one shared stream per trial). One row per (method, I).

Message bits (real prefix codes; none uses the client's Q):

* ``gprs`` / ``pfr`` / ``ppr``: Elias-δ of the 1-based index;
* ``gprs-bnb``: the arithmetic path code :class:`~ldp_rec.rec.gprs_bnb_code.PathCode` (decoder-known
  model, public I); ``path_model_bits`` is its target ``−log2`` (model probability of the path);
  ``mean_message_bits_elias`` is Elias-γ of ``|path| + 1`` then the path bits
  (:func:`~ldp_rec.rec.gprs_bnb.path_bits`); ``ideal_bits`` adds to ``E|path|`` the empirical entropy
  of ``|path|`` instead (a reference, not a code);
* ``mrc``: ``bits`` (fixed length, not exact: ``N = 2^bits`` candidates).

``encode_us_per_sample`` is the search alone; for GPRS the σ tables (one per distinct target,
built once per target) are timed apart in ``sigma_us_per_sample``.

PFR, PPR and MRC (the other simulators, when importable) run only up to ``I = 3.5`` bits: their work
grows like ``2^{D_∞}``, heavy-tailed over X here (PPR alone takes minutes at I = 12).

PFR and PPR stop with each target's own ratio bound ``max r = exp(x²/(2(1 − s²)) − log s)``
(:class:`BenchPair`), so a trial's step count does not depend on the other trials of the batch (with the
batch-wide bound, PFR at I = 0.1 took 107 steps at 200 trials and 5,318 at 2,000).

``bench mrc`` is delegated to :mod:`ldp_rec.experiments.bench_mrc` (``run_mrc_speed``).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time

from dataclasses import dataclass

import numpy as np

from ..rec import randomness
from ..rec.gprs import GPRS, sigma_for
from ..rec.gprs_bnb import BranchAndBoundGPRS, centered_path_bits, depth_center, path_bits
from ..rec.gprs_bnb_code import PathCode, PathModel
from ..rec.targets1d import GaussianPair

INFO_BITS = (0.1, 1.0, 3.5, 6.0, 12.0)


@dataclass(frozen=True, eq=False)
class BenchPair(GaussianPair):
    """:class:`GaussianPair` with per-client ratio bounds for PFR/PPR (``s < 1``: the maximum of
    ``log r_c`` is ``mu_c²/(2(1 − s_c²)) − log s_c``, at ``z = mu_c/(1 − s_c²)``)."""

    @property
    def client_log_ratio_max(self) -> np.ndarray:
        return self.mu**2 / (2 * (1 - self.s**2)) - np.log(self.s)


def bench_target(info: float, trials: int, seed: int = 0) -> BenchPair:
    """The channel at ``I = info`` bits: ``trials`` draws of X and one shared stream per trial; trial j is
    the same for every ``trials`` > j."""
    s = 2.0 ** (-info)
    rng = np.random.default_rng([seed, int(round(info * 1000))])
    x = rng.normal(0.0, math.sqrt(1 - s * s), trials)
    keys = randomness.derive_keys(seed, int(round(info * 1000)), np.arange(trials), domain="bench-rec")
    return BenchPair(x, s, keys)
#: Flamich (2023) split-on-sample ("sac") GPRS, public data (figure 2): I → (mean steps, mean bits)
PUBLISHED_SAC_GPRS = {0.1: (1.229, 7.07), 3.5: (4.659, 9.87), 12.0: (16.13, 19.29)}


def _delta_bits(v: np.ndarray) -> np.ndarray:
    try:
        from ..coding.codes import EliasDelta
        return EliasDelta().lengths(v.astype(np.int64))
    except ImportError:  # local fallback: N + 2⌊log2(N+1)⌋ + 1 with N = ⌊log2 v⌋
        N = np.floor(np.log2(v)).astype(np.int64)
        return N + 2 * np.floor(np.log2(N + 1)).astype(np.int64) + 1


def _entropy_bits(values) -> float:
    _, c = np.unique(values, return_counts=True)
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


#: PFR/PPR search ~2^{D_inf} candidates, and D_inf is heavy-tailed over X in this channel:
#: they are compared only up to this information level so the default bench stays within minutes.
COMPARE_UP_TO_BITS = 3.5


def _methods(info: float, quick: bool):
    out = [("gprs", GPRS(), "elias-delta(index+1)"), ("gprs-bnb", BranchAndBoundGPRS(), "arithmetic path code (PathCode, public I)")]
    if info > COMPARE_UP_TO_BITS:
        return out
    try:  # optional comparison with the other simulators, when they are built
        from ..rec.pfr import PFR
        out.append(("pfr", PFR(), "elias-delta(index+1)"))
    except ImportError:
        pass
    try:
        from ..rec.ppr import PPR
        out.append(("ppr", PPR(alpha=2.0), "elias-delta(index+1)"))
    except ImportError:
        pass
    try:
        from ..rec.mrc import MRC
        bits = min(int(math.ceil(info)) + 4, 12 if quick else 16)
        out.append((f"mrc-{bits}", MRC(bits), f"fixed {bits} bits (approximate sampler)"))
    except ImportError:
        pass
    return out


def _stats(name: str, a: np.ndarray) -> dict:
    a = np.asarray(a, dtype=np.float64)
    return {f"mean_{name}": float(a.mean()), f"std_{name}": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            f"median_{name}": float(np.median(a))}


def bench_rec(*, trials: int = 2000, info_bits=INFO_BITS, quick: bool = False, seed: int = 0, log=print) -> list[dict]:
    rows = []
    for info in info_bits:
        rng = np.random.default_rng([seed, int(round(info * 1000))])
        rng.normal(size=trials)  # the draws of X (bench_target), then the simulators' private coins
        target = bench_target(info, trials, seed)
        for name, sim, code in _methods(info, quick):
            try:
                extra, t_sigma = {}, 0.0
                if name.startswith("gprs"):  # time σ (one table per distinct target) apart from the search
                    t0 = time.perf_counter()
                    extra["sigma"] = sigma_for(target)
                    t_sigma = time.perf_counter() - t0
                t0 = time.perf_counter()
                msgs = sim.encode(target, rng=rng, **extra)
                dt = time.perf_counter() - t0
            except Exception as exc:  # an optional comparison that cannot run here is reported, not fatal
                if name.startswith("gprs"):
                    raise
                rows.append({"method": name, "info_bits": info, "skipped": f"{type(exc).__name__}: {exc}"})
                log(f"I={info:5.1f} {name:9s} skipped ({type(exc).__name__})")
                continue
            steps = np.asarray(msgs.steps, dtype=np.int64)
            row = {"method": name, "info_bits": info, "trials": trials, "code": code, **_stats("steps", steps)}
            if name == "gprs-bnb":
                L = np.array([len(p) for p in msgs.paths])
                pcode = PathCode(PathModel(info))
                bits = np.array([len(c) for c in pcode.encode(msgs, target.reference, target.keys)])
                row["path_model_bits"] = float(pcode.model_bits(msgs, target.reference, target.keys).mean())
                row["mean_message_bits_elias"] = float(path_bits(L).mean())
                row["ideal_bits"] = float(L.mean() + _entropy_bits(L))
                # the same path with its length coded around a centre the decoder derives from the public I
                cb = centered_path_bits(L, depth_center(info))
                row["depth_center"] = depth_center(info)
                row["mean_message_bits_centered"] = float(cb.mean())
            elif name.startswith("mrc"):
                bits = np.full(trials, sim.bits)
            else:
                bits = _delta_bits(np.asarray(msgs.indices, dtype=np.int64) + 1)
            row.update(_stats("message_bits", bits))
            row["encode_us_per_sample"] = 1e6 * dt / trials
            if name.startswith("gprs"):
                row["sigma_us_per_sample"] = 1e6 * t_sigma / trials
            if name == "gprs-bnb" and info in PUBLISHED_SAC_GPRS:
                row["published_sac_gprs_steps"], row["published_sac_gprs_bits"] = PUBLISHED_SAC_GPRS[info]
            rows.append(row)
            log(f"I={info:5.1f} {name:9s} steps {row['mean_steps']:10.2f} (median {row['median_steps']:8.1f})"
                f"  bits {row['mean_message_bits']:6.2f}  {row['encode_us_per_sample']:9.1f} us/sample")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", choices=("rec", "mrc"), help="rec: steps/bits of the simulators; mrc: MRC speed")
    parser.add_argument("--out", required=False, default=None, help="result file (JSON)")
    parser.add_argument("--trials", type=int, default=2000, help="draws of X per information level")
    parser.add_argument("--quick", action="store_true", help="200 trials and smaller MRC (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite an existing result file")


def run(args) -> int:
    if args.which == "mrc":
        try:
            mod = importlib.import_module("ldp_rec.experiments.bench_mrc")
        except ModuleNotFoundError as exc:
            if exc.name != "ldp_rec.experiments.bench_mrc":
                raise
            print("bench mrc is not available in this build (ldp_rec.experiments.bench_mrc missing)", file=sys.stderr)
            return 2
        res = mod.run_mrc_speed(reps=2 if args.quick else 5, seed=args.seed)
        if args.out is not None:
            from .results import write_result
            print(f"wrote {write_result(args.out, {'config': {'bench': 'mrc', 'quick': bool(args.quick)}, **res}, force=args.force)}")
        else:
            import json
            print(json.dumps(res, indent=2, default=float))
        return 0
    from ..errors import ParameterError

    if args.out is None:
        raise ParameterError("bench rec needs --out FILE.json")
    trials = min(args.trials, 200) if args.quick else args.trials
    if trials < 2:
        raise ParameterError(f"--trials must be >= 2, got {args.trials}")
    t0 = time.perf_counter()
    rows = bench_rec(trials=trials, quick=args.quick, seed=args.seed)
    result = {
        "config": {"bench": "rec", "trials": trials, "quick": bool(args.quick), "seed": args.seed,
                   "info_bits": list(INFO_BITS),
                   "channel": "P=N(0,1), X~N(0,1-s^2), Q_X=N(X,s^2), s=2^-I"},
        "published_sac_gprs": {str(k): {"mean_steps": v[0], "mean_bits": v[1]} for k, v in PUBLISHED_SAC_GPRS.items()},
        "rows": rows,
        "wall_s": time.perf_counter() - t0,
    }
    from .results import write_result
    path = write_result(args.out, result, force=args.force)
    print(f"wrote {path}")
    return 0
