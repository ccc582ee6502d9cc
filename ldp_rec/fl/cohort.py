"""Who takes part in a round: sampling a cohort from the population, and hosting it on nodes.

A run has a *population* of ``U`` users and, each round, a *cohort* drawn from the users still
eligible (not retired by the per-user budget, :mod:`ldp_rec.privacy.ledger`):

* ``all``: every eligible user (the cross-silo / "everyone every round" setting);
* ``fixed``: a uniform sample of ``cohort_size`` users without replacement;
* ``poisson``: each eligible user independently with probability ``rate`` (the sampling that the
  subsampled-Gaussian analysis of central DP assumes; McMahan et al. 2018).

The cohort is the server's choice and public. Its size is independent of the number of Flower
nodes: the sorted cohort is cut into contiguous, nearly equal slices, one per node (k-th smallest
node id, k-th slice), so a node hosts many users and a run with the same seed and number of
nodes assigns the same users to the same slice whatever the node ids are. Everything here is
O(U) per round (never O(U·d)).

Under LDP sampling gives the sampled user **no** amplification: a user who takes part spends a full
transcript ε (references.md §7). Only the central-DP baseline's analysis uses the sampling.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

SAMPLINGS = ("all", "fixed", "poisson")


def sample_cohort(n_users: int, *, sampling: str, cohort_size: int = 0, rate: float = 0.0,
                  eligible: np.ndarray | None = None, rng: np.random.Generator) -> np.ndarray:
    """Sorted int64 ids of this round's cohort among the ``eligible`` users (mask; None: all)."""
    ids = np.arange(n_users, dtype=np.int64) if eligible is None else np.flatnonzero(eligible).astype(np.int64)
    if sampling == "all":
        return ids
    if sampling == "fixed":
        if cohort_size < 1:
            raise ParameterError(f"fixed-size sampling needs cohort_size >= 1, got {cohort_size}")
        if ids.size <= cohort_size:
            return ids
        return np.sort(rng.choice(ids, size=cohort_size, replace=False))
    if sampling == "poisson":
        if not 0 < rate <= 1:
            raise ParameterError(f"Poisson sampling needs a rate in (0, 1], got {rate}")
        return ids[rng.random(ids.size) < rate]
    raise ParameterError(f"unknown sampling {sampling!r}; choose from {SAMPLINGS}")


def sampling_rate(n_users: int, *, sampling: str, cohort_size: int = 0, rate: float = 0.0) -> float:
    """The probability q that a given (eligible) user is in a round's cohort."""
    if sampling == "all":
        return 1.0
    if sampling == "fixed":
        return min(1.0, cohort_size / n_users)
    return float(rate)


def assign(cohort: np.ndarray, node_ids) -> dict[int, np.ndarray]:
    """Contiguous slices of the sorted ``cohort`` for the sorted ``node_ids`` (a node may get none)."""
    nodes = sorted(int(n) for n in node_ids)
    if not nodes:
        raise ParameterError("no nodes to host the cohort")
    bounds = np.linspace(0, cohort.size, len(nodes) + 1).round().astype(int)
    return {n: cohort[bounds[i] : bounds[i + 1]] for i, n in enumerate(nodes)}
