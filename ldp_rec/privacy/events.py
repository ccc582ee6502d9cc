"""Privacy events: small frozen records describing what one release guarantees.

Modelled on dp_accounting's ``dp_event`` module: a codec reports the event of its *transcript*
(the seed and the message the server sees), and accountants compose events.
:func:`to_dp_event` maps an event onto ``dp_accounting.dp_event`` for that library's accountants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._validation import check_epsilon
from ..errors import IncompatibleError, ParameterError


class PrivacyEvent:
    """Base class of all events."""


@dataclass(frozen=True)
class PureEvent(PrivacyEvent):
    """ε-LDP (pure)."""

    epsilon: float

    def __post_init__(self) -> None:
        check_epsilon(self.epsilon)


@dataclass(frozen=True)
class ApproxEvent(PrivacyEvent):
    """(ε, δ)-LDP."""

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        check_epsilon(self.epsilon)
        if not 0 <= self.delta < 1:
            raise ParameterError(f"delta must be in [0, 1), got {self.delta}")


@dataclass(frozen=True)
class GaussianEvent(PrivacyEvent):
    """Gaussian noise of standard deviation ``noise_multiplier × sensitivity`` (RDP-accountable)."""

    noise_multiplier: float

    def __post_init__(self) -> None:
        if not self.noise_multiplier > 0:
            raise ParameterError("noise_multiplier must be > 0")


@dataclass(frozen=True)
class ComposedEvent(PrivacyEvent):
    """Several events released together (for example the chunks of one client update)."""

    events: tuple[PrivacyEvent, ...]


@dataclass(frozen=True)
class NonPrivateEvent(PrivacyEvent):
    """No guarantee (non-private release)."""


@dataclass(frozen=True)
class UnboundedEvent(PrivacyEvent):
    """The transcript's privacy loss is unbounded (for example rejection sampling whose index
    reveals that every earlier shared candidate was rejected)."""

    reason: str = ""


@dataclass(frozen=True)
class NotEstablishedEvent(PrivacyEvent):
    """No LDP guarantee of the transcript is established (GPRS, PFR, A* with shared times)."""

    reason: str = ""


@dataclass(frozen=True)
class TranscriptPrivacy:
    """How a channel simulator's transcript (seed + message) relates to the mechanism's ε.

    ``kind`` is ``"multiplier"`` (the transcript is ``factor · ε``-LDP: 1 for modified MRC,
    2 for MRC, 2α for PPR), ``"unbounded"`` or ``"not_established"``. ``note`` cites the source.
    """

    kind: str
    factor: float = 1.0
    note: str = ""

    def event(self, epsilon: float, delta: float = 0.0) -> PrivacyEvent:
        """The transcript's event for a mechanism that is (ε, δ)-LDP."""
        if self.kind == "multiplier":
            eps = self.factor * float(epsilon)
            return PureEvent(eps) if delta == 0 else ApproxEvent(eps, delta)
        if self.kind == "unbounded":
            return UnboundedEvent(self.note)
        if self.kind == "not_established":
            return NotEstablishedEvent(self.note)
        raise ParameterError(f"unknown transcript kind {self.kind!r}")


def event_epsilon(event: PrivacyEvent) -> float:
    """ε of a single (possibly composed, by basic composition) event; inf when not bounded."""
    if isinstance(event, (PureEvent, ApproxEvent)):
        return float(event.epsilon)
    if isinstance(event, ComposedEvent):
        return float(sum(event_epsilon(e) for e in event.events))
    return float("inf")


def to_dp_event(event: PrivacyEvent):
    """The ``dp_accounting.dp_event`` of ``event``, under the replace-one relation of LDP.

    * :class:`PureEvent` ε: ``RandomizedResponseDpEvent(noise_parameter=2/(1+e^ε), num_buckets=2)``,
      binary randomised response, the worst-case ε-DP pair (Kairouz, Oh & Viswanath 2015, §2);
    * :class:`GaussianEvent`: ``GaussianDpEvent``; :class:`ComposedEvent`: ``ComposedDpEvent``;
    * events without a guarantee: ``NonPrivateDpEvent``.

    :class:`ApproxEvent` has no counterpart and raises :class:`~ldp_rec.errors.IncompatibleError`.
    Caution: dp-accounting 0.6.0's ``PLDAccountant`` drops the count of a randomised-response event
    (``compose(event, 50)`` composes it once), so compose such events once per release;
    :class:`ldp_rec.privacy.accountant.PLDAccountant` does.
    """
    from dp_accounting import dp_event

    if isinstance(event, PureEvent):
        return dp_event.RandomizedResponseDpEvent(noise_parameter=2.0 / (1.0 + math.exp(event.epsilon)), num_buckets=2)
    if isinstance(event, GaussianEvent):
        return dp_event.GaussianDpEvent(event.noise_multiplier)
    if isinstance(event, ComposedEvent):
        return dp_event.ComposedDpEvent([to_dp_event(e) for e in event.events])
    if isinstance(event, (NonPrivateEvent, UnboundedEvent, NotEstablishedEvent)):
        return dp_event.NonPrivateDpEvent()
    raise IncompatibleError(f"{type(event).__name__} has no dp_accounting event")
