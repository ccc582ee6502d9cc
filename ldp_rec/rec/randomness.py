"""Shared randomness: seed derivation and candidate streams with random access.

Encoder and decoder of a channel simulator share candidates ``Z_1, Z_2, … ~ P`` drawn from a
seed. In ldp-rec the seed is never sent: both ends derive it with :func:`derive_key` from public
coordinates ``(run seed, round, client, chunk)`` and a domain label, and candidate ``i`` is a pure
function of ``(key, i)`` (see :mod:`._kernels`). Hence

* an encoder draws candidates in vectorised blocks (and may project them without storing them,
  :func:`project_block`);
* a decoder regenerates candidate ``K`` alone, in O(width) work: it never replays the ``K − 1``
  candidates before it (:func:`gather`).

Determinism contract
--------------------
Both ends must call the functions of this module (same ldp-rec, numba and platform), with the
same key, width and kind. Normals are returned as float32, uniforms as float64. Keys are 64-bit:
two different coordinate tuples collide with probability 2^-64, and :func:`derive_key` hashes the
tuple with BLAKE2b (a PRF keyed by the domain), so no two (round, client, chunk) triples of a run
share a stream.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ParameterError, StreamError
from . import _kernels

Kind = Literal["normal", "uniform"]
_KINDS = ("normal", "uniform")
_KDF_KEY = b"ldp-rec/seed/v1"
_PARALLEL_MIN = 1 << 16  # variates below which gathers run serially


class _Counter:
    """Counts candidates materialised by this module (for tests and benchmarks)."""

    def __init__(self) -> None:
        self.candidates = 0

    def reset(self) -> None:
        self.candidates = 0


STATS = _Counter()


def derive_key(run_seed: int, round: int, client: int, chunk: int = 0, *, domain: str = "candidates") -> np.uint64:
    """64-bit stream key for ``(run_seed, round, client, chunk)`` in ``domain``.

    BLAKE2b-64 keyed with a fixed label, over the little-endian int64 encoding of the four
    coordinates and the UTF-8 domain. Different domains (for example ``"candidates"`` and
    ``"rotation"``) give independent streams for the same coordinates.
    """
    for name, v in (("run_seed", run_seed), ("round", round), ("client", client), ("chunk", chunk)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ParameterError(f"{name} must be an integer, got {v!r}")
        if not -(2**63) <= int(v) < 2**63:
            raise ParameterError(f"{name} must fit in int64, got {v}")
    msg = struct.pack("<qqqq", int(run_seed), int(round), int(client), int(chunk)) + domain.encode()
    digest = hashlib.blake2b(msg, digest_size=8, key=_KDF_KEY).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def derive_keys(run_seed: int, round: int, clients, chunk=0, *, domain: str = "candidates") -> np.ndarray:
    """:func:`derive_key` for every client id of ``clients`` (and every chunk of ``chunk`` when it is an
    array): ``(n,)`` for a scalar chunk, ``(n, k)`` for k chunks. The coordinates are validated and packed
    for all users at once, and one keyed BLAKE2b state is copied per key (the same digests as
    :func:`derive_key`, which the known-answer vectors pin)."""
    for name, v in (("run_seed", run_seed), ("round", round)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ParameterError(f"{name} must be an integer, got {v!r}")
        if not -(2**63) <= int(v) < 2**63:
            raise ParameterError(f"{name} must fit in int64, got {v}")
    c = _int64_coords(clients, "client")
    scalar = np.ndim(chunk) == 0
    j = _int64_coords(np.atleast_1d(chunk), "chunk")
    n, k = c.size, j.size
    rec = np.empty((n, k, 4), dtype="<i8")
    rec[..., 0], rec[..., 1] = int(run_seed), int(round)
    rec[..., 2], rec[..., 3] = c[:, None], j[None, :]
    dom = domain.encode()
    base = hashlib.blake2b(digest_size=8, key=_KDF_KEY)
    width = 32 + len(dom)
    msgs = np.empty((n * k, width), dtype=np.uint8)  # one message per key: 4 int64 coordinates, the domain
    msgs[:, :32] = rec.reshape(-1, 4).view(np.uint8).reshape(-1, 32)
    msgs[:, 32:] = np.frombuffer(dom, dtype=np.uint8)
    view = memoryview(msgs.tobytes())
    digests = bytearray()
    for i in range(n * k):
        h = base.copy()
        h.update(view[i * width : (i + 1) * width])
        digests += h.digest()
    out = np.frombuffer(bytes(digests), dtype="<u8").astype(np.uint64)
    return out.reshape(n) if scalar else out.reshape(n, k)


def _int64_coords(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype == object:
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in a.reshape(-1)):
            raise ParameterError(f"{name} ids must be integers")
        if any(not -(2**63) <= int(v) < 2**63 for v in a.reshape(-1)):
            raise ParameterError(f"{name} ids must fit in int64")
        return a.astype(np.int64).reshape(-1)
    if a.dtype.kind not in "iu" or a.dtype == bool:
        raise ParameterError(f"{name} ids must be integers, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and int(a.max()) >= 2**63:
        raise ParameterError(f"{name} ids must fit in int64")
    return a.astype(np.int64).reshape(-1)


def _keys(keys) -> np.ndarray:
    arr = np.asarray(keys)
    if arr.dtype != np.uint64:
        if arr.dtype.kind not in "iu" or np.any(arr < 0):
            raise ParameterError("keys must be non-negative integers (uint64)")
        arr = arr.astype(np.uint64)
    return np.ascontiguousarray(arr.reshape(-1))


def _check_range(start: int, count: int, length: int | None) -> None:
    if start < 0 or count < 0:
        raise StreamError(f"candidate range must be non-negative, got start={start}, count={count}")
    if length is not None and start + count > length:
        raise StreamError(f"candidates [{start}, {start + count}) run past the stream length {length}")


def block(keys, start: int, count: int, width: int, kind: Kind = "normal") -> np.ndarray:
    """Candidates ``start … start+count-1`` of every stream: shape ``(n_keys, count, width)``."""
    if kind not in _KINDS:
        raise ParameterError(f"kind must be one of {_KINDS}, got {kind!r}")
    _check_range(start, count, None)
    k = _keys(keys)
    out = np.empty((k.size, count, width), dtype=np.float32 if kind == "normal" else np.float64)
    (_kernels.fill_normal if kind == "normal" else _kernels.fill_uniform)(k, np.int64(start), out)
    STATS.candidates += k.size * count
    return out


def gather(keys, indices, width: int, kind: Kind = "normal") -> np.ndarray:
    """Candidate ``indices[c]`` of stream ``keys[c]`` for every c: shape ``(n_keys, width)``."""
    if kind not in _KINDS:
        raise ParameterError(f"kind must be one of {_KINDS}, got {kind!r}")
    k = _keys(keys)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size != k.size:
        raise ParameterError(f"{idx.size} indices for {k.size} keys")
    if np.any(idx < 0):
        raise StreamError("candidate indices must be non-negative")
    out = np.empty((k.size, width), dtype=np.float32 if kind == "normal" else np.float64)
    if k.size * width < _PARALLEL_MIN:  # small gathers: thread start-up would dominate
        fill = _kernels.gather_normal_serial if kind == "normal" else _kernels.gather_uniform_serial
    else:
        fill = _kernels.gather_normal if kind == "normal" else _kernels.gather_uniform
    fill(k, idx, out)
    STATS.candidates += k.size
    return out


def project_block(keys, start: int, count: int, xs) -> tuple[np.ndarray, np.ndarray]:
    """Projections of normal candidates without materialising them.

    Returns ``(dots, sqnorms)``, each ``(n_keys, count)`` float64, with
    ``dots[c, m] = <g, xs[c]>`` and ``sqnorms[c, m] = ||g||²`` for ``g = block(keys, start, count)[c, m]``
    (the same float32 values a decoder regenerates).
    """
    _check_range(start, count, None)
    k = _keys(keys)
    xs = np.ascontiguousarray(np.asarray(xs, dtype=np.float64))
    if xs.ndim != 2 or xs.shape[0] != k.size:
        raise ParameterError(f"xs must have shape ({k.size}, width), got {xs.shape}")
    dots = np.empty((k.size, count))
    sq = np.empty((k.size, count))
    _kernels.project_normal(k, np.int64(start), xs, dots, sq)
    STATS.candidates += k.size * count
    return dots, sq


@dataclass(frozen=True)
class CandidateStream:
    """One shared stream: candidate ``i`` is ``width`` variates of ``kind``, a pure function of (key, i).

    ``length`` (optional) bounds the stream, so a decoder given an index past it raises
    :class:`~ldp_rec.errors.StreamError` instead of producing a sample the encoder never saw.
    """

    key: int
    width: int
    kind: Kind = "normal"
    length: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ParameterError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        if int(self.width) < 1:
            raise ParameterError(f"width must be >= 1, got {self.width}")
        if not 0 <= int(self.key) < 2**64:
            raise ParameterError("key must be a uint64")
        if self.length is not None and self.length < 1:
            raise ParameterError(f"length must be >= 1, got {self.length}")

    @property
    def _k(self) -> np.ndarray:
        return np.array([self.key], dtype=np.uint64)

    def block(self, start: int, count: int) -> np.ndarray:
        """Candidates ``start … start+count-1``: shape ``(count, width)``."""
        _check_range(start, count, self.length)
        return block(self._k, start, count, self.width, self.kind)[0]

    def candidate(self, index: int) -> np.ndarray:
        """Candidate ``index`` alone: shape ``(width,)``."""
        index = int(index)
        _check_range(index, 1, self.length)
        return gather(self._k, [index], self.width, self.kind)[0]

    def project(self, start: int, count: int, x) -> tuple[np.ndarray, np.ndarray]:
        """``(dots, sqnorms)`` of normal candidates against ``x`` (see :func:`project_block`)."""
        if self.kind != "normal":
            raise ParameterError("project is defined for normal streams only")
        _check_range(start, count, self.length)
        d, s = project_block(self._k, start, count, np.asarray(x, dtype=np.float64)[None, :])
        return d[0], s[0]
