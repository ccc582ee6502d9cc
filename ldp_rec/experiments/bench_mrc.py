"""MRC speed benchmark (not a test): encode/decode cost per client against raw sampling costs.

``run_mrc_speed`` measures, in one run, medians over ``reps`` of

* MRC encode time per client on a PrivUnitG target (fused projection kernel, candidates never
  stored) vs the raw cost of drawing ``N·d`` float32 normals with ``default_rng().standard_normal``
  (goal: ratio ≤ 1.5);
* MRC decode time per client (one vectorised gather for all clients) vs drawing one candidate
  (``d`` float32 normals) (goal: ≤ 3);
* a straightforward per-client baseline: ``np.random.RandomState(seed)`` float64 normals for all N
  candidates, projections, selection; decoding regenerates all N candidates (goals: our encode
  ≥ 5× faster, our decode ≥ 200× faster).

Run: ``python -m ldp_rec.experiments.bench_mrc``.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from ..mechanisms.privunitg import PrivUnitG
from ..rec import randomness
from ..rec.base import MechanismTarget
from ..rec.mrc import MRC


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _naive_encode(mech: PrivUnitG, u: np.ndarray, seed: int, N: int, rng) -> int:
    z = np.random.RandomState(seed).normal(size=(N, u.size))
    w = np.exp(mech.log_ratio(z, u))
    return int(rng.choice(N, p=w / w.sum()))


def _naive_decode(seed: int, k: int, N: int, d: int) -> np.ndarray:
    return np.random.RandomState(seed).normal(size=(N, d))[k]


def run_mrc_speed(dim: int = 500, bits: int = 11, clients: int = 64, reps: int = 5, epsilon: float = 4.0, seed: int = 0) -> dict:
    """Median timings (seconds per client) and the four ratios of the module doc."""
    N = 1 << bits
    mech = PrivUnitG(epsilon=epsilon, dim=dim)
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((clients, dim))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    keys = randomness.derive_keys(seed, 0, np.arange(clients))
    target = MechanismTarget(mech, U, keys)
    sim = MRC(bits)
    sim.encode(target, rng=0)  # compile / warm up kernels
    idx = sim.encode(target, rng=1).indices
    sim.decode(idx, target.reference, keys)

    enc = _median_time(lambda: sim.encode(target, rng=rng), reps) / clients
    dec = _median_time(lambda: sim.decode(idx, target.reference, keys), max(reps, 20)) / clients
    raw_gen = np.random.default_rng()
    raw = _median_time(lambda: raw_gen.standard_normal((N, dim), dtype=np.float32), reps)
    one = _median_time(lambda: raw_gen.standard_normal(dim, dtype=np.float32), 200)
    nc = min(clients, 8)
    naive_enc = _median_time(lambda: [_naive_encode(mech, U[c], c, N, rng) for c in range(nc)], reps) / nc
    naive_dec = _median_time(lambda: [_naive_decode(c, int(idx[c]), N, dim) for c in range(nc)], reps) / nc
    return {
        "config": {"dim": dim, "bits": bits, "clients": clients, "reps": reps, "epsilon": epsilon},
        "seconds_per_client": {
            "encode": enc,
            "decode": dec,
            "raw_normals_N_by_d_float32": raw,
            "raw_one_candidate_float32": one,
            "naive_encode_randomstate": naive_enc,
            "naive_decode_regenerate_all": naive_dec,
        },
        "ratios": {
            "encode_over_raw (goal <= 1.5)": enc / raw,
            "decode_over_one_candidate (goal <= 3)": dec / one,
            "naive_encode_over_encode (goal >= 5)": naive_enc / enc,
            "naive_decode_over_decode (goal >= 200)": naive_dec / dec,
        },
        "environment": {
            "cpus": os.cpu_count(),
            "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", 0)) or None,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }


if __name__ == "__main__":
    print(json.dumps(run_mrc_speed(), indent=2))
