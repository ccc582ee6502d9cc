"""Published DME figures of SQKR and Shah et al.'s modified MRC against ldp-rec, in the papers' setup.

Setup (Isik, Chen, Özgür, Weissman, No 2023, Sec. 6, public repository BerivanIsik/rrsc, which runs
Shah, Chen, Ballé, Kairouz, Theis 2022's ``rcc_dp`` baselines): d = 500, n = 5000 unit vectors (half
normalised N(10, 1)^d, half N(1, 1)^d), MSE = ‖mean(x) − mean(x̂)‖², 10 trials; the ε sweep has b = ε
(ε = 1..8), the bit sweep ε = 6 (b = 1..8). The published figures are in ``published_baselines.json``
(read from the repository's stored result files ``Data/sweep_eps_d_500_eps_8_n_5000_M_256.mat`` and
``Data/sweep_bitrate_d_500_eps_6_n_5000_M_256.mat``: mean and SE over their 10 trials).

Variants:

* ``sqkr-faithful``: :meth:`ldp_rec.mechanisms.sqkr.SQKR.chen_kairouz_ozgur` (their frame, schedule,
  level K ≈ 1.86 with clipping, k = b); biased on these inputs.
* ``sqkr``: ldp-rec's :meth:`~ldp_rec.mechanisms.sqkr.SQKR.bounded` (bounded representation, λ = 8, K = 1.7, k = min(⌈ε⌉, b)); unbiased.
* ``mmrc-shah``: PrivUnit2 with Shah et al.'s parameters (:func:`~ldp_rec.mechanisms.privunit2.privunit2_shah_parameters`)
  behind modified MRC, decoded as their code does, with their approximate cap probability
  (:func:`~ldp_rec.codec.tuning.shah_cap_probability`): the estimates of ldp-rec's exact decoder scaled by
  m(p̂)/m(p̃_Shah).
* ``mmrc-shah-exact``: the same transcript decoded by ldp-rec (exact p̂: unbiased).
* ``mmrc``: ldp-rec's default, band-tuned PrivUnit2 (:func:`~ldp_rec.codec.tuning.band_tuned_privunit2`).

Closed forms: E‖mean(Z) − mean(x)‖² = Σ_i Var(Z_i)/n² + ‖mean_i(E Z_i − x_i)‖², evaluated exactly on the
first trial's inputs (SQKR: :meth:`~ldp_rec.mechanisms.sqkr.SQKR.moments`; cap mechanisms: E‖Z‖² = 1/m_dec²,
E[Z] = (m(p̂)/m_dec) x).

    python simulations/baselines_published.py [--trials 10] [--variants sqkr,mmrc,...] [--sweeps eps,bits]
        [--json simulations/published_baselines_results.json] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ldp_rec.codec.registry import make_codec  # noqa: E402
from ldp_rec.codec.tuning import shah_cap_probability  # noqa: E402
from ldp_rec.experiments.dme import dme_data  # noqa: E402
from ldp_rec.mechanisms.privunit2 import PrivUnit2, privunit2_shah_parameters  # noqa: E402
from ldp_rec.mechanisms.sqkr import SQKR  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dme_sweep import measure  # noqa: E402  (the DME suite's trial loop)

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "published_baselines.json"
VARIANTS = ("sqkr-faithful", "sqkr", "mmrc-shah", "mmrc-shah-exact", "mmrc")
PUBLISHED_KEY = {"sqkr-faithful": "sqkr", "sqkr": "sqkr", "mmrc-shah": "mmrc", "mmrc-shah-exact": "mmrc", "mmrc": "mmrc"}


def settings(sweep: str):
    """(ε, b) of a sweep: ``eps`` is ε = b = 1..8, ``bits`` is ε = 6, b = 1..8."""
    return [(e, e) for e in range(1, 9)] if sweep == "eps" else [(6, b) for b in range(1, 9)]


def build(variant: str, eps: float, bits: int, dim: int):
    """(codec, decode scale, closed-form function of X) of a variant."""
    if variant.startswith("sqkr"):
        mech = SQKR.chen_kairouz_ozgur(eps, dim, bits=bits) if variant == "sqkr-faithful" else SQKR.bounded(eps, dim, bits=bits)
        cod = make_codec(mech, "native")

        def closed(X):
            mu, second = mech.moments(X)
            var = second - np.sum(mu * mu, axis=1)
            return float(var.sum() / X.shape[0] ** 2 + np.sum((mu.mean(0) - X.mean(0)) ** 2))

        return cod, 1.0, closed
    if variant == "mmrc":
        cod = make_codec("privunit2", "modified-mrc", epsilon=eps, dim=dim, bits=bits)
    else:
        p, g = privunit2_shah_parameters(eps, dim)
        cod = make_codec(PrivUnit2(eps, dim, p_override=p, gamma_override=g), "modified-mrc", bits=bits)
    mech = cod.mechanism
    q, p = mech.cap_mass, mech.p
    p_hat = cod._unbias_kw[0]["p_eff"]
    m_exact = mech.m(p_hat)
    m_dec = m_exact
    if variant == "mmrc-shah":
        m_dec = mech.m(shah_cap_probability(1 << bits, q, p / q, (1 - p) / (1 - q), epsilon=eps))
    assert abs(math.log(p / q) - mech.log_ratio_bounds()[1]) < 1e-12 and mech.log_ratio_bounds()[1] <= eps + 1e-12

    def closed(X):
        n = X.shape[0]
        var = 1 / m_dec**2 - (m_exact / m_dec) ** 2 * np.sum(X * X, axis=1)
        return float(var.sum() / n**2 + (m_exact / m_dec - 1) ** 2 * np.sum(X.mean(0) ** 2))

    return cod, m_exact / m_dec, closed


def run_variant(variant, eps, bits, *, dim, clients, trials, seed, batch=1000):
    """The DME trials of one variant through :func:`dme_sweep.measure` (the same data, seeds and MSE as the
    DME suite); the closed form on the first trial's inputs."""
    cod, scale, closed = build(variant, eps, bits, dim)

    def run(X, t, ids, rng):
        res = cod.decode(cod.encode(X, run_seed=seed, round=t, clients=ids, rng=rng), run_seed=seed, round=t,
                         clients=ids)
        assert res.ok.all()
        return res.estimates * scale, 0

    m = measure(run, dim=dim, clients=clients, trials=trials, seed=seed, batch=batch)
    cf = closed(dme_data(clients, dim, rng=np.random.SeedSequence([seed, 0, 1])))
    return {"variant": variant, "epsilon": eps, "bits": bits, "mse": m["mse"], "mse_sem": m["mse_sem"],
            "mse_trials": m["mse_trials"], "closed_form": cf,
            "payload_bits": int(bits if not variant.startswith("sqkr") else cod.mechanism.message_bits),
            "transcript_epsilon": float(cod.transcript_event().epsilon), "seconds": m["seconds"]}


def table(rows, published) -> str:
    out = ["| sweep | variant | ε | b | published ± SE | ldp-rec ± SE | closed form | ratio meas/pub | ratio cf/pub |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pub = published[r["sweep"]][PUBLISHED_KEY[r["variant"]]]
        i = r["epsilon"] - 1 if r["sweep"] == "eps" else r["bits"] - 1
        pm, ps = pub["mse"][i], pub["sem"][i]
        out.append(f"| {r['sweep']} | {r['variant']} | {r['epsilon']} | {r['bits']} | {pm:.4g} ± {ps:.2g} | "
                   f"{r['mse']:.4g} ± {r['mse_sem']:.2g} | {r['closed_form']:.4g} | {r['mse'] / pm:.3f} | "
                   f"{r['closed_form'] / pm:.3f} |")
    return "\n".join(out)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--sweeps", default="eps,bits")
    ap.add_argument("--json", default=None, help="write rows, config, versions and commit here")
    ap.add_argument("--markdown", default=None, help="write the table here")
    args = ap.parse_args(argv)
    published = json.loads(PUBLISHED.read_text())
    rows = []
    for sweep in args.sweeps.split(","):
        for variant in args.variants.split(","):
            if variant not in VARIANTS:
                raise SystemExit(f"unknown variant {variant!r}; choose from {VARIANTS}")
            for eps, bits in settings(sweep):
                r = run_variant(variant, eps, bits, dim=args.dim, clients=args.clients, trials=args.trials, seed=args.seed)
                r["sweep"] = sweep
                rows.append(r)
                print(table([r], published).splitlines()[-1], f"({r['seconds']:.0f} s)", flush=True)
    md = table(rows, published)
    print(md)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.markdown:
        Path(args.markdown).write_text(md + "\n")
    if args.json:
        import scipy

        meta = {"config": vars(args), "commit": _commit(), "numpy": np.__version__, "scipy": scipy.__version__,
                "python": platform.python_version(), "load_average": load, "rows": rows}
        Path(args.json).write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
