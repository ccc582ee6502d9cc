"""The versioned wire formats: one frame per user (version 1) and one frame per cohort (version 2).

Version 2: one frame per cohort
-------------------------------
A node sends the messages of all n users of its cohort in one frame (all integers big-endian,
bit fields most significant bit first)::

    byte 0        format version (= 2)
    byte 1        codec id
    byte 2        number of chunks k (1 … 255)
    LEB128        n, the number of users (must equal the cohort the server expects)
    LEB128        W + 1 when every body has W bits (fixed-length codes), 0 when lengths vary
    [W varies]    byte w (1 … 48), then n body lengths of w bits each, zero-padded to a byte
    4 bytes       frame tag: CRC-32 over the cohort binding, the clients' ids and the bytes above
    2n bytes      user tags: 16 bits per user (see below)
    ⌈Σ nbits/8⌉   bodies: user 1's nbits_1 bits, then user 2's, …, bit-packed with no padding
                  between users, zero-padded to a byte at the end

The cohort binding is ``derive_key(run, round, 0, 0, domain="cohort/<codec fingerprint>")``
(:func:`ldp_rec.codec.core.cohort_binding`); the clients' ids enter the frame tag as int64, so a frame
decoded against another cohort, round or configuration fails it. The user tag of user c is
:func:`user_tags`: the top 16 bits of a SplitMix64 chain over user c's binding key (the v1 binding
key, :func:`ldp_rec.codec.core.binding_keys`), its body length and its body bits in 64-bit words.

**Failure isolation.** The frame tag covers only the structure (header and lengths), so a
corrupted structure is detected and the whole frame fails (its offsets cannot be trusted). Every
other byte belongs to exactly one user: a corrupted body or user tag changes only that user's tag
check (its bits occupy ``[start_c, start_c + nbits_c)``, positions fixed by the lengths that the
frame tag protects), so that user's row fails and every other row decodes. A body whose tag
passes is then parsed by the codec on its own bit range, and a parse error again fails that row
only. Sizes are checked before anything is allocated: n against the expected cohort, W or each
length against the codec's maximum body size, and the frame's byte length against the sizes the
header declares, so decoding takes memory O(expected size) whatever the payload claims.

Per user this costs the body bits plus 16 tag bits plus the length field (variable codes only),
against the body plus at least 6 bytes of header and tag in version 1.

Version 1: one frame per user
-----------------------------
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

import numba as nb
import numpy as np

from ..coding.bits import pack_fields, read_bits_at
from ..errors import DecodeError, ParameterError

FORMAT_VERSION = 1  #: the per-user frame
COHORT_VERSION = 2  #: the cohort frame
VERSIONS = (FORMAT_VERSION, COHORT_VERSION)
_MAX_NBITS = 1 << 40
_MAX_LENGTH_WIDTH = 48


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


def _check_head(data: bytes, version: int, codec_id: int | None, what: str) -> int:
    """Check the version, codec-id and chunk-count bytes of a ``what`` ("payload" or "cohort frame")
    of at least 3 bytes; returns the number of chunks."""
    if data[0] != version:
        raise DecodeError(f"not a {what}: format version {data[0]}, this decoder reads {version}")
    if codec_id is not None and data[1] != codec_id:
        raise DecodeError(f"{what} is for codec id {data[1]}, expected {codec_id}")
    if len(data) > 2 and data[2] == 0:
        raise DecodeError(f"corrupted {what} (zero chunks)")
    return int(data[2]) if len(data) > 2 else 0


def unpack(payload: bytes, *, binding: int, codec_id: int | None = None, max_nbits: int | None = None) -> Frame:
    """Parse and check a payload; raises :class:`~ldp_rec.errors.DecodeError` on any defect.

    ``max_nbits`` (the codec's largest honest body) is checked against the declared length and the
    payload's size before the body is copied, so a forged payload costs O(max_nbits) memory."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise DecodeError(f"payload must be bytes, got {type(payload).__name__}")
    if max_nbits is not None and len(payload) > (int(max_nbits) + 7) // 8 + 16:
        _check_head(bytes(payload[:2]), FORMAT_VERSION, codec_id, "payload")
        raise DecodeError(f"over-long payload: {len(payload)} bytes for a body of at most {max_nbits} bits")
    data = bytes(payload)
    if len(data) < 6:
        raise DecodeError(f"truncated payload ({len(data)} bytes)")
    chunks = _check_head(data, FORMAT_VERSION, codec_id, "payload")
    nbits, pos = _read_leb128(data, 3)
    if nbits > (_MAX_NBITS if max_nbits is None else int(max_nbits)):
        raise DecodeError(f"corrupted payload (body of {nbits} bits exceeds the codec's maximum)")
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


# --------------------------------------------------------------------------------------- version 2
@dataclass(frozen=True)
class CohortFrame:
    """A parsed cohort frame: ``buf`` (uint8, the bodies), each user's bit range ``[starts, starts + nbits)``
    and ``tag_ok`` (n,) — users whose tag failed are to be reported as failed rows."""

    codec_id: int
    chunks: int
    buf: np.ndarray
    starts: np.ndarray
    nbits: np.ndarray
    tag_ok: np.ndarray


_GAMMA = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(cache=True)
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def _user_tags(buf, starts, nbits, bindings):
    n = starts.size
    out = np.empty(n, dtype=np.uint16)
    for c in range(n):
        h = _mix64(bindings[c] ^ (np.uint64(nbits[c]) * np.uint64(0x9E3779B97F4A7C15)))
        pos, end = starts[c], starts[c] + nbits[c]
        while pos < end:
            w = min(64, end - pos)
            h = _mix64(h ^ read_bits_at(buf, pos, w) ^ (np.uint64(w) << np.uint64(56)))
            pos += w
        out[c] = np.uint16(h >> np.uint64(48))
    return out


def user_tags(buf: np.ndarray, starts, nbits, bindings) -> np.ndarray:
    """16-bit tag of each user's bit range of ``buf``: ``h = mix(b ⊕ nbits·φ)``, then ``h = mix(h ⊕ word ⊕ w·2^56)``
    for each ≤ 64-bit word of the body (width w), tag = top 16 bits of h (mix: the SplitMix64 finaliser,
    φ = 0x9E3779B97F4A7C15, b the user's binding key). One numba pass over all users."""
    return _user_tags(np.ascontiguousarray(buf, dtype=np.uint8), np.ascontiguousarray(starts, dtype=np.int64),
                      np.ascontiguousarray(nbits, dtype=np.int64), np.ascontiguousarray(bindings, dtype=np.uint64))


def _frame_tag(cohort_binding: int, clients: np.ndarray, structure: bytes) -> bytes:
    ids = np.ascontiguousarray(clients, dtype="<i8").tobytes()
    return zlib.crc32(structure, zlib.crc32(ids, zlib.crc32(int(cohort_binding).to_bytes(8, "little")))).to_bytes(4, "big")


def pack_cohort(stream: np.ndarray, nbits, *, codec_id: int, chunks: int, clients, user_bindings,
                cohort_binding: int, fixed: bool) -> bytes:
    """Serialise a cohort: ``stream`` (uint8) holds the users' bodies back to back (user c's ``nbits[c]``
    bits from bit ``Σ_{c'<c} nbits[c']``); ``fixed``: every body has the same length (no lengths section)."""
    nbits = np.asarray(nbits, dtype=np.int64).reshape(-1)
    n = nbits.size
    if not 0 <= codec_id < 256:
        raise ParameterError(f"codec id must fit in a byte, got {codec_id}")
    if not 1 <= chunks < 256:
        raise ParameterError(f"chunks must be in [1, 255], got {chunks}")
    if n < 1 or np.asarray(clients).size != n:
        raise ParameterError(f"a cohort frame needs n >= 1 bodies and as many client ids ({n} bodies)")
    total = int(nbits.sum())
    if np.asarray(stream).size != (total + 7) // 8:
        raise ParameterError(f"stream of {np.asarray(stream).size} bytes does not hold exactly {total} bits")
    head = bytearray([COHORT_VERSION, codec_id, chunks]) + _leb128(n)
    if fixed:
        if np.any(nbits != nbits[0]):
            raise ParameterError("fixed layout needs equal body lengths")
        head += _leb128(int(nbits[0]) + 1)
    else:
        head += _leb128(0)
        w = max(1, int(nbits.max()).bit_length())
        if w > _MAX_LENGTH_WIDTH:
            raise ParameterError(f"a body of {int(nbits.max())} bits is too long for a cohort frame")
        data, _ = pack_fields(nbits.astype(np.uint64), np.full(n, w, dtype=np.int64))
        head += bytes([w]) + data
    starts = np.concatenate([[0], np.cumsum(nbits)[:-1]]).astype(np.int64)
    buf = np.ascontiguousarray(stream, dtype=np.uint8)
    tags = user_tags(buf, starts, nbits, user_bindings).astype(">u2").tobytes()
    head = bytes(head)
    return head + _frame_tag(cohort_binding, clients, head) + tags + buf.tobytes()


def _structure(data: bytes, n_exp: int, max_nbits: int, codec_id: int | None) -> tuple[int, np.ndarray, int]:
    """Parse a cohort frame's header and lengths: ``(chunks, nbits (n,), position of the frame tag)``;
    DecodeError when they are defective (the frame tag is checked by the caller)."""
    size = len(data)
    if size < 8:
        raise DecodeError(f"truncated cohort frame ({size} bytes)")
    chunks = _check_head(data, COHORT_VERSION, codec_id, "cohort frame")
    n, pos = _read_leb128(data, 3)
    if n != n_exp:
        raise DecodeError(f"cohort frame holds {n} users, the cohort has {n_exp}")
    w_fixed, pos = _read_leb128(data, pos)
    if w_fixed:
        width = w_fixed - 1
        if width > max_nbits:
            raise DecodeError(f"corrupted cohort frame (bodies of {width} bits exceed the codec's maximum {max_nbits})")
        nbits = np.full(n, width, dtype=np.int64)
    else:
        if pos >= size:
            raise DecodeError("truncated cohort frame (lengths)")
        w = data[pos]
        pos += 1
        if not 1 <= w <= _MAX_LENGTH_WIDTH:
            raise DecodeError(f"corrupted cohort frame (length width {w})")
        nbytes = (n * w + 7) // 8
        if pos + nbytes > size:
            raise DecodeError("truncated cohort frame (lengths)")
        from ..coding.bits import unpack_fixed

        try:
            nbits = unpack_fixed(data[pos : pos + nbytes], w, n).astype(np.int64)
        except DecodeError as exc:
            raise DecodeError(f"corrupted cohort frame (lengths: {exc})") from None
        pos += nbytes
    return int(chunks), nbits, pos


def unpack_cohort(payload, *, clients, user_bindings, cohort_binding: int, codec_id: int,
                  max_nbits: int) -> CohortFrame:
    """Parse a cohort frame for the cohort ``clients`` (module doc). DecodeError when the structure is
    defective (then no row can be trusted); users whose tag fails are flagged in ``tag_ok``."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise DecodeError(f"payload must be bytes, got {type(payload).__name__}")
    n_exp = int(np.asarray(clients).size)
    size = len(payload)
    # the largest honest frame: header, lengths, tags and bodies of n_exp users of max_nbits each
    limit = 32 + (n_exp * _MAX_LENGTH_WIDTH + 7) // 8 + 2 * n_exp + (n_exp * int(max_nbits) + 7) // 8
    if size > limit:
        raise DecodeError(f"over-long cohort frame: {size} bytes, at most {limit} for {n_exp} users")
    data = bytes(payload)
    chunks, nbits, pos = _structure(data, n_exp, max_nbits, codec_id)
    n = n_exp
    structure = data[:pos]
    if pos + 4 + 2 * n > size:
        raise DecodeError("truncated cohort frame (tags)")
    if _frame_tag(cohort_binding, clients, structure) != data[pos : pos + 4]:
        raise DecodeError("cohort frame tag mismatch: corrupted structure, or another cohort, round or codec")
    pos += 4
    if int(nbits.max(initial=0)) > max_nbits:
        raise DecodeError(f"corrupted cohort frame (a body exceeds the codec's maximum of {max_nbits} bits)")
    tags = np.frombuffer(data, dtype=">u2", count=n, offset=pos).astype(np.uint16)
    pos += 2 * n
    total = int(nbits.sum())
    if size - pos != (total + 7) // 8:
        raise DecodeError(f"cohort frame body of {size - pos} bytes, the lengths declare {(total + 7) // 8}")
    buf = np.frombuffer(data, dtype=np.uint8, offset=pos)
    if total % 8 and buf[-1] & ((1 << (8 - total % 8)) - 1):
        raise DecodeError("corrupted cohort frame (non-zero padding bits)")
    starts = np.concatenate([[0], np.cumsum(nbits)[:-1]]).astype(np.int64)
    ok = user_tags(buf, starts, nbits, user_bindings) == tags
    return CohortFrame(int(data[1]), int(chunks), buf, starts, nbits, ok)


def user_tag_offset(payload, user: int, *, n: int) -> int:
    """Byte offset of the 16-bit tag of the ``user``-th body (0-based) of a cohort frame of ``n`` users
    (test tooling: corrupting one user's tag must fail that user's row only)."""
    _, _, pos = _structure(bytes(payload), n, _MAX_NBITS, None)
    if not 0 <= user < n:
        raise ParameterError(f"user {user} is not in a cohort of {n}")
    return pos + 4 + 2 * user


def frame_version(payload) -> int:
    """The format version byte of a payload (DecodeError when empty)."""
    if not len(payload):
        raise DecodeError("empty payload")
    return int(payload[0])
