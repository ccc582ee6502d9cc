"""Bit-level I/O, most significant bit first.

Conventions (shared by every code in :mod:`ldp_rec.coding`, so an encoder and a decoder built
from this module agree bit for bit):

* An unsigned integer ``v`` of width ``w`` is written as its ``w`` binary digits, most
  significant first; ``0 <= v < 2**w`` is required.
* A stream of ``nbits`` bits is stored in ``ceil(nbits / 8)`` bytes; bit ``i`` of the stream is
  bit ``7 - i % 8`` of byte ``i // 8`` (the layout of :func:`numpy.packbits`). The unused low
  bits of the last byte (*padding*) are zero; a decoder that finds them non-zero, or finds whole
  bytes past the end of the stream, raises :class:`~ldp_rec.errors.DecodeError`.

:class:`BitWriter` / :class:`BitReader` are the scalar API (Python integers of any width);
:func:`pack_fixed` / :func:`unpack_fixed` and :func:`pack_fields` are the vectorised batch
paths (numpy and a numba kernel: no Python loop per value).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .._validation import check_positive_int
from ..errors import DecodeError, ParameterError

__all__ = ["BitWriter", "BitReader", "pack_fixed", "unpack_fixed", "pack_fields", "check_tail"]


class BitWriter:
    """Append-only bit sink. ``nbits`` is the exact number of bits written so far;
    :meth:`getvalue` returns them zero-padded to whole bytes."""

    __slots__ = ("_buf", "_acc", "_nacc")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._acc = 0  # pending bits (fewer than 8 after every call), right-aligned
        self._nacc = 0

    @property
    def nbits(self) -> int:
        return 8 * len(self._buf) + self._nacc

    def write_uint(self, value: int, width: int) -> None:
        """Write ``value`` in exactly ``width`` bits (``0 <= value < 2**width``)."""
        value, width = int(value), int(width)
        if width < 0 or value < 0 or value >> width:
            raise ParameterError(f"value {value} does not fit in {width} bits")
        acc = (self._acc << width) | value
        nacc = self._nacc + width
        nbytes = nacc >> 3
        if nbytes:
            rest = nacc - 8 * nbytes
            self._buf += (acc >> rest).to_bytes(nbytes, "big")
            acc &= (1 << rest) - 1
            nacc = rest
        self._acc, self._nacc = acc, nacc

    def write_bit(self, bit: int) -> None:
        if bit not in (0, 1):
            raise ParameterError(f"a bit must be 0 or 1, got {bit!r}")
        self.write_uint(bit, 1)

    def write_bits(self, bits) -> None:
        """Write an array of 0/1 values (vectorised)."""
        b = np.asarray(bits).reshape(-1)
        if b.size == 0:
            return
        if np.any((b != 0) & (b != 1)):
            raise ParameterError("bits must be 0 or 1")
        packed = np.packbits(b.astype(np.uint8)).tobytes()
        self.write_uint(int.from_bytes(packed, "big") >> (8 * len(packed) - b.size), b.size)

    def write_bytes(self, data: bytes, nbits: int | None = None) -> None:
        """Append the first ``nbits`` bits of ``data`` (all of it by default)."""
        n = 8 * len(data) if nbits is None else int(nbits)
        if not 0 <= n <= 8 * len(data):
            raise ParameterError(f"nbits={nbits} outside [0, {8 * len(data)}]")
        if n:
            self.write_uint(int.from_bytes(data, "big") >> (8 * len(data) - n), n)

    def getvalue(self) -> bytes:
        if self._nacc == 0:
            return bytes(self._buf)
        return bytes(self._buf) + bytes([(self._acc << (8 - self._nacc)) & 0xFF])


class BitReader:
    """Reads a stream written by :class:`BitWriter`.

    ``nbits`` (default ``8 * len(data)``) is the logical end: reading past it raises
    :class:`DecodeError` ("truncated"). :meth:`finish` checks that the stream was consumed
    exactly (no trailing bits or bytes, zero padding).
    """

    __slots__ = ("_bits", "_limit", "pos", "_nbytes", "_explicit", "_ones")

    def __init__(self, data: bytes, nbits: int | None = None) -> None:
        raw = np.frombuffer(bytes(data), dtype=np.uint8)
        self._nbytes = raw.size
        self._bits = np.unpackbits(raw)
        self._explicit = nbits is not None
        self._limit = self._bits.size if nbits is None else int(nbits)
        if not 0 <= self._limit <= self._bits.size:
            raise DecodeError(f"nbits={nbits} exceeds the {self._bits.size} bits supplied (truncated)")
        self.pos = 0
        self._ones = None

    @property
    def remaining(self) -> int:
        return self._limit - self.pos

    def _need(self, width: int) -> None:
        if self.pos + width > self._limit:
            raise DecodeError(f"truncated stream: need {width} bits at bit {self.pos}, have {self.remaining}")

    def read_uint(self, width: int) -> int:
        width = int(width)
        if width < 0:
            raise ParameterError("width must be >= 0")
        if width == 0:
            return 0
        self._need(width)
        packed = np.packbits(self._bits[self.pos : self.pos + width]).tobytes()
        self.pos += width
        return int.from_bytes(packed, "big") >> (8 * len(packed) - width)

    def read_bit(self) -> int:
        self._need(1)
        b = int(self._bits[self.pos])
        self.pos += 1
        return b

    def read_zeros_then_one(self) -> int:
        """Count zeros up to the next 1 bit and consume that 1 (a unary prefix); O(log n)."""
        if self._ones is None:
            self._ones = np.flatnonzero(self._bits[: self._limit])
        j = int(np.searchsorted(self._ones, self.pos))
        if j == self._ones.size:
            raise DecodeError(f"truncated stream: no terminating 1 bit after bit {self.pos}")
        n = int(self._ones[j]) - self.pos
        self.pos = int(self._ones[j]) + 1
        return n

    def finish(self) -> None:
        """Raise :class:`DecodeError` unless the stream ends here (see :func:`check_tail`)."""
        check_tail(self._bits, self._nbytes, self.pos, self._limit if self._explicit else None)


def check_tail(bits: np.ndarray, nbytes: int, consumed: int, nbits: int | None) -> None:
    """Validate the end of a stream of ``nbytes`` bytes (unpacked ``bits``) of which ``consumed``
    bits were decoded. With an explicit ``nbits`` the decoder must have used exactly ``nbits``;
    in all cases the data must be ``ceil(end / 8)`` bytes with zero padding."""
    end = consumed if nbits is None else int(nbits)
    if nbits is not None and consumed != end:
        raise DecodeError(f"over-long stream: decoded {consumed} bits but nbits={nbits}")
    if nbytes != (end + 7) // 8:
        raise DecodeError(f"over-long stream: {nbytes} bytes for {end} bits (trailing data)")
    if np.any(bits[end : 8 * nbytes]):
        raise DecodeError("non-zero padding bits (corrupted stream)")


def _check_width(width) -> int:
    w = check_positive_int(width, "width")
    if w > 64:
        raise ParameterError(f"width must be <= 64, got {w}")
    return w


def _as_uint64(values, name: str = "values") -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind not in "iu":
        raise ParameterError(f"{name} must be integers, got dtype {v.dtype}")
    if v.dtype.kind == "i" and v.size and v.min() < 0:
        raise ParameterError(f"{name} must be non-negative")
    return v.astype(np.uint64).reshape(-1)


_ROWS = 1 << 16  # rows per chunk in pack_fixed (a multiple of 8, so chunks end on byte boundaries)


def pack_fixed(values, width: int) -> bytes:
    """Pack unsigned ``values`` in ``width`` bits each (``count * width`` bits, zero padded)."""
    w = _check_width(width)
    v = _as_uint64(values)
    if w < 64 and v.size and int(v.max()) >> w:
        raise ParameterError(f"a value does not fit in {w} bits")
    shifts = np.arange(w - 1, -1, -1, dtype=np.uint64)
    out = []
    for s in range(0, max(v.size, 1), _ROWS):  # chunks bound the (rows, width) temporary
        bits = ((v[s : s + _ROWS, None] >> shifts) & np.uint64(1)).astype(np.uint8)
        out.append(bits.reshape(-1))
    return np.packbits(np.concatenate(out)).tobytes()


def unpack_fixed(data: bytes, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_fixed`: ``count`` values as uint64. The data must be exactly
    ``ceil(count * width / 8)`` bytes with zero padding."""
    w = _check_width(width)
    n = check_positive_int(count, "count", minimum=0)
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    need = (n * w + 7) // 8
    if raw.size < need:
        raise DecodeError(f"truncated stream: {raw.size} bytes for {n} values of {w} bits")
    bits = np.unpackbits(raw)
    check_tail(bits, raw.size, n * w, None)
    weights = np.uint64(1) << np.arange(w - 1, -1, -1, dtype=np.uint64)
    out = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _ROWS):
        blk = bits[s * w : min(n, s + _ROWS) * w].reshape(-1, w).astype(np.uint64)
        out[s : s + blk.shape[0]] = (blk * weights).sum(axis=1, dtype=np.uint64)
    return out


@nb.njit(cache=True)
def _pack_fields_kernel(values, widths, out):
    """Append fields MSB first through a 64-bit accumulator, flushing whole bytes."""
    acc = np.uint64(0)
    nacc = 0  # pending bits in acc, < 8 between fields
    o = 0
    for i in range(values.size):
        v = values[i]
        w = widths[i]
        while w > 0:
            take = min(w, 56 - nacc)
            shift = w - take
            piece = np.uint64(0) if shift >= 64 else (v >> np.uint64(shift)) & ((np.uint64(1) << np.uint64(take)) - np.uint64(1))
            acc = (acc << np.uint64(take)) | piece
            nacc += take
            w -= take
            while nacc >= 8:
                out[o] = np.uint8((acc >> np.uint64(nacc - 8)) & np.uint64(0xFF))
                o += 1
                nacc -= 8
    if nacc:
        out[o] = np.uint8((acc << np.uint64(8 - nacc)) & np.uint64(0xFF))
    return 8 * o + nacc


def pack_fields(values, widths) -> tuple[bytes, int]:
    """Concatenate variable-width fields: field ``i`` is ``values[i]`` written in ``widths[i]``
    bits (``widths[i] >= 0``; beyond 64 the extra high bits are zeros). Returns ``(data, nbits)``."""
    v = _as_uint64(values)
    w = np.asarray(widths, dtype=np.int64).reshape(-1)
    if w.shape != v.shape:
        raise ParameterError("values and widths must have the same length")
    if w.size and w.min() < 0:
        raise ParameterError("field widths must be >= 0")
    short = w < 64
    if np.any(v[short] >> w[short].astype(np.uint64)):
        raise ParameterError("a field value does not fit in its width")
    total = int(w.sum())
    out = np.zeros((total + 7) // 8, dtype=np.uint8)
    _pack_fields_kernel(v, w, out)
    return out.tobytes(), total


@nb.njit(inline="always", cache=True)
def read_bits_at(buf, pos, width):
    """``width`` (<= 64) bits of the packed stream ``buf`` from bit ``pos``, as uint64."""
    v = np.uint64(0)
    for j in range(pos, pos + width):
        v = (v << np.uint64(1)) | np.uint64((buf[j >> 3] >> (7 - (j & 7))) & 1)
    return v


@nb.njit(inline="always", cache=True)
def read_wide_at(buf, pos, width):
    """``width`` bits from ``pos`` as int64 when the value is below 2**63: returns
    ``(value, ok)`` with ``ok`` False when a bit above bit 62 is set (value too large)."""
    lead = width - 63 if width > 63 else 0
    for j in range(pos, pos + lead):
        if (buf[j >> 3] >> (7 - (j & 7))) & 1:
            return np.int64(0), False
    return np.int64(read_bits_at(buf, pos + lead, width - lead)), True


@nb.njit(inline="always", cache=True)
def count_zeros_at(buf, pos, limit):
    """Number of zero bits from ``pos`` up to the next 1 (``-1`` when none before ``limit``)."""
    j = pos
    while j < limit:
        if (buf[j >> 3] >> (7 - (j & 7))) & 1:
            return j - pos
        j += 1
    return -1
