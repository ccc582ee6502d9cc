"""The channel-simulation contract: targets, messages and simulators.

A *target* describes, for a batch of n clients, the distributions ``Q_c`` to simulate relative
to one public reference ``P``, each client on its own shared stream (``keys[c]``):

* :meth:`Target.log_ratio_block` ``(start, count) -> (n, count)``: ``log r_c(Z_{c,i})`` for the
  candidates ``i = start … start+count-1`` of each client's stream, vectorised (fused kernels
  where the mechanism allows it);
* :meth:`Target.candidates` ``(indices) -> (n, dim)``: each client's candidate at its index,
  regenerated alone (what a decoder calls);
* ``bounds``: ``(log c_min, log c_max)``, ±inf when unbounded.

A *simulator* turns a target into one message per client (an index, or a search path for
branch-and-bound GPRS) with private randomness ``rng``, and decodes messages back to samples
using only the shared streams. It declares whether its output is exact (distributed as Q) and
its transcript privacy (:class:`~ldp_rec.privacy.events.TranscriptPrivacy`, references.md §4).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import DecodeError, IncompatibleError, ParameterError
from ..mechanisms.base import RatioMechanism, Reference
from ..privacy.events import TranscriptPrivacy
from . import randomness


@dataclass(frozen=True)
class Message:
    """What one client sends: ``index`` (0-based candidate index) or, for search-path codes,
    ``path`` (a tuple of 0/1 branch decisions). ``steps`` (candidates examined) is encoder-side
    diagnostics and is never transmitted."""

    index: int = -1
    path: tuple[int, ...] | None = None
    steps: int = 0


class Target(abc.ABC):
    """n clients' target distributions relative to a common reference P (see module doc)."""

    reference: Reference
    keys: np.ndarray

    @property
    def n(self) -> int:
        return int(self.keys.size)

    @property
    @abc.abstractmethod
    def bounds(self) -> tuple[float, float]:
        """(log c_min, log c_max) of the ratio over all candidates (±inf if unbounded)."""

    @abc.abstractmethod
    def log_ratio_block(self, start: int, count: int) -> np.ndarray:
        """``(n, count)`` log ratios of candidates ``start … start+count-1``."""

    def candidates(self, indices) -> np.ndarray:
        """Each client's candidate at ``indices[c]``, regenerated alone: ``(n, dim)``."""
        base = randomness.gather(self.keys, indices, self.reference.base_width, self.reference.base)
        return self.reference.transform(base)

    def candidate_block(self, start: int, count: int) -> np.ndarray:
        """``(n, count, dim)`` candidates (materialised; use only where needed)."""
        base = randomness.block(self.keys, start, count, self.reference.base_width, self.reference.base)
        return self.reference.transform(base)


def decode_candidates(reference: Reference, keys, indices) -> np.ndarray:
    """Decoder side: the candidates at ``indices`` of each stream, ``(n, dim)``; touches one
    candidate per client."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if np.any(idx < 0):
        raise DecodeError("negative candidate index")
    base = randomness.gather(keys, idx, reference.base_width, reference.base)
    return reference.transform(base)


class MechanismTarget(Target):
    """Target for a :class:`~ldp_rec.mechanisms.base.RatioMechanism` and prepared inputs ``U`` (n, d).

    Uses the mechanism's fused path ``log_ratio_from_projection(dots, sqnorms, U)`` when it has one
    (ratios that depend on ⟨z, u⟩ only, with a normal-based reference), so candidates are never
    stored; otherwise generates blocks and calls ``log_ratio``.
    """

    def __init__(self, mechanism: RatioMechanism, U: np.ndarray, keys) -> None:
        self.mechanism = mechanism
        self.reference = mechanism.reference
        self.U = np.asarray(U, dtype=np.float64)
        self.keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
        if self.U.ndim != 2 or self.U.shape[0] != self.keys.size:
            raise ParameterError(f"U must be (n, d) with n = {self.keys.size} keys, got {self.U.shape}")

    @property
    def bounds(self) -> tuple[float, float]:
        return self.mechanism.log_ratio_bounds()

    @property
    def projection_law(self):
        """Law of the scores ``t = ⟨Z, u⟩`` (cap mechanisms only, else None)."""
        return getattr(self.mechanism, "projection_law", None)

    def score_block(self, start: int, count: int, clients=slice(None)) -> np.ndarray:
        """``(n', count)`` projections ``t = ⟨Z, u⟩`` of candidates ``start … start+count−1`` for the
        clients ``clients`` (a slice), fused with their generation (cap mechanisms on normal base variates)."""
        score = getattr(self.mechanism, "projection_score", None)
        if score is None or self.reference.base != "normal":
            raise IncompatibleError(f"{self.mechanism.name} has no projection score: it is not a cap mechanism")
        dots, sq = randomness.project_block(self.keys[clients], start, count, self.U[clients])
        return score(dots, sq)

    def log_ratio_block(self, start: int, count: int) -> np.ndarray:
        fused = getattr(self.mechanism, "log_ratio_from_projection", None)
        if fused is not None and self.reference.base == "normal":
            dots, sq = randomness.project_block(self.keys, start, count, self.U)
            if getattr(self.mechanism, "projection_uses_norm", False):
                return fused(dots, sq, u_sqnorm=np.einsum("cd,cd->c", self.U, self.U))
            return fused(dots, sq)
        z = self.candidate_block(start, count)
        return self.mechanism.log_ratio(z, self.U)


class Simulator(abc.ABC):
    """A channel simulator (frozen dataclass subclasses hold its parameters).

    Subclasses set ``name``, ``exact`` and ``transcript`` and implement :meth:`encode` and
    :meth:`decode`.
    """

    name: ClassVar[str]
    exact: ClassVar[bool]
    transcript: ClassVar[TranscriptPrivacy]
    needs_bounded_ratio: ClassVar[bool] = True

    def check_target(self, target: Target) -> None:
        lo, hi = target.bounds
        if self.needs_bounded_ratio and not (np.isfinite(lo) and np.isfinite(hi)):
            raise IncompatibleError(
                f"{self.name} needs a bounded density ratio, but the target's log-ratio bounds are ({lo}, {hi})"
            )

    @abc.abstractmethod
    def encode(self, target: Target, *, rng=None) -> list[Message]:
        """One message per client of ``target``, using private randomness ``rng``."""

    @abc.abstractmethod
    def decode(self, messages: list[Message], reference: Reference, keys) -> np.ndarray:
        """Samples ``(n, dim)`` from the messages and the shared streams alone."""

    def expected_codelength(self, kl_bits: float) -> float:
        """Expected message length in bits for a target with D_KL = ``kl_bits`` (for reporting)."""
        raise NotImplementedError
