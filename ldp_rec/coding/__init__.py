"""The index-code layer: bit I/O and prefix codes for candidate indices.

Every code takes positive integers ``v >= 1``; a 0-based candidate index ``i`` is coded as ``v = i + 1``
(:func:`encode_indices` / :func:`decode_indices`). Codes are interchangeable
(:class:`~.codes.IntegerCode`): ``fields`` (the code words as bit fields, for packing many users at
once), ``encode_many``/``decode_many`` (one stream) and ``decode_rows`` (one stream of many users, each
on its own bit range, with a status per row: what a cohort frame needs). Framing lives one layer up,
in :mod:`ldp_rec.codec.wire`.

Public API:

* bits: :class:`BitWriter`, :class:`BitReader`, :func:`pack_fixed`, :func:`unpack_fixed`, :func:`pack_fields`;
* codes: :class:`IntegerCode`, :class:`FixedLength`, :class:`EliasGamma`, :class:`EliasDelta`,
  :class:`ZetaCode`, :func:`encode_indices`, :func:`decode_indices`.
"""

from .bits import BitReader, BitWriter, pack_fields, pack_fixed, unpack_fixed
from .codes import EliasDelta, EliasGamma, FixedLength, IntegerCode, ZetaCode, decode_indices, encode_indices

__all__ = [
    "BitReader", "BitWriter", "pack_fields", "pack_fixed", "unpack_fixed",
    "IntegerCode", "FixedLength", "EliasGamma", "EliasDelta", "ZetaCode",
    "encode_indices", "decode_indices",
]
