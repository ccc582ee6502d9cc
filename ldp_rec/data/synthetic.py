"""Synthetic(α, β): the heterogeneous federated benchmark of FedProx.

Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith 2020, "Federated optimization in heterogeneous
networks" (MLSys), Sec. 5.1 and App. C.1 (after Shamir, Srebro, Zhang 2014). For device k:

    u_k ~ N(0, α),  B_k ~ N(0, β),
    W_k ∈ R^{10×60} with entries ~ N(u_k, 1),   b_k ∈ R^{10} with entries ~ N(u_k, 1),
    v_k ∈ R^{60} with entries ~ N(B_k, 1),       Σ = diag(j^{-1.2}), j = 1..60,
    x ~ N(v_k, Σ),   y = argmax softmax(W_k x + b_k) = argmax (W_k x + b_k).

α controls how much the local *models* differ, β how much the local *inputs* differ.
As in the authors' public generator, α and β are used as standard deviations
(``normal(0, alpha)``); the paper's N(0, α) notation is ambiguous, and for the usual settings
α, β ∈ {0, 1} the two readings agree. Sample counts follow a power law:
``n_k = floor(LogNormal(4, 2)) + 50`` (again the authors' generator), optionally capped with
``max_samples``. Each device's samples are shuffled and split 90 % / 10 % (``test_fraction``)
into local train and test data; the test parts are pooled into one test set.

``iid=True`` gives the Synthetic-IID variant of the paper: one shared ``W, b ~ N(0, 1)`` and
``x ~ N(0, Σ)`` on every device.

The result stores the pooled training rows with a :class:`~ldp_rec.data.partition.Partition`
(client k owns rows ``partition[k]``), which is what :func:`ldp_rec.fl.task.local_updates`
takes; :meth:`SyntheticData.client_arrays` gives per-client arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int
from ..errors import ParameterError
from .partition import Partition

SYNTHETIC_DIM: int = 60
SYNTHETIC_NUM_CLASSES: int = 10


@dataclass(frozen=True)
class SyntheticData:
    """Pooled training rows with their client partition, plus the pooled test split."""

    X_train: np.ndarray  # (n_train, dim) float32
    y_train: np.ndarray  # (n_train,) int64
    partition: Partition  # client k owns rows partition[k] of X_train
    X_test: np.ndarray  # (n_test, dim) float32, the pooled local test parts
    y_test: np.ndarray
    test_partition: Partition  # client k's local test rows of X_test

    @property
    def num_clients(self) -> int:
        return self.partition.num_users

    def client_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(X_k, y_k)]`` training arrays of every client."""
        return [(self.X_train[i], self.y_train[i]) for i in self.partition.as_list()]


def make_synthetic(
    alpha: float,
    beta: float,
    num_clients: int = 30,
    seed: int = 0,
    *,
    iid: bool = False,
    dim: int = SYNTHETIC_DIM,
    num_classes: int = SYNTHETIC_NUM_CLASSES,
    test_fraction: float = 0.1,
    min_samples: int = 50,
    max_samples: int | None = None,
) -> SyntheticData:
    """Generate Synthetic(α, β) for ``num_clients`` devices (see the module docstring).

    Deterministic given ``seed``. ``max_samples`` caps the power-law sample counts (None: no cap).
    """
    for name, v in (("alpha", alpha), ("beta", beta)):
        if not (np.isfinite(v) and v >= 0):
            raise ParameterError(f"{name} must be finite and >= 0, got {v!r}")
    num_clients = check_positive_int(num_clients, "num_clients")
    dim = check_positive_int(dim, "dim")
    num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
    min_samples = check_positive_int(min_samples, "min_samples", minimum=2)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if max_samples is not None and check_positive_int(max_samples, "max_samples") < min_samples:
        raise ParameterError("max_samples must be >= min_samples")
    rng = np.random.default_rng(seed)

    counts = np.floor(rng.lognormal(4.0, 2.0, num_clients)).astype(np.int64) + min_samples
    if max_samples is not None:
        counts = np.minimum(counts, max_samples)
    from .._validation import check_memory

    check_memory(8.0 * (4 * float(counts.sum()) * dim + 2 * num_clients * (num_classes + 1) * dim),
                 f"Synthetic(alpha, beta) with {num_clients} devices and {int(counts.sum())} examples",
                 "cap the examples per device (max_samples) or use fewer devices")
    sd_x = np.arange(1, dim + 1, dtype=np.float64) ** -0.6  # sqrt of diag(j^-1.2)

    if iid:
        W = np.broadcast_to(rng.standard_normal((num_classes, dim)), (num_clients, num_classes, dim))
        b = np.broadcast_to(rng.standard_normal(num_classes), (num_clients, num_classes))
        v = np.zeros((num_clients, dim))
    else:
        u = rng.normal(0.0, alpha, num_clients)
        B = rng.normal(0.0, beta, num_clients)
        W = u[:, None, None] + rng.standard_normal((num_clients, num_classes, dim))
        b = u[:, None] + rng.standard_normal((num_clients, num_classes))
        v = B[:, None] + rng.standard_normal((num_clients, dim))

    owner = np.repeat(np.arange(num_clients), counts)
    X = v[owner] + sd_x * rng.standard_normal((owner.size, dim))
    # Labels client by client: W[owner] would be (n, classes, dim) and can be large.
    y = np.empty(owner.size, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for k in range(num_clients):  # data generation, once; not a hot path
        s = slice(starts[k], starts[k + 1])
        y[s] = np.argmax(X[s] @ W[k].T + b[k], axis=1)

    # Shuffle within each client and split train / test: sort by (owner, random key).
    order = np.lexsort((rng.random(owner.size), owner))
    rank = np.arange(owner.size) - starts[owner[order]]
    n_train = np.floor(counts * (1.0 - float(test_fraction))).astype(np.int64)
    is_train = rank < n_train[owner[order]]
    tr, te = order[is_train], order[~is_train]
    train_part = Partition(np.arange(tr.size), np.concatenate([[0], np.cumsum(n_train)]))
    test_part = Partition(np.arange(te.size), np.concatenate([[0], np.cumsum(counts - n_train)]))
    return SyntheticData(
        X_train=np.ascontiguousarray(X[tr], dtype=np.float32),
        y_train=y[tr],
        partition=train_part,
        X_test=np.ascontiguousarray(X[te], dtype=np.float32),
        y_test=y[te],
        test_partition=test_part,
    )
