"""Index codes: bit I/O, index probability models, prefix codes and an ANS entropy coder.

Models (:mod:`.models`) are kept apart from coders (:mod:`.codes`, :mod:`.entropy`). All codes take
positive integers ``v >= 1``; a 0-based candidate index ``i`` is coded as ``v = i + 1``
(:func:`encode_indices` / :func:`decode_indices`).
"""

from .bits import BitReader, BitWriter, pack_fields, pack_fixed, unpack_fixed
from .codes import (
    EliasDelta,
    EliasGamma,
    FixedLength,
    IntegerCode,
    ZetaCode,
    decode_indices,
    encode_indices,
    expected_length,
)
from .entropy import EntropyCoder
from .models import EmpiricalModel, GeometricModel, IndexModel, UniformIndex, ZetaModel

__all__ = [
    "BitReader", "BitWriter", "pack_fields", "pack_fixed", "unpack_fixed",
    "IntegerCode", "FixedLength", "EliasGamma", "EliasDelta", "ZetaCode",
    "encode_indices", "decode_indices", "expected_length", "EntropyCoder",
    "IndexModel", "UniformIndex", "ZetaModel", "GeometricModel", "EmpiricalModel",
]
