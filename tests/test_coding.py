"""Index codes: bit I/O and prefix codes (single and row-wise batch decoding)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldp_rec.coding import (
    BitReader, BitWriter, EliasDelta, EliasGamma, FixedLength, ZetaCode, decode_indices, encode_indices,
    pack_fields, pack_fixed, unpack_fixed,
)
from ldp_rec.coding.codes import floor_log2
from ldp_rec.errors import DecodeError, ParameterError

UNIVERSAL = [EliasGamma(), EliasDelta(), ZetaCode(2), ZetaCode(3), ZetaCode(5), ZetaCode(40)]
ALL = UNIVERSAL + [FixedLength(20)]
BIG = 2**63 - 1


def _values(code, rng, n=400):
    if isinstance(code, FixedLength):
        return np.concatenate([[1, 2**code.bits], rng.integers(1, 2**code.bits + 1, n)])
    return np.concatenate([np.arange(1, 70), [2**62, 2**62 - 1, 2**62 + 1, BIG],
                           2 ** rng.integers(0, 63, n) + rng.integers(0, 2, n) - 0])


# ---------------------------------------------------------------- bits
def test_bitwriter_reader_roundtrip_and_layout():
    w = BitWriter()
    w.write_bit(1)
    w.write_uint(5, 3)  # 101
    w.write_uint(0, 0)
    w.write_bits(np.array([0, 0, 1, 1]))
    w.write_uint(2**70 + 3, 71)
    assert w.nbits == 1 + 3 + 4 + 71
    data = w.getvalue()
    assert len(data) == 10 and data[0] == 0b11010011
    r = BitReader(data, w.nbits)
    assert (r.read_bit(), r.read_uint(3), r.read_zeros_then_one(), r.read_bit()) == (1, 5, 2, 1)
    assert r.read_uint(71) == 2**70 + 3
    r.finish()
    with pytest.raises(DecodeError, match="truncated"):
        r.read_bit()


def test_bitreader_errors():
    w = BitWriter()
    w.write_uint(3, 5)
    data = w.getvalue()
    r = BitReader(bytes([data[0] | 1]), 5)
    r.read_uint(5)
    with pytest.raises(DecodeError, match="padding"):
        r.finish()
    r = BitReader(data + b"\x00", 5)
    r.read_uint(5)
    with pytest.raises(DecodeError, match="over-long"):
        r.finish()
    with pytest.raises(DecodeError, match="truncated"):
        BitReader(data, 9)
    with pytest.raises(DecodeError, match="truncated"):
        BitReader(b"\x00\x00").read_zeros_then_one()
    with pytest.raises(ParameterError):
        BitWriter().write_uint(8, 3)
    with pytest.raises(ParameterError):
        BitWriter().write_uint(-1, 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_pack_fixed_roundtrip(width, raw):
    v = np.array([x % (1 << width) for x in raw], dtype=np.uint64)
    data = pack_fixed(v, width)
    assert len(data) == (v.size * width + 7) // 8
    np.testing.assert_array_equal(unpack_fixed(data, width, v.size), v)
    w = BitWriter()
    for x in v.tolist():
        w.write_uint(x, width)
    assert w.getvalue() == data and w.nbits == v.size * width


def test_pack_fixed_errors():
    with pytest.raises(ParameterError):
        pack_fixed(np.array([8]), 3)
    with pytest.raises(ParameterError):
        pack_fixed(np.array([-1]), 3)
    data = pack_fixed(np.arange(5), 3)  # 15 bits, 2 bytes
    with pytest.raises(DecodeError, match="truncated"):
        unpack_fixed(data[:1], 3, 5)
    with pytest.raises(DecodeError, match="over-long"):
        unpack_fixed(data + b"\x00", 3, 5)
    with pytest.raises(DecodeError, match="padding"):
        unpack_fixed(data[:1] + bytes([data[1] | 1]), 3, 5)


def test_pack_fields_matches_writer_and_wide_fields():
    vals, widths = [0, 1, 5, 2**63 - 1, 7], [0, 1, 70, 64, 3]
    data, nbits = pack_fields(np.array(vals, dtype=np.uint64), widths)
    w = BitWriter()
    for v, wd in zip(vals, widths):
        w.write_uint(v, wd)
    assert (data, nbits) == (w.getvalue(), w.nbits)


# ---------------------------------------------------------------- codes
def test_floor_log2_exact_near_powers():
    v = np.array([1, 2, 3, 2**53 - 1, 2**53, 2**53 + 1, 2**62 - 1, 2**62, BIG], dtype=np.int64)
    np.testing.assert_array_equal(floor_log2(v), [int(x).bit_length() - 1 for x in v.tolist()])


def test_closed_form_lengths():
    v = np.arange(1, 2**16 + 1)
    n = np.floor(np.log2(v)).astype(np.int64)
    np.testing.assert_array_equal(EliasGamma().lengths(v), 2 * n + 1)
    np.testing.assert_array_equal(EliasDelta().lengths(v), n + 2 * np.floor(np.log2(n + 1)).astype(np.int64) + 1)
    for k in (2, 3):  # Boldi–Vigna: h + 1 + (h+1)k, one bit less when v < 2^{hk+1}
        h = n // k
        np.testing.assert_array_equal(ZetaCode(k).lengths(v), h + 1 + (h + 1) * k - (v < 2 ** (h * k + 1)))
    np.testing.assert_array_equal(FixedLength(16).lengths(v), 16)
    for code in ALL:  # scalar length agrees with the vectorised one
        assert [code.length(int(x)) for x in (1, 2, 3, 100, 65536)] == code.lengths([1, 2, 3, 100, 65536]).tolist()
    # known code words: gamma(5) = 00101, delta(10) = 011 010 (gamma(4)=00100 then 010)
    for code, v, bits in [(EliasGamma(), 5, "00101"), (EliasDelta(), 10, "00100010"), (ZetaCode(2), 5, "01001")]:
        w = BitWriter()
        code.encode(v, w)
        assert format(int.from_bytes(w.getvalue(), "big") >> (8 * len(w.getvalue()) - w.nbits), f"0{w.nbits}b") == bits


@pytest.mark.parametrize("code", UNIVERSAL + [FixedLength(16)], ids=repr)
def test_kraft_first_2_16(code):
    v = np.arange(1, 2**16 + 1)
    kraft = float(np.sum(2.0 ** -code.lengths(v)))
    assert kraft <= 1.0
    if isinstance(code, FixedLength):
        assert kraft == 1.0


@pytest.mark.parametrize("code", ALL, ids=repr)
def test_batch_and_scalar_roundtrip(code):
    v = _values(code, np.random.default_rng(3))
    data, nbits = code.encode_many(v)
    assert nbits == int(code.lengths(v).sum()) and len(data) == (nbits + 7) // 8
    np.testing.assert_array_equal(code.decode_many(data, v.size, nbits), v)
    np.testing.assert_array_equal(code.decode_many(data, v.size), v)
    w = BitWriter()
    for x in v.tolist():
        code.encode(x, w)
    assert (w.getvalue(), w.nbits) == (data, nbits)
    r = BitReader(data, nbits)
    assert [code.decode(r) for _ in range(v.size)] == v.tolist()
    r.finish()


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ALL), st.lists(st.integers(1, BIG), min_size=0, max_size=40))
def test_roundtrip_property(code, raw):
    v = np.array([x if not isinstance(code, FixedLength) else 1 + x % 2**20 for x in raw], dtype=np.int64)
    data, nbits = code.encode_many(v)
    np.testing.assert_array_equal(code.decode_many(data, v.size, nbits), v)
    idx = v - 1
    d2, n2 = encode_indices(code, idx)
    np.testing.assert_array_equal(decode_indices(code, d2, idx.size, n2), idx)


def test_scalar_codes_beyond_int64():
    for code in (EliasGamma(), EliasDelta(), ZetaCode(3)):
        w = BitWriter()
        code.encode(2**200 + 12345, w)
        assert w.nbits == code.length(2**200 + 12345)
        assert code.decode(BitReader(w.getvalue(), w.nbits)) == 2**200 + 12345


@pytest.mark.parametrize("code", ALL, ids=repr)
def test_decode_errors(code):
    v = _values(code, np.random.default_rng(4), n=30)
    data, nbits = code.encode_many(v)
    with pytest.raises(DecodeError):  # truncated: last byte dropped
        code.decode_many(data[:-1], v.size)
    with pytest.raises(DecodeError):  # truncated: nbits one short
        code.decode_many(data, v.size, nbits - 1)
    with pytest.raises(DecodeError):  # over-long: trailing byte
        code.decode_many(data + b"\x00", v.size)
    with pytest.raises(DecodeError):  # over-long: caller's count too small
        code.decode_many(data, v.size - 1, nbits)
    with pytest.raises(DecodeError):  # more values asked than present
        code.decode_many(data, v.size + 1, nbits)
    with pytest.raises(DecodeError):
        code.decode_many(b"\x00" * 20, 1)  # all zeros: no terminating 1 / zero padding ok
    if nbits % 8:
        with pytest.raises(DecodeError, match="padding"):
            code.decode_many(data[:-1] + bytes([data[-1] | 1]), v.size)


def test_corrupted_overflow_detected():
    with pytest.raises(DecodeError, match="corrupted"):  # gamma prefix of 64 zeros
        EliasGamma().decode_many(b"\x00" * 8 + b"\xff" * 9, 1)
    with pytest.raises(DecodeError, match="corrupted"):  # delta length field of 2^7
        EliasDelta().decode_many(b"\x00" + b"\xff" * 30, 1)


def test_value_errors():
    for code in ALL:
        with pytest.raises(ParameterError):
            code.encode_many([0])
        with pytest.raises(ParameterError):
            code.encode(-3, BitWriter())
        with pytest.raises(ParameterError):
            code.lengths([1.5])
    with pytest.raises(ParameterError):
        FixedLength(3).encode_many([9])
    with pytest.raises(ParameterError):
        FixedLength(3).encode(9, BitWriter())
    with pytest.raises(ParameterError):
        encode_indices(EliasDelta(), [-1])
    for bad in (0, 63, 2.0):
        with pytest.raises(ParameterError):
            FixedLength(bad)
    with pytest.raises(ParameterError):
        ZetaCode(0)


# ---------------------------------------------------------------- row-wise batch decoding (cohort frames)
@pytest.mark.parametrize("code", ALL, ids=repr)
def test_decode_rows_matches_decode_many_and_isolates_rows(code):
    """Rows of one packed stream, each at its own bit offset, decode as decode_many does; a truncated, an
    over-long and a too-large row fail with their own status and leave the others intact."""
    rng = np.random.default_rng(9)
    rows = [_values(code, rng, n=3)[-3:] for _ in range(6)]
    rows = [np.minimum(r, 2**40) for r in rows]
    parts = [code.encode_many(r) for r in rows]
    fv, fw, nbits = [], [], []
    for r in rows:
        v, w = code.fields_wide(r)
        fv.append(v), fw.append(w), nbits.append(int(w.sum()))
    data, total = pack_fields(np.concatenate(fv), np.concatenate(fw))
    nbits = np.array(nbits)
    starts = np.concatenate([[0], np.cumsum(nbits)[:-1]])
    vals, status = code.decode_rows(np.frombuffer(data, np.uint8), starts, nbits, 3)
    assert not status.any()
    for r, (p, nb), got in zip(rows, parts, vals):
        np.testing.assert_array_equal(got, code.decode_many(p, 3, nb))
        np.testing.assert_array_equal(got, r)
    short = nbits.copy()
    short[1] -= 1
    vals2, st2 = code.decode_rows(np.frombuffer(data, np.uint8), starts, short, 3)
    assert st2[1] in (1, 3) and not np.delete(st2, 1).any()
    np.testing.assert_array_equal(np.delete(vals2, 1, axis=0), np.delete(vals, 1, axis=0))
    with pytest.raises(DecodeError):
        code.decode_rows(np.frombuffer(data, np.uint8), starts, nbits + 8 * len(data), 3)


def test_decode_rows_flags_words_past_int64():
    code = EliasDelta()
    fv, fw = code.fields_wide(np.array([3, 2**70, 5], dtype=object))
    data, total = pack_fields(fv, fw)
    lens = [int(code.fields_wide(np.array([v], dtype=object))[1].sum()) for v in (3, 2**70, 5)]
    vals, st = code.decode_rows(np.frombuffer(data, np.uint8), np.array([0, lens[0], lens[0] + lens[1]]),
                                np.array(lens), 1)
    assert list(st) == [0, 2, 0] and vals[0, 0] == 3 and vals[2, 0] == 5
