"""DME sweep: the ε-LDP privacy–bits–accuracy frontier, the 5% goal for compressed PrivUnitG, and PPR
on the Gaussian mechanism.

    python simulations/dme_sweep.py [--full] [--config simulations/dme_default.toml] [--out results]

Setup (Shah et al. 2022, Sec. 6; Isik et al. 2023, Sec. 6): d = 500, n = 5000 unit vectors, half from
N(10,1)^d and half from N(1,1)^d, normalised; MSE = ‖mean x − mean x̂‖².

1. Frontier (closed form, exact expectations). Every estimator here is unbiased and clients are
   independent, so E MSE = (1/n²) Σ_i E‖Z_i − x_i‖² = per-user MSE / n. Cap mechanisms through
   (modified) MRC have the exact per-user error ``C²(E‖V‖²(p̂)/m(p̂)² − 1)`` with p̂ the finite-N
   effective cap probability (``ldp_rec.rec.mrc``), E‖V‖² = 1 on the sphere and d + γ m(p̂) for
   PrivUnitG. Method points with an ε-LDP *transcript* (references.md §4):
   modified MRC (PrivUnit2, PrivUnitG, PrivUnitG with (p, γ) optimised for the band and N), plain MRC
   with the mechanism at ε/2, PPR(α) with the mechanism at ε/(2α) (bits: Liu et al. Thm 4.3 bound),
   RRSC and SQKR (b bits, M = 2^b ≤ d for RRSC), chunking into k repetitions at ε/k with b/k bits each.
2. Measured rows: the codecs run end to end on a reduced grid and are checked against (1).
3. Goal 2 and goal 3 tables (see RESULTS_dme.md).
Writes CSVs, PNG plots and a JSON summary into a fresh results folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
from scipy import special

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldp_rec.codec.core import RecCodec  # noqa: E402
from ldp_rec.codec.registry import make_codec, make_mechanism  # noqa: E402
from ldp_rec.codec.tuning import band_tuned_privunitg, band_tuned_privunitg_parameters, privunitg_mse_at  # noqa: E402
from ldp_rec.coding.codes import EliasDelta, FixedLength  # noqa: E402
from ldp_rec.experiments import frontier as fr  # noqa: E402
from ldp_rec.experiments.dme import dme_data  # noqa: E402
from ldp_rec.experiments.results import run_dir, write_result  # noqa: E402
from ldp_rec.mechanisms.gaussian import GaussianMechanism  # noqa: E402
from ldp_rec.mechanisms.privunit2 import PrivUnit2  # noqa: E402
from ldp_rec.mechanisms.privunitg import PrivUnitG  # noqa: E402
from ldp_rec.mechanisms.rrsc import RRSC  # noqa: E402
from ldp_rec.privacy.events import event_epsilon  # noqa: E402
from ldp_rec.rec.subset import ProjectionLaw, optimal_top_count, subset_mse  # noqa: E402

from ldp_rec.rec import mrc, randomness  # noqa: E402
from ldp_rec.rec.base import MechanismTarget, decode_candidates  # noqa: E402
from ldp_rec.rec.ppr import PPR  # noqa: E402

LOG2E = math.log2(math.e)


# --------------------------------------------------------------------------- closed forms
def cap_mse(mech, p_eff=None) -> float:
    """Per-user E‖Z − x‖² (unit x, C = 1) of a cap mechanism whose output is in the cap w.p. p_eff."""
    try:
        m = mech.m(p_eff)
    except Exception:
        return math.inf
    ev2 = mech.dim + mech.gamma * m if isinstance(mech, PrivUnitG) else 1.0
    return float(ev2 / m**2 - 1.0)


def _cap_consts(mech):
    q, p = mech.cap_mass, mech.p
    return q, p / q, (1 - p) / (1 - q)


def mrc_peff(mech, N: int, *, band_epsilon: float | None = None) -> float:
    """p̂ of plain MRC (band_epsilon None) or modified MRC with its band at ``band_epsilon``."""
    q, c1, c2 = _cap_consts(mech)
    if band_epsilon is None:
        return mrc.effective_cap_probability(N, q, c1, c2)
    return mrc.modified_cap_probability(N, q, c1, c2, epsilon=band_epsilon, log_c_max=math.log(c1))


def optimise_privunitg_mmrc(epsilon: float, N: int, d: int) -> dict:
    """Band-tuned PrivUnitG for modified MRC (library: :mod:`ldp_rec.codec.tuning`) and its exact
    compressed per-user MSE."""
    bits = int(round(math.log2(N)))
    p, gamma = band_tuned_privunitg_parameters(float(epsilon), int(d), bits)
    q = float(special.ndtr(-gamma))
    lc = math.log(p / q)
    p_eff = mrc.modified_cap_probability(N, q, p / q, (1 - p) / (1 - q), epsilon=epsilon, log_c_max=lc)
    return {"mse": privunitg_mse_at(q, p_eff, d), "q": q, "p": p, "gamma": gamma, "log_c_max": lc,
            "mechanism_epsilon": lc - math.log((1 - p) / (1 - q))}


def optimised_privunitg(epsilon: float, N: int, d: int):
    """The PrivUnitG instance of :func:`optimise_privunitg_mmrc` (ε field = its own spread)."""
    return band_tuned_privunitg(epsilon, d, int(round(math.log2(N)))), optimise_privunitg_mmrc(epsilon, N, d)


def ppr_bits(mech, alpha: float) -> float:
    """Liu et al. (2024) Thm 4.3 bound ℓ + log2(ℓ+1) + 2 with I = D_KL(Q‖P) of the cap mechanism."""
    q, p = mech.cap_mass, mech.p
    kl = (p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))) * LOG2E
    return PPR(alpha=alpha).expected_codelength(kl)


def sqkr_mse(epsilon, d, bits, X) -> float:
    return float(np.mean(make_mechanism("sqkr", epsilon=epsilon, dim=d, bits=bits).mse(X)))


def closed_form_rows(cfg: dict) -> list[dict]:
    d, n = cfg["dim"], cfg["clients"]
    Xs = dme_data(200, d, rng=np.random.SeedSequence([cfg["seed"], 99]))
    rows = []

    def add(method, eps, bits, per_user, *, published, family, note=""):
        rows.append({"method": method, "family": family, "published": published, "source": "closed_form",
                     "epsilon": float(eps), "bits": float(bits), "mse": per_user / n, "mse_closed_form": per_user / n,
                     "dim": d, "clients": n, "note": note})

    for eps in cfg["epsilons"]:
        pu2, pug = PrivUnit2(epsilon=eps, dim=d), PrivUnitG(epsilon=eps, dim=d)
        add("privunit2 uncompressed", eps, 32 * d, pu2.expected_mse(), published=True, family="none")
        add("privunitg uncompressed", eps, 32 * d, pug.expected_mse(), published=True, family="none")
        h2, hg = PrivUnit2(epsilon=eps / 2, dim=d), PrivUnitG(epsilon=eps / 2, dim=d)
        for b in cfg["bits"]:
            N = 1 << b
            add("mmrc+privunit2", eps, b, cap_mse(pu2, mrc_peff(pu2, N, band_epsilon=eps)), published=True,
                family="modified-mrc", note="Shah et al. 2022 Sec. 4")
            add("mrc+privunit2@eps/2", eps, b, cap_mse(h2, mrc_peff(h2, N)), published=True, family="mrc",
                note="Shah et al. 2022 Sec. 3, transcript 2(eps/2)")
            add("mmrc+privunitg", eps, b, cap_mse(pug, mrc_peff(pug, N, band_epsilon=eps)), published=False,
                family="modified-mrc")
            add("mrc+privunitg@eps/2", eps, b, cap_mse(hg, mrc_peff(hg, N)), published=False, family="mrc")
            o = optimise_privunitg_mmrc(eps, N, d)
            add("mmrc+privunitg-opt", eps, b, o["mse"], published=False, family="modified-mrc",
                note=f"p={o['p']:.4g} gamma={o['gamma']:.4g} mech_eps={o['mechanism_epsilon']:.3g}")
            for k in cfg["repetitions"]:
                if b % k == 0 and b // k >= 1:
                    oc = optimise_privunitg_mmrc(eps / k, 1 << (b // k), d)
                    add(f"{k}x mmrc+privunitg-opt", eps, b, oc["mse"] / k, published=False, family="chunked",
                        note=f"{k} repetitions at eps/{k}, {b // k} bits each")
            for name, law in (("subset+privunitg", ProjectionLaw("normal", d)), ("subset+privunit2", ProjectionLaw("sphere", d))):
                mm = optimal_top_count(law, N, eps) if N > 1 else None
                if mm is not None:
                    add(name, eps, b, subset_mse(law, N, mm, eps), published=False, family="subset",
                        note=f"top m={mm} of N={N} weighted e^eps (transcript eps)")
            if N <= d:
                add("rrsc", eps, b, RRSC(epsilon=eps, dim=d, bits=b).expected_mse(), published=True, family="native",
                    note="Isik et al. 2023")
            if b <= math.ceil(eps) or b == cfg["bits"][0]:
                add("sqkr", eps, b, sqkr_mse(eps, d, b, Xs), published=True, family="native",
                    note="Chen et al. 2020; k = min(ceil(eps), b) bits")
        for a in cfg["ppr_alphas"]:
            m = PrivUnitG(epsilon=eps / (2 * a), dim=d)
            add(f"ppr(a={a:g})+privunitg", eps, ppr_bits(m, a), m.expected_mse(), published=False, family="ppr",
                note="bits = Liu et al. Thm 4.3 bound (variable length, mean)")
    return rows


# --------------------------------------------------------------------------- measured
def measure(encode_decode, *, dim, clients, trials, seed, batch):
    """Run DME trials; ``encode_decode(X, t, ids, rng) -> (estimates, bits per client)``."""
    mses, per_user, bits, t0 = [], [], [], time.perf_counter()
    for t in range(trials):
        X = dme_data(clients, dim, rng=np.random.SeedSequence([seed, t, 1]))
        rng = np.random.default_rng(np.random.SeedSequence([seed, t, 2]))
        est = np.empty_like(X)
        for s in range(0, clients, batch):
            sl = slice(s, min(s + batch, clients))
            est[sl], nb = encode_decode(X[sl], t, np.arange(sl.start, sl.stop), rng)
            bits.extend(np.broadcast_to(nb, (sl.stop - sl.start,)).tolist())
        mses.append(float(np.sum((X.mean(0) - est.mean(0)) ** 2)))
        per_user.extend(np.sum((est - X) ** 2, axis=1).tolist())
    mses, per_user = np.array(mses), np.array(per_user)
    return {"mse": float(mses.mean()), "mse_sem": float(mses.std(ddof=1) / math.sqrt(trials)) if trials > 1 else math.nan,
            "mse_trials": mses.tolist(),
            "per_user_mse": float(per_user.mean()), "per_user_sem": float(per_user.std(ddof=1) / math.sqrt(per_user.size)),
            "bits_mean": float(np.mean(bits)), "seconds": time.perf_counter() - t0}


def codec_runner(codec, seed):
    def run(X, t, ids, rng):
        pay = codec.encode(X, run_seed=seed, round=t, clients=ids, rng=rng)
        res = codec.decode(pay, run_seed=seed, round=t, clients=ids)
        if res.n_failed:
            raise RuntimeError(f"{res.n_failed} clients failed to decode: {res.errors}")
        return res.estimates, np.array([codec.payload_bits(p) for p in pay])
    return run


def privatize_runner(mech, bits):
    """SQKR: ``make_codec('sqkr', 'native')`` fails (NativeCodec casts SQKR's SampledMessages to int),
    so the mechanism's own privatize (same law, same k-bit message) is used."""
    def run(X, t, ids, rng):
        return mech.privatize(X, rng=rng), bits
    return run


def mmrc_codec(mech, bits: int, band_epsilon: float):
    sim = mrc.ModifiedMRC(bits=bits, epsilon=band_epsilon)
    return RecCodec(mech, sim, FixedLength(bits), codec_id=2)


def measured_rows(cfg: dict, seed: int) -> list[dict]:
    m = cfg["measured"]
    d, n, T = m["dim"], m["clients"], m["trials"]
    rows = []

    def add(method, eps, runner, closed_per_user, *, published, family, batch=250, note=""):
        r = measure(runner, dim=d, clients=n, trials=T, seed=seed, batch=batch)
        rows.append({"method": method, "family": family, "published": published, "source": "measured",
                     "epsilon": float(eps), "bits": r["bits_mean"], "mse": r["mse"], "mse_sem": r["mse_sem"],
                     "mse_closed_form": closed_per_user / n, "per_user_mse": r["per_user_mse"],
                     "per_user_sem": r["per_user_sem"], "per_user_closed_form": closed_per_user,
                     "dim": d, "clients": n, "trials": T, "seconds": r["seconds"], "note": note})
        print(f"  {method:28s} eps={eps:<4g} bits={r['bits_mean']:<6.4g} mse={r['mse']:.4g} "
              f"(closed {closed_per_user / n:.4g}) per-user {r['per_user_mse']:.4g}±{r['per_user_sem']:.2g} "
              f"(closed {closed_per_user:.4g})  {r['seconds']:.1f}s", flush=True)

    for eps in m["epsilons"]:
        pug = PrivUnitG(epsilon=eps, dim=d)
        add("privunitg uncompressed", eps, codec_runner(make_codec(pug, "none"), seed), pug.expected_mse(),
            published=True, family="none")
        for b in m["bits"]:
            N = 1 << b
            pu2, h2 = PrivUnit2(epsilon=eps, dim=d), PrivUnit2(epsilon=eps / 2, dim=d)
            add("mmrc+privunit2", eps, codec_runner(make_codec(pu2, "modified-mrc", bits=b), seed),
                cap_mse(pu2, mrc_peff(pu2, N, band_epsilon=eps)), published=True, family="modified-mrc")
            add("mrc+privunit2@eps/2", eps, codec_runner(make_codec(h2, "mrc", bits=b), seed),
                cap_mse(h2, mrc_peff(h2, N)), published=True, family="mrc")
            opt, o = optimised_privunitg(eps, N, d)
            add("mmrc+privunitg-opt", eps, codec_runner(mmrc_codec(opt, b, eps), seed), o["mse"],
                published=False, family="modified-mrc", note="transcript eps = band eps (RecCodec reports the mechanism spread)")
            law = ProjectionLaw("normal", d)
            add("subset+privunitg", eps, codec_runner(make_codec("privunitg", "subset", epsilon=eps, dim=d, bits=b), seed),
                subset_mse(law, N, optimal_top_count(law, N, eps), eps), published=False, family="subset")
            if N <= d and b <= m.get("rrsc_max_bits", 8):  # RRSC encode costs d·M² per client
                rr = RRSC(epsilon=eps, dim=d, bits=b)
                add("rrsc", eps, codec_runner(make_codec(rr, "native"), seed), rr.expected_mse(), published=True,
                    family="native")
            sq = make_mechanism("sqkr", epsilon=eps, dim=d, bits=b)
            Xs = dme_data(200, d, rng=np.random.SeedSequence([seed, 99]))
            add("sqkr", eps, privatize_runner(sq, sq.message_bits), float(np.mean(sq.mse(Xs))), published=True,
                family="native", note="per-user closed form averaged over 200 DME inputs")
    return rows


# --------------------------------------------------------------------------- goal 2
def goal2_rows(cfg: dict, seed: int) -> list[dict]:
    g = cfg["goal2"]
    d, n = g["dim"], g["clients"]
    out = []
    for eps in g["epsilons"]:
        b = math.ceil(eps * LOG2E) + 4
        N = 1 << b
        pug = PrivUnitG(epsilon=eps, dim=d)
        unc = pug.expected_mse()
        # smallest b at which each variant reaches 5% (closed form)
        def first_b(f):
            for bb in range(1, 25):
                if f(1 << bb) <= 1.05 * unc:
                    return bb
            return None
        b_def = first_b(lambda NN: cap_mse(pug, mrc_peff(pug, NN, band_epsilon=eps)))
        b_opt = first_b(lambda NN: optimise_privunitg_mmrc(eps, NN, d)["mse"])
        law = ProjectionLaw("normal", d)
        b_sub = first_b(lambda NN: subset_mse(law, NN, optimal_top_count(law, NN, eps), eps))
        opt, o = optimised_privunitg(eps, N, d)
        sub = make_codec("privunitg", "subset", epsilon=eps, dim=d, bits=b)
        for name, mech, closed, codec, b_min in (
                ("mmrc+privunitg (band at eps, mechanism at eps)", pug, cap_mse(pug, mrc_peff(pug, N, band_epsilon=eps)),
                 mmrc_codec(pug, b, eps), b_def),
                ("mmrc+privunitg-opt (band at eps, (p, gamma) optimised)", opt, o["mse"], mmrc_codec(opt, b, eps), b_opt),
                ("subset+privunitg (top m of N weighted e^eps)", pug,
                 subset_mse(law, N, optimal_top_count(law, N, eps), eps), sub, b_sub)):
            r = measure(codec_runner(codec, seed), dim=d, clients=n, trials=1, seed=seed + 7,
                        batch=max(1, min(n, (1 << 22) // N)))
            row = {"epsilon": eps, "bits": b, "method": name, "uncompressed_per_user": unc,
                   "closed_form_per_user": closed, "closed_form_gap": closed / unc - 1,
                   "measured_per_user": r["per_user_mse"], "measured_sem": r["per_user_sem"],
                   "measured_gap": r["per_user_mse"] / unc - 1, "transcript_epsilon": event_epsilon(codec.transcript_event())
                   if codec is sub else eps, "mechanism_spread": float(mech.epsilon),
                   "p": None if codec is sub else mech.p, "gamma": None if codec is sub else mech.gamma,
                   "top_m": sub._sims[0].top_count(law) if codec is sub else None, "clients": n, "seconds": r["seconds"],
                   "min_bits_for_5pct": b_min}
            out.append(row)
            print(f"  goal2 eps={eps} b={b} {name}: closed gap {row['closed_form_gap']:+.2%}, measured gap "
                  f"{row['measured_gap']:+.2%} ± {r['per_user_sem'] / unc:.2%}  ({r['seconds']:.1f}s)", flush=True)
    return out


# --------------------------------------------------------------------------- goal 3 (PPR on the Gaussian)
def goal3_rows(cfg: dict, seed: int) -> list[dict]:
    g = cfg["goal3"]
    d, n, T, alpha = g["dim"], g["clients"], g["trials"], g["alpha"]
    code = EliasDelta()
    out = []
    for eps in g["epsilons"]:
        mech = GaussianMechanism(epsilon=eps, dim=d, delta=g["delta"])
        s = mech.sigma
        # under Q (‖u‖ = 1) log r ~ N(1/(2σ²), 1/σ²): cap at mean + cap_sds sd
        cap = mech.log_ratio_cap(g["cap_sds"])
        sim = PPR(alpha=alpha, log_ratio_cap=cap)

        def run(X, t, ids, rng, mech=mech, sim=sim):
            U = mech.prepare(X)
            keys = randomness.derive_keys(seed, t, ids, 0)
            msgs = sim.encode(MechanismTarget(mech, U, keys), rng=rng)
            idx = np.array([mm.index for mm in msgs])
            nb = np.array([code.encode_many(np.array([k + 1]))[1] for k in idx])
            V = decode_candidates(mech.reference, keys, idx)
            run.steps.extend(mm.steps for mm in msgs)
            return mech.unbias(V), nb
        run.steps = []
        r = measure(run, dim=d, clients=n, trials=T, seed=seed, batch=100)
        unc = mech.expected_mse()
        kl_bits = 0.5 / s**2 * LOG2E
        row = {"epsilon": eps, "delta": g["delta"], "sigma": s, "alpha": alpha, "log_ratio_cap": cap,
               "tv_bound": float(special.ndtr(-g["cap_sds"])), "kl_bits": kl_bits,
               "bits_bound": sim.expected_codelength(kl_bits), "bits_mean": r["bits_mean"],
               "mean_steps": float(np.mean(run.steps)), "uncompressed_per_user": unc,
               "measured_per_user": r["per_user_mse"], "measured_sem": r["per_user_sem"],
               "gap": r["per_user_mse"] / unc - 1, "dme_mse": r["mse"], "dme_closed_form": unc / n,
               "transcript": repr(sim.transcript.event(eps, g["delta"])), "seconds": r["seconds"]}
        out.append(row)
        print(f"  goal3 eps={eps} sigma={s:.3f} cap={cap:.2f}: bits {r['bits_mean']:.2f} (bound {row['bits_bound']:.2f}), "
              f"steps {row['mean_steps']:.0f}, per-user gap {row['gap']:+.2%} ± {r['per_user_sem'] / unc:.2%} "
              f"({r['seconds']:.1f}s)", flush=True)
    return out


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="paper-scale grid ([full] section)")
    ap.add_argument("--config", default=str(ROOT / "simulations" / "dme_default.toml"))
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--skip", default="", help="comma list of parts to skip: measured,goal2,goal3")
    args = ap.parse_args(argv)
    cfg = tomllib.loads(Path(args.config).read_text())["full" if args.full else "default"]
    skip = set(filter(None, args.skip.split(",")))
    out = run_dir(args.out, "dme-full" if args.full else "dme")
    seed = int(cfg["seed"])
    times = {}

    t0 = time.perf_counter()
    rows = closed_form_rows(cfg)
    times["closed_form_s"] = time.perf_counter() - t0
    print(f"closed-form rows: {len(rows)} in {times['closed_form_s']:.1f}s", flush=True)
    eps_g, bit_g = cfg["epsilons"], cfg["bits"]
    records = fr.compare_with_published(rows, epsilons=eps_g, bit_budgets=bit_g)
    table = fr.frontier_table(rows, epsilons=eps_g, bit_budgets=bit_g)
    pub = fr.frontier_table(rows, epsilons=eps_g, bit_budgets=bit_g, published_only=True)
    fr.write_rows_csv(rows, out / "closed_form_rows.csv")
    fr.write_rows_csv(records, out / "frontier.csv", fields=list(records[0]))
    unc = {float(e): min(r["mse"] for r in rows if r["epsilon"] == e and r["family"] == "none") for e in eps_g}
    fr.plot_frontier_vs_uncompressed(records, unc, out / "frontier_vs_uncompressed.png",
                                     bit_budgets=[b for b in (2, 4, 8, 12, 16) if b in bit_g])
    fr.plot_mse_vs_bits(rows, out / "mse_vs_bits_eps4.png", epsilon=4.0 if 4 in eps_g else float(eps_g[-1]),
                        uncompressed={"PrivUnitG uncompressed": unc.get(4.0, next(iter(unc.values())))})
    fr.plot_mse_vs_eps(rows, out / "mse_vs_eps_8bits.png", bits=8)

    measured, g2, g3 = [], [], []
    if "measured" not in skip:
        t0 = time.perf_counter()
        measured = measured_rows(cfg, seed)
        times["measured_s"] = time.perf_counter() - t0
        fr.write_rows_csv(measured, out / "measured_rows.csv")
        for b in cfg["measured"]["bits"]:
            fr.plot_mse_vs_eps(measured, out / f"measured_mse_vs_eps_{b}bits.png", bits=b,
                               title=f"measured DME (n={cfg['measured']['clients']}), {b} bits")
    if "goal2" not in skip:
        t0 = time.perf_counter()
        g2 = goal2_rows(cfg, seed)
        times["goal2_s"] = time.perf_counter() - t0
        fr.write_rows_csv(g2, out / "goal2.csv", fields=list(g2[0]))
    if "goal3" not in skip:
        t0 = time.perf_counter()
        g3 = goal3_rows(cfg, seed)
        times["goal3_s"] = time.perf_counter() - t0
        fr.write_rows_csv(g3, out / "goal3.csv", fields=list(g3[0]))

    (out / "frontier.md").write_text(
        "## Frontier (closed form)\n\n" + fr.markdown_frontier(table, epsilons=eps_g, bit_budgets=bit_g)
        + "\n\n## Best published\n\n" + fr.markdown_frontier(pub, epsilons=eps_g, bit_budgets=bit_g) + "\n")
    better = fr.strictly_better(records, margin=0.01)
    summary = {"config": cfg, "full": args.full, "wall_seconds": times,
               "frontier_cells": len(records), "cells_strictly_better_by_1pct": len(better),
               "frontier_at_or_below_published": all(not (r["ratio"] > 1 + 1e-12) for r in records),
               "goal2": g2, "goal3": g3}
    write_result(out / "summary.json", summary)
    print(json.dumps({"out": str(out), "wall_seconds": times, "strictly_better_cells": len(better)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
