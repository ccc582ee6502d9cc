"""The channel-simulation contract on arrays of users: targets, encoded messages and simulators.

A *target* describes, for a batch of n users, the distributions ``Q_c`` to simulate relative
to one public reference ``P``, each user on its own shared stream (``keys[c]``):

* :meth:`Target.log_ratio_block` ``(start, count) -> (n, count)``: ``log r_c(Z_{c,i})`` for the
  candidates ``i = start … start+count-1`` of each user's stream, vectorised (fused kernels
  where the mechanism allows it);
* :meth:`Target.candidates` ``(indices) -> (n, dim)``: each user's candidate at its index,
  regenerated alone (what a decoder calls);
* ``bounds``: ``(log c_min, log c_max)``, ±inf when unbounded.

A *simulator* (:class:`Simulator`) encodes all n users at once with private randomness ``rng``,
``encode(target, *, rng) -> Encoded(indices, steps)``, and decodes ``decode(indices, reference, keys)``
from the shared streams alone. Through the same object it declares what the rest of the library
needs, so nothing dispatches on its type: its transcript event (references.md §4), the mechanisms it
accepts, its selection law's effect on a cap mechanism's unbiasing (references.md §3), and what the
audit may compute of ``P[K = k | candidates]``. Branch-and-bound GPRS, whose message is a search path,
is the one :class:`PathSimulator`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ..errors import DecodeError, IncompatibleError, ParameterError
from ..mechanisms.base import RatioMechanism, Reference
from ..mechanisms.cap import CapMechanism
from ..privacy.events import PrivacyEvent, TranscriptPrivacy
from . import randomness


@dataclass(frozen=True)
class Message:
    """One user's message as a record (a view of :class:`Encoded` for per-user callers): ``index``
    (0-based candidate index) or, for search-path codes, ``path``; ``steps`` (candidates examined)
    is encoder-side diagnostics and is never transmitted."""

    index: int = -1
    path: tuple[int, ...] | None = None
    steps: int = 0


@dataclass(frozen=True)
class Encoded:
    """What :meth:`Simulator.encode` returns for n users: ``indices`` (n,) — int64, or an object array of
    Python ints when an index may reach 2^63 (PPR) — and ``steps`` (n,) int64, the candidates each
    encoder examined (never transmitted). Iterating yields :class:`Message` views, one per user."""

    indices: np.ndarray
    steps: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.size)

    def __iter__(self):
        return (Message(index=int(k), steps=int(s)) for k, s in zip(self.indices, self.steps))

    def __getitem__(self, i) -> Message:
        return Message(index=int(self.indices[i]), steps=int(self.steps[i]))


@dataclass(frozen=True)
class EncodedPaths:
    """What :meth:`PathSimulator.encode` returns: ``paths`` (a list of n tuples of 0/1) and ``steps``."""

    paths: list
    steps: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self):
        return (Message(path=p, steps=int(s)) for p, s in zip(self.paths, self.steps))

    def __getitem__(self, i) -> Message:
        return Message(path=self.paths[i], steps=int(self.steps[i]))


def encoded(indices, steps) -> Encoded:
    """An :class:`Encoded` from index and step sequences: int64 indices unless one reaches 2^63."""
    idx = np.asarray(indices, dtype=object).reshape(-1) if _has_big(indices) else np.asarray(indices, np.int64).reshape(-1)
    return Encoded(idx, np.asarray(steps, dtype=np.int64).reshape(-1))


def _has_big(indices) -> bool:
    a = np.asarray(indices)
    return a.dtype == object and any(int(i) >= 1 << 63 for i in a.reshape(-1))


def as_indices(indices, limit: int | None = None, *, big: bool = False) -> np.ndarray:
    """Validated indices from an array, an :class:`Encoded` or a sequence of :class:`Message`:
    int64 (or Python ints in an object array when ``big`` and one reaches 2^63). DecodeError when an
    index is not an integer, negative, or ``>= limit``."""
    if isinstance(indices, Encoded):
        indices = indices.indices
    elif not isinstance(indices, np.ndarray) and len(indices) and isinstance(indices[0], Message):
        if any(m.path is not None for m in indices):
            raise DecodeError("an index message carries an integer index and no path")
        indices = [m.index for m in indices]
    a = np.asarray(indices)
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.size and int(a.max()) >= 1 << 63:
            a = a.astype(object)
        else:
            a = a.astype(np.int64, copy=False).reshape(-1)
            if a.size and a.min() < 0:
                raise DecodeError("negative candidate index")
            if limit is not None and a.size and a.max() >= limit:
                raise DecodeError(f"candidate index past the {limit} candidates of the code")
            return a
    if a.dtype != object and a.size:
        raise DecodeError("indices must be integers")
    flat = a.reshape(-1)
    if any(isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) for i in flat):
        raise DecodeError("indices must be integers")
    vals = [int(i) for i in flat]
    if any(i < 0 for i in vals):
        raise DecodeError("negative candidate index")
    if limit is not None and any(i >= limit for i in vals):
        raise DecodeError(f"candidate index past the {limit} candidates of the code")
    if any(i >= 1 << 63 for i in vals):
        if not big:
            raise DecodeError("candidate index past 2^63 for a simulator without far candidates")
        return np.array(vals + [None], dtype=object)[:-1]
    return np.array(vals, dtype=np.int64)


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


@dataclass(frozen=True)
class SelectionLaw:
    """What a simulator's selection law says about its transcript, for unbiasing and the audit.

    ``kind``:

    * ``"exact"``: ``log_pmf(target) -> (n, candidates)`` is ``log P[K = k | candidates]`` exactly
      (MRC, modified MRC, rejection sampling with its fallback index, subset selection);
    * ``"proxy"``: no closed form; ``log_pmf`` is a stand-in used only to shortlist audit pairs
      (PPR: the MRC pmf of its first candidates), never to claim a bound;
    * ``"support"``: only the support is known (ORC: an input whose ratio peaks at candidate 0 sends
      K = 0 surely), ``log_pmf`` is None.
    """

    kind: str
    candidates: int | None = None
    log_pmf: Callable | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("exact", "proxy", "support"):
            raise ParameterError(f"unknown selection-law kind {self.kind!r}")

    @property
    def exact(self) -> bool:
        return self.kind == "exact"


class Simulator(abc.ABC):
    """A channel simulator on arrays of users (frozen dataclass subclasses hold its parameters).

    The contract (every simulator in :mod:`ldp_rec.rec`):

    * :meth:`encode` ``(target, *, rng) -> Encoded``: all n users at once; ``indices`` (n,) int64, or
      object (Python ints) where an index may exceed 2^63 − 1 (PPR), and ``steps`` (n,);
    * :meth:`decode` ``(indices, reference, keys) -> (n, dim)``: from the shared streams alone;
    * :meth:`transcript_event` ``(epsilon, delta)``: the privacy event of (seed, index) for a mechanism
      that is (ε, δ)-LDP (references.md §4);
    * :meth:`check_mechanism`: raises :class:`~ldp_rec.errors.IncompatibleError` for a mechanism it
      cannot simulate (one line saying why);
    * :meth:`effective_cap_probability` / :meth:`unbias_kwargs`: the selection law's effect on a cap
      mechanism's unbiasing (references.md §3), used by the codec's decoder;
    * :meth:`selection_law`: what the audit may compute about ``P[K = k | candidates]``.

    Simulators whose message is a search path instead of an index (branch-and-bound GPRS) subclass
    :class:`PathSimulator`.
    """

    name: ClassVar[str]
    exact: ClassVar[bool]
    transcript: ClassVar[TranscriptPrivacy]
    needs_bounded_ratio: ClassVar[bool] = True
    #: the encoder holds much per user (all N log ratios, or PPR's tail points): callers that batch
    #: many users (the audit) use smaller batches
    heavy_rows: ClassVar[bool] = False

    # ---- what a simulator declares
    def transcript_event(self, epsilon: float, delta: float = 0.0) -> PrivacyEvent:
        """The event of the transcript (seed + index) for an (ε, δ)-LDP mechanism."""
        return self.transcript.event(epsilon, delta)

    def check_mechanism(self, mechanism) -> None:
        """Raise IncompatibleError unless this simulator can run ``mechanism`` (default: from its
        log-ratio bounds, as :meth:`check_target` checks a target's)."""
        lo, hi = mechanism.log_ratio_bounds()
        self.check_target(_BoundsOnly(float(lo), float(hi)))

    def check_target(self, target) -> None:
        lo, hi = target.bounds
        if self.needs_bounded_ratio and not (np.isfinite(lo) and np.isfinite(hi)):
            raise IncompatibleError(
                f"{self.name} needs a bounded density ratio, but the target's log-ratio bounds are ({lo}, {hi})"
            )

    def effective_cap_probability(self, mechanism) -> float | None:
        """For a cap mechanism (ratio c1 = p/q on a cap of P-mass q, c2 = (1−p)/(1−q) off it): the
        probability p̂ that the decoded candidate lies in the cap, or None when it is p (exact
        simulators). Finite-candidate simulators override it (references.md §3)."""
        if self.exact:
            return None
        raise NotImplementedError(f"no finite-N unbiasing known for {type(self).__name__}")

    def unbias_kwargs(self, mechanism) -> dict:
        """Keyword arguments of ``mechanism.unbias`` for a decoded candidate: ``{"p_eff": p̂}`` for a cap
        mechanism behind a biased simulator, ``{}`` when the mechanism's own scale is right."""
        if not isinstance(mechanism, CapMechanism):
            return {}
        p_eff = self.effective_cap_probability(mechanism)
        return {} if p_eff is None else {"p_eff": float(p_eff)}

    def selection_law(self, mechanism) -> SelectionLaw:
        """What is known of ``P[K = k | candidates]`` (:class:`SelectionLaw`); IncompatibleError when
        nothing is (no audit planner)."""
        raise IncompatibleError(f"{self.name} states no selection law: no audit planner")

    @property
    def index_limit(self) -> int | None:
        """Indices a decoder accepts are ``< index_limit`` (None: any non-negative index)."""
        return None

    # ---- encode / decode
    @abc.abstractmethod
    def encode(self, target: Target, *, rng=None) -> "Encoded":
        """Indices and steps of all n users of ``target``, using private randomness ``rng``."""

    def decode(self, indices, reference: Reference, keys) -> np.ndarray:
        """Samples ``(n, dim)`` from the indices and the shared streams alone (one candidate each)."""
        return decode_candidates(reference, keys, as_indices(indices, self.index_limit))

    def expected_codelength(self, kl_bits: float) -> float:
        """Expected message length in bits for a target with D_KL = ``kl_bits`` (for reporting)."""
        raise NotImplementedError


class PathSimulator(Simulator):
    """The path-valued variant of the contract (branch-and-bound GPRS): :meth:`encode` returns
    :class:`EncodedPaths` and :meth:`decode` takes a list of paths (tuples of 0/1)."""

    @abc.abstractmethod
    def encode(self, target: Target, *, rng=None) -> "EncodedPaths":
        """One search path per user."""

    @abc.abstractmethod
    def decode(self, paths, reference: Reference, keys) -> np.ndarray:
        """Samples ``(n, dim)`` from the paths."""


@dataclass(frozen=True)
class _BoundsOnly:
    lo: float
    hi: float

    @property
    def bounds(self):
        return (self.lo, self.hi)
