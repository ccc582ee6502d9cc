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
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

HUB_HOST = "huggingface.co"
OFFLINE_MESSAGE = "needs internet access to the Hugging Face hub; use dataset=digits or synthetic offline"


class HubUnavailableError(RuntimeError):
    """The Hugging Face hub cannot be reached (offline, or the connection failed)."""


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
