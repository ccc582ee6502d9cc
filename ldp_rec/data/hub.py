"""Optional Hugging Face hub data sets through flwr-datasets' ``FederatedDataset``.

These need internet access; the embedded default (:mod:`ldp_rec.data.digits`) and
:mod:`ldp_rec.data.synthetic` do not. Before touching ``datasets``, :func:`load_hub_dataset`
checks, in well under a second in the usual cases, that the hub can be reached:

1. ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` set to a true value → fail at once;
2. a TCP connection to ``huggingface.co:443`` with a short timeout (default 3 s) → fail on error.

Failure raises :class:`HubUnavailableError` (a ``RuntimeError``) that names the offline
alternatives, so a run never hangs for minutes on retries.

Data sets (name → hub id, image column, label column, shape, classes):

* ``mnist``   → ``ylecun/mnist``,     ``image``, ``label``,     (1, 28, 28), 10
* ``cifar10`` → ``uoft-cs/cifar10``,  ``img``,   ``label``,     (3, 32, 32), 10
* ``femnist`` → ``flwrlabs/femnist``, ``image``, ``character``, (1, 28, 28), 62; its natural
  partition is by ``writer_id`` (Caldas et al. 2018, LEAF), used when ``scheme="natural"``.

:func:`load_hub_arrays` is what a federated run uses: the pooled train and test arrays (FEMNIST has
only a train split on the hub, so a seeded 10% of every writer's examples is held out as its test
set, as LEAF does) and, for FEMNIST, every training example's writer, so the run can use the
natural one-user-per-writer split.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import numpy as np

from ..errors import LdpRecError, ParameterError

HUB_HOST = "huggingface.co"
OFFLINE_MESSAGE = "needs internet access to the Hugging Face hub; use dataset=digits or synthetic offline"


class HubUnavailableError(LdpRecError, RuntimeError):
    """The Hugging Face hub cannot be reached (offline, or the connection failed); the command line
    reports it in one line."""


@dataclass(frozen=True)
class HubSpec:
    hub_id: str
    image_key: str
    label_key: str
    input_shape: tuple[int, ...]
    num_classes: int
    natural_key: str | None = None


HUB_DATASETS: dict[str, HubSpec] = {
    "mnist": HubSpec("ylecun/mnist", "image", "label", (1, 28, 28), 10),
    "cifar10": HubSpec("uoft-cs/cifar10", "img", "label", (3, 32, 32), 10),
    "femnist": HubSpec("flwrlabs/femnist", "image", "character", (1, 28, 28), 62, natural_key="writer_id"),
}


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def check_hub_reachable(name: str = "dataset", *, timeout: float = 3.0, host: str | None = None) -> None:
    """Raise :class:`HubUnavailableError` quickly unless ``host:443`` (default :data:`HUB_HOST`)
    accepts a TCP connection within ``timeout`` seconds."""
    host = HUB_HOST if host is None else host
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("HF_DATASETS_OFFLINE")):
        raise HubUnavailableError(f"{name} {OFFLINE_MESSAGE} (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)")
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            pass
    except OSError as exc:
        raise HubUnavailableError(f"{name} {OFFLINE_MESSAGE} ({type(exc).__name__}: {exc})") from None


def load_hub_dataset(
    name: str,
    *,
    num_partitions: int,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    timeout: float = 3.0,
):
    """A flwr-datasets ``FederatedDataset`` for ``mnist``, ``cifar10`` or ``femnist``.

    ``scheme`` is ``"iid"``, ``"dirichlet"`` (concentration ``alpha`` over the label column) or
    ``"natural"`` (femnist only: one partition per writer; ``num_partitions`` is then ignored).
    Returns ``(fds, spec)``; turn a partition into arrays with :func:`partition_arrays`.
    Raises :class:`HubUnavailableError` when the hub cannot be reached.
    """
    if name not in HUB_DATASETS:
        raise ParameterError(f"unknown hub dataset {name!r}; choose one of {sorted(HUB_DATASETS)}")
    spec = HUB_DATASETS[name]
    check_hub_reachable(name, timeout=timeout)
    from flwr_datasets import FederatedDataset
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner, NaturalIdPartitioner

    if scheme == "iid":
        part = IidPartitioner(num_partitions=int(num_partitions))
    elif scheme == "dirichlet":
        part = DirichletPartitioner(
            num_partitions=int(num_partitions), partition_by=spec.label_key, alpha=float(alpha), seed=int(seed)
        )
    elif scheme == "natural" and spec.natural_key is not None:
        part = NaturalIdPartitioner(partition_by=spec.natural_key)
    else:
        raise ParameterError(f"scheme {scheme!r} not available for {name}")
    try:
        fds = FederatedDataset(dataset=spec.hub_id, partitioners={"train": part}, seed=int(seed))
    except (ConnectionError, OSError) as exc:  # requests' errors derive from OSError
        raise HubUnavailableError(f"{name} {OFFLINE_MESSAGE} ({type(exc).__name__}: {exc})") from None
    return fds, spec


def partition_arrays(dataset, spec: HubSpec) -> tuple[np.ndarray, np.ndarray]:
    """A ``datasets.Dataset`` (a partition or a split) as ``(X float32 (n, prod(shape)) in [0, 1], y int64)``."""
    ds = dataset.with_format("numpy")
    X = np.asarray(ds[spec.image_key], dtype=np.float32).reshape(len(ds), -1) / 255.0
    if spec.input_shape[0] == 3 and X.shape[1] == int(np.prod(spec.input_shape)):
        # HWC pixels to the CHW layout the CNN expects
        X = X.reshape(len(ds), *spec.input_shape[1:], 3).transpose(0, 3, 1, 2).reshape(len(ds), -1)
    y = np.asarray(ds[spec.label_key], dtype=np.int64)
    return np.ascontiguousarray(X), y


@dataclass(frozen=True)
class HubArrays:
    """A hub data set as arrays: ``X`` float32 ``(n, prod(spec.input_shape))`` in [0, 1], ``y`` int64;
    ``writers`` (FEMNIST only): the natural user id of every training row, else None."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    writers: np.ndarray | None
    spec: HubSpec


def load_hub_arrays(name: str, *, seed: int = 0, test_fraction: float = 0.1, timeout: float = 3.0) -> HubArrays:
    """``mnist``, ``cifar10`` or ``femnist`` as pooled arrays for a federated run (module doc).

    The train split is loaded through flwr-datasets' ``FederatedDataset`` (one IID partition, i.e.
    the whole split, cached by ``datasets``); the run partitions it itself (IID, Dirichlet, one user
    per example, or FEMNIST's writers). Raises :class:`HubUnavailableError` when the hub cannot be
    reached."""
    if name not in HUB_DATASETS:
        raise ParameterError(f"unknown hub dataset {name!r}; choose one of {sorted(HUB_DATASETS)}")
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    spec = HUB_DATASETS[name]
    check_hub_reachable(name, timeout=timeout)
    from flwr_datasets import FederatedDataset

    try:
        fds = FederatedDataset(dataset=spec.hub_id, partitioners={"train": 1}, seed=int(seed))
        train = fds.load_split("train")
        test = fds.load_split("test") if spec.natural_key is None else None
    except (ConnectionError, OSError) as exc:  # requests' errors derive from OSError
        raise HubUnavailableError(f"{name} {OFFLINE_MESSAGE} ({type(exc).__name__}: {exc})") from None
    X, y = partition_arrays(train, spec)
    if test is not None:
        Xte, yte = partition_arrays(test, spec)
        return HubArrays(X, y, Xte, yte, None, spec)
    # FEMNIST: hold out a seeded test_fraction of every writer's examples (at least one per writer
    # with two or more), the rest are the writer's training examples
    _, writers = np.unique(np.asarray(train.with_format("numpy")[spec.natural_key]), return_inverse=True)
    rng = np.random.default_rng([int(seed), 0xFE])
    order = np.lexsort((rng.random(writers.size), writers))  # grouped by writer, shuffled within
    counts = np.bincount(writers)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(writers.size) - first[writers[order]]
    n_test = np.where(counts >= 2, np.maximum(1, np.round(test_fraction * counts)), 0).astype(np.int64)
    is_test = np.zeros(writers.size, dtype=bool)
    is_test[order] = rank < n_test[writers[order]]
    return HubArrays(X[~is_test], y[~is_test], X[is_test], y[is_test], writers[~is_test], spec)
