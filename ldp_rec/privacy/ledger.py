"""Privacy ledgers per user: what each user of a population has spent over a run.

Local DP (``ldp``, ``ldp-rec``): every participation of a user releases one transcript event E
(the codec's :meth:`~ldp_rec.codec.core.Codec.transcript_event`), and sampling gives the sampled
user no amplification (references.md §7). A user who took part k times has spent the k-fold
composition of E; a user never sampled has spent 0. :class:`UserLedger` keeps the participation
count of every user (O(U) memory) and composes per *distinct count*, not per user: ε(k) comes
from :func:`~ldp_rec.privacy.accountant.plan_epsilon` with the tightest applicable method (PLD for
pure events, RDP/PLD for Gaussian ones; ``"best"``) and is cached, so a run of T rounds costs at
most T + 1 compositions whatever the population.

A per-user budget retires a user once one more participation would exceed it (what deployed LDP
systems do): :meth:`UserLedger.eligible`.

Central DP (``cdp``, user-level DP-FedAvg, McMahan et al. 2018): the trusted server's release in
each round is the Poisson-subsampled Gaussian mechanism, and every user of the population has the
same guarantee, ε of T compositions of the sampled Gaussian (Mironov, Talwar, Zhang 2019), from
opacus's RDP analysis: :func:`dpfedavg_epsilon` and :func:`dpfedavg_noise_multiplier`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError
from .accountant import plan_epsilon
from .events import NonPrivateEvent, PrivacyEvent

RDP_ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [128, 256, 512])


@dataclass
class UserLedger:
    """Participation counts of ``num_users`` users and their ε at ``delta`` (module doc)."""

    num_users: int
    event: PrivacyEvent
    delta: float
    counts: np.ndarray = field(init=False, repr=False)
    _eps: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_users < 1:
            raise ParameterError(f"num_users must be >= 1, got {self.num_users}")
        self.counts = np.zeros(int(self.num_users), dtype=np.int32)
        self._eps = {0: 0.0}

    @property
    def private(self) -> bool:
        return not isinstance(self.event, NonPrivateEvent)

    def epsilon_of(self, k: int) -> float:
        """ε at ``delta`` after ``k`` participations (cached per distinct k)."""
        k = int(k)
        if k not in self._eps:
            self._eps[k] = math.inf if not self.private else float(
                plan_epsilon(self.event, k, self.delta, "best").epsilon)
        return self._eps[k]

    def user_epsilons(self) -> np.ndarray:
        """ε of every user, float64 ``(num_users,)``."""
        distinct, inverse = np.unique(self.counts, return_inverse=True)
        return np.array([self.epsilon_of(k) for k in distinct])[inverse]

    def charge(self, users) -> None:
        """Record one participation of each user id in ``users`` (ids must be distinct)."""
        self.counts[np.asarray(users, dtype=np.int64)] += 1

    def eligible(self, budget: float) -> np.ndarray | None:
        """Mask of users whose next participation keeps them within ``budget`` (None: no budget)."""
        if not budget > 0 or not self.private:
            return None
        distinct = np.unique(self.counts)
        ok = {int(k) for k in distinct if self.epsilon_of(int(k) + 1) <= budget}
        return np.isin(self.counts, list(ok))

    def summary(self, budget: float = 0.0) -> dict:
        """Max, median and mean user ε, participation counts, and users retired by ``budget``."""
        eps = self.user_epsilons()
        elig = self.eligible(budget)
        return {"epsilon_user_max": float(eps.max()), "epsilon_user_median": float(np.median(eps)),
                "epsilon_user_mean": float(eps.mean()), "participations_max": int(self.counts.max()),
                "participations_mean": float(self.counts.mean()),
                "users_retired": 0 if elig is None else int((~elig).sum())}

    def distribution(self) -> dict:
        """The final per-user distribution: ε for each distinct participation count and how many
        users have it (a result file's record of the whole population, O(T))."""
        distinct, n = np.unique(self.counts, return_counts=True)
        return {"participations": distinct.tolist(), "users": n.tolist(),
                "epsilon": [self.epsilon_of(int(k)) for k in distinct], "delta": self.delta}


@functools.lru_cache(maxsize=64)
def _sampled_gaussian_rdp(sample_rate: float, noise_multiplier: float) -> tuple:
    """RDP of one round of the Poisson-subsampled Gaussian at :data:`RDP_ORDERS` (opacus)."""
    from opacus.accountants.analysis import rdp as opacus_rdp

    return tuple(np.atleast_1d(opacus_rdp.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1,
                                                      orders=list(RDP_ORDERS))))


def dpfedavg_epsilon(*, sample_rate: float, noise_multiplier: float, rounds: int, delta: float) -> float:
    """User-level ε of DP-FedAvg: ``rounds`` compositions of the Poisson-subsampled Gaussian with
    rate q and noise multiplier σ (opacus's RDP analysis, Mironov et al. 2019). RDP composes
    linearly, so one round's RDP is computed once and scaled."""
    from opacus.accountants.analysis import rdp as opacus_rdp

    if not noise_multiplier > 0:
        return math.inf
    rdp = np.asarray(_sampled_gaussian_rdp(float(sample_rate), float(noise_multiplier))) * int(rounds)
    eps, _ = opacus_rdp.get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=float(delta))
    return float(eps)


def dpfedavg_noise_multiplier(*, target_epsilon: float, sample_rate: float, rounds: int, delta: float) -> float:
    """The smallest σ (to 1e-4 relative) with :func:`dpfedavg_epsilon` ≤ ``target_epsilon`` (bisection)."""
    if not target_epsilon > 0:
        raise ParameterError(f"target epsilon must be > 0, got {target_epsilon}")

    def eps(s):
        return dpfedavg_epsilon(sample_rate=sample_rate, noise_multiplier=s, rounds=rounds, delta=delta)

    lo, hi = 1e-3, 1.0
    while eps(hi) > target_epsilon:
        lo, hi = hi, 2 * hi
        if hi > 1e6:
            raise ParameterError(f"no noise multiplier reaches epsilon {target_epsilon}")
    while hi - lo > 1e-4 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if eps(mid) > target_epsilon else (lo, mid)
    return hi
