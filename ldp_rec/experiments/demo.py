"""``ldp-rec demo``: the main job on the embedded default.

Digits (scikit-learn, no download), every training example its own user (1437 users), PrivUnitG at
ε = 4 per round, 50 rounds; runs the three modes none / ldp / ldp-rec (modified MRC) on Flower's
simulation engine and writes results/fl-<time>/result.json and a plot. Its private coins are seeded
(``--private-seed 0``) so the figures replay exactly; the run says so ("simulation only").
"""

from __future__ import annotations

import argparse

from . import fl


def add_arguments(p: argparse.ArgumentParser) -> None:
    fl.add_arguments(p)
    # the demo replays exactly, so the README's figures are regenerated bit for bit; its result file and
    # summary say that its private coins were seeded (simulation only). `ldp-rec fl` defaults to OS entropy.
    p.set_defaults(private_seed=0)


def run(args) -> int:
    return fl.run(args)
