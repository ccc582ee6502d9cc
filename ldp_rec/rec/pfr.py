"""Poisson functional representation (PFR) (Li & El Gamal, "Strong functional representation
lemma and applications to coding theorems", IEEE Trans. IT 2018, Sec. III).

Shared points ``(T_i, Z_i)``: ``T_1 < T_2 < …`` a rate-1 Poisson process and ``Z_i ~ P`` i.i.d.;

    K = argmin_i T_i / r(Z_i),    Z_K ~ Q exactly

(``{T_i / r(Z_i)}`` marked by ``Z_i`` is a Poisson process whose marks have law ``r dP = Q``).
``E[log2 K] ≤ D_KL + log2(D_KL + 1) + O(1)`` bits. Search in blocks; because ``T_i`` increases, no
later point can win once ``T_i / r_max ≥ min_{j ≤ i} T_j / r(Z_j)``, so we stop there. This needs a
finite ``r_max``: the target's bound, or a user-given ``log_ratio_cap`` (then the output is exact only
if no candidate exceeds the cap; an examined candidate above it raises InputError).

Shared times: ``T_i = Σ_{m ≤ i} −log U_m`` with ``U_m = randomness.block(time_keys, m, 1, 1, "uniform")``
and ``time_keys = shared_keys(keys, "pfr-times")`` — a fixed, public bijection of the candidate key
(SplitMix64 finaliser of ``key XOR H(domain)``), so encoder and decoder (and the server) agree on them.
Transcript privacy: **not established** (references.md §4): with shared times K is a deterministic
function of the input and the public randomness.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import IncompatibleError, InputError, ParameterError
from ..privacy.events import TranscriptPrivacy
from . import randomness
from .base import Encoded, Simulator, Target, encoded
from .mrc import check_log_ratios

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def shared_keys(keys, domain: str) -> np.ndarray:
    """Public stream keys derived from candidate keys for another shared quantity (``domain``):
    ``mix64(key XOR blake2b64(domain))`` with the SplitMix64 finaliser (a bijection of uint64)."""
    h = np.uint64(int.from_bytes(hashlib.blake2b(domain.encode(), digest_size=8).digest(), "little"))
    z = np.asarray(keys, dtype=np.uint64).reshape(-1) ^ h
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def resolve_cap(target: Target, log_ratio_cap: float | None, name: str):
    """``log r_max``: the target's upper bound, or the user's cap when the target is unbounded. A target
    with per-client bounds (``client_log_ratio_max``, shape (n,)) gets them, so a client's search never
    depends on the other clients of its batch."""
    per_client = getattr(target, "client_log_ratio_max", None)
    if per_client is not None:
        hi = np.asarray(per_client, dtype=np.float64)
        if np.all(np.isfinite(hi)):
            return hi if log_ratio_cap is None else np.minimum(hi, float(log_ratio_cap))
    hi = float(target.bounds[1])
    if np.isfinite(hi):
        return hi if log_ratio_cap is None else min(hi, float(log_ratio_cap))
    if log_ratio_cap is None:
        raise IncompatibleError(f"{name} needs a finite ratio bound: the target is unbounded and no log_ratio_cap was given")
    return float(log_ratio_cap)


@dataclass(frozen=True)
class PFR(Simulator):
    """Poisson functional representation with shared arrival times (module doc). Exact."""

    log_ratio_cap: float | None = None
    block: int = 64
    max_candidates: int = 1 << 26
    name: ClassVar[str] = "pfr"
    exact: ClassVar[bool] = True
    needs_bounded_ratio: ClassVar[bool] = False
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "not_established", note="shared arrival times: K is a deterministic function of x and the seed"
    )

    def __post_init__(self) -> None:
        if self.log_ratio_cap is not None and not math.isfinite(self.log_ratio_cap):
            raise ParameterError("log_ratio_cap must be finite")
        if int(self.block) < 1 or int(self.max_candidates) < 1:
            raise ParameterError("block and max_candidates must be >= 1")

    def encode(self, target: Target, *, rng=None) -> Encoded:
        """Deterministic given the shared randomness (``rng`` is unused)."""
        log_cap = resolve_cap(target, self.log_ratio_cap, self.name)
        n = target.n
        tkeys = shared_keys(target.keys, "pfr-times")
        best = np.full(n, np.inf)  # min log(T_i / r_i) so far
        arg = np.zeros(n, dtype=np.int64)
        t_last = np.zeros(n)
        active = np.ones(n, dtype=bool)
        steps = np.zeros(n, dtype=np.int64)
        start, cnt = 0, int(self.block)
        while active.any():
            if start >= self.max_candidates:
                raise InputError(f"PFR did not stop within {self.max_candidates} candidates")
            u = randomness.block(tkeys, start, cnt, 1, "uniform")[..., 0]
            t = t_last[:, None] + np.cumsum(-np.log(u), axis=1)
            lr = check_log_ratios(target.log_ratio_block(start, cnt))
            if np.any(lr > np.reshape(log_cap, (-1, 1)) + 1e-9):
                raise InputError("a candidate's log ratio exceeds log_ratio_cap: PFR would not be exact")
            s = np.log(t) - lr
            j = np.argmin(s, axis=1)
            v = s[np.arange(n), j]
            upd = active & (v < best)
            best = np.where(upd, v, best)
            arg = np.where(upd, start + j, arg)
            steps = np.where(active, start + cnt, steps)
            t_last = t[:, -1]
            active &= np.log(t_last) - log_cap < best  # a later point could still win
            start += cnt
            cnt = min(2 * cnt, 1 << 14)
        return encoded(arg, steps)

    def expected_codelength(self, kl_bits: float) -> float:
        """Li & El Gamal's bound ``I + log2(I+1) + 4`` bits (with a Zipf-type code of K)."""
        return float(kl_bits + math.log2(kl_bits + 1) + 4)
