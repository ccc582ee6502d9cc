"""Prefix codes for positive integers: fixed length, Elias γ and δ, Boldi–Vigna ζ_k.

Every code takes ``v >= 1``. A 0-based candidate index ``i`` is coded as ``v = i + 1``
(:func:`encode_indices` / :func:`decode_indices` apply the shift). With ``N = floor(log2 v)``:

* ``FixedLength(bits)``: ``v - 1`` in ``bits`` bits, ``1 <= v <= 2**bits``.
* ``EliasGamma`` (Elias 1975): ``N`` zeros, then ``v`` in ``N + 1`` bits; ``2N + 1`` bits.
* ``EliasDelta`` (Elias 1975): γ(``N + 1``), then the ``N`` low bits of ``v``;
  ``N + 2·floor(log2(N + 1)) + 1`` bits.
* ``ZetaCode(k)`` (Boldi & Vigna 2005, "Codes for the World Wide Web", Internet Math. 2(4),
  ζ codes): for ``v ∈ [2^{hk}, 2^{(h+1)k})`` write ``h`` zeros and a one (``h + 1`` in unary), then the
  minimal binary code of ``z = v - 2^{hk}`` in ``[0, m)``, ``m = 2^{(h+1)k} - 2^{hk}``: with
  ``s = ceil(log2 m)``, ``z < 2^s - m`` takes ``s - 1`` bits, else ``z + 2^s - m`` takes ``s``.
  For ``k >= 2`` that is ``s = (h+1)k`` and the short branch is ``z < 2^{hk}``; ζ_1 = γ.
  ζ_k is matched to a power law ``P(v) ∝ v^{-(1+1/k)}``.

Scalar ``encode``/``decode`` go through :class:`~.bits.BitWriter`/``BitReader`` and accept any
Python integer; the batch paths ``encode_many``/``decode_many`` are vectorised (numpy fields +
numba kernels) for ``1 <= v < 2**63``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numba as nb
import numpy as np

from .._validation import check_positive_int
from ..errors import DecodeError, ParameterError
from .bits import BitReader, BitWriter, check_tail, count_zeros_at, pack_fields, read_bits_at, read_wide_at

__all__ = [
    "IntegerCode", "FixedLength", "EliasGamma", "EliasDelta", "ZetaCode",
    "encode_indices", "decode_indices", "floor_log2", "zigzag",
]

_MAX_BATCH = (1 << 63) - 1


def zigzag(k) -> np.ndarray:
    """Signed integers to non-negative ones, ``0, −1, 1, −2, … ↦ 0, 1, 2, 3, …`` (then +1 for a code
    of positive integers)."""
    k = np.asarray(k, dtype=np.int64)
    return np.where(k >= 0, 2 * k, -2 * k - 1)


def floor_log2(v) -> np.ndarray:
    """Exact ``floor(log2 v)`` for integer arrays ``v >= 1`` (float guess, integer fix-up)."""
    u = np.asarray(v).astype(np.uint64)
    e = (np.frexp(u.astype(np.float64))[1] - 1).astype(np.int64)
    e -= (np.uint64(1) << e.astype(np.uint64)) > u  # float rounding up to the next power of 2
    return e


def _check_value(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ParameterError(f"value must be an integer, got {v!r}")
    if v < 1:
        raise ParameterError(f"value must be >= 1 (shift 0-based indices by +1), got {v}")
    return int(v)


def _check_values(values) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind not in "iu":
        raise ParameterError(f"values must be integers, got dtype {v.dtype}")
    v = v.reshape(-1)
    if v.size and (v.min() < 1 or (v.dtype.kind == "u" and v.max() > _MAX_BATCH)):
        raise ParameterError("values must be in [1, 2**63) (shift 0-based indices by +1)")
    return v.astype(np.int64)


class IntegerCode(abc.ABC):
    """A prefix code on positive integers."""

    #: the longest code word in bits (None: unbounded, a variable-length code)
    max_word_bits: int | None = None

    @abc.abstractmethod
    def encode(self, value: int, writer: BitWriter) -> None: ...

    @abc.abstractmethod
    def decode(self, reader: BitReader) -> int: ...

    @abc.abstractmethod
    def length(self, value: int) -> int:
        """Exact code length of ``value`` in bits."""

    @abc.abstractmethod
    def lengths(self, values) -> np.ndarray:
        """Vectorised :meth:`length` (int64)."""

    @abc.abstractmethod
    def fields(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(field_values, field_widths)`` of the code words, flattened in stream order."""

    @abc.abstractmethod
    def _decode_kernel(self, buf, limit, count): ...


    def encode_many(self, values) -> tuple[bytes, int]:
        """Code words of ``values`` concatenated: ``(data, nbits)`` (zero-padded bytes)."""
        fv, fw = self.fields(_check_values(values))
        return pack_fields(fv, fw)

    def decode_rows(self, buf, starts, nbits, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Decode ``count`` words from each row ``r`` of a packed stream ``buf`` (uint8), row r being the
        bits ``[starts[r], starts[r] + nbits[r])``: ``(values (m, count) int64, status (m,) int8)``,
        status 0 ok, 1 truncated, 2 a word ≥ 2^63 (decode that row with the scalar path), 3 over-long.
        One numba call for all rows; a bad row never affects another."""
        kernel, param = self._rows_kernel()
        b = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
        st = np.ascontiguousarray(starts, dtype=np.int64)
        nb_ = np.ascontiguousarray(nbits, dtype=np.int64)
        if st.size and (st.min() < 0 or int((st + nb_).max()) > 8 * b.size):
            raise DecodeError("row bit range runs past the stream")
        return kernel(b, st, nb_, int(count), param)

    def fields_wide(self, values) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fields` for values of any size (Python ints; the scalar path's bits, split into
        ≤ 64-bit fields): ``(uint64 values, widths)``."""
        vals = [int(v) for v in np.asarray(values, dtype=object).reshape(-1)]
        if all(v < _MAX_BATCH for v in vals):
            fv, fw = self.fields(_check_values(np.array(vals, dtype=np.int64)))
            return np.asarray(fv).astype(np.uint64), np.asarray(fw, dtype=np.int64)
        fv, fw = [], []
        for v in vals:
            w = BitWriter()
            self.encode(v, w)
            n, x = w.nbits, int.from_bytes(w.getvalue(), "big") >> ((-w.nbits) % 8)
            while n > 0:
                take = min(n, 64)
                fv.append((x >> (n - take)) & ((1 << take) - 1))
                fw.append(take)
                n -= take
        return np.array(fv, dtype=np.uint64), np.array(fw, dtype=np.int64)

    def decode_many(self, data: bytes, count: int, nbits: int | None = None) -> np.ndarray:
        """Decode ``count`` values (int64). The stream must end exactly after them (at ``nbits``
        when given) with zero padding; otherwise :class:`DecodeError`."""
        n = check_positive_int(count, "count", minimum=0)
        buf = np.frombuffer(bytes(data), dtype=np.uint8)
        limit = 8 * buf.size if nbits is None else int(nbits)
        if not 0 <= limit <= 8 * buf.size:
            raise DecodeError(f"nbits={nbits} exceeds the {8 * buf.size} bits supplied (truncated)")
        out, pos, status = self._decode_kernel(buf, limit, n)
        if status == 1:
            raise DecodeError(f"truncated stream: {limit} bits hold fewer than {n} code words")
        if status == 2:
            raise DecodeError("corrupted stream: code word describes a value >= 2**63")
        check_tail(np.unpackbits(buf), buf.size, pos, nbits)
        return out


@dataclass(frozen=True)
class FixedLength(IntegerCode):
    """``v - 1`` in ``bits`` bits, for ``1 <= v <= 2**bits`` (``1 <= bits <= 62``)."""

    bits: int

    def __post_init__(self) -> None:
        check_positive_int(self.bits, "bits")
        if self.bits > 62:
            raise ParameterError("bits must be <= 62")

    @property
    def max_word_bits(self) -> int:
        return int(self.bits)

    def _range(self, v) -> None:
        if np.any(np.asarray(v) > (1 << self.bits)):
            raise ParameterError(f"value exceeds 2**{self.bits} (out of range for FixedLength)")

    def encode(self, value, writer):
        v = _check_value(value)
        self._range(v)
        writer.write_uint(v - 1, self.bits)

    def decode(self, reader):
        return reader.read_uint(self.bits) + 1

    def length(self, value):
        self._range(_check_value(value))
        return self.bits

    def lengths(self, values):
        v = _check_values(values)
        self._range(v)
        return np.full(v.shape, self.bits, dtype=np.int64)

    def fields(self, values):
        self._range(values)
        return values - 1, np.full(values.shape, self.bits, dtype=np.int64)

    def _decode_kernel(self, buf, limit, count):
        return _decode_fixed(buf, limit, count, self.bits)

    def _rows_kernel(self):
        return _rows_fixed, self.bits



@dataclass(frozen=True)
class ZetaCode(IntegerCode):
    """Boldi–Vigna ζ_k (module doc); ``k >= 1`` is known to the decoder."""

    k: int

    def __post_init__(self) -> None:
        check_positive_int(self.k, "k")
        if self.k > 62:
            raise ParameterError("k must be <= 62")

    def length(self, value):
        v = _check_value(value)
        h = (v.bit_length() - 1) // self.k
        if self.k == 1:
            return 2 * h + 1
        short = v < 1 << (h * self.k + 1)
        return h + 1 + (h + 1) * self.k - int(short)

    def lengths(self, values):
        v = _check_values(values)
        h = floor_log2(v) // self.k
        if self.k == 1:
            return 2 * h + 1
        lo = np.int64(1) << (h * self.k)
        short = (v - lo) < lo
        return h + 1 + (h + 1) * self.k - short.astype(np.int64)

    def encode(self, value, writer):
        v = _check_value(value)
        h = (v.bit_length() - 1) // self.k
        writer.write_uint(1, h + 1)
        z, s = v - (1 << (h * self.k)), (h + 1) * self.k
        if self.k == 1:
            writer.write_uint(z, h)
        elif z < 1 << (h * self.k):
            writer.write_uint(z, s - 1)
        else:
            writer.write_uint(z + (1 << (h * self.k)), s)

    def decode(self, reader):
        h = reader.read_zeros_then_one()
        if self.k == 1:
            return (1 << h) | reader.read_uint(h)
        s, lo = (h + 1) * self.k, 1 << (h * self.k)
        z = reader.read_uint(s - 1)
        if z >= lo:  # long branch: one more bit, stored value is z + lo
            z = ((z << 1) | reader.read_bit()) - lo
        return lo + z

    def fields(self, values):
        k = self.k
        h = floor_log2(values) // k
        lo = np.int64(1) << (h * k)
        z = values - lo
        if k == 1:
            pay, pw = z, h
        else:
            short = z < lo
            pay = np.where(short, z, z + lo)
            pw = (h + 1) * k - short.astype(np.int64)
        fv = np.stack([np.ones_like(values), pay], axis=1).reshape(-1)
        fw = np.stack([h + 1, pw], axis=1).reshape(-1)
        return fv, fw

    def _decode_kernel(self, buf, limit, count):
        return _decode_zeta(buf, limit, count, self.k)

    def _rows_kernel(self):
        return _rows_zeta, self.k



class EliasGamma(ZetaCode):
    """Elias γ = ζ_1: ``N`` zeros then ``v`` in ``N+1`` bits; ``2 floor(log2 v) + 1`` bits."""

    def __init__(self) -> None:
        super().__init__(1)

    def __repr__(self) -> str:
        return "EliasGamma()"


@dataclass(frozen=True)
class EliasDelta(IntegerCode):
    """Elias δ: γ(``N+1``) then the ``N`` low bits of ``v``; ``N + 2 floor(log2(N+1)) + 1`` bits."""

    def length(self, value):
        n = _check_value(value).bit_length() - 1
        return n + 2 * ((n + 1).bit_length() - 1) + 1

    def lengths(self, values):
        n = floor_log2(_check_values(values))
        return n + 2 * floor_log2(n + 1) + 1

    def encode(self, value, writer):
        v = _check_value(value)
        n = v.bit_length() - 1
        EliasGamma().encode(n + 1, writer)
        writer.write_uint(v - (1 << n), n)

    def decode(self, reader):
        n = EliasGamma().decode(reader) - 1
        return (1 << n) | reader.read_uint(n)

    def fields(self, values):
        n = floor_log2(values)
        m = floor_log2(n + 1)
        fv = np.stack([n + 1, values - (np.int64(1) << n)], axis=1).reshape(-1)
        fw = np.stack([2 * m + 1, n], axis=1).reshape(-1)
        return fv, fw

    def _decode_kernel(self, buf, limit, count):
        return _decode_delta(buf, limit, count, 0)

    def _rows_kernel(self):
        return _rows_delta, 0



@nb.njit(cache=True)
def _fixed_at(buf, pos, limit, count, out, bits):
    """Decode ``count`` fixed-length words from bit ``pos``: ``(end position, status)``."""
    if pos + count * bits > limit:
        return pos, 1
    for i in range(count):
        out[i] = np.int64(read_bits_at(buf, pos + i * bits, bits)) + 1
    return pos + count * bits, 0


@nb.njit(cache=True)
def _zeta_at(buf, pos, limit, count, out, k):
    for i in range(count):
        h = count_zeros_at(buf, pos, limit)
        if h < 0:
            return pos, 1
        if h * k > 62:
            return pos, 2
        pos += h + 1
        lo = np.int64(1) << (h * k)
        if k == 1:
            if pos + h > limit:
                return pos, 1
            out[i] = lo | np.int64(read_bits_at(buf, pos, h))
            pos += h
            continue
        s = (h + 1) * k
        if pos + s - 1 > limit:
            return pos, 1
        z, ok = read_wide_at(buf, pos, s - 1)
        if not ok:
            return pos, 2
        pos += s - 1
        if z < lo:  # short branch: v = 2^{hk} + z
            out[i] = lo + z
            continue
        if pos + 1 > limit:
            return pos, 1
        if z >= np.int64(1) << 62:
            return pos, 2
        out[i] = (z << 1) | np.int64(read_bits_at(buf, pos, 1))  # long branch stores v itself
        pos += 1
    return pos, 0


@nb.njit(cache=True)
def _delta_at(buf, pos, limit, count, out, _unused):
    for i in range(count):
        m = count_zeros_at(buf, pos, limit)
        if m < 0:
            return pos, 1
        if m > 6:
            return pos, 2
        if pos + 2 * m + 1 > limit:
            return pos, 1
        n = np.int64(read_bits_at(buf, pos + m, m + 1)) - 1
        pos += 2 * m + 1
        if n > 62:
            return pos, 2
        if pos + n > limit:
            return pos, 1
        out[i] = (np.int64(1) << n) | np.int64(read_bits_at(buf, pos, n))
        pos += n
    return pos, 0


def _one(kernel):
    @nb.njit(cache=True)
    def decode(buf, limit, count, param):
        out = np.empty(count, dtype=np.int64)
        pos, status = kernel(buf, 0, limit, count, out, param)
        return out, pos, status

    return decode


def _rows(kernel):
    @nb.njit(cache=True)
    def decode_rows(buf, starts, nbits, count, param):
        """Row r: ``count`` words in bits ``[starts[r], starts[r] + nbits[r])``; status 0 ok, 1 truncated,
        2 a word ≥ 2^63, 3 the words end before ``nbits[r]`` (over-long row)."""
        m = starts.size
        out = np.zeros((m, count), dtype=np.int64)
        status = np.zeros(m, dtype=np.int8)
        for r in range(m):
            end = starts[r] + nbits[r]
            pos, st = kernel(buf, starts[r], end, count, out[r], param)
            if st == 0 and pos != end:
                st = 3
            status[r] = st
        return out, status

    return decode_rows


_decode_fixed, _rows_fixed = _one(_fixed_at), _rows(_fixed_at)
_decode_zeta, _rows_zeta = _one(_zeta_at), _rows(_zeta_at)
_decode_delta, _rows_delta = _one(_delta_at), _rows(_delta_at)


def encode_indices(code: IntegerCode, indices) -> tuple[bytes, int]:
    """Code 0-based indices ``i >= 0`` as ``i + 1``."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu" or (idx.size and idx.min() < 0):
        raise ParameterError("indices must be non-negative integers")
    return code.encode_many(idx.astype(np.int64) + 1)


def decode_indices(code: IntegerCode, data: bytes, count: int, nbits: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_indices`."""
    return code.decode_many(data, count, nbits) - 1
