"""Distributed mean estimation (DME), the field's standard benchmark for compressed LDP.

Setup of Shah et al. (2022, Sec. 6) and Isik et al. (2023, Sec. 6): n users in dimension d, half
drawn from N(10, 1)^d and half from N(1, 1)^d, each normalised to unit norm;
MSE = ‖mean(x) − mean(x̂)‖², averaged over trials (fresh data, seeds and rounds per trial).

    ldp-rec dme --mechanism M --codec C --epsilon E [--bits B] --dim D --clients N --trials T --seed S --out FILE.json
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from ..codec.registry import CODECS, MECHANISMS, make_codec
from ..errors import ParameterError
from ..privacy.events import event_epsilon
from .results import write_result


def dme_data(n: int, d: int, *, rng) -> np.ndarray:
    """n unit vectors: the first ⌈n/2⌉ from N(10,1)^d, the rest from N(1,1)^d, normalised."""
    rng = np.random.default_rng(rng)
    h = (n + 1) // 2
    X = rng.standard_normal((n, d))
    X[:h] += 10.0
    X[h:] += 1.0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


UNCHUNKED_CODECS = ("none", "native")  # send the mechanism's own output: no blocks, no repetitions


def chunked_closed_form_mse(mech, X, *, blocks: int = 1, repetitions: int = 1) -> float:
    """Per-user closed-form ``E‖Ẑ − x‖²`` of the *uncompressed* mechanism under the codecs' chunking
    (:mod:`ldp_rec.codec.core`): B coordinate blocks (``numpy.array_split`` sizes), each privatised r times
    at ``ε/(rB)`` with the same clip, the r repetitions averaged, so
    ``Σ_b (1/r) E_b(‖x_b‖)`` averaged over the rows of X, where ``E_b`` is the block mechanism's
    ``expected_mse(norm=‖x_b‖)`` (the norm-free form for mechanisms whose error does not depend on it).
    Every norm-aware closed form in ldp-rec is ``C²κ − ‖x‖²``, so the average over rows is the value at the
    root-mean-square block norm. With B = r = 1 and unit rows this is ``mech.expected_mse()``."""
    if blocks == 1 and repetitions == 1:
        return float(mech.expected_mse())
    X = np.asarray(X, dtype=np.float64)
    k = int(blocks) * int(repetitions)
    total = 0.0
    for cols in np.array_split(np.arange(X.shape[1]), int(blocks)):
        mb = dataclasses.replace(mech, epsilon=mech.epsilon / k, dim=cols.size)
        norms = np.minimum(np.linalg.norm(X[:, cols], axis=1), float(getattr(mb, "clip", np.inf)))
        try:
            e_b = mb.expected_mse(norm=float(np.sqrt(np.mean(norms**2))))
        except TypeError:  # the error does not depend on the input's norm
            e_b = mb.expected_mse()
        total += float(e_b) / int(repetitions)
    return total


def run_dme(*, mechanism: str, codec: str, epsilon: float, dim: int = 500, clients: int = 5000, trials: int = 10,
            seed: int = 0, bits: int | None = None, batch: int = 1000, **codec_options) -> dict:
    """Run the DME benchmark; returns the result dict (see module doc). ``blocks``/``repetitions`` apply to
    the channel-simulation codecs only: with ``codec`` none or native they raise ParameterError."""
    from .._validation import check_candidate_memory, check_epsilon, check_memory, check_positive_int
    from ..codec.registry import FIXED_CANDIDATE_CODECS, default_bits

    epsilon = check_epsilon(epsilon)
    dim, clients = check_positive_int(dim, "dim"), check_positive_int(clients, "clients")
    trials, batch = check_positive_int(trials, "trials"), check_positive_int(batch, "batch")
    blocks = check_positive_int(codec_options.get("blocks", 1), "blocks")
    reps = check_positive_int(codec_options.get("repetitions", 1), "repetitions")
    if blocks > dim:
        raise ParameterError(f"--blocks ({blocks}) cannot exceed --dim ({dim})")
    check_memory(6.0 * 8 * clients * dim, f"{clients} clients in dimension {dim}", "lower --clients or --dim")
    if codec in FIXED_CANDIDATE_CODECS:
        check_candidate_memory(codec=codec, bits=bits if bits is not None else default_bits(epsilon / (reps * blocks)),
                               users=min(batch, clients), dim=-(-dim // blocks))
    if codec in UNCHUNKED_CODECS and (blocks != 1 or reps != 1):
        raise ParameterError(f"--codec {codec} sends the mechanism's output unchunked: --blocks/--repetitions "
                             "apply only to channel-simulation codecs")
    cod = make_codec(mechanism, codec, epsilon=epsilon, dim=dim, bits=bits, **codec_options)
    mses, enc_s, dec_s, pbits, mbytes, failed, user_err = [], 0.0, 0.0, [], [], 0, []
    closed = []
    for t in range(trials):
        X = dme_data(clients, dim, rng=np.random.SeedSequence([seed, t, 1]))
        if cod.mechanism is not None:
            closed.append(chunked_closed_form_mse(cod.mechanism, X, blocks=blocks, repetitions=reps))
        rng = np.random.default_rng(np.random.SeedSequence([seed, t, 2]))
        ids = np.arange(clients)
        est = np.empty_like(X)
        for s in range(0, clients, batch):
            sl = slice(s, min(s + batch, clients))
            t0 = time.perf_counter()
            payloads = cod.encode(X[sl], run_seed=seed, round=t, clients=ids[sl], rng=rng)
            t1 = time.perf_counter()
            res = cod.decode(payloads, run_seed=seed, round=t, clients=ids[sl])
            t2 = time.perf_counter()
            enc_s += t1 - t0
            dec_s += t2 - t1
            failed += res.n_failed
            est[sl] = res.estimates
            pbits.extend(cod.payload_bits(p) for p in payloads)
            mbytes.extend(len(p) for p in payloads)
        mses.append(float(np.sum((X.mean(0) - est.mean(0)) ** 2)))
        user_err.append(np.sum((est - X) ** 2, axis=1))
    mses = np.array(mses)
    user_err = np.concatenate(user_err)
    ev = cod.transcript_event()
    mech = cod.mechanism
    return {
        "config": {
            "mechanism": mechanism, "codec": codec, "epsilon": epsilon, "bits": bits, "dim": dim,
            "clients": clients, "trials": trials, "seed": seed, **codec_options,
        },
        "mse": float(mses.mean()),
        "mse_std": float(mses.std(ddof=1)) if trials > 1 else 0.0,
        "mse_sem": float(mses.std(ddof=1) / np.sqrt(trials)) if trials > 1 else 0.0,
        "mse_trials": mses.tolist(),
        # the uncompressed mechanism under the same chunking (blocks, repetitions), per user / clients
        "mse_uncompressed_closed_form": float(np.mean(closed) / clients) if mech is not None else None,
        # E‖Z_i − x_i‖² over all users and trials: E[mse] = per_user_mse / clients for independent unbiased
        # clients, and this average is far less noisy than mse itself
        "per_user_mse": float(user_err.mean()),
        "per_user_mse_sem": float(user_err.std(ddof=1) / np.sqrt(user_err.size)) if user_err.size > 1 else 0.0,
        "payload_bits": float(np.mean(pbits)),
        "message_bytes": float(np.mean(mbytes)),
        "epsilon_mechanism": float(epsilon),
        "epsilon_transcript": event_epsilon(ev),
        "transcript_event": repr(ev),
        "encode_seconds_per_client": enc_s / (clients * trials),
        "decode_seconds_per_client": dec_s / (clients * trials),
        "clients_failed": failed,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    # --mechanism, --codec and --epsilon are required, on the command line or in --config's file (check_args)
    p.add_argument("--mechanism", default=None, choices=sorted(MECHANISMS))
    p.add_argument("--codec", default=None, choices=sorted(CODECS))
    p.add_argument("--epsilon", type=float, default=None)
    p.add_argument("--bits", type=int, default=None, help="index bits (MRC: N = 2^bits; RRSC/SQKR: message bits)")
    p.add_argument("--dim", type=int, default=500)
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=None, help="PPR's alpha (> 1)")
    p.add_argument("--top", type=int, default=None, help="subset codec: size m of the favoured set (default: least error)")
    p.add_argument("--repetitions", type=int, default=1, help="split epsilon into this many repetitions")
    p.add_argument("--blocks", type=int, default=1, help="split the dimension into this many blocks")
    p.add_argument("--out", default=None, help="result JSON (never overwritten without --force); a sweep's folder")
    p.add_argument("--force", action="store_true")
    from .runconfig import add_config_arguments

    add_config_arguments(p, resume=True)


def check_args(args) -> None:
    """The options every DME run needs, and the output path, before any work (a sweep checks every point)."""
    from .._validation import check_output_path

    missing = [n for n in ("mechanism", "codec", "epsilon") if getattr(args, n) is None]
    if missing:
        raise ParameterError(f"ldp-rec dme needs --{missing[0]} (on the command line or in the --config file)")
    if args.out:
        check_output_path(args.out, force=args.force)


def run(args) -> int:
    from .sweep import main

    return main(args, command="dme", add_arguments=add_arguments, run_one=run_one, check=check_args)


def run_one(args) -> int:
    check_args(args)
    opts = {k: v for k, v in (("alpha", args.alpha), ("top", args.top), ("repetitions", args.repetitions),
                              ("blocks", args.blocks))
            if v is not None and not (k in ("repetitions", "blocks") and v == 1)}
    # run_dme checks every option and builds the codec before it computes anything; a refusal is an
    # LdpRecError, which the command prints in one line (ldp_rec.cli); --out was checked before
    res = run_dme(mechanism=args.mechanism, codec=args.codec, epsilon=args.epsilon, bits=args.bits, dim=args.dim,
                  clients=args.clients, trials=args.trials, seed=args.seed, **opts)
    keys = ("mse", "mse_std", "mse_uncompressed_closed_form", "per_user_mse", "per_user_mse_sem", "payload_bits", "message_bytes", "epsilon_transcript",
            "encode_seconds_per_client", "decode_seconds_per_client", "clients_failed")
    for k in keys:
        print(f"{k:32s} {res[k]}")
    if args.out:
        row = {**res["config"], **{k: v for k, v in res.items() if k != "config" and not isinstance(v, (list, dict))}}
        print("wrote", write_result(args.out, res, force=args.force, tables={"table": [row]}))
    return 0
