"""Privacy accountants over rounds (opacus style: a small base class, one class per method).

An accountant consumes the events of :mod:`ldp_rec.privacy.events` (what each round's
*transcript* guarantees, references.md §4) with :meth:`Accountant.step` and reports the
composed ε at a target δ with :meth:`Accountant.get_epsilon` / :meth:`get_privacy_spent`.

* :class:`BasicAccountant`: ``(Σ ε, Σ δ)`` over pure/approximate events.
* :class:`PLDAccountant`: privacy-loss distributions (dp_accounting) over pure, approximate and
  Gaussian events; tight for pure ε (the worst-case pair is randomised response). Incremental:
  each :meth:`~Accountant.step` composes its releases onto the running PLD, so a round costs one
  convolution with the running distribution, not the whole history (module doc of
  :class:`PLDAccountant`). Releases are composed here, one PLD per release, never through
  dp-accounting's own ``PLDAccountant``, which in 0.6.0 composes a randomised-response event once
  whatever its count (50 rounds at ε = 4 report ε = 4.0, not ≈ 200).
* :class:`RDPAccountant`: Rényi DP over Gaussian events (opacus ``compute_rdp``) and pure events
  (the exact Rényi divergence of randomised response, :func:`.composition.pure_rdp`).

A :class:`~.events.ComposedEvent` (the chunks of one update) counts as all its parts: summed by
the basic accountant, composed inside the PLD / RDP curve by the others.
Events without a guarantee (:class:`~.events.UnboundedEvent`,
:class:`~.events.NotEstablishedEvent`, :class:`~.events.NonPrivateEvent`) are accepted by every
accountant and make ε infinite; :class:`PrivacySpent.reason` then says why: never a silent
number. An event an accountant cannot compose (Gaussian in the basic accountant, approximate
in RDP) raises :class:`~ldp_rec.errors.IncompatibleError` at :meth:`Accountant.step`.
Under LDP, sampling clients gives no amplification for a client's own data (references.md §5),
so there is no sample rate here.
"""

from __future__ import annotations

import abc
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .._validation import check_positive_int
from ..errors import IncompatibleError, ParameterError
from . import composition as C
from .events import (
    ApproxEvent, ComposedEvent, GaussianEvent, NonPrivateEvent, NotEstablishedEvent,
    PrivacyEvent, PureEvent, UnboundedEvent,
)

__all__ = [
    "PrivacySpent", "Accountant", "BasicAccountant", "PLDAccountant", "RDPAccountant",
    "ACCOUNTANTS", "create_accountant", "plan_epsilon",
]

_NO_GUARANTEE = (UnboundedEvent, NotEstablishedEvent, NonPrivateEvent)


@dataclass(frozen=True)
class PrivacySpent:
    """ε at δ by ``method``; ``reason`` is non-empty exactly when ε is infinite."""

    epsilon: float
    delta: float
    method: str
    reason: str = ""


def leaves(event: PrivacyEvent) -> list[PrivacyEvent]:
    """The non-composed events inside ``event`` (flattening nested ComposedEvents)."""
    if isinstance(event, ComposedEvent):
        return [leaf for e in event.events for leaf in leaves(e)]
    if not isinstance(event, PrivacyEvent):
        raise ParameterError(f"not a PrivacyEvent: {event!r}")
    return [event]


def _reason(event: PrivacyEvent) -> str:
    kind = type(event).__name__
    note = getattr(event, "reason", "")
    return f"{kind}: {note}" if note else kind


def _check_delta(delta) -> float:
    d = float(delta)
    if not 0 <= d < 1:
        raise ParameterError(f"delta must be in [0, 1), got {delta!r}")
    return d


class Accountant(abc.ABC):
    """Composes events over rounds. ``history`` is a list of ``(event, count)``."""

    name: ClassVar[str]
    leaf_types: ClassVar[tuple[type, ...]]

    def __init__(self) -> None:
        self.history: list[tuple[PrivacyEvent, int]] = []

    def supports(self, event: PrivacyEvent) -> bool:
        """True when :meth:`step` accepts ``event`` (events without a guarantee always are)."""
        return all(isinstance(e, self.leaf_types + _NO_GUARANTEE) for e in leaves(event))

    def step(self, event: PrivacyEvent, *, count: int = 1) -> None:
        """Record ``count`` releases of ``event`` (consecutive equal events are merged)."""
        n = check_positive_int(count, "count")
        if not self.supports(event):
            bad = sorted({type(e).__name__ for e in leaves(event) if not self.supports(e)})
            raise IncompatibleError(f"{type(self).__name__} cannot compose {', '.join(bad)}")
        if self.history and self.history[-1][0] == event:
            self.history[-1] = (event, self.history[-1][1] + n)
        else:
            self.history.append((event, n))

    def __len__(self) -> int:
        return sum(c for _, c in self.history)

    def leaf_counts(self) -> Counter:
        """Each distinct leaf event with its total number of releases."""
        out: Counter = Counter()
        for event, count in self.history:
            for leaf in leaves(event):
                out[leaf] += count
        return out

    def get_privacy_spent(self, delta: float) -> PrivacySpent:
        d = _check_delta(delta)
        counts = self.leaf_counts()
        blocked = [_reason(e) for e in counts if isinstance(e, _NO_GUARANTEE)]
        if blocked:
            return PrivacySpent(math.inf, d, self.name, "no guarantee: " + "; ".join(sorted(set(blocked))))
        if not counts:
            return PrivacySpent(0.0, d, self.name)
        return self._spent(counts, d)

    def get_epsilon(self, delta: float) -> float:
        """Composed ε at ``delta`` (``inf`` when some event has no guarantee; see
        :meth:`get_privacy_spent` for the reason)."""
        return self.get_privacy_spent(delta).epsilon

    @abc.abstractmethod
    def _spent(self, counts: Counter, delta: float) -> PrivacySpent: ...


class BasicAccountant(Accountant):
    """Basic composition: ``(Σ ε_t, Σ δ_t)``; ε is infinite if ``delta < Σ δ_t``."""

    name = "basic"
    leaf_types = (PureEvent, ApproxEvent)

    def _spent(self, counts, delta):
        eps = sum(e.epsilon * c for e, c in counts.items())
        dl = sum(getattr(e, "delta", 0.0) * c for e, c in counts.items())
        if delta < dl:
            return PrivacySpent(math.inf, delta, self.name, f"target delta {delta:g} < composed delta {dl:g}")
        return PrivacySpent(float(eps), delta, self.name)


class PLDAccountant(Accountant):
    """PLD composition with dp_accounting, incremental over rounds.

    The running PLD holds every release recorded so far; :meth:`step` composes the new releases
    onto it (``count`` copies of each leaf: one ``self_compose`` and one convolution). The grid is
    ``value_discretization_interval`` when given, else :func:`.composition.exact_interval` of the
    pure/approximate ε seen so far (no discretisation loss; for one ε the grid is ε itself, so T
    rounds hold 2T + 1 points), else 1e-4 (pessimistic: upper bounds) once a Gaussian event or
    an ε off the grid arrives. A change of grid rebuilds the running PLD from :attr:`history`
    once; results equal a from-scratch composition up to float rounding (the order of the
    convolutions differs, and each round's convolution truncates at most 1e-15 of tail mass,
    pessimistically, to the infinite loss).
    """

    name = "pld"
    leaf_types = (PureEvent, ApproxEvent, GaussianEvent)

    def __init__(self, *, value_discretization_interval: float | None = None) -> None:
        super().__init__()
        if value_discretization_interval is not None:
            vdi = float(value_discretization_interval)
            if not (math.isfinite(vdi) and vdi > 0):
                raise ParameterError("value_discretization_interval must be > 0")
        self.value_discretization_interval = value_discretization_interval
        self._leaves: set[PrivacyEvent] = set()  # distinct composable leaves seen so far
        self._grid: float | None = None
        self._running = None  # PLD of every composable release in history, on self._grid

    @property
    def grid(self) -> float | None:
        """The discretisation interval of the running PLD (None before the first release)."""
        return self._grid

    def _choose_grid(self) -> float:
        if self.value_discretization_interval is not None:
            return float(self.value_discretization_interval)
        if any(isinstance(e, GaussianEvent) for e in self._leaves):
            return C.FALLBACK_INTERVAL
        return C.exact_interval(e.epsilon for e in self._leaves) or C.FALLBACK_INTERVAL

    @staticmethod
    def _pld(event, vdi):
        from dp_accounting.pld import privacy_loss_distribution as pld

        if isinstance(event, (PureEvent, ApproxEvent)):
            return C.pure_pld(event.epsilon, value_discretization_interval=vdi, delta=getattr(event, "delta", 0.0))
        return pld.from_gaussian_mechanism(
            event.noise_multiplier, sensitivity=1.0, value_discretization_interval=vdi
        )

    def _releases(self, counts, vdi):
        """PLD of ``counts`` (leaf -> releases) composed, in a fixed order; None when empty."""
        total = None
        for event, c in sorted(counts.items(), key=lambda kv: repr(kv[0])):
            part = self._pld(event, vdi).self_compose(c)
            total = part if total is None else total.compose(part)
        return total

    def step(self, event: PrivacyEvent, *, count: int = 1) -> None:
        """Record ``count`` releases of ``event`` and compose them onto the running PLD."""
        super().step(event, count=count)
        new: Counter = Counter()
        for leaf in leaves(event):
            if not isinstance(leaf, _NO_GUARANTEE):
                new[leaf] += int(count)
        if not new:
            return
        self._leaves.update(new)
        grid = self._choose_grid()
        if grid != self._grid or self._running is None:
            self._grid = grid
            self._running = self._releases(
                Counter({e: c for e, c in self.leaf_counts().items() if not isinstance(e, _NO_GUARANTEE)}), grid)
        else:
            self._running = self._running.compose(self._releases(new, grid))

    def _spent(self, counts, delta):
        eps = float(self._running.get_epsilon_for_delta(delta))
        reason = "" if math.isfinite(eps) else f"no finite epsilon at delta {delta:g} (delta mass at +inf)"
        return PrivacySpent(eps, delta, self.name, reason)


class RDPAccountant(Accountant):
    """Rényi DP: Gaussian events via opacus ``compute_rdp`` (``q = 1``), pure events via the
    exact RDP of randomised response; converted with Balle et al. (2020) Thm 21."""

    name = "rdp"
    leaf_types = (PureEvent, GaussianEvent)

    def __init__(self, *, orders=C.DEFAULT_ORDERS) -> None:
        super().__init__()
        self.orders = tuple(float(a) for a in orders)
        if not self.orders or min(self.orders) <= 1:
            raise ParameterError("RDP orders must be > 1")

    def rdp_curve(self) -> np.ndarray:
        from opacus.accountants.analysis import rdp as opacus_rdp

        total = np.zeros(len(self.orders))
        for event, c in self.leaf_counts().items():
            if isinstance(event, PureEvent):
                total += c * C.pure_rdp(event.epsilon, self.orders)
            else:
                total += opacus_rdp.compute_rdp(
                    q=1.0, noise_multiplier=event.noise_multiplier, steps=c, orders=list(self.orders)
                )
        return total

    def _spent(self, counts, delta):
        if delta <= 0:
            return PrivacySpent(math.inf, delta, self.name, "RDP gives no finite epsilon at delta = 0")
        return PrivacySpent(C.rdp_to_epsilon(self.orders, self.rdp_curve(), delta), delta, self.name)


ACCOUNTANTS: dict[str, type[Accountant]] = {
    "basic": BasicAccountant, "pld": PLDAccountant, "rdp": RDPAccountant,
}


def create_accountant(name: str, **kwargs) -> Accountant:
    try:
        return ACCOUNTANTS[name](**kwargs)
    except KeyError:
        raise ParameterError(f"unknown accountant {name!r}; choose from {sorted(ACCOUNTANTS)}") from None


def _advanced(event: PrivacyEvent, rounds: int, delta: float) -> PrivacySpent:
    """Advanced composition for events whose leaves all share one (ε, δ_0): ``k·T`` releases,
    slack ``δ' = δ − kTδ_0``."""
    ls = leaves(event)
    if not ls or any(not isinstance(e, (PureEvent, ApproxEvent)) for e in ls):
        raise IncompatibleError("advanced composition needs pure or approximate events")
    if len({(e.epsilon, getattr(e, "delta", 0.0)) for e in ls}) != 1:
        raise IncompatibleError("advanced composition needs one common (epsilon, delta) per release")
    k = len(ls) * rounds
    slack = delta - k * getattr(ls[0], "delta", 0.0)
    if slack <= 0:
        return PrivacySpent(math.inf, delta, "advanced", f"target delta {delta:g} <= composed delta")
    eps = C.advanced_composition(epsilon=ls[0].epsilon, steps=k, delta_prime=slack)
    return PrivacySpent(eps, delta, "advanced")


def plan_epsilon(
    event: PrivacyEvent, rounds: int, delta: float, method: str = "pld", *, max_epsilon: float | None = None
) -> PrivacySpent:
    """ε after ``rounds`` rounds that each release ``event``, by ``method`` (``"basic"``,
    ``"advanced"``, ``"pld"``, ``"rdp"`` or ``"best"``: the smallest of those that apply).
    With ``max_epsilon``, raise :class:`ParameterError` when the plan exceeds it (or is
    unbounded), so a caller can refuse it before training."""
    t = check_positive_int(rounds, "rounds")
    d = _check_delta(delta)
    if method not in ("basic", "advanced", "pld", "rdp", "best"):
        raise ParameterError(f"unknown method {method!r}; choose basic, advanced, pld, rdp or best")
    if any(isinstance(e, _NO_GUARANTEE) for e in leaves(event)):
        acc = BasicAccountant()
        acc.step(event, count=t)
        spent = replace(acc.get_privacy_spent(d), method=method)
    elif method == "best":
        tries = []
        for m in ("basic", "advanced", "pld", "rdp"):
            try:
                tries.append(plan_epsilon(event, t, d, m))
            except IncompatibleError:
                continue
        spent = min(tries, key=lambda s: s.epsilon)
    elif method == "advanced":
        spent = _advanced(event, t, d)
    else:
        acc = create_accountant(method)
        acc.step(event, count=t)
        spent = acc.get_privacy_spent(d)
    if max_epsilon is not None and not spent.epsilon <= float(max_epsilon):
        why = f" ({spent.reason})" if spent.reason else ""
        raise ParameterError(
            f"planned epsilon {spent.epsilon:.4g} ({spent.method}, delta={d:g}, {t} rounds) exceeds "
            f"max_epsilon {max_epsilon}{why}"
        )
    return spent
