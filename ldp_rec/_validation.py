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


def check_output_path(path, *, force: bool = False, name: str = "--out"):
    """The result file ``path`` as a :class:`~pathlib.Path`, checked before any work is done: not a folder,
    not an existing file unless ``force``, and its folder writable (or creatable under a writable one).
    Creates nothing that stays (writability is probed with a temporary file that is removed at once)."""
    import tempfile
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ParameterError(f"{name} {p} is a folder; give a file path")
    if p.exists() and not force:
        raise ParameterError(f"{name} {p} exists; choose another {name} or pass --force")
    anc = p.parent if str(p.parent) else Path(".")
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise ParameterError(f"{name} {p}: {anc} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=anc, prefix=".ldp-rec-probe-"):
            pass
    except OSError as exc:
        raise ParameterError(f"{name} {p}: cannot write in {anc} ({exc.strerror or exc})") from None
    return p


def memory_bytes() -> int:
    """Physical memory of this machine in bytes (8 GiB when the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 8 << 30


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


def check_memory(nbytes: float, what: str, hint: str = "") -> None:
    """Refuse, before allocating it, work that needs more than half of this machine's memory."""
    total = memory_bytes()
    if not nbytes <= total / 2:
        raise ParameterError(f"{what} needs about {_size(nbytes)} of memory, more than half of this machine's "
                             f"{_size(total)}" + (f"; {hint}" if hint else ""))


#: codecs whose encoder holds the (users × N) log ratios of all N = 2^bits candidates at once
STORING_CANDIDATE_CODECS = ("modified-mrc", "subset")


def check_candidate_memory(*, codec: str, bits: int | None, users: int, dim: int = 1) -> None:
    """Refuse a fixed-candidate codec whose ``N = 2^bits`` candidates would not fit in memory when
    ``users`` users encode at once in dimension ``dim``: the O(N) tables (a few float64 arrays of N + 1),
    the (users × N) log ratios that modified MRC and subset selection keep, and the users' inputs."""
    if bits is None:
        return
    b = check_positive_int(bits, "bits")
    if b > 40:
        raise ParameterError(f"bits must be <= 40, got {b}")
    n_cand = float(2**b)
    need = 4 * 8 * (n_cand + 1)  # the tables of one codec
    if codec in STORING_CANDIDATE_CODECS:
        need = max(need, 3 * 8 * float(users) * n_cand)  # log ratios, probabilities, cdf
    need += 4 * 8 * float(users) * float(dim)
    check_memory(need, f"{codec} with bits={b} (N = 2^{b} candidates per user, {users} users encoding at once)",
                 "lower --bits")


def load_object(spec: str, what: str):
    """The object named by ``"package.module:attribute"`` (ParameterError, one line, if it cannot be
    imported or found): the form of ``--model`` and ``--dataset`` factories."""
    import importlib

    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ParameterError(f"{what} {spec!r}: expected 'package.module:callable'")
    module, attr = spec.split(":")
    try:
        obj = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure to import the user's module is a user error
        raise ParameterError(f"{what} {spec!r}: cannot import {module!r} ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ParameterError(f"{what} {spec!r}: module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ParameterError(f"{what} {spec!r}: {attr!r} is not callable")
    _share_import_root(module)
    return obj


def _share_import_root(module: str) -> None:
    """Put the folder that ``module`` was imported from on ``PYTHONPATH``, so that processes started
    from here (the simulation's Ray workers, which host the nodes) import the same module."""
    import os
    import sys
    from pathlib import Path

    file = getattr(sys.modules.get(module), "__file__", None)
    if not file:
        return
    depth = module.count(".") + (1 if Path(file).name == "__init__.py" else 0)
    root = str(Path(file).resolve().parents[depth])
    if any(root.startswith(str(Path(prefix).resolve())) for prefix in (sys.prefix, sys.base_prefix)):
        return  # installed: every process of this environment imports it
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, root])
