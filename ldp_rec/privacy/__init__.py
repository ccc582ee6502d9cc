"""Privacy events, composition over rounds, per-user ledgers and audits.

Public API: events (:class:`PureEvent`, :class:`ApproxEvent`, :class:`GaussianEvent`, :class:`ComposedEvent`,
:class:`NonPrivateEvent`, :class:`UnboundedEvent`, :class:`NotEstablishedEvent`, :class:`TranscriptPrivacy`,
:func:`event_epsilon`, :func:`to_dp_event`); accountants (:class:`BasicAccountant`, :class:`PLDAccountant`,
:class:`RDPAccountant`, :func:`create_accountant`, :func:`plan_epsilon`); composition
(:func:`basic_composition`, :func:`advanced_composition`, :func:`exact_pure_composition`,
:func:`pld_pure_composition`, :func:`rdp_gaussian_composition`); :class:`UserLedger`; the audit's
statistics in :mod:`.audit`.
"""

from .._lazy import lazy_api

_PUBLIC = {
    **{k: ".events" for k in ("PrivacyEvent", "PureEvent", "ApproxEvent", "GaussianEvent", "ComposedEvent",
                              "NonPrivateEvent", "UnboundedEvent", "NotEstablishedEvent", "TranscriptPrivacy",
                              "event_epsilon", "to_dp_event")},
    **{k: ".accountant" for k in ("BasicAccountant", "PLDAccountant", "RDPAccountant", "create_accountant",
                                  "plan_epsilon", "PrivacySpent")},
    **{k: ".composition" for k in ("basic_composition", "advanced_composition", "exact_pure_composition",
                                   "pld_pure_composition", "rdp_gaussian_composition")},
    "UserLedger": ".ledger",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_api(__name__, _PUBLIC)
