"""A random-projection front end for any codec on R^k (ProjUnit / FastProjUnit behind channel simulation).

Client (:meth:`ProjectedCodec.encode`): x ∈ R^d → u = W v/‖W v‖ ∈ S^{k−1} (:meth:`ProjUnit.project`, W from
the user's public key) → the inner codec's payload for u (floats, subset selection, modified MRC, … of
PrivUnitG in R^k). Server (:meth:`ProjectedCodec.decode`): the inner codec's unbiased estimate ẑ of u →
v̂ = C Wᵀ ẑ / c (:meth:`ProjUnit.lift`). Asi, Feldman, Nelson, Nguyen, Talwar (NeurIPS 2023), ProjUnit /
FastProjUnit, with the channel-simulated PrivUnitG of references.md §8: N candidates of width k, so the
candidate work per user is N·k instead of N·d, plus O(d log d) for the SRHT.

Public coordinates only: W_i for user i in round t comes from
``derive_keys(run_seed, t, [i], 0, domain="projection/<kind>/<k>")`` at both ends, independent across
users and rounds and of every candidate stream. The inner codec runs under its own run seed
:meth:`ProjectedCodec.inner_run_seed`, derived from the run seed and the projection's description, so
its payload tags and candidate keys bind the projection too: a client with another projection kind or
k fails the tag check (and a different k also changes the inner codec's dimension).

Transcript: the inner codec's event, unchanged (W is public and u is a function of x and W, so the
release is the inner codec's release of u; post-processing). The codec uses only the inner codec's
public ``encode``/``decode``, ``encode_cohort``/``decode_cohort`` (wire versions 1 and 2),
``transcript_event``, ``output_norm_bound``, ``payload_bits``, ``max_body_bits`` and ``chunks``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import IncompatibleError, ParameterError
from ..mechanisms.base import OUTPUT_TAIL
from ..mechanisms.projunit import ProjUnit
from ..privacy.events import PrivacyEvent
from ..rec import randomness
from .core import Codec, DecodeResult


@dataclass
class ProjectedCodec(Codec):
    """``mechanism`` (a :class:`ProjUnit` / :class:`FastProjUnit`) in front of ``inner`` (any codec whose
    dimension is the mechanism's k, built for PrivUnitG in R^k: see :func:`projected_codec`)."""

    mechanism: ProjUnit
    inner: Codec
    dim: int = field(init=False)
    name: str = field(init=False)
    codec_id: int = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.mechanism, ProjUnit):
            raise IncompatibleError(f"ProjectedCodec needs a ProjUnit mechanism, got {type(self.mechanism).__name__}")
        if not isinstance(self.inner, Codec):
            raise IncompatibleError(f"inner must be a Codec, got {type(self.inner).__name__}")
        if self.inner.dim != self.mechanism.proj_dim:
            raise ParameterError(f"inner codec dim {self.inner.dim} != projection dim k = {self.mechanism.proj_dim}")
        self.dim = int(self.mechanism.dim)
        self.name = self.inner.name
        self.codec_id = self.inner.codec_id

    # ---- what both ends agree on
    def _describe(self) -> tuple:
        m = self.mechanism
        return (*super()._describe(), m.projection, int(m.proj_dim), float(m.clip), self.inner.fingerprint)

    def _domain(self) -> str:
        return f"projection/{self.mechanism.projection}/{int(self.mechanism.proj_dim)}"

    def projection_keys(self, run_seed: int, round: int, clients) -> np.ndarray:
        """The public keys of the users' projections W (module doc)."""
        return randomness.derive_keys(run_seed, round, clients, 0, domain=self._domain())

    def inner_run_seed(self, run_seed: int) -> int:
        """The inner codec's run seed: a 63-bit hash of (run seed, this codec's fingerprint)."""
        key = randomness.derive_key(run_seed, 0, 0, 0, domain=f"projected-codec/{self.fingerprint}")
        return int(key) >> 1

    def transcript_event(self) -> PrivacyEvent:
        return self.inner.transcript_event()

    def output_norm_bound(self) -> float:
        """The inner bound lifted: ``C/c · ‖W‖_op · bound(ẑ)`` (``‖W‖_op`` at tail ``OUTPUT_TAIL``; ``inf``
        when the inner decoded value is the server's own draw)."""
        b = float(self.inner.output_norm_bound())
        if not math.isfinite(b):
            return math.inf
        proj = self.mechanism.kind
        return float(self.mechanism.clip) / proj.norm_mean * proj.operator_norm_bound(tail=OUTPUT_TAIL) * b

    def payload_bits(self, payload: bytes) -> int:
        return self.inner.payload_bits(payload)

    def max_body_bits(self) -> int:
        return self.inner.max_body_bits()

    @property
    def chunks(self) -> int:
        return self.inner.chunks

    # ---- encode / decode through the inner codec's public methods
    def _project(self, X, run_seed, round, clients, rng):
        # X is validated by the mechanism; ids by the keys' derivation and the inner codec
        clients = np.asarray(clients).reshape(-1)
        rng = np.random.default_rng(rng)
        return self.mechanism.project(X, self.projection_keys(run_seed, round, clients), rng=rng), clients, rng

    def _lift(self, res: DecodeResult, run_seed, round, clients) -> DecodeResult:
        """The inner result's ok rows lifted to R^d, then this codec's own range check."""
        est = np.zeros((len(res.ok), self.dim))
        ok = np.asarray(res.ok, dtype=bool).copy()
        errors = list(res.errors)
        idx = np.flatnonzero(ok)
        if idx.size:
            est[idx] = self.mechanism.lift(res.estimates[idx], self.projection_keys(run_seed, round, clients[idx]))
        self._reject_out_of_range(est, ok, errors)
        return DecodeResult(est, ok, errors, getattr(res, "bits", None))

    def encode(self, X, *, run_seed: int, round: int, clients, rng=None) -> list[bytes]:
        """One payload per user (wire version 1): the inner codec's payload for u = W x/‖W x‖."""
        U, clients, rng = self._project(X, run_seed, round, clients, rng)
        return self.inner.encode(U, run_seed=self.inner_run_seed(run_seed), round=round, clients=clients, rng=rng)

    def decode(self, payloads, *, run_seed: int, round: int, clients) -> DecodeResult:
        payloads = list(payloads)
        clients = np.asarray(clients).reshape(-1)
        res = self.inner.decode(payloads, run_seed=self.inner_run_seed(run_seed), round=round, clients=clients)
        return self._lift(res, run_seed, round, clients)

    def encode_cohort(self, X, *, run_seed: int, round: int, clients, rng=None) -> bytes:
        """One cohort frame (wire version 2): the inner codec's frame for the rows u = W x/‖W x‖."""
        U, clients, rng = self._project(X, run_seed, round, clients, rng)
        return self.inner.encode_cohort(U, run_seed=self.inner_run_seed(run_seed), round=round, clients=clients,
                                        rng=rng)

    def decode_cohort(self, payload, *, run_seed: int, round: int, clients) -> DecodeResult:
        clients = np.asarray(clients).reshape(-1)
        res = self.inner.decode_cohort(payload, run_seed=self.inner_run_seed(run_seed), round=round, clients=clients)
        return self._lift(res, run_seed, round, clients)


def projected_codec(mechanism: ProjUnit, codec: str, **codec_options) -> ProjectedCodec:
    """``mechanism`` in front of the registry's codec ``codec`` for PrivUnitG in R^k at the same ε
    (``codec_options``: bits, top, band_tuning, … of :func:`ldp_rec.codec.registry.make_codec`)."""
    from .registry import make_codec

    if not isinstance(mechanism, ProjUnit):
        raise IncompatibleError(f"projected_codec needs a ProjUnit mechanism, got {type(mechanism).__name__}")
    inner = make_codec("privunitg", codec, epsilon=float(mechanism.epsilon), dim=int(mechanism.proj_dim),
                       **codec_options)
    return ProjectedCodec(mechanism, inner)
