"""Codecs: Mechanism × channel Simulator × index code → payload bytes, and back (one layer above
:mod:`ldp_rec.coding`, the index codes, and :mod:`ldp_rec.rec`, the simulators).

Public API:

* :func:`make_codec` (command-line names: :data:`CODECS`, :data:`MECHANISMS`), :func:`make_mechanism`,
  :func:`default_bits`;
* :class:`Codec` — per user ``encode(X, *, run_seed, round, clients, rng) -> list[bytes]`` and
  ``decode(payloads, …) -> DecodeResult`` (wire version 1), per cohort ``encode_cohort(X, …) -> bytes``
  and ``decode_cohort(payload, …) -> DecodeResult`` (wire version 2), ``transcript_event()``;
  subclasses :class:`RecCodec` (channel simulation), :class:`FloatCodec` (floats), :class:`NativeCodec`
  (SQKR, RRSC), :class:`DecodeResult`;
* :mod:`.wire` — the two frame formats, their versions and checks; :mod:`.tuning` — mechanism
  parameters tuned for modified MRC's band (used by ``PrivUnitG.tuned_for_band``).
"""

from .._lazy import lazy_api

_PUBLIC = {
    "make_codec": ".registry", "make_mechanism": ".registry", "default_bits": ".registry", "CODECS": ".registry",
    "MECHANISMS": ".registry", "Codec": ".core", "RecCodec": ".core", "FloatCodec": ".core",
    "DecodeResult": ".core", "Fields": ".core", "NativeCodec": ".native",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_api(__name__, _PUBLIC)
