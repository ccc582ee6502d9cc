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

_PUBLIC = {
    "make_codec": ".registry", "make_mechanism": ".registry", "default_bits": ".registry", "CODECS": ".registry",
    "MECHANISMS": ".registry", "Codec": ".core", "RecCodec": ".core", "FloatCodec": ".core",
    "DecodeResult": ".core", "Fields": ".core", "NativeCodec": ".native",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):  # PEP 562: the public names load their module on first use (no import cycles)
    import importlib

    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
