"""Communication table: payload bits per client per round of every mechanism × codec pair.

    python simulations/comm_table.py [--epsilons 1,4,8] [--dims 500,650] [--clients 8] [--out results]

For each pair that :func:`ldp_rec.codec.registry.make_codec` accepts (a pair that makes no sense
raises ``IncompatibleError``, whose reason is recorded), the table encodes ``--clients`` unit vectors
(the DME inputs of :func:`ldp_rec.experiments.dme.dme_data`), measures ``codec.payload_bits`` on the
real payloads (information bits, header excluded; mean and max over clients) and compares them with

* float32: 32·d bits, the uncompressed LDP baseline, and
* the information bound ε·log2(e) bits: for an ε-LDP mechanism, I[X; Z] ≤ D_∞ ≤ ε nats
  (references.md §1), so no channel simulator needs much more than this on average; ε here is the
  *mechanism's* ε (for (ε, δ) mechanisms with unbounded ratios, e.g. Gaussian, the bound does not apply);
* the sharper bound D_∞[Q_x ‖ P]·log2 e = log c_max·log2 e bits, from the mechanism's ratio bounds
  (``log_ratio_bounds``; a band-tuned PrivUnitG behind modified MRC has c_max ≤ e^ε but a wider spread).

Index bits of MRC-type codecs are the registry default b = ⌈ε·log2 e⌉ + 4 (the one rule of every entry point);
SQKR and RRSC are their own b-bit codes (``native``; RRSC at b = 8, M = 256 ≤ d). The transcript ε
(what the server sees, references.md §4) is in its own column. Writes ``comm_table.csv``,
``comm_table.md`` and ``comm_table.json``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldp_rec.codec.registry import CODECS, MECHANISMS, make_codec  # noqa: E402
from ldp_rec.errors import LdpRecError  # noqa: E402
from ldp_rec.experiments.dme import dme_data  # noqa: E402
from ldp_rec.experiments.results import run_dir, write_result  # noqa: E402
from ldp_rec.privacy.events import event_epsilon  # noqa: E402

LOG2E = math.log2(math.e)
NATIVE_BITS = {"rrsc": 8, "sqkr": 8}  # b of the discrete mechanisms (RRSC needs 2^b <= d)


def measure_pair(mechanism: str, codec: str, *, epsilon: float, dim: int, clients: int, seed: int = 0) -> dict:
    """Bits of ``clients`` real payloads of one pair; ``{"status": "n/a", "reason": ...}`` if the pair
    makes no sense (or fails to encode/decode, with the error)."""
    row = {"mechanism": mechanism, "codec": codec, "epsilon": float(epsilon), "dim": int(dim),
           "float32_bits": 32 * dim, "info_bound_bits": float(epsilon) * LOG2E}
    try:
        bits = NATIVE_BITS.get(mechanism) if codec == "native" else None
        cod = make_codec(mechanism, codec, epsilon=float(epsilon), dim=int(dim), bits=bits)
    except LdpRecError as exc:
        return {**row, "status": "n/a", "reason": str(exc).split(";")[0]}
    X = dme_data(clients, dim, rng=np.random.SeedSequence([seed, dim, 1]))
    ids = np.arange(clients)
    rng = np.random.default_rng(np.random.SeedSequence([seed, dim, 2]))
    try:
        t0 = time.perf_counter()
        pay = cod.encode(X, run_seed=seed, round=1, clients=ids, rng=rng)
        t1 = time.perf_counter()
        res = cod.decode(pay, run_seed=seed, round=1, clients=ids)
        t2 = time.perf_counter()
    except (LdpRecError, TypeError, ValueError) as exc:
        return {**row, "status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    b = np.array([cod.payload_bits(p) for p in pay], dtype=np.float64)
    ev = cod.transcript_event()
    mech = getattr(cod, "mechanism", None)
    hi = mech.log_ratio_bounds()[1] if hasattr(mech, "log_ratio_bounds") else math.nan
    return {**row, "dinf_bound_bits": hi * LOG2E if hi > 0 else math.nan,
            "status": "ok" if res.n_failed == 0 else f"{res.n_failed} failed to decode",
            "bits_mean": float(b.mean()), "bits_max": float(b.max()), "message_bytes_mean": float(np.mean([len(p) for p in pay])),
            "saving_vs_float32": 32 * dim / float(b.mean()), "ratio_to_info_bound": float(b.mean()) / (float(epsilon) * LOG2E),
            "transcript_epsilon": event_epsilon(ev), "transcript_event": repr(ev),
            "encode_ms_per_client": 1e3 * (t1 - t0) / clients, "decode_ms_per_client": 1e3 * (t2 - t1) / clients,
            "reason": ""}


def build_table(*, epsilons, dims, clients: int, seed: int = 0, mechanisms=None, codecs=None, log=print) -> list[dict]:
    rows = []
    for d in dims:
        for eps in epsilons:
            for m in mechanisms or MECHANISMS:
                for c in codecs or CODECS:
                    r = measure_pair(m, c, epsilon=eps, dim=d, clients=clients, seed=seed)
                    rows.append(r)
                    if r["status"] != "n/a":
                        log(f"  d={d} ε={eps:g} {m:10s} {c:13s} {r['status']:6s} "
                            + (f"{r['bits_mean']:9.1f} bits (float32 {32 * d}, bound {r['info_bound_bits']:.1f}), "
                               f"transcript ε {r['transcript_epsilon']:.3g}, {r['encode_ms_per_client']:.1f} ms/client"
                               if "bits_mean" in r else r["reason"]))
    return rows


FIELDS = ["mechanism", "codec", "epsilon", "dim", "status", "bits_mean", "bits_max", "message_bytes_mean",
          "float32_bits", "saving_vs_float32", "info_bound_bits", "dinf_bound_bits", "ratio_to_info_bound", "transcript_epsilon",
          "transcript_event", "encode_ms_per_client", "decode_ms_per_client", "reason"]


def write_csv(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def markdown(rows: list[dict]) -> str:
    """One table per d of the pairs that ran, then the list of pairs that make no sense and why."""
    out = []
    for d in sorted({r["dim"] for r in rows}):
        out += [f"### d = {d} (float32 = {32 * d} bits)", "",
                "| mechanism | codec | ε | bits/client (mean, max) | ε·log2 e | D∞·log2 e | × float32 saving | bits / (ε·log2 e) | transcript ε |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["dim"] != d or "bits_mean" not in r:
                continue
            te = r["transcript_epsilon"]
            out.append(f"| {r['mechanism']} | {r['codec']} | {r['epsilon']:g} | {r['bits_mean']:.1f}, {r['bits_max']:.0f} | "
                       f"{r['info_bound_bits']:.2f} | {r['dinf_bound_bits']:.2f} | {r['saving_vs_float32']:.0f} | {r['ratio_to_info_bound']:.2f} | "
                       f"{'not LDP' if math.isinf(te) else f'{te:.3g}'} |")
        out.append("")
    skipped = sorted({(r["mechanism"], r["codec"], r["reason"]) for r in rows if r["status"] in ("n/a", "error")})
    if skipped:
        out += ["### Pairs that make no sense (or failed)", "", "| mechanism | codec | reason |", "|---|---|---|"]
        out += [f"| {m} | {c} | {why} |" for m, c, why in skipped]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="1,4,8")
    ap.add_argument("--dims", default="500,650")
    ap.add_argument("--clients", type=int, default=8, help="unit vectors encoded per pair")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--into", default=None, help="write into this existing folder (used by run_all.py)")
    args = ap.parse_args(argv)
    out = Path(args.into) if args.into else run_dir(args.out, "comm-table")
    out.mkdir(parents=True, exist_ok=True)
    eps = [float(e) for e in args.epsilons.split(",")]
    dims = [int(d) for d in args.dims.split(",")]
    t0 = time.perf_counter()
    rows = build_table(epsilons=eps, dims=dims, clients=args.clients, seed=args.seed,
                       log=lambda m: print(m, flush=True))
    wall = time.perf_counter() - t0
    write_csv(rows, out / "comm_table.csv")
    (out / "comm_table.md").write_text(markdown(rows))
    write_result(out / "comm_table.json", {"table": "communication", "settings": vars(args), "rows": rows,
                                            "wall_seconds": wall})
    print(f"wrote {out / 'comm_table.md'} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
