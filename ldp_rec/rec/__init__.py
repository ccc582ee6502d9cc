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

from .._lazy import lazy_api

_PUBLIC = {
    "Target": ".base", "MechanismTarget": ".base", "Simulator": ".base", "PathSimulator": ".base",
    "Encoded": ".base", "EncodedPaths": ".base", "SelectionLaw": ".base", "Message": ".base",
    "MRC": ".mrc", "ModifiedMRC": ".mrc", "ORC": ".orc", "SubsetSelection": ".subset", "PPR": ".ppr",
    "PFR": ".pfr", "RejectionSampler": ".rejection", "GPRS": ".gprs", "BranchAndBoundGPRS": ".gprs_bnb",
    "derive_key": ".randomness", "derive_keys": ".randomness", "CandidateStream": ".randomness",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_api(__name__, _PUBLIC)
