"""Local training for cohorts of thousands of users, vectorised with ``torch.func`` (no Flower).

Sign convention (used by every server in ldp-rec)
-------------------------------------------------
A user's *update* is ``Δ_k = θ_k^local − θ`` (local parameters after training minus the global
parameters it started from), a descent direction. The server moves along the mean update:

    θ ← θ + η_server · mean_k Δ_k                                  (:func:`apply_server_update`)

With one local step of full-batch gradient descent at local learning rate ``lr`` the update is
``Δ_k = −lr · ∇L_k(θ)``, so ``lr = 1`` makes ``Δ_k`` the negative gradient and the server step
plain FedSGD (McMahan et al. 2017, "Communication-efficient learning of deep networks from
decentralized data", Sec. 2: FedSGD is FedAvg with E = 1, B = ∞); ``epochs > 1`` or a finite
``batch_size`` gives FedAvg. In LDP runs the updates are clipped (:func:`clip_updates`),
rejected if non-finite (:func:`check_finite`), privatised, then averaged.

Vectorisation
-------------
Local SGD of all users runs at once: ``torch.func.vmap`` over users of ``grad_and_value`` of a
``functional_call`` of the model, with per-user parameter stacks. Users are grouped into
buckets by their example count rounded up to a power of two (so padding at most doubles the
work); inside a bucket the examples are padded to the largest count with a 0/1 mask, every
epoch shuffles each user's own examples (random keys, padding sorted last), and a batch with no
real example leaves that user's parameters unchanged. The first step of all users starts from
the same global θ and is evaluated with unbatched parameters, which for FedSGD with one
example per user is a single per-example-gradient pass.

Loss per step is the mean cross-entropy over the user's real examples in the batch. Plain SGD
(no momentum, no weight decay), so the vectorised run equals a per-user loop (tested to 1e-5).
Sample-level DP-SGD inside a user (e.g. opacus) is not implemented: under LDP the user's whole
update is privatised, which already protects every example the user holds.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from .._validation import check_positive_int
from ..data.partition import Partition
from ..errors import InputError, ParameterError


def _as_tensors(X, y) -> tuple[torch.Tensor, torch.Tensor]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2 or y.shape != (X.shape[0],):
        raise InputError(f"X must be (n, ...) and y (n,), got {X.shape} and {y.shape}")
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)), torch.as_tensor(y.astype(np.int64))


def as_examples(X, y, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` as float32 ``(n, features)`` (each example flattened) and int64 ``(n,)`` labels ≥ 0;
    ParameterError (one line) for an empty set, mismatched lengths, non-finite features or bad labels."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2 or X.shape[0] == 0 or y.shape != (X.shape[0],):
        raise ParameterError(f"{name}: X must be (n > 0, ...) and y (n,), got {X.shape} and {y.shape}")
    if X.dtype.kind not in "fiub" or y.dtype.kind not in "iu":
        raise ParameterError(f"{name}: X must be numbers and y integer labels, got dtypes {X.dtype} and {y.dtype}")
    X = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=np.float32)
    if not np.isfinite(X).all():
        raise ParameterError(f"{name}: X holds NaN or Inf")
    if y.min() < 0:
        raise ParameterError(f"{name}: labels must be >= 0")
    return X, y.astype(np.int64)


@torch.no_grad()
def evaluate(model: nn.Module, X, y, *, batch_size: int = 8192) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``(X, y)``."""
    Xt, yt = _as_tensors(X, y)
    n = Xt.shape[0]
    if n == 0:
        raise InputError("cannot evaluate on an empty set")
    loss_sum, correct = 0.0, 0
    for s in range(0, n, batch_size):
        logits = model(Xt[s : s + batch_size])
        loss_sum += float(F.cross_entropy(logits, yt[s : s + batch_size], reduction="sum"))
        correct += int((logits.argmax(dim=1) == yt[s : s + batch_size]).sum())
    return loss_sum / n, correct / n


def _as_partition(user_index, n: int) -> Partition:
    if user_index is None:
        return Partition.per_example(n)
    part = user_index if isinstance(user_index, Partition) else Partition.from_list(user_index)
    if part.indices.size and part.indices.max() >= n:
        raise InputError(f"user_index refers to row {part.indices.max()} but X has {n} rows")
    return part


def local_updates(
    model: nn.Module,
    X,
    y,
    user_index: Partition | Sequence[Sequence[int]] | None = None,
    *,
    epochs: int = 1,
    lr: float = 1.0,
    batch_size: int | None = None,
    shuffle: bool = True,
    rng=None,
    max_users_per_chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run local SGD for every user from the model's current (global) parameters θ.

    Parameters
    ----------
    model : the global model; its parameters are read, never modified.
    X, y : pooled examples ``(n, features)`` and labels ``(n,)``.
    user_index : :class:`~ldp_rec.data.partition.Partition` (or a list of per-user index arrays)
        of the rows each user holds; ``None`` makes every example its own user.
    epochs : local epochs E ≥ 1.
    lr : local learning rate (``lr = 1``, ``epochs = 1``, ``batch_size = None``: Δ = −∇L, FedSGD).
    batch_size : local minibatch size; ``None`` = full batch (one step per epoch).
    shuffle : reshuffle each user's examples every epoch (else keep the user's index order).
    rng : seed or Generator for the shuffles (the only randomness; results are deterministic).
    max_users_per_chunk : users trained together at most (bounds memory).

    Returns
    -------
    updates : float32 ``(num_users, num_params)``, ``Δ_k = θ_k − θ`` in ``get_flat_params`` order
        (zero for a user with no examples).
    losses : float64 ``(num_users,)``, mean training loss over the user's local steps
        (for one step: the loss at θ); NaN for a user with no examples.
    num_examples : int64 ``(num_users,)``.
    """
    epochs = check_positive_int(epochs, "epochs")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    if not (math.isfinite(lr) and lr > 0):
        raise ParameterError(f"lr must be finite and > 0, got {lr!r}")
    max_users_per_chunk = check_positive_int(max_users_per_chunk, "max_users_per_chunk")
    rng = np.random.default_rng(rng)
    Xt, yt = _as_tensors(X, y)
    part = _as_partition(user_index, Xt.shape[0])
    sizes = part.sizes
    names = [name for name, _ in model.named_parameters()]
    theta = {name: p.detach() for name, p in model.named_parameters()}
    dim = sum(p.numel() for p in theta.values())
    updates = np.zeros((part.num_users, dim), dtype=np.float32)
    losses = np.full(part.num_users, np.nan)

    def batch_loss(params, xb, yb, mb):
        logits = functional_call(model, params, (xb,))
        ell = F.cross_entropy(logits, yb, reduction="none")
        return (ell * mb).sum() / mb.sum().clamp_min(1.0)

    step_shared = vmap(grad_and_value(batch_loss), in_dims=(None, 0, 0, 0))
    step_own = vmap(grad_and_value(batch_loss), in_dims=(0, 0, 0, 0))

    # Buckets: example count rounded up to a power of two.
    bucket = np.where(sizes > 0, np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64), -1)
    for b in np.unique(bucket[bucket >= 0]):
        users_b = np.flatnonzero(bucket == b)
        for c in range(0, users_b.size, max_users_per_chunk):
            users = users_b[c : c + max_users_per_chunk]
            U, L = _train_group(
                part, users, sizes[users], Xt, yt, theta, names, step_shared, step_own,
                epochs=epochs, lr=float(lr), batch_size=batch_size, shuffle=shuffle, rng=rng,
            )  # fmt: skip
            updates[users] = U
            losses[users] = L
    return updates, losses, sizes.astype(np.int64)


def _train_group(part, users, n_k, Xt, yt, theta, names, step_shared, step_own, *, epochs, lr, batch_size, shuffle, rng):
    """Local SGD of one group of users whose counts are padded to a common ``m``."""
    nb, m = users.size, int(n_k.max())
    B = m if batch_size is None else min(batch_size, m)
    steps = -(-m // B)
    m_pad = steps * B
    # Padded row indices (nb, m_pad): user u's j-th example, or row 0 as a masked dummy.
    pos = np.arange(m_pad)
    valid = pos[None, :] < n_k[:, None]
    rows = np.zeros((nb, m_pad), dtype=np.int64)
    starts = part.offsets[users]
    rows[valid] = part.indices[(starts[:, None] + pos[None, :])[valid]]
    n_t = torch.as_tensor(n_k)
    params = theta
    shared = True
    loss_sum = torch.zeros(nb, dtype=torch.float64)
    loss_cnt = torch.zeros(nb, dtype=torch.float64)
    for _ in range(epochs):
        if shuffle:
            keys = np.where(valid, rng.random((nb, m_pad)), 2.0)  # padding sorts last
            order = np.take_along_axis(rows, np.argsort(keys, axis=1, kind="stable"), axis=1)
        else:
            order = rows
        order_t = torch.as_tensor(order)
        for j in range(steps):
            idx = order_t[:, j * B : (j + 1) * B]
            mb = (torch.arange(j * B, (j + 1) * B)[None, :] < n_t[:, None]).to(Xt.dtype)
            xb, yb = Xt[idx], yt[idx]
            g, loss = (step_shared if shared else step_own)(params, xb, yb, mb)
            if shared:
                params = {k: theta[k].unsqueeze(0) - lr * g[k] for k in names}
                shared = False
            else:
                params = {k: params[k] - lr * g[k] for k in names}
            active = (mb.sum(dim=1) > 0).to(torch.float64)
            loss_sum += loss.detach().to(torch.float64) * active
            loss_cnt += active
    upd = torch.cat([(params[k] - theta[k].unsqueeze(0)).reshape(nb, -1) for k in names], dim=1)
    return upd.detach().numpy(), (loss_sum / loss_cnt).numpy()


def check_finite(U) -> np.ndarray:
    """Boolean mask ``(n_users,)``, True for the users whose update holds a NaN or Inf.

    The client replaces those updates by the public value 0 before clipping and privatisation
    (:func:`ldp_rec.fl.federation.privatize_cohort`), so the transcript does not reveal them.
    """
    U = np.asarray(U)
    if U.ndim != 2:
        raise InputError(f"updates must have shape (n_users, d), got {U.shape}")
    return ~np.isfinite(U).all(axis=1)


def clip_updates(U, C: float) -> np.ndarray:
    """Per-user L2 clipping: ``u ← u · min(1, C / ‖u‖₂)``, so every row has norm ≤ C.

    Rows must be finite (find the others with :func:`check_finite` first). Returns a new float32 array;
    the norm bound holds up to float32 rounding (the scale is computed in float64).
    """
    U = np.asarray(U)
    if U.ndim != 2:
        raise InputError(f"updates must have shape (n_users, d), got {U.shape}")
    if not (math.isfinite(C) and C > 0):
        raise ParameterError(f"clip C must be finite and > 0, got {C!r}")
    if not np.all(np.isfinite(U)):
        raise InputError("updates contain NaN or Inf; find those users with check_finite first")
    U64 = U.astype(np.float64)
    norms = np.linalg.norm(U64, axis=1, keepdims=True)
    # (1 - 1e-7) leaves room for float32 rounding of the scaled row.
    scale = np.minimum(1.0, C * (1 - 1e-7) / np.maximum(norms, 1e-300))
    return (U64 * scale).astype(np.float32)


def apply_server_update(params, updates, *, server_lr: float, weights=None) -> np.ndarray:
    """``θ + η_server · mean_k Δ_k`` (weighted mean when ``weights`` is given), float32."""
    params = np.asarray(params, dtype=np.float64)
    U = np.asarray(updates, dtype=np.float64)
    if U.ndim != 2 or U.shape[1] != params.shape[0] or U.shape[0] == 0:
        raise InputError(f"updates must have shape (n>0, {params.shape[0]}), got {U.shape}")
    if not (math.isfinite(server_lr) and server_lr > 0):
        raise ParameterError(f"server_lr must be finite and > 0, got {server_lr!r}")
    mean = U.mean(axis=0) if weights is None else np.average(U, axis=0, weights=np.asarray(weights, dtype=np.float64))
    return (params + server_lr * mean).astype(np.float32)
