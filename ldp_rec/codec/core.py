"""Codecs: a mechanism × a channel simulator × an index code, from vectors to bytes and back.

Client side, :meth:`Codec.encode` takes a batch of clipped updates ``X`` (n, d) and returns one
payload (bytes) per client (wire version 1), and :meth:`Codec.encode_cohort` one frame for the whole
cohort (wire version 2, :mod:`.wire`); server side, :meth:`Codec.decode` / :meth:`Codec.decode_cohort`
turn them back into unbiased estimates using only public coordinates (run seed, round, client ids):
seeds are derived by both ends with :func:`ldp_rec.rec.randomness.derive_keys` (all users and chunks in
one call), never sent. Both framings share one encoder and one decoder: a codec gives its users'
bodies as bit fields (:class:`Fields`) and decodes estimates from each user's bit range of one buffer
(``_decode_rows``), with a failure per row; the base class frames, tags, size-checks and isolates.

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
from ..coding.bits import BitReader, pack_fields
from ..rec import randomness
from ..rec.base import MechanismTarget, PathSimulator, Simulator
from . import wire


@dataclass
class DecodeResult:
    """Server-side result for a batch: ``estimates`` (n, d) (rows of failed clients are zero),
    ``ok`` (n,) and ``errors`` (the message of each failure, ``None`` where ok); ``bits`` (n,) the body
    bits of each user where the frame says (cohort frames), else None."""

    estimates: np.ndarray
    ok: np.ndarray
    errors: list
    bits: np.ndarray | None = None

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())


@dataclass(frozen=True)
class Fields:
    """The bodies of n users as bit fields: user c's body is the fields ``counts[c]`` long run of
    ``(values, widths)`` (flattened in user order, each value written in its width, MSB first)."""

    values: np.ndarray
    widths: np.ndarray
    counts: np.ndarray

    @property
    def nbits(self) -> np.ndarray:
        """Body bits per user (n,)."""
        ends = np.cumsum(self.counts)
        csum = np.concatenate([[0], np.cumsum(self.widths)])
        return (csum[ends] - csum[ends - self.counts]).astype(np.int64)

    @classmethod
    def uniform(cls, values, width: int, n: int) -> "Fields":
        """n users with ``values.size / n`` fields of ``width`` bits each."""
        v = np.asarray(values).reshape(-1)
        return cls(v, np.full(v.size, int(width), dtype=np.int64), np.full(n, v.size // max(n, 1), dtype=np.int64))


def binding_keys(run_seed: int, round: int, clients, fingerprint: str = "") -> np.ndarray:
    """Payload binding keys (see :mod:`.wire`): public coordinates and the codec's configuration
    fingerprint, so a payload made with another mechanism, ε, index length or chunking fails the
    tag check instead of decoding silently into a wrongly scaled estimate."""
    return randomness.derive_keys(run_seed, round, clients, 0, domain=f"payload/{fingerprint}")


def cohort_binding(run_seed: int, round: int, fingerprint: str = "") -> int:
    """The cohort frame's binding key (:mod:`.wire`, version 2)."""
    return int(randomness.derive_key(run_seed, round, 0, 0, domain=f"cohort/{fingerprint}"))


def _check_clients(clients, n: int) -> np.ndarray:
    c = np.asarray(clients).reshape(-1)
    if c.size != n:
        raise ParameterError(f"{c.size} client ids for {n} inputs")
    if c.dtype.kind not in "iu":
        raise ParameterError("client ids must be integers")
    if np.unique(c).size != c.size:
        raise ParameterError("client ids must be distinct within a round (seeds are never reused)")
    return c


def _row_bits(buf: np.ndarray, start: int, nbits: int) -> bytes:
    """Bits ``[start, start + nbits)`` of ``buf`` as their own zero-padded bytes."""
    lo, hi = start // 8, (start + nbits + 7) // 8
    bits = np.unpackbits(buf[lo:hi])[start - 8 * lo : start - 8 * lo + nbits]
    return np.packbits(bits).tobytes()


class Codec(abc.ABC):
    """Base class: encode/decode of batches, as one frame per user (:meth:`encode`/:meth:`decode`,
    wire version 1) or one frame per cohort (:meth:`encode_cohort`/:meth:`decode_cohort`, version 2).

    Subclasses provide the array-level hooks only: :meth:`_encode_fields` (all users' bodies as bit
    fields), :meth:`_decode_rows` (estimates from each user's bit range of one buffer, with a failure
    per row), :meth:`max_body_bits` and :meth:`transcript_event`. Framing, tags, size checks and
    per-user failure isolation live here, once, for both wire versions."""

    name: str
    codec_id: int
    dim: int

    # ---- hooks
    def _encode_fields(self, X: np.ndarray, *, run_seed: int, round: int, clients: np.ndarray, rng) -> Fields:
        """All users' bodies as :class:`Fields`."""
        raise IncompatibleError(f"{type(self).__name__} has no array-level body encoder")

    def _decode_rows(self, buf: np.ndarray, starts: np.ndarray, nbits: np.ndarray, *, run_seed: int, round: int,
                     clients: np.ndarray) -> tuple[np.ndarray, list]:
        """``(estimates (m, d), errors)``: user r's body is bits ``[starts[r], starts[r] + nbits[r])`` of
        ``buf``; a defective body gets an error message (its row is ignored); DecodeError for a defect
        that cannot be pinned to a row (the caller then retries row by row)."""
        raise IncompatibleError(f"{type(self).__name__} has no array-level body decoder")

    def max_body_bits(self) -> int:
        """The longest body an honest client sends (bits): what a decoder checks before allocating."""
        return 1 << 40

    @property
    def chunks(self) -> int:
        return 1

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

    # ---- version 1: one frame per user
    def encode(self, X, *, run_seed: int, round: int, clients, rng=None) -> list[bytes]:
        """One payload per row of ``X`` (n, d); ``clients`` are the public client ids."""
        X, _ = as_batch(X, self.dim)
        clients = _check_clients(clients, X.shape[0])
        rng = np.random.default_rng(rng)
        f = self._encode_fields(X, run_seed=run_seed, round=round, clients=clients, rng=rng)
        nbits = f.nbits
        pad = (-nbits) % 8  # one zero field ends each user's body on a byte boundary
        at = np.cumsum(f.counts)
        data, _ = pack_fields(np.insert(np.asarray(f.values).astype(np.uint64), at, 0),
                              np.insert(f.widths, at, pad))
        ends = np.cumsum((nbits + pad) // 8)
        binds = binding_keys(run_seed, round, clients, self.fingerprint)
        return [
            wire.pack(wire.Frame(self.codec_id, self.chunks, int(nb), data[e - (nb + 7) // 8 : e]), binding=int(b))
            for nb, e, b in zip(nbits.tolist(), ends.tolist(), binds)
        ]

    def decode(self, payloads, *, run_seed: int, round: int, clients) -> DecodeResult:
        """Decode a batch; a bad payload fails its own row only (never the batch).

        A row also fails when its estimate is non-finite or longer than :meth:`output_norm_bound`
        (what an honest client exceeds with probability < 1e-12), so a malicious node sending
        float estimates cannot move the mean arbitrarily far or poison the model with NaN."""
        payloads = list(payloads)
        clients = _check_clients(clients, len(payloads))
        binds = binding_keys(run_seed, round, clients, self.fingerprint)
        bodies, nbits, errors = [], np.zeros(len(payloads), dtype=np.int64), [None] * len(payloads)
        ok = np.zeros(len(payloads), dtype=bool)
        limit = self.max_body_bits()
        for i, (p, b) in enumerate(zip(payloads, binds)):
            try:
                f = wire.unpack(p, binding=int(b), codec_id=self.codec_id, max_nbits=limit)
                if f.chunks != self.chunks:
                    raise DecodeError(f"payload has {f.chunks} chunks, codec expects {self.chunks}")
            except LdpRecError as exc:
                bodies.append(b"")
                errors[i] = str(exc)
                continue
            bodies.append(f.body)
            nbits[i] = f.nbits
            ok[i] = True
        sizes = np.array([len(b) for b in bodies], dtype=np.int64)
        starts = 8 * (np.cumsum(sizes) - sizes)
        buf = np.frombuffer(b"".join(bodies), dtype=np.uint8)
        est = self._decode_isolated(buf, starts, nbits, ok, errors, run_seed=run_seed, round=round, clients=clients)
        return DecodeResult(est, ok, errors)

    # ---- version 2: one frame per cohort
    def encode_cohort(self, X, *, run_seed: int, round: int, clients, rng=None) -> bytes:
        """One cohort frame (wire version 2) for the rows of ``X`` (n, d) and public ids ``clients``."""
        X, _ = as_batch(X, self.dim)
        clients = _check_clients(clients, X.shape[0])
        rng = np.random.default_rng(rng)
        f = self._encode_fields(X, run_seed=run_seed, round=round, clients=clients, rng=rng)
        data, _ = pack_fields(np.asarray(f.values).astype(np.uint64), f.widths)
        nbits = f.nbits
        return wire.pack_cohort(np.frombuffer(data, dtype=np.uint8), nbits, codec_id=self.codec_id,
                                chunks=self.chunks, clients=clients,
                                user_bindings=binding_keys(run_seed, round, clients, self.fingerprint),
                                cohort_binding=cohort_binding(run_seed, round, self.fingerprint),
                                fixed=bool(np.all(nbits == nbits[0])))

    def decode_cohort(self, payload, *, run_seed: int, round: int, clients) -> DecodeResult:
        """Decode a cohort frame for the cohort ``clients`` (the ids in the order they were encoded).

        A defective structure (header, lengths, frame tag, sizes) fails every row with its message; a
        user whose tag or body is defective fails its own row only (:mod:`.wire`). ``bits`` of the
        result is each user's body length from the frame."""
        clients = _check_clients(clients, np.asarray(clients).size)
        n = clients.size
        binds = binding_keys(run_seed, round, clients, self.fingerprint)
        try:
            fr = wire.unpack_cohort(payload, clients=clients, user_bindings=binds,
                                    cohort_binding=cohort_binding(run_seed, round, self.fingerprint),
                                    codec_id=self.codec_id, max_nbits=self.max_body_bits())
            if fr.chunks != self.chunks:
                raise DecodeError(f"cohort frame has {fr.chunks} chunks, codec expects {self.chunks}")
        except DecodeError as exc:
            return DecodeResult(np.zeros((n, self.dim)), np.zeros(n, dtype=bool), [str(exc)] * n)
        ok = fr.tag_ok.copy()
        errors = [None if t else "user tag mismatch: corrupted body or tag" for t in ok]
        est = self._decode_isolated(fr.buf, fr.starts, fr.nbits, ok, errors, run_seed=run_seed, round=round,
                                    clients=clients)
        return DecodeResult(est, ok, errors, bits=fr.nbits.copy())

    # ---- shared decoding
    def _decode_isolated(self, buf, starts, nbits, ok, errors, *, run_seed, round, clients) -> np.ndarray:
        """Estimates of the rows ``ok`` (updated in place with the rows that fail), then the range check."""
        idx = np.flatnonzero(ok)
        est = None
        if idx.size:
            try:
                e, errs = self._decode_rows(buf, starts[idx], nbits[idx], run_seed=run_seed, round=round,
                                            clients=clients[idx])
                if idx.size == ok.size:
                    est = np.asarray(e, dtype=np.float64)
                    est = est if est.flags.writeable else est.copy()
                else:
                    est = np.zeros((ok.size, self.dim))
                    est[idx] = e
                for i, err in zip(idx, errs):
                    if err is not None:
                        ok[i], errors[i], est[i] = False, err, 0.0
            except LdpRecError:
                # a defect the decoder could not pin to a row: retry one by one to isolate it
                est = np.zeros((ok.size, self.dim))
                for i in idx:
                    try:
                        e, errs = self._decode_rows(buf, starts[i : i + 1], nbits[i : i + 1], run_seed=run_seed,
                                                    round=round, clients=clients[i : i + 1])
                        est[i] = e[0]
                        if errs[0] is not None:
                            raise DecodeError(errs[0])
                    except LdpRecError as exc:
                        ok[i], errors[i], est[i] = False, str(exc), 0.0
        if est is None:
            est = np.zeros((ok.size, self.dim))
        self._reject_out_of_range(est, ok, errors)
        return est

    def _reject_out_of_range(self, est: np.ndarray, ok: np.ndarray, errors: list) -> None:
        bound = self.output_norm_bound()
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", est, est))  # NaN or inf for a non-finite row
        bad = ok & ~(norms <= bound * (1 + 1e-6))  # float32 transport: relative slack 1e-6
        for i in np.flatnonzero(bad):
            finite = bool(np.isfinite(est[i]).all())
            ok[i] = False
            errors[i] = (f"estimate outside the mechanism's output range (norm {norms[i]:.4g} > bound {bound:.4g})"
                         if finite else "estimate holds NaN or Inf")
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

    def max_body_bits(self) -> int:
        return 32 * self.dim

    def _encode_fields(self, X, *, run_seed, round, clients, rng):
        """Each coordinate as a 32-bit field holding its little-endian float32 bytes."""
        Z = X if self.mechanism is None else self.mechanism.privatize(X, rng=rng)
        Z = np.ascontiguousarray(Z, dtype="<f4")
        return Fields.uniform(Z.view(">u4").reshape(-1), 32, X.shape[0])

    def _decode_rows(self, buf, starts, nbits, *, run_seed, round, clients):
        m, width = starts.size, 32 * self.dim
        errors = [None if nb == width else f"float payload of {nb} bits, expected {width}" for nb in nbits.tolist()]
        good = (nbits == width) & (starts % 8 == 0)
        out = np.zeros((m, self.dim))
        if good.any():
            at = (starts[good] // 8)[:, None] + np.arange(4 * self.dim)
            out[good] = buf[at].view("<f4")
        for r in np.flatnonzero((nbits == width) & ~good):  # a body not on a byte boundary
            out[r] = np.frombuffer(_row_bits(buf, int(starts[r]), width), dtype="<f4")
        return out, errors  # non-finite or out-of-range rows are rejected by Codec.decode


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
            if not isinstance(sim, Simulator) or isinstance(sim, PathSimulator):
                raise IncompatibleError(f"RecCodec sends candidate indices; {type(sim).__name__} is not an index simulator")
            sim.check_mechanism(m)
        self._unbias_kw = [sim.unbias_kwargs(m) for m, sim in zip(self._mechs, self._sims)]

    @property
    def chunks(self) -> int:
        return self.repetitions * self.blocks

    @property
    def simulators(self) -> tuple:
        """The chunks' simulators (one per block)."""
        return tuple(self._sims)

    @property
    def chunk_mechanisms(self) -> tuple:
        """The chunks' mechanisms (one per block, each at ε/(r·B))."""
        return tuple(self._mechs)

    def max_body_bits(self) -> int:
        """``chunks · bits`` for a fixed-length index code; else ``chunks · 4096`` (an Elias-δ word of
        4096 bits holds an index near 2^4000, past any index PPR draws: module doc of :mod:`ldp_rec.rec.ppr`)."""
        word = self.index_code.max_word_bits
        return self.chunks * (int(word) if word is not None else 4096)

    def _describe(self) -> tuple:
        return (*super()._describe(), self.repetitions, self.blocks, repr(self.index_code),
                tuple(repr(m) for m in self._mechs), tuple(repr(s) for s in self._sims))

    def transcript_event(self) -> PrivacyEvent:
        evs = []
        for m, sim in zip(self._mechs, self._sims):
            g = m.guarantee
            evs.extend([sim.transcript_event(g.epsilon, g.delta)] * self.repetitions)
        return evs[0] if len(evs) == 1 else ComposedEvent(tuple(evs))

    def _chunk_keys(self, run_seed, round, clients) -> np.ndarray:
        """Candidate keys of every (user, chunk): ``(n, chunks)``, one vectorised derivation."""
        return randomness.derive_keys(run_seed, round, clients, np.arange(self.chunks))

    def encode_indices(self, X, *, run_seed: int, round: int, clients, rng=None) -> np.ndarray:
        """The ``(n, chunks)`` candidate indices of the rows of ``X`` (int64, or Python ints for PPR's far ones)."""
        X, _ = as_batch(X, self.dim)
        clients = _check_clients(clients, X.shape[0])
        return self._indices(X, run_seed=run_seed, round=round, clients=clients, rng=np.random.default_rng(rng))

    def _indices(self, X, *, run_seed, round, clients, rng) -> np.ndarray:
        n = X.shape[0]
        keys = self._chunk_keys(run_seed, round, clients)
        cols = []
        for rep in range(self.repetitions):
            for b, mech in enumerate(self._mechs):
                j = rep * self.blocks + b
                U = mech.prepare(X[:, self._slices[b] : self._slices[b + 1]], rng=rng)
                cols.append(self._sims[b].encode(MechanismTarget(mech, U, keys[:, j]), rng=rng).indices)
        if all(c.dtype != object for c in cols):
            return np.stack(cols, axis=1).astype(np.int64, copy=False)
        idx = np.empty((n, self.chunks), dtype=object)  # Python ints: PPR indices can exceed 2^63
        for j, c in enumerate(cols):
            idx[:, j] = [int(v) for v in c]
        return idx

    def _encode_fields(self, X, *, run_seed, round, clients, rng) -> Fields:
        """The index code's words of ``indices + 1``, user by user and chunk by chunk."""
        idx = self._indices(X, run_seed=run_seed, round=round, clients=clients, rng=rng)
        n, k = idx.shape
        if idx.dtype != object:
            fv, fw = self.index_code.fields(idx.reshape(-1) + 1)
            return Fields(np.asarray(fv), np.asarray(fw, dtype=np.int64), np.full(n, fv.size // n, dtype=np.int64))
        parts = [self.index_code.fields_wide(np.array([int(v) + 1 for v in row], dtype=object)) for row in idx]
        return Fields(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      np.array([p[0].size for p in parts], dtype=np.int64))

    def _decode_rows(self, buf, starts, nbits, *, run_seed, round, clients):
        m, k = starts.size, self.chunks
        vals, status = self.index_code.decode_rows(buf, starts, nbits, k)
        errors: list = [None] * m
        idx: np.ndarray = vals - 1
        big = np.flatnonzero(status == 2)
        if big.size:  # a code word of 2^63 or more: the scalar decoder, Python ints (PPR's far candidates)
            idx = idx.astype(object)
            for r in big:
                try:
                    rd = BitReader(_row_bits(buf, int(starts[r]), int(nbits[r])), int(nbits[r]))
                    idx[r] = [self.index_code.decode(rd) - 1 for _ in range(k)]
                    rd.finish()
                    status[r] = 0
                except LdpRecError as exc:
                    errors[r] = str(exc)
        for r in np.flatnonzero(status == 1):
            errors[r] = f"truncated body: {int(nbits[r])} bits hold fewer than {k} code words"
        for r in np.flatnonzero(status == 3):
            errors[r] = f"over-long body: {k} code words end before bit {int(nbits[r])}"
        live = np.flatnonzero(status == 0)
        est = np.zeros((m, self.dim)) if live.size < m else None
        for b, sim in enumerate(self._sims):  # indices past a simulator's range fail their row
            lim = sim.index_limit
            if lim is not None and live.size:
                cols = idx[live][:, [rep * self.blocks + b for rep in range(self.repetitions)]]
                bad = np.array([any(int(v) >= lim for v in row) for row in cols]) if cols.dtype == object \
                    else (cols >= lim).any(axis=1)
                for r in live[bad]:
                    errors[r] = f"candidate index past the {lim} candidates of the code"
                live = live[~bad]
        if live.size < m and est is None:
            est = np.zeros((m, self.dim))
        if not live.size:
            return est, errors
        keys = self._chunk_keys(run_seed, round, clients[live])
        out = np.zeros((live.size, self.dim)) if self.chunks > 1 else None
        for rep in range(self.repetitions):
            for b, mech in enumerate(self._mechs):
                j = rep * self.blocks + b
                V = self._sims[b].decode(idx[live, j], mech.reference, keys[:, j])
                Z = mech.unbias(V, **self._unbias_kw[b])
                if out is None:
                    out = np.asarray(Z, dtype=np.float64)
                else:
                    out[:, self._slices[b] : self._slices[b + 1]] += Z / self.repetitions
        if live.size == m:
            return out, errors
        est[live] = out
        return est, errors
