"""How far a malicious node can move the mean by choosing its users' indices (not a test).

An ``ldp-rec`` payload is an index K into candidates the *server* draws from the shared seed, so
every decoded estimate is ``unbias(Z_K)`` for one of the server's own N candidates: bounded by
construction, whatever the node sends. A node that picks K adversarially can still choose the
candidate that pushes hardest in a direction v of its choosing. This script measures that push,
``max_k ⟨unbias(Z_k), v⟩``, against the most an honest user can contribute in expectation
(``E⟨x̂, v⟩ = ⟨x, v⟩ ≤ C``) and against the spread of an honest user's estimate, for the cap
mechanisms behind fixed-candidate codecs. The float mode (``ldp``) is bounded by the server's
output-range check instead (``Codec.output_norm_bound``, printed for comparison).

    python simulations/adversarial_index.py [--users 200] [--epsilon 4] [--dim 650] [--bits 10]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ldp_rec.codec.registry import make_codec  # noqa: E402
from ldp_rec.rec.base import Message  # noqa: E402
from ldp_rec.rec.randomness import derive_keys  # noqa: E402


def candidate_estimates(codec, key: np.uint64) -> np.ndarray:
    """``unbias(Z_k)`` for every candidate k of one user's stream: what the server would decode."""
    sim, mech = codec._sims[0], codec._mechs[0]
    n = 1 << sim.bits
    V = sim.decode([Message(index=k) for k in range(n)], mech.reference, np.full(n, key, dtype=np.uint64))
    return mech.unbias(V, **codec._unbias_kw[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--epsilon", type=float, default=4.0)
    p.add_argument("--dim", type=int, default=650)
    p.add_argument("--bits", type=int, default=10)
    p.add_argument("--clip", type=float, default=0.5)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    v = np.zeros(args.dim)
    v[0] = 1.0  # the direction the attacker pushes (any unit vector: the candidates are isotropic)
    print(f"eps={args.epsilon} d={args.dim} bits={args.bits} clip C={args.clip} users={args.users} "
          f"({platform.machine()}, numpy {np.__version__})")
    print(f"{'mechanism+codec':26s} {'honest max E<x,v>':>17s} {'honest sd <x^,v>':>16s} "
          f"{'adversarial <x^,v> (median, max)':>32s} {'ratio to C':>10s}")
    for mech, codec_name in (("privunitg", "modified-mrc"), ("privunitg", "subset"), ("privunit2", "modified-mrc")):
        codec = make_codec(mech, codec_name, epsilon=args.epsilon, dim=args.dim, bits=args.bits, clip=args.clip)
        keys = derive_keys(0, 1, np.arange(args.users), 0)
        push = np.array([candidate_estimates(codec, k) @ v for k in keys])  # (users, N)
        adv = push.max(axis=1)
        x = args.clip * v  # an honest user with the most favourable input
        honest = codec.decode(codec.encode(np.tile(x, (args.users, 1)), run_seed=0, round=1,
                                           clients=np.arange(args.users), rng=rng),
                              run_seed=0, round=1, clients=np.arange(args.users)).estimates @ v
        print(f"{mech + '+' + codec_name:26s} {args.clip:17.3f} {honest.std(ddof=1):16.2f} "
              f"{np.median(adv):15.2f} {adv.max():16.2f} {np.median(adv) / args.clip:10.1f}")
    for mech in ("privunitg", "privunit2"):
        fc = make_codec(mech, "none", epsilon=args.epsilon, dim=args.dim, clip=args.clip)
        print(f"{mech + '+none (floats)':26s} output-range bound on |x^| checked by the server: "
              f"{fc.output_norm_bound():.2f} ({fc.output_norm_bound() / args.clip:.1f} C)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
