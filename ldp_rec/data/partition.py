"""Splitting a pooled data set among federated users.

A partition is stored compactly in CSR form (:class:`Partition`): one concatenated array of
example indices and ``num_users + 1`` offsets, so user ``k`` holds
``indices[offsets[k]:offsets[k+1]]``. That makes the "every example its own user" partition of
tens of thousands of users free to build and cheap to hand to the vectorised local training of
:func:`ldp_rec.fl.task.local_updates`.

Schemes (:func:`partition`):

* ``"iid"``: a seeded shuffle of all examples, split into ``num_users`` contiguous, near-equal
  shards by flwr-datasets' ``IidPartitioner`` (sizes differ by at most one).
* ``"dirichlet"``: label skew by flwr-datasets' ``DirichletPartitioner`` (Hsu, Qi, Brown 2019,
  "Measuring the effects of non-identical data distribution", Sec. 3): for every class c a
  proportion vector ``p_c ~ Dir(alpha·1_{num_users})`` splits the examples of class c among users.
  Small ``alpha`` gives users few classes; ``alpha → ∞`` approaches IID.
* ``"per_example"``: user k holds example k alone (``num_users = n``). This is the local-DP
  setting in which LDP can learn at all (the server averages over n users, and the noise of an
  ε-LDP mean estimate shrinks as 1/n). No ``datasets.Dataset`` objects are built for it.

Both flwr-datasets partitioners run on an in-memory ``datasets.Dataset.from_dict`` holding an
``idx`` column (the example's row in ``X``) and the ``label`` column, so they work offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from .._validation import check_positive_int
from ..errors import InputError, ParameterError

Scheme = Literal["iid", "dirichlet", "per_example"]
SCHEMES: tuple[str, ...] = ("iid", "dirichlet", "per_example")


@dataclass(frozen=True)
class Partition:
    """Users' example indices in CSR form: user ``k`` holds ``indices[offsets[k]:offsets[k+1]]``.

    ``indices`` is int64 of length ``offsets[-1]``; ``offsets`` is int64, non-decreasing, of
    length ``num_users + 1`` with ``offsets[0] = 0``. Users may be empty.
    """

    indices: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        idx = np.asarray(self.indices)
        off = np.asarray(self.offsets)
        if idx.ndim != 1 or off.ndim != 1 or off.size < 1:
            raise InputError("Partition needs 1-D indices and 1-D offsets of length num_users + 1")
        if idx.dtype.kind not in "iu" or off.dtype.kind not in "iu":
            raise InputError("Partition indices and offsets must be integer arrays")
        if off[0] != 0 or off[-1] != idx.size or np.any(np.diff(off) < 0):
            raise InputError("Partition offsets must start at 0, be non-decreasing and end at len(indices)")
        if idx.size and idx.min() < 0:
            raise InputError("Partition indices must be non-negative")
        object.__setattr__(self, "indices", idx.astype(np.int64, copy=False))
        object.__setattr__(self, "offsets", off.astype(np.int64, copy=False))

    @classmethod
    def from_list(cls, groups: Sequence[Sequence[int] | np.ndarray]) -> "Partition":
        """Build from a list of per-user index arrays."""
        arrays = [np.asarray(g, dtype=np.int64).reshape(-1) for g in groups]
        sizes = np.array([a.size for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        indices = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        return cls(indices.astype(np.int64), offsets)

    @classmethod
    def from_owners(cls, owner) -> "Partition":
        """The natural split: row ``i`` belongs to user ``owner[i]`` (ids ``0 … max``, e.g. FEMNIST's
        writers); within a user the rows keep their order."""
        owner = np.asarray(owner)
        if owner.ndim != 1 or owner.dtype.kind not in "iu" or (owner.size and owner.min() < 0):
            raise InputError("owner must be a 1-D array of non-negative integer user ids")
        counts = np.bincount(owner) if owner.size else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.argsort(owner, kind="stable").astype(np.int64), offsets)

    @classmethod
    def per_example(cls, n: int) -> "Partition":
        """User k holds example k: ``n`` users of one example each."""
        n = check_positive_int(n, "n")
        return cls(np.arange(n, dtype=np.int64), np.arange(n + 1, dtype=np.int64))

    @property
    def num_users(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def sizes(self) -> np.ndarray:
        """Number of examples of every user, int64 ``(num_users,)``."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.num_users

    def __getitem__(self, k: int) -> np.ndarray:
        k = int(k)
        if not -self.num_users <= k < self.num_users:
            raise IndexError(f"user {k} out of range for {self.num_users} users")
        k %= self.num_users
        return self.indices[self.offsets[k] : self.offsets[k + 1]]

    def as_list(self) -> list[np.ndarray]:
        """Per-user index arrays (views into ``indices``)."""
        return np.split(self.indices, self.offsets[1:-1])

    def select(self, users) -> "Partition":
        """The sub-partition of the given user ids, in the given order (a sampled cohort)."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if users.size and (users.min() < -self.num_users or users.max() >= self.num_users):
            raise InputError("user ids out of range")
        users = users % max(self.num_users, 1)
        starts, sizes = self.offsets[users], self.sizes[users]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # Gather the ragged ranges without a Python loop: position p of the output belongs to
        # user u(p) and sits at starts[u] + (p - offsets[u]).
        owner = np.repeat(np.arange(users.size), sizes)
        pos = np.arange(offsets[-1]) - offsets[:-1][owner] + starts[owner]
        return Partition(self.indices[pos], offsets)

    def labels_histogram(self, y: np.ndarray, num_classes: int) -> np.ndarray:
        """``(num_users, num_classes)`` counts of each label per user."""
        y = np.asarray(y, dtype=np.int64)
        owner = np.repeat(np.arange(self.num_users), self.sizes)
        hist = np.zeros((self.num_users, num_classes), dtype=np.int64)
        np.add.at(hist, (owner, y[self.indices]), 1)
        return hist


def _to_dataset(order: np.ndarray, y: np.ndarray):
    import datasets  # local import: only the flwr-datasets schemes need it

    return datasets.Dataset.from_dict({"idx": order, "label": y[order]})


def partition(
    X,
    y,
    num_users: int | None,
    scheme: Scheme = "iid",
    seed: int = 0,
    *,
    alpha: float = 0.5,
    min_partition_size: int = 0,
) -> Partition:
    """Split the ``n`` examples ``(X, y)`` among ``num_users`` users.

    Parameters
    ----------
    X, y : arrays with ``n`` rows (only ``len(X)`` and the labels ``y`` are used).
    num_users : number of users; for ``"per_example"`` it must be ``None`` or ``n``.
    scheme : ``"iid"``, ``"dirichlet"`` or ``"per_example"`` (see the module docstring).
    seed : seeds the IID shuffle and the Dirichlet draws.
    alpha : Dirichlet concentration (``"dirichlet"`` only), > 0.
    min_partition_size : ``"dirichlet"`` only: flwr-datasets redraws (up to 10 times) until every
        user holds at least this many examples; 0 accepts empty users.

    Returns a :class:`Partition` in which every example index appears exactly once.
    """
    y = np.asarray(y)
    n = len(X)
    if y.shape != (n,):
        raise InputError(f"y must have shape ({n},), got {y.shape}")
    if scheme not in SCHEMES:
        raise ParameterError(f"unknown partition scheme {scheme!r}; choose one of {SCHEMES}")
    if scheme == "per_example":
        if num_users is not None and num_users != n:
            raise ParameterError(f"per_example gives one user per example: num_users must be None or {n}, got {num_users}")
        return Partition.per_example(n)
    num_users = check_positive_int(num_users, "num_users")
    if num_users > n:
        raise ParameterError(f"num_users ({num_users}) exceeds the number of examples ({n})")
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        from flwr_datasets.partitioner import IidPartitioner

        order = rng.permutation(n)
        part = IidPartitioner(num_partitions=num_users)
        part.dataset = _to_dataset(order, y)
        groups = [np.asarray(part.load_partition(k)["idx"], dtype=np.int64) for k in range(num_users)]
        return Partition.from_list(groups)
    # dirichlet
    from flwr_datasets.partitioner import DirichletPartitioner

    if not (np.isfinite(alpha) and alpha > 0):
        raise ParameterError(f"alpha must be finite and > 0, got {alpha!r}")
    part = DirichletPartitioner(
        num_partitions=num_users,
        partition_by="label",
        alpha=float(alpha),
        min_partition_size=int(min_partition_size),
        self_balancing=False,
        shuffle=True,
        seed=int(rng.integers(2**31 - 1)),
    )
    part.dataset = _to_dataset(np.arange(n), y)
    groups = [np.asarray(part.load_partition(k)["idx"], dtype=np.int64) for k in range(num_users)]
    return Partition.from_list(groups)
