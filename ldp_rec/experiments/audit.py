"""``ldp-rec audit``: a statistical audit of a codec's transcript privacy (references.md §4).

The server sees the shared seed and the message. The audit fixes the candidate set (the server knows
it), picks an input pair (x, x'), runs the *real* encoder T times on each (the T runs are a batch of
clients sharing ONE candidate set) and turns the message counts into a Clopper–Pearson lower bound on
ε (:mod:`ldp_rec.privacy.audit`).

Choice of the candidate set, the pair and the event (:mod:`.audit_plan`; planning is independent of
the audited runs, so the bound stays valid):

* codecs whose selection pmf is known given the candidates (MRC, modified MRC, rejection sampling,
  subset selection): *seeded* plans search ``keys`` real streams and a pool of inputs (random
  directions and ± the candidates' directions; per message the pool inputs maximising and minimising
  its probability); *constructed* plans (not subset selection) use the codec's extremal candidate set
  (for MRC: one candidate where r_x/r_x' is largest, the others where it is smallest, so the
  normaliser moves by e^ε too). The event is the Neyman–Pearson set of messages with the largest
  predicted bound, fixed in advance and evaluated on all T runs per input;
* ORC: an input whose ratio peaks at candidate 0 sends K = 0 surely (sorted Gumbels), so ``{K ≠ 0}``
  is impossible under it: planned on seeded and constructed sets, a pilot predicts its frequency;
* PPR (no closed-form pmf): the MRC pmf of the first 16 candidates shortlists four pairs, a pilot
  run of each (fresh runs, discarded afterwards) picks the most distinguishable, and the event is
  selected on the first half of the runs and evaluated on the second (held-out);
* ``none`` (uncompressed): x = an extreme input, x' = −x, and the event is a threshold on ⟨Z, x⟩.

``--candidates auto`` (default) takes the plan with the larger predicted bound of the two families.

The result states ``epsilon_worst_case``, the value the audit targets: the largest exact loss over
the constructed family (for MRC with a two-level ratio, the supremum over candidate sets of size N,
``ε + log((c₁(N−1) + c₂)/(c₁ + c₂(N−1)))``, which tends to the 2ε claim as N grows), else the exact
loss of the audited pair; and ``gap_to_claim = claim − bound``.

``epsilon_exact_on_pair`` is ``max_k |log π_k(x) − log π_k(x')|`` from the exact pmf (MRC, modified MRC,
rejection sampling, subset selection), ``inf`` for ORC's certified pair, the log-ratio spread
``max_z |log r_x(z) − log r_x'(z)|`` for uncompressed step-ratio mechanisms (cap mechanisms,
coordinate RR), and ``null`` for PPR.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

from ..codec.registry import CODECS, MECHANISMS, make_codec
from .._validation import check_positive_int, check_probability
from ..errors import LdpRecError, ParameterError
from ..mechanisms.base import RatioMechanism
from ..mechanisms.cap import CapMechanism
from ..mechanisms.randomized_response import CoordinateRR
from ..privacy import audit as A
from ..privacy.events import event_epsilon
from ..rec import randomness
from ..rec.base import MechanismTarget
from . import audit_plan as P
from . import results

DEFAULT_TRIALS = 200_000
CANDIDATE_SETS = ("auto", "seeded", "constructed")
_CHUNK_ROWS = 1 << 15  # encoder rows per call (bounds memory; trials are vectorised within a chunk)
_POOL_RANDOM = 1024


class SharedKeyTarget(MechanismTarget):
    """``n`` runs of one input ``u`` on one stream ``key`` (all rows see the same candidates).

    Every row's log ratios are identical, so :meth:`log_ratio_block` computes one row through the
    ordinary :class:`MechanismTarget` path and repeats it (a copy, so a simulator may write to it)."""

    def __init__(self, mechanism: RatioMechanism, u: np.ndarray, key, n: int) -> None:
        u = np.asarray(u, dtype=np.float64).reshape(1, -1)
        super().__init__(mechanism, np.broadcast_to(u, (int(n), u.shape[1])), np.full(int(n), key, dtype=np.uint64))
        self._one = MechanismTarget(mechanism, u, self.keys[:1])

    def log_ratio_block(self, start: int, count: int) -> np.ndarray:
        row = self._one.log_ratio_block(start, count)
        return np.repeat(row, self.n, axis=0)


def run_encoder(sim, mech: RatioMechanism, u: np.ndarray, key, trials: int, *, rng, candidates=None) -> np.ndarray:
    """Indices sent by ``sim`` in ``trials`` independent runs on input ``u`` with stream ``key``, or on
    the explicit candidate set ``candidates`` (N, dim_P) when given (:class:`~.audit_plan.ConstructedTarget`)."""
    rng = np.random.default_rng(rng)
    rows = _CHUNK_ROWS // 4 if sim.heavy_rows else _CHUNK_ROWS
    out = np.empty(trials, dtype=np.int64)
    for s in range(0, trials, rows):  # chunks of rows, each a vectorised batch
        n = min(rows, trials - s)
        t = SharedKeyTarget(mech, u, key, n) if candidates is None else P.ConstructedTarget(mech, u, candidates, n)
        out[s : s + n] = sim.encode(t, rng=rng).indices
    return out


def _pmf_function(sim, mech):
    """(number of candidates M, target -> log pmf (P, M') of its rows, exact?): the simulator's declared
    selection law (:meth:`~ldp_rec.rec.base.Simulator.selection_law`)."""
    law = sim.selection_law(mech)
    if law.log_pmf is None:
        raise NotImplementedError(f"{sim.name} declares only the support of its selection law")
    return law.candidates, law.log_pmf, law.exact


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def input_pool(mech: RatioMechanism, key, n_candidates: int, *, rng) -> np.ndarray:
    """Prepared inputs to search: random extreme inputs and ± the candidates' directions."""
    d = int(mech.dim)
    g = rng.standard_normal((_POOL_RANDOM, d))
    if isinstance(mech, CoordinateRR):
        return np.unique(np.where(g >= 0, 1.0, -1.0), axis=0)  # vertices of the box
    ref = mech.reference
    cand = ref.transform(randomness.block(np.array([key], dtype=np.uint64), 0, n_candidates, ref.base_width, ref.base)[0])
    cand = np.asarray(cand, dtype=np.float64)
    cand = cand[np.linalg.norm(cand, axis=1) > 0]
    return _unit(np.concatenate([g, cand, -cand]))


def plan_pairs(sim, mech, *, keys, trials: int, confidence: float, rng, top: int = 1) -> list[dict]:
    """The ``top`` (key, message, x, x') with the largest predicted bound (module doc)."""
    M, log_pmf, _ = _pmf_function(sim, mech)
    found = []
    for key in keys:
        U = input_pool(mech, key, M, rng=rng)
        lp = log_pmf(MechanismTarget(mech, U, np.full(U.shape[0], key, dtype=np.uint64)))
        i1, i0 = np.argmax(lp, axis=0), np.argmin(lp, axis=0)
        k = np.arange(lp.shape[1])
        pred = A.predicted_lower_bound(np.exp(lp[i1, k]), np.exp(lp[i0, k]), max(trials // 2, 1), confidence=confidence)
        for j in np.argsort(-pred)[:top]:
            found.append({"key": key, "message": int(j), "u1": U[i1[j]], "u0": U[i0[j]], "predicted": float(pred[j])})
    found.sort(key=lambda f: -f["predicted"])
    out, seen = [], set()
    for f in found:  # distinct pairs only
        sig = (int(f["key"]), f["u1"].tobytes(), f["u0"].tobytes())
        if sig not in seen:
            seen.add(sig)
            out.append(f)
        if len(out) == top:
            break
    return out


def exact_pair_epsilon(sim, mech, key, u1, u0) -> float | None:
    """``max_k |log π_k(u1) − log π_k(u0)|`` on stream ``key`` (None when the pmf is not known)."""
    try:
        M, log_pmf, exact = _pmf_function(sim, mech)
    except NotImplementedError:
        return None
    if not exact:
        return None
    U = np.stack([u1, u0])
    lp = log_pmf(MechanismTarget(mech, U, np.full(2, key, dtype=np.uint64)))
    return A.exact_transcript_epsilon(lp[0], lp[1])


def _plan(sim, mech, *, keys, trials, confidence, rng, candidates: str) -> tuple[P.Plan, float | None]:
    """The plan with the largest predicted bound among the allowed families, and the worst case the
    audit targets (largest exact loss over the constructed family; None when not computed)."""
    if sim.selection_law(mech).kind == "support":
        return P.plan_orc(sim, mech, keys=keys if candidates != "constructed" else [], trials=trials,
                          confidence=confidence, rng=rng, pool=lambda m, k, n, rng: input_pool(m, k, n, rng=rng))
    plans, worst = [], None
    built = P.plan_constructed(sim, mech, trials=trials, confidence=confidence, rng=rng)
    if built is not None:
        worst = built[1]
        if candidates != "seeded":
            plans.append(built[0])
    if candidates != "constructed" or not plans:
        M, log_pmf, _ = _pmf_function(sim, mech)
        plans.append(P.plan_seeded(M, log_pmf, mech, keys=keys, trials=trials, confidence=confidence, rng=rng,
                                   pool=lambda m, k, n, rng: input_pool(m, k, n, rng=rng)))
    return max(plans, key=lambda p: p.predicted), worst


def _audit_rec(codec, *, trials, confidence, n_keys, seed, rng, candidates: str = "auto") -> dict:
    sim, mech = codec.simulators[0], codec.chunk_mechanisms[0]
    keys = [randomness.derive_key(seed, 0, c, 0, domain="audit") for c in range(n_keys)]
    worst, pilot_bound = None, None
    kind = sim.selection_law(mech).kind
    if kind == "proxy":  # plan by proxy, then pilot runs on fresh randomness; held-out event
        pilot = max(2000, trials // 8)
        shortlist = plan_pairs(sim, mech, keys=keys, trials=trials, confidence=confidence, rng=rng, top=4)
        for f in shortlist:
            m1 = run_encoder(sim, mech, f["u1"], f["key"], pilot, rng=rng)
            m0 = run_encoder(sim, mech, f["u0"], f["key"], pilot, rng=rng)
            f["pilot_bound"] = A.audit_messages(m1, m0, confidence=confidence).epsilon_lower_bound
        best = max(shortlist, key=lambda f: f["pilot_bound"])
        plan = P.Plan("seeded", best["u1"], best["u0"], best["predicted"], key=int(best["key"]))
        pilot_bound = best["pilot_bound"]
    else:
        plan, worst = _plan(sim, mech, keys=keys, trials=trials, confidence=confidence, rng=rng, candidates=candidates)
    t0 = time.perf_counter()
    m1 = run_encoder(sim, mech, plan.u1, plan.key, trials, rng=rng, candidates=plan.candidates)
    m0 = run_encoder(sim, mech, plan.u0, plan.key, trials, rng=rng, candidates=plan.candidates)
    enc_s = time.perf_counter() - t0
    if plan.event is None:
        out, event_kind = A.audit_messages(m1, m0, confidence=confidence), "held-out"
    else:  # fixed before the runs: every run evaluates it
        s1, s0 = np.isin(m1, plan.event).astype(float), np.isin(m0, plan.event).astype(float)
        lb, k1, n1, k0, n0 = A.evaluate_event(s1, s0, 0.5, +1, confidence=confidence)
        out, event_kind = A.AuditOutcome(lb, confidence, 0.5, +1, k1, n1, k0, n0, plan.predicted), "planned"
    exact = plan.exact if plan.kind == "constructed" or kind == "support" else exact_pair_epsilon(
        sim, mech, plan.key, plan.u1, plan.u0)
    return {
        "outcome": out,
        "event_kind": event_kind,
        "epsilon_exact_on_pair": exact,
        "epsilon_worst_case": worst,
        "pair": {"candidate_set": plan.kind, "key": plan.key, "x": plan.u1 * mech.clip, "x_prime": plan.u0 * mech.clip,
                 "candidates": None if plan.candidates is None else P.run_lengths(plan.candidates),
                 "planned_messages": None if plan.event is None else plan.event.tolist()[:64],
                 "planned_message_count": None if plan.event is None else int(plan.event.size),
                 "predicted_bound": plan.predicted, "pilot_bound": pilot_bound},
        "distinct_messages": int(np.unique(np.concatenate([m1, m0])).size),
        "encode_seconds": enc_s,
    }


def _extreme_input(mech) -> np.ndarray:
    d = int(mech.dim)
    clip = float(getattr(mech, "clip", 1.0))
    if isinstance(mech, CoordinateRR):
        return np.full(d, clip)
    return np.eye(d)[0] * clip


def spread_on_pair(mech, x1, x0, *, rng, n: int = 4096) -> float | None:
    """``max_z |log r_x1(z) − log r_x0(z)|`` over outputs of both inputs: exact for step ratios
    (cap mechanisms, coordinate RR); None for other mechanisms."""
    if not isinstance(mech, (CapMechanism, CoordinateRR)):
        return None
    u1, u0 = mech.prepare(x1[None, :], rng=rng)[0], mech.prepare(x0[None, :], rng=rng)[0]
    v = np.concatenate([mech.sample(np.tile(u, (n, 1)), rng=rng) for u in (u1, u0)])
    return float(np.max(np.abs(mech.log_ratio(v, u1) - mech.log_ratio(v, u0))))


def _audit_uncompressed(codec, *, trials, confidence, rng) -> dict:
    mech = codec.mechanism
    x1 = _extreme_input(mech)
    x0 = -x1
    t0 = time.perf_counter()
    stats = []
    for x in (x1, x0):  # what the server receives: the float32 estimate; statistic ⟨Z, x1⟩
        z = np.asarray(mech.privatize(np.tile(x, (trials, 1)), rng=rng), dtype=np.float32)
        stats.append(z.astype(np.float64) @ x1)
    enc_s = time.perf_counter() - t0
    out = A.audit_scores(stats[0], stats[1], confidence=confidence)
    return {
        "outcome": out,
        "epsilon_exact_on_pair": spread_on_pair(mech, x1, x0, rng=rng),
        "pair": {"x": x1, "x_prime": x0, "statistic": "<Z, x>"},
        "encode_seconds": enc_s,
    }


def run_audit(*, mechanism: str, codec: str, epsilon: float, dim: int = 4, bits: int | None = None,
              alpha: float | None = None, tries: int | None = None, trials: int = DEFAULT_TRIALS,
              confidence: float = 0.95, seed: int = 0, keys: int = 8, candidates: str = "auto") -> dict:
    """Audit one (mechanism, codec, ε); returns the result dict (see :func:`run` for the fields).

    ``candidates``: ``"auto"`` (the better predicted of seeded and constructed candidate sets),
    ``"seeded"`` (real streams only) or ``"constructed"`` (:mod:`.audit_plan`)."""
    if candidates not in CANDIDATE_SETS:
        raise ParameterError(f"candidates must be one of {CANDIDATE_SETS}, got {candidates!r}")
    trials = check_positive_int(trials, "trials", minimum=4)
    keys = check_positive_int(keys, "keys")
    check_probability(confidence, "confidence")
    t0 = time.perf_counter()
    cdc = make_codec(mechanism, codec, epsilon=epsilon, dim=dim, bits=bits, alpha=alpha, tries=tries)
    rng = np.random.default_rng(seed)
    if codec == "none":
        res = _audit_uncompressed(cdc, trials=trials, confidence=confidence, rng=rng)
    else:
        res = _audit_rec(cdc, trials=trials, confidence=confidence, n_keys=keys, seed=seed, rng=rng,
                         candidates=candidates)
    out: A.AuditOutcome = res.pop("outcome")
    sim = cdc.simulators[0] if codec != "none" else None
    params = dataclasses.asdict(sim) if sim is not None else {}  # the simulator's own parameters
    claimed = event_epsilon(cdc.transcript_event())
    worst, source = res.pop("epsilon_worst_case", None), "constructed family (sup over candidate sets of size N)"
    if worst is None:  # no extremal family for this codec: the audit targets its pair's exact loss
        worst, source = res["epsilon_exact_on_pair"], "exact loss of the audited pair"
    if worst is None:
        source = None
    lb = out.epsilon_lower_bound
    return {
        "config": {"mechanism": mechanism, "codec": codec, "epsilon": float(epsilon), "dim": dim,
                   "bits": params.get("bits"), "alpha": params.get("alpha"),
                   "tries": params.get("tries"), "trials": trials, "confidence": confidence,
                   "seed": seed, "keys_searched": keys if codec != "none" else None,
                   "candidates": candidates if codec != "none" else None},
        "epsilon_claimed": claimed,
        "epsilon_worst_case": worst,
        "worst_case_source": source,
        "epsilon_lower_bound": lb,
        "gap_to_claim": claimed - lb,
        "gap_to_worst_case": None if worst is None else worst - lb,
        "confidence": out.confidence,
        "trials": trials,
        "exceeds_claim": bool(out.epsilon_lower_bound > claimed),
        "exceeds_epsilon": bool(out.epsilon_lower_bound > float(epsilon)),
        "event": {"kind": res.pop("event_kind", "held-out"), "threshold": out.threshold, "direction": out.direction, "k1": out.k1, "n1": out.n1,
                  "k0": out.k0, "n0": out.n0, "selection_bound": out.selection_bound},
        **res,
        "seconds": time.perf_counter() - t0,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mechanism", required=True, choices=sorted(MECHANISMS))
    p.add_argument("--codec", required=True, choices=sorted(CODECS))
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--bits", type=int, default=None, help="MRC / modified MRC index bits (N = 2^bits)")
    p.add_argument("--alpha", type=float, default=None, help="PPR's alpha (default 2)")
    p.add_argument("--tries", type=int, default=None, help="rejection sampling tries")
    p.add_argument("--dim", type=int, default=4, help="dimension of the audited inputs")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="encoder runs per input")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--keys", type=int, default=8, help="candidate sets (stream keys) searched for a pair")
    p.add_argument("--candidates", choices=CANDIDATE_SETS, default="auto",
                   help="candidate sets searched: real streams (seeded), the codec's extremal set (constructed), or both")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="result JSON (never overwritten without --force)")
    p.add_argument("--force", action="store_true")


def check_args(args) -> None:
    """Memory bounds before any work (the rest is checked by :func:`run_audit` before it computes):
    ``trials`` indices per input, and the 2^bits candidates of the fixed-candidate codecs for a chunk of
    encoder rows."""
    from .._validation import check_candidate_memory, check_memory
    from ..codec.registry import FIXED_CANDIDATE_CODECS

    check_memory(6.0 * 8 * max(int(args.trials), 0), f"--trials {args.trials}", "lower --trials")
    if args.codec in FIXED_CANDIDATE_CODECS and args.bits is not None:
        check_candidate_memory(codec=args.codec, bits=args.bits, users=min(max(int(args.trials), 1), _CHUNK_ROWS),
                               dim=args.dim)


def run(args) -> int:
    try:
        check_args(args)
        res = run_audit(mechanism=args.mechanism, codec=args.codec, epsilon=args.epsilon, dim=args.dim, bits=args.bits,
                        alpha=args.alpha, tries=args.tries, trials=args.trials, confidence=args.confidence,
                        seed=args.seed, keys=args.keys, candidates=args.candidates)
    except (LdpRecError, NotImplementedError) as exc:
        print(f"ldp-rec: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    ev, worst = res["event"], res["epsilon_worst_case"]
    where = res.get("pair", {}).get("candidate_set")
    print(f"{args.mechanism} / {args.codec} at epsilon = {args.epsilon:g}: claimed {res['epsilon_claimed']:.4g}, "
          f"worst case targeted {'unknown' if worst is None else f'{worst:.4g}'}, "
          f"audited lower bound {res['epsilon_lower_bound']:.4g} ({res['confidence']:.0%} confidence, "
          f"{res['trials']} runs per input; {res['gap_to_claim']:.3g} below the claim), "
          f"exact on pair {res['epsilon_exact_on_pair']}")
    print(f"  event ({ev['kind']}{', ' + where + ' candidates' if where else ''}): {ev['k1']}/{ev['n1']} vs "
          f"{ev['k0']}/{ev['n0']} hits; {res['seconds']:.1f} s")
    if args.out:
        print("wrote", results.write_result(args.out, res, force=args.force))
    return 0
