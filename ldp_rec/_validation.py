"""Shared argument checks. Every public entry point validates through these, so the
error messages are uniform."""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError, ParameterError


def check_epsilon(epsilon: float, name: str = "epsilon") -> float:
    """Return ``epsilon`` as float, or raise :class:`ParameterError` unless 0 < ε < ∞."""
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {epsilon!r}") from None
    if not math.isfinite(eps) or eps <= 0:
        raise ParameterError(f"{name} must be finite and > 0, got {epsilon!r}")
    return eps


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive_float(value, name: str) -> float:
    """Return ``value`` as float, or raise :class:`ParameterError` unless 0 < value < ∞."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"{name} must be finite and > 0, got {value!r}")
    return v


def check_probability(value: float, name: str, *, open_interval: bool = True) -> float:
    v = float(value)
    ok = (0 < v < 1) if open_interval else (0 <= v <= 1)
    if not ok or not math.isfinite(v):
        raise ParameterError(f"{name} must be in {'(0, 1)' if open_interval else '[0, 1]'}, got {value!r}")
    return v


def as_batch(x, dim: int, *, name: str = "x") -> tuple[np.ndarray, bool]:
    """Validate a vector ``(d,)`` or a batch ``(n, d)`` of finite floats.

    Returns ``(X, single)`` with ``X`` of shape ``(n, d)`` (float64) and ``single`` True when the
    input was one vector, so the caller can squeeze its result back.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        single = True
        arr = arr[None, :]
    elif arr.ndim == 2:
        single = False
    else:
        raise InputError(f"{name} must have shape (d,) or (n, d), got {arr.shape}")
    if arr.shape[1] != dim:
        raise InputError(f"{name} has dimension {arr.shape[1]}, expected {dim}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or Inf")
    return arr, single
