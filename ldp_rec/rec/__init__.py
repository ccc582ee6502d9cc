"""Channel simulation (relative entropy coding) on shared, randomly accessible randomness.

The contract (:mod:`.base`): a :class:`Target` describes n users' distributions against one public
reference, each on its own stream; a :class:`Simulator` encodes all users at once,
``encode(target, *, rng) -> Encoded(indices, steps)``, and decodes ``decode(indices, reference, keys) ->
(n, dim)``, and declares ``transcript_event(ε, δ)``, ``check_mechanism``, ``effective_cap_probability`` /
``unbias_kwargs`` and ``selection_law``. :class:`PathSimulator` is the path-valued variant.

Public API: :class:`Target`, :class:`MechanismTarget`, :class:`Simulator`, :class:`PathSimulator`,
:class:`Encoded`, :class:`EncodedPaths`, :class:`SelectionLaw`; the simulators :class:`MRC`,
:class:`ModifiedMRC`, :class:`ORC`, :class:`SubsetSelection`, :class:`PPR`, :class:`PFR`,
:class:`RejectionSampler`, :class:`GPRS`, :class:`BranchAndBoundGPRS`; shared randomness
:func:`derive_key`, :func:`derive_keys`, :class:`CandidateStream` (:mod:`.randomness`).
"""

_PUBLIC = {
    "Target": ".base", "MechanismTarget": ".base", "Simulator": ".base", "PathSimulator": ".base",
    "Encoded": ".base", "EncodedPaths": ".base", "SelectionLaw": ".base", "Message": ".base",
    "MRC": ".mrc", "ModifiedMRC": ".mrc", "ORC": ".orc", "SubsetSelection": ".subset", "PPR": ".ppr",
    "PFR": ".pfr", "RejectionSampler": ".rejection", "GPRS": ".gprs", "BranchAndBoundGPRS": ".gprs_bnb",
    "derive_key": ".randomness", "derive_keys": ".randomness", "CandidateStream": ".randomness",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):  # PEP 562: the public names load their module on first use (no import cycles)
    import importlib

    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
