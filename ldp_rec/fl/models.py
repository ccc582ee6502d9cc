"""Small torch models for the simulator, and flat-parameter helpers.

All models take *flattened* inputs ``(batch, prod(input_shape))`` (or already shaped ones) and
return logits ``(batch, num_classes)``. They hold no buffers, no BatchNorm and no dropout, so
:func:`torch.func.functional_call` under ``vmap`` over users is exact and deterministic.

* ``logreg``: multinomial logistic regression, one ``Linear(prod(shape), C)``;
  on digits 64·10 + 10 = 650 parameters.
* ``mlp``: ``Linear(prod(shape), hidden) → ReLU → Linear(hidden, C)``.
* ``cnn``: ``Conv(3×3, c) → ReLU → MaxPool 2`` [``→ Conv(3×3, 2c) → ReLU → MaxPool 2`` when the
  image side is ≥ 16, e.g. 28×28 or 32×32] ``→ Linear(·, C)``; padding 1 keeps the side; c = ``channels``
  (default 8). Wider models (FLConfig ``width``) are for the projection front end's real-size runs.

Initialisation reproduces PyTorch's default ``Linear``/``Conv2d`` init (Kaiming-uniform with
a = √5 for weights, U(±1/√fan_in) for biases) drawn from a ``torch.Generator`` seeded with
``seed``, so building a model never touches torch's global RNG.

Your own model: ``model="package.module:factory"`` (``--model`` on the command line, ``model`` in a
run config). The contract of ``factory(input_shape, num_classes)``:

* ``input_shape`` is the tuple of one example's shape (``(64,)`` for digits, ``(1, 28, 28)`` for MNIST,
  ``X_train.shape[1:]`` or the loader's ``input_shape`` for your own data), ``num_classes`` an int ≥ 2;
* it returns a ``torch.nn.Module`` that maps a float32 batch ``(batch, *input_shape)`` (examples may
  arrive flattened, ``(batch, prod(input_shape))``: reshape inside, e.g. with :class:`Reshape`) to
  logits ``(batch, num_classes)``;
* with trainable parameters and no buffers (no BatchNorm running statistics): local training calls it
  through ``torch.func.functional_call`` under ``vmap`` over users; dropout would make updates random;
* it is called with torch's global RNG seeded from the run seed (and restored afterwards), so its
  default initialisation is the same on the server and on every node;
* its module must be importable where the nodes run (installed, or on ``PYTHONPATH``; ``ldp-rec fl``
  adds the folder it was imported from to ``PYTHONPATH`` for the simulation's workers).

:func:`make_model` checks the returned object once (type, parameters, buffers, output shape) and
raises :class:`~ldp_rec.errors.ParameterError` with one line otherwise.

The flat-parameter order is ``model.parameters()`` order, each tensor flattened row-major;
:func:`get_flat_params`, :func:`set_flat_params` and :func:`ldp_rec.fl.task.local_updates` agree on it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .._validation import check_positive_int
from ..errors import InputError, ParameterError

MODELS: tuple[str, ...] = ("logreg", "mlp", "cnn")


class Reshape(nn.Module):
    """Reshape ``(batch, ...)`` to ``(batch, *shape)``."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _reset_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default init for Linear/Conv2d, drawn from ``generator``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    fan_in = m.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def make_model(
    name: str,
    input_shape: Sequence[int] | int,
    num_classes: int,
    *,
    hidden: int = 64,
    channels: int = 8,
    seed: int = 0,
) -> nn.Module:
    """Build ``logreg``, ``mlp``, ``cnn`` or your own ``package.module:factory`` (module doc) for inputs of
    ``input_shape`` (``(C, H, W)`` or ``(features,)``)."""
    shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) else tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ParameterError(f"input_shape must be positive, got {input_shape!r}")
    num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
    hidden = check_positive_int(hidden, "hidden")
    channels = check_positive_int(channels, "channels")
    if isinstance(name, str) and ":" in name:
        return make_custom_model(name, shape, num_classes, seed=seed)
    if name not in MODELS:
        raise ParameterError(f"unknown model {name!r}; choose one of {MODELS}")
    # nn.Linear/nn.Conv2d initialise themselves from the global RNG on construction: build under
    # fork_rng (which restores the global state) and re-initialise from our own generator.
    with torch.random.fork_rng(devices=[]):
        model = _build(name, shape, num_classes, hidden, channels)
    _reset_parameters(model, torch.Generator().manual_seed(int(seed)))
    return model


def _build(name: str, shape: tuple[int, ...], num_classes: int, hidden: int, channels: int = 8) -> nn.Module:
    n_in = int(np.prod(shape))
    if name == "logreg":
        model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, num_classes))
    elif name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
    elif name == "cnn":
        if len(shape) != 3:
            raise ParameterError(f"cnn needs input_shape (C, H, W), got {shape}")
        c, h, w = shape
        layers: list[nn.Module] = [Reshape(shape), nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        h, w, ch = h // 2, w // 2, channels
        if min(shape[1:]) >= 16:
            layers += [nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            h, w, ch = h // 2, w // 2, 2 * channels
        layers += [nn.Flatten(), nn.Linear(ch * h * w, num_classes)]
        model = nn.Sequential(*layers)
    return model


def make_custom_model(spec: str, input_shape: tuple[int, ...], num_classes: int, *, seed: int = 0) -> nn.Module:
    """Your own model from ``spec = "package.module:factory"`` (module doc: the contract), checked."""
    from .._validation import load_object

    factory = load_object(spec, "model")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            model = factory(tuple(input_shape), int(num_classes))
        except Exception as exc:  # noqa: BLE001 - the user's factory failing is a user error
            raise ParameterError(f"model {spec!r}: factory{tuple(input_shape), int(num_classes)} raised "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
    if not isinstance(model, nn.Module):
        raise ParameterError(f"model {spec!r}: the factory returned {type(model).__name__}, expected a torch.nn.Module")
    if num_params(model) == 0:
        raise ParameterError(f"model {spec!r} has no trainable parameters")
    if any(True for _ in model.buffers()):
        raise ParameterError(f"model {spec!r} has buffers (BatchNorm statistics?): local training runs the model "
                             "through torch.func under vmap, which needs a model without buffers")
    try:
        with torch.no_grad():
            out = model(torch.zeros((2, int(np.prod(input_shape))), dtype=torch.float32))
    except Exception as exc:  # noqa: BLE001
        raise ParameterError(f"model {spec!r} fails on a batch of flattened inputs (2, {int(np.prod(input_shape))}): "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, int(num_classes)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ParameterError(f"model {spec!r} returns {got} for a batch of 2, expected logits (2, {num_classes})")
    return model


def num_params(model: nn.Module) -> int:
    """Total number of (trainable) parameters: the dimension of a flat update."""
    return int(sum(p.numel() for p in model.parameters()))


def get_flat_params(model: nn.Module) -> np.ndarray:
    """All parameters concatenated in ``model.parameters()`` order, float32 ``(num_params,)``."""
    with torch.no_grad():
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).to(torch.float32).cpu().numpy().copy()


def set_flat_params(model: nn.Module, vec) -> None:
    """Write a flat vector (``get_flat_params`` order) into the model's parameters, in place."""
    v = np.asarray(vec)
    n = num_params(model)
    if v.shape != (n,):
        raise InputError(f"flat parameter vector must have shape ({n},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InputError("flat parameter vector contains NaN or Inf")
    t = torch.as_tensor(v, dtype=torch.float32)
    with torch.no_grad():
        i = 0
        for p in model.parameters():
            k = p.numel()
            p.copy_(t[i : i + k].reshape(p.shape))
            i += k
