"""Entropy coding of many indices at once with ANS (constriction), model-driven.

:class:`EntropyCoder` codes a batch of positive integers ``v >= 1`` i.i.d. under an
:class:`~.models.IndexModel` truncated at ``max_index``: symbol ``v - 1`` for ``v <= max_index``
and an *escape* symbol ``max_index`` (carrying the mass ``P[K > max_index]``) otherwise, the
escaped values then follow as Elias δ of ``v - max_index``. Asymmetric numeral systems
(Duda 2013) as implemented by ``constriction.stream.stack.AnsCoder`` (Bamler 2022) with 32-bit
words and 24-bit probabilities costs ``Σ -log2 q(v)`` bits plus at most ~32 bits of state, where
``q`` is the model quantised to 24 bits (every symbol gets at least ``2^-24``).

Stream layout (MSB first): δ(``W + 1``) with ``W`` the number of 32-bit ANS words, the ``W``
words big-endian, then the escapes' δ codes. ``nbits`` is exact.

Whether it pays: the per-message overhead (the δ header plus up to one ANS word) is spread over
the batch, so it beats a universal code only for batches of more than a few dozen indices;
for one index per message use :class:`~.codes.ZetaCode` or :class:`~.codes.EliasDelta`
(measured figures: ``tests/test_coding.py::test_entropy_coder_rates`` and the module report).

Determinism: encoder and decoder build the same float64 table with :meth:`IndexModel.table`
and the same constriction quantisation (``perfect=False``); both sides must run the same
constriction version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import check_positive_int
from ..errors import DecodeError, ParameterError
from .bits import BitReader, BitWriter, check_tail
from .codes import EliasDelta, _check_values
from .models import IndexModel

__all__ = ["EntropyCoder"]

_WORD = 32


def _constriction():
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - optional dependency (extra "entropy")
        raise ImportError("EntropyCoder needs constriction: pip install 'ldp-rec[entropy]'") from exc
    return constriction


@dataclass(frozen=True)
class EntropyCoder:
    """ANS coder of positive integers under ``model`` truncated at ``max_index`` (module doc)."""

    model: IndexModel
    max_index: int = 4096
    _table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, IndexModel):
            raise ParameterError("model must be an IndexModel")
        check_positive_int(self.max_index, "max_index")
        if self.max_index > 1 << 22:
            raise ParameterError("max_index must be <= 2**22 (24-bit probabilities)")
        table = np.asarray(self.model.table(self.max_index), dtype=np.float64)
        if not np.all(np.isfinite(table)) or table.sum() <= 0:
            raise ParameterError("model table is not a finite, non-zero distribution")
        object.__setattr__(self, "_table", table)

    def _categorical(self):
        return _constriction().stream.model.Categorical(self._table, perfect=False)

    def ideal_bits(self, values) -> float:
        """``Σ -log2 p(symbol)`` under the (unquantised) truncated table plus the escapes' δ bits."""
        v = _check_values(values)
        sym = np.minimum(v, self.max_index + 1) - 1
        p = self._table / self._table.sum()
        esc = v[v > self.max_index] - self.max_index
        return float(-np.log2(p[sym]).sum() + EliasDelta().lengths(esc).sum())

    def encode_many(self, values) -> tuple[bytes, int]:
        v = _check_values(values)
        sym = (np.minimum(v, self.max_index + 1) - 1).astype(np.int32)
        coder = _constriction().stream.stack.AnsCoder()
        if sym.size:
            coder.encode_reverse(sym, self._categorical())
        words = np.asarray(coder.get_compressed(), dtype=np.uint32)
        w = BitWriter()
        EliasDelta().encode(words.size + 1, w)
        w.write_bytes(words.astype(">u4").tobytes())
        esc = v[v > self.max_index] - self.max_index
        if esc.size:
            data, nbits = EliasDelta().encode_many(esc)
            w.write_bytes(data, nbits)
        return w.getvalue(), w.nbits

    def decode_many(self, data: bytes, count: int, nbits: int | None = None) -> np.ndarray:
        n = check_positive_int(count, "count", minimum=0)
        r = BitReader(data, nbits)
        nwords = EliasDelta().decode(r) - 1
        if _WORD * nwords > r.remaining:
            raise DecodeError(f"truncated stream: header announces {nwords} ANS words")
        words = np.frombuffer(r.read_uint(_WORD * nwords).to_bytes(4 * nwords, "big"), dtype=">u4")
        coder = _constriction().stream.stack.AnsCoder(words.astype(np.uint32))
        sym = np.asarray(coder.decode(self._categorical(), n), dtype=np.int64) if n else np.zeros(0, np.int64)
        if not coder.is_empty():
            raise DecodeError("corrupted stream: ANS state not exhausted after decoding")
        out = sym + 1
        esc = np.flatnonzero(sym == self.max_index)
        rest = r.remaining
        tail = r.read_uint(rest).to_bytes((rest + 7) // 8, "big") if rest else b""
        if rest % 8:  # left-align the remaining bits in their bytes
            tail = (int.from_bytes(tail, "big") << (8 - rest % 8)).to_bytes((rest + 7) // 8, "big")
        buf = np.frombuffer(tail, dtype=np.uint8)
        vals, used, status = EliasDelta()._decode_kernel(buf, rest, esc.size)
        if status:
            raise DecodeError("truncated or corrupted escape section")
        out[esc] = vals + self.max_index
        raw = np.frombuffer(bytes(data), dtype=np.uint8)
        check_tail(np.unpackbits(raw), raw.size, r.pos - rest + int(used), nbits)
        return out
