"""Codecs: a mechanism × a channel simulator × an index code, from vectors to bytes and back.

Client side, :meth:`Codec.encode` takes a batch of clipped updates ``X`` (n, d) and returns one
payload (bytes) per client; server side, :meth:`Codec.decode` turns payloads back into unbiased
estimates using only public coordinates (run seed, round, client ids): seeds are derived by both
ends with :func:`ldp_rec.rec.randomness.derive_keys`, never sent.

Chunking (``repetitions`` r, ``blocks`` B): the update is split into B coordinate blocks and each
block is privatised r times; each of the r·B chunks runs the mechanism at ε/(r·B) on its own
stream (chunk index j = rep·B + block), so the per-chunk encode cost is ~e^{ε/(rB)}·d/B while the
r·B pure events compose to ε (basic composition). The r repetitions of a block are averaged,
which keeps the estimate unbiased.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import as_batch, check_positive_int
from ..errors import DecodeError, IncompatibleError, LdpRecError, ParameterError
from ..mechanisms.base import Mechanism, RatioMechanism
from ..privacy.events import ComposedEvent, NonPrivateEvent, PrivacyEvent, PureEvent, ApproxEvent
from ..coding.bits import BitReader, BitWriter
from ..rec import randomness
from ..rec.base import Message, MechanismTarget, Simulator
from . import wire
from .unbiasing import effective_cap_probability


@dataclass
class DecodeResult:
    """Server-side result for a batch: ``estimates`` (n, d) (rows of failed clients are zero),
    ``ok`` (n,) and ``errors`` (the message of each failure, ``None`` where ok)."""

    estimates: np.ndarray
    ok: np.ndarray
    errors: list

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())


def binding_keys(run_seed: int, round: int, clients, fingerprint: str = "") -> np.ndarray:
    """Payload binding keys (see :mod:`.wire`): public coordinates and the codec's configuration
    fingerprint, so a payload made with another mechanism, ε, index length or chunking fails the
    tag check instead of decoding silently into a wrongly scaled estimate."""
    return randomness.derive_keys(run_seed, round, clients, 0, domain=f"payload/{fingerprint}")


def _check_clients(clients, n: int) -> np.ndarray:
    c = np.asarray(clients).reshape(-1)
    if c.size != n:
        raise ParameterError(f"{c.size} client ids for {n} inputs")
    if c.dtype.kind not in "iu":
        raise ParameterError("client ids must be integers")
    if np.unique(c).size != c.size:
        raise ParameterError("client ids must be distinct within a round (seeds are never reused)")
    return c


class Codec(abc.ABC):
    """Base class: ``encode``/``decode`` of batches, transcript privacy and payload sizes."""

    name: str
    codec_id: int
    dim: int

    @abc.abstractmethod
    def _encode_bodies(self, X: np.ndarray, *, run_seed: int, round: int, clients: np.ndarray, rng) -> tuple[list[bytes], np.ndarray, int]:
        """(bodies, nbits per client, chunks)."""

    @abc.abstractmethod
    def _decode_bodies(self, frames: list, *, run_seed: int, round: int, clients: np.ndarray) -> np.ndarray:
        """Estimates (m, d) for valid frames; raise DecodeError for a structural defect."""

    @abc.abstractmethod
    def transcript_event(self) -> PrivacyEvent:
        """Privacy event of one client's transcript (seed + payload) in one round."""

    def _describe(self) -> tuple:
        """What both ends must agree on, as reprs of frozen parameter objects (subclasses extend)."""
        return (type(self).__name__, self.codec_id, self.dim)

    @property
    def fingerprint(self) -> str:
        """Hex BLAKE2b-64 digest of :meth:`_describe`: bound into every payload's tag."""
        text = repr(self._describe())
        if " at 0x" in text:  # a repr with a memory address would differ between the two ends
            raise ParameterError(f"codec description is not deterministic: {text}")
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def output_norm_bound(self) -> float:
        """L2 bound on an honest decoded estimate (exceeded with probability < 1e-12); ``inf``
        when the decoded value is the server's own draw and so bounded by construction."""
        return math.inf

    def encode(self, X, *, run_seed: int, round: int, clients, rng=None) -> list[bytes]:
        """One payload per row of ``X`` (n, d); ``clients`` are the public client ids."""
        X, _ = as_batch(X, self.dim)
        clients = _check_clients(clients, X.shape[0])
        rng = np.random.default_rng(rng)
        bodies, nbits, chunks = self._encode_bodies(X, run_seed=run_seed, round=round, clients=clients, rng=rng)
        binds = binding_keys(run_seed, round, clients, self.fingerprint)
        return [
            wire.pack(wire.Frame(self.codec_id, chunks, int(nb), body), binding=int(b))
            for body, nb, b in zip(bodies, nbits, binds)
        ]

    def decode(self, payloads, *, run_seed: int, round: int, clients) -> DecodeResult:
        """Decode a batch; a bad payload fails its own row only (never the batch).

        A row also fails when its estimate is non-finite or longer than :meth:`output_norm_bound`
        (what an honest client exceeds with probability < 1e-12), so a malicious node sending
        float estimates cannot move the mean arbitrarily far or poison the model with NaN."""
        payloads = list(payloads)
        clients = _check_clients(clients, len(payloads))
        binds = binding_keys(run_seed, round, clients, self.fingerprint)
        frames, errors = [], [None] * len(payloads)
        for i, (p, b) in enumerate(zip(payloads, binds)):
            try:
                frames.append(wire.unpack(p, binding=int(b), codec_id=self.codec_id))
            except LdpRecError as exc:
                frames.append(None)
                errors[i] = str(exc)
        ok = np.array([f is not None for f in frames], dtype=bool)
        est = np.zeros((len(payloads), self.dim))
        idx = np.flatnonzero(ok)
        if idx.size:
            try:
                est[idx] = self._decode_bodies([frames[i] for i in idx], run_seed=run_seed, round=round, clients=clients[idx])
            except LdpRecError:
                # a structural defect somewhere in the batch: retry one by one to isolate it
                for i in idx:
                    try:
                        est[i] = self._decode_bodies([frames[i]], run_seed=run_seed, round=round, clients=clients[i : i + 1])[0]
                    except LdpRecError as exc:
                        ok[i] = False
                        errors[i] = str(exc)
                        est[i] = 0.0
        self._reject_out_of_range(est, ok, errors)
        return DecodeResult(est, ok, errors)

    def _reject_out_of_range(self, est: np.ndarray, ok: np.ndarray, errors: list) -> None:
        bound = self.output_norm_bound()
        finite = np.isfinite(est).all(axis=1)
        norms = np.full(len(est), np.inf)
        if finite.any():
            norms[finite] = np.linalg.norm(est[finite], axis=1)
        bad = ok & ~(norms <= bound * (1 + 1e-6))  # float32 transport: relative slack 1e-6
        for i in np.flatnonzero(bad):
            ok[i] = False
            errors[i] = (f"estimate outside the mechanism's output range (norm {norms[i]:.4g} > bound {bound:.4g})"
                         if finite[i] else "estimate holds NaN or Inf")
        est[bad] = 0.0

    def payload_bits(self, payload: bytes) -> int:
        """Information bits of a payload (what the literature counts), excluding the header."""
        return wire.unpack_header_nbits(payload)


def _guarantee_event(mech: Mechanism | None) -> PrivacyEvent:
    if mech is None:
        return NonPrivateEvent()
    g = mech.guarantee
    return PureEvent(g.epsilon) if g.delta == 0 else ApproxEvent(g.epsilon, g.delta)


@dataclass
class FloatCodec(Codec):
    """Uncompressed: the mechanism's unbiased estimate as float32 (``mechanism=None``: the raw
    vector, non-private, clipped by the caller to ``norm_bound`` when given). Transcript = the
    mechanism's own guarantee. The server rejects an estimate beyond the mechanism's
    :meth:`~ldp_rec.mechanisms.base.Mechanism.output_norm_bound`."""

    mechanism: Mechanism | None
    dim: int
    norm_bound: float | None = None
    name: str = field(default="none", init=False)
    codec_id: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "dim")
        if self.mechanism is not None and self.mechanism.dim != self.dim:
            raise ParameterError(f"mechanism dim {self.mechanism.dim} != codec dim {self.dim}")
        if self.mechanism is not None and self.norm_bound is not None:
            raise ParameterError("norm_bound is for the non-private codec; a mechanism states its own")
        if self.norm_bound is not None and not self.norm_bound > 0:
            raise ParameterError(f"norm_bound must be > 0, got {self.norm_bound!r}")

    def transcript_event(self) -> PrivacyEvent:
        return _guarantee_event(self.mechanism)

    def _describe(self) -> tuple:
        return (*super()._describe(), repr(self.mechanism), self.norm_bound)

    def output_norm_bound(self) -> float:
        if self.mechanism is None:
            return math.inf if self.norm_bound is None else float(self.norm_bound)
        return float(self.mechanism.output_norm_bound())

    def _encode_bodies(self, X, *, run_seed, round, clients, rng):
        Z = X if self.mechanism is None else self.mechanism.privatize(X, rng=rng)
        Z = np.ascontiguousarray(Z, dtype="<f4")
        return [row.tobytes() for row in Z], np.full(X.shape[0], 32 * self.dim), 1

    def _decode_bodies(self, frames, *, run_seed, round, clients):
        out = np.empty((len(frames), self.dim))
        for i, f in enumerate(frames):
            if f.chunks != 1 or f.nbits != 32 * self.dim:
                raise DecodeError(f"float payload of {f.nbits} bits, expected {32 * self.dim}")
            out[i] = np.frombuffer(f.body, dtype="<f4")
        return out  # non-finite or out-of-range rows are rejected by Codec.decode


def _split_sizes(dim: int, blocks: int) -> list[int]:
    return [len(a) for a in np.array_split(np.arange(dim), blocks)]


@dataclass
class RecCodec(Codec):
    """A :class:`RatioMechanism` compressed by a channel :class:`Simulator`.

    Each chunk's message is the simulator's candidate index, coded with ``index_code`` (a
    :class:`~ldp_rec.coding.codes.IntegerCode` applied to index + 1). Cap mechanisms decoded from
    simulators with a finite-N bias (MRC, modified MRC, rejection sampling with fallback) are
    unbiased with the simulator's *effective* cap probability (references.md §3), obtained from
    ``simulator.effective_cap_probability(mechanism)``.
    """

    mechanism: RatioMechanism
    simulator: object  # a Simulator, or a callable chunk_mechanism -> Simulator
    index_code: object
    repetitions: int = 1
    blocks: int = 1
    codec_id: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.mechanism, RatioMechanism):
            raise IncompatibleError(
                f"{self.simulator.name} compresses mechanisms with a density ratio against a public reference; "
                f"{type(self.mechanism).__name__} has none"
            )
        check_positive_int(self.repetitions, "repetitions")
        check_positive_int(self.blocks, "blocks")
        self.dim = self.mechanism.dim
        if self.blocks > self.dim:
            raise ParameterError(f"blocks={self.blocks} exceeds dim={self.dim}")
        k = self.repetitions * self.blocks
        sizes = _split_sizes(self.dim, self.blocks)
        self._slices = np.cumsum([0] + sizes)
        self._mechs = [
            dataclasses.replace(self.mechanism, epsilon=self.mechanism.epsilon / k, dim=s) for s in sizes
        ]
        make = self.simulator if callable(self.simulator) and not isinstance(self.simulator, Simulator) else None
        self._sims = [make(m) if make else self.simulator for m in self._mechs]
        self.name = self._sims[0].name
        for m, sim in zip(self._mechs, self._sims):
            if hasattr(sim, "check_mechanism"):
                sim.check_mechanism(m)
            else:
                lo, hi = m.log_ratio_bounds()
                sim.check_target(_BoundsOnly(lo, hi))
        self._unbias_kw = [self._unbias_kwargs(m, sim) for m, sim in zip(self._mechs, self._sims)]

    @property
    def chunks(self) -> int:
        return self.repetitions * self.blocks

    def _describe(self) -> tuple:
        return (*super()._describe(), self.repetitions, self.blocks, repr(self.index_code),
                tuple(repr(m) for m in self._mechs), tuple(repr(s) for s in self._sims))

    @staticmethod
    def _unbias_kwargs(mech, sim) -> dict:
        """How the decoder unbiases a chunk: the simulator's exact ``E⟨V, u⟩`` (subset selection), the
        effective cap probability of a finite-candidate simulator, or the mechanism's own scale."""
        if hasattr(sim, "moments"):
            return {"mean": sim.moments(mech.projection_law)[0]}
        if not hasattr(mech, "cap_mass"):
            return {}
        p_eff = effective_cap_probability(sim, mech)
        return {} if p_eff is None else {"p_eff": p_eff}

    def transcript_event(self) -> PrivacyEvent:
        evs = []
        for m, sim in zip(self._mechs, self._sims):
            g = m.guarantee
            own = getattr(sim, "transcript_event", None)
            ev = own(g.epsilon, g.delta) if own is not None else sim.transcript.event(g.epsilon, g.delta)
            evs.extend([ev] * self.repetitions)
        return evs[0] if len(evs) == 1 else ComposedEvent(tuple(evs))

    def _chunk_keys(self, run_seed, round, clients, j):
        return randomness.derive_keys(run_seed, round, clients, j)

    def _encode_bodies(self, X, *, run_seed, round, clients, rng):
        n = X.shape[0]
        idx = np.empty((n, self.chunks), dtype=object)  # Python ints: PPR indices can exceed 2^63
        for rep in range(self.repetitions):
            for b, mech in enumerate(self._mechs):
                j = rep * self.blocks + b
                U = mech.prepare(X[:, self._slices[b] : self._slices[b + 1]], rng=rng)
                target = MechanismTarget(mech, U, self._chunk_keys(run_seed, round, clients, j))
                msgs = self._sims[b].encode(target, rng=rng)
                idx[:, j] = [m.index for m in msgs]
        bodies, nbits = [], np.empty(n, dtype=np.int64)
        for c in range(n):
            data, nb = _encode_index_row(self.index_code, idx[c])
            bodies.append(data)
            nbits[c] = nb
        return bodies, nbits, self.chunks

    def _decode_bodies(self, frames, *, run_seed, round, clients):
        m = len(frames)
        idx = np.empty((m, self.chunks), dtype=object)
        for i, f in enumerate(frames):
            if f.chunks != self.chunks:
                raise DecodeError(f"payload has {f.chunks} chunks, codec expects {self.chunks}")
            idx[i] = _decode_index_row(self.index_code, f.body, self.chunks, f.nbits)
        est = np.zeros((m, self.dim))
        for rep in range(self.repetitions):
            for b, mech in enumerate(self._mechs):
                j = rep * self.blocks + b
                msgs = [Message(index=int(k)) for k in idx[:, j]]
                V = self._sims[b].decode(msgs, mech.reference, self._chunk_keys(run_seed, round, clients, j))
                Z = mech.unbias(V, **self._unbias_kw[b])
                est[:, self._slices[b] : self._slices[b + 1]] += Z / self.repetitions
        return est


def _encode_index_row(code, indices) -> tuple[bytes, int]:
    """Code words of one client's ``indices + 1``: the vectorised path, or the scalar one (same bits) when
    an index is 2^63 − 1 or more (PPR at small α)."""
    vals = [int(i) + 1 for i in indices]
    if max(vals) < 1 << 63:
        return code.encode_many(np.array(vals, dtype=np.int64))
    w = BitWriter()
    for v in vals:
        code.encode(v, w)
    return w.getvalue(), w.nbits


def _decode_index_row(code, body, count, nbits) -> list:
    """Inverse of :func:`_encode_index_row`; the scalar decoder takes over for a code word of 2^63 or more."""
    try:
        return (code.decode_many(body, count, nbits) - 1).tolist()
    except DecodeError:
        r = BitReader(body, nbits)
        out = [code.decode(r) - 1 for _ in range(count)]
        r.finish()
        return out


@dataclass(frozen=True)
class _BoundsOnly:
    lo: float
    hi: float

    @property
    def bounds(self):
        return (self.lo, self.hi)
