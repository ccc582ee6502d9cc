"""The versioned wire format of one client's payload.

Layout of format version 1 (all integers big-endian)::

    byte 0        format version (= 1)
    byte 1        codec id (see :mod:`ldp_rec.codec.registry`)
    byte 2        number of chunks k (1 … 255)
    LEB128        body length in bits (nbits)
    ceil(nbits/8) body: the chunks' messages, bit-packed by the codec's index code
    2 bytes       tag: CRC-16 (low 16 bits of CRC-32) over the binding key, header and body

The *binding key* is ``derive_key(run, round, client, domain="payload/<codec fingerprint>")``
(:func:`ldp_rec.codec.core.binding_keys`), known to the server but not carried in the payload.
The fingerprint hashes the codec's whole configuration (mechanism and its parameters, ε, index
code, simulator, chunking), so a payload made by a differently configured client, replayed from
another round or client, or corrupted, fails the tag check with probability 1 − 2^-16 (and is
otherwise checked for structure by the decoder). Seeds are never sent. ``payload_bits`` (the
information the literature counts) is ``nbits``; the serialised size is ``len(payload) * 8``.

What the tag is not
-------------------
The tag detects *accidents* (corruption, misrouting, a stale or misconfigured client). It is not
a message authentication code: CRC is linear and its key is derived from the run seed, which every
participant knows, so anyone who knows the run seed can forge or re-tag a payload. The defence
against forged or impersonated clients is the transport: Flower's TLS (``--ssl-*`` certificates)
and SuperNode authentication (``--auth-supernode-private-key`` with the SuperLink's list of
authorised node keys); see ``docker/README.md``. The server's own checks bound what an
authenticated but malicious node can do (:meth:`ldp_rec.codec.core.Codec.decode`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..errors import DecodeError, ParameterError

FORMAT_VERSION = 1
_MAX_NBITS = 1 << 40


@dataclass(frozen=True)
class Frame:
    codec_id: int
    chunks: int
    nbits: int
    body: bytes


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated payload (length field)")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > 42:
            raise DecodeError("corrupted payload (length field too long)")


def _tag(binding: int, content: bytes) -> bytes:
    crc = zlib.crc32(int(binding).to_bytes(8, "little") + content)
    return (crc & 0xFFFF).to_bytes(2, "big")


def pack(frame: Frame, *, binding: int) -> bytes:
    """Serialise ``frame``; ``binding`` is the payload binding key of (run, round, client)."""
    if not 0 <= frame.codec_id < 256:
        raise ParameterError(f"codec id must fit in a byte, got {frame.codec_id}")
    if not 1 <= frame.chunks < 256:
        raise ParameterError(f"chunks must be in [1, 255], got {frame.chunks}")
    if not 0 <= frame.nbits <= 8 * len(frame.body) or len(frame.body) != (frame.nbits + 7) // 8:
        raise ParameterError(f"body of {len(frame.body)} bytes does not hold exactly {frame.nbits} bits")
    content = bytes([FORMAT_VERSION, frame.codec_id, frame.chunks]) + _leb128(frame.nbits) + frame.body
    return content + _tag(binding, content)


def unpack(payload: bytes, *, binding: int, codec_id: int | None = None) -> Frame:
    """Parse and check a payload; raises :class:`~ldp_rec.errors.DecodeError` on any defect."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise DecodeError(f"payload must be bytes, got {type(payload).__name__}")
    data = bytes(payload)
    if len(data) < 6:
        raise DecodeError(f"truncated payload ({len(data)} bytes)")
    if data[0] != FORMAT_VERSION:
        raise DecodeError(f"unknown payload format version {data[0]} (this build reads {FORMAT_VERSION})")
    if codec_id is not None and data[1] != codec_id:
        raise DecodeError(f"payload is for codec id {data[1]}, expected {codec_id}")
    chunks = data[2]
    if chunks == 0:
        raise DecodeError("corrupted payload (zero chunks)")
    nbits, pos = _read_leb128(data, 3)
    if nbits > _MAX_NBITS:
        raise DecodeError("corrupted payload (absurd length)")
    nbytes = (nbits + 7) // 8
    end = pos + nbytes
    if len(data) < end + 2:
        raise DecodeError(f"truncated payload: {len(data)} bytes, expected {end + 2}")
    if len(data) > end + 2:
        raise DecodeError(f"over-long payload: {len(data)} bytes, expected {end + 2}")
    content, tag = data[:end], data[end:]
    if _tag(binding, content) != tag:
        raise DecodeError("payload tag mismatch: corrupted, or replayed from another round or client")
    body = data[pos:end]
    if nbits % 8 and body[-1] & ((1 << (8 - nbits % 8)) - 1):
        raise DecodeError("corrupted payload (non-zero padding bits)")
    return Frame(codec_id=data[1], chunks=chunks, nbits=nbits, body=body)


def unpack_header_nbits(payload: bytes) -> int:
    """The body length in bits of a payload, from its header alone (no tag check)."""
    data = bytes(payload)
    if len(data) < 4:
        raise DecodeError("truncated payload")
    nbits, _ = _read_leb128(data, 3)
    return nbits
