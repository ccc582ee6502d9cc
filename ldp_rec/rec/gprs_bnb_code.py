"""Arithmetic code of a branch-and-bound GPRS search path under a decoder-known model.

The message of :class:`~.gprs_bnb.BranchAndBoundGPRS` is its search path: at step ``n`` the search
either stops (``X_n`` accepted) or keeps the side of ``X_n`` that holds the mode (Flamich 2023,
§3.2, Alg. 3). Both ends replay the intervals ``B_n`` and the shared uniforms ``U_n``, so each event
can be coded with a probability the decoder computes itself (:class:`PathModel`):

* **direction** (bit 1 = keep the right side): ``P[1] = 1 − U_n``. This is ``P[mode > X_n]`` when
  the mode is distributed as P restricted to ``B_n``, which holds when P is the marginal of the
  targets (``E_X Q_X = P``, the matched reference of REC), since ``X_n`` splits ``B_n`` at the
  P-quantile ``U_n``. Over a path, these bits cost exactly ``−log2 P(B_final)``.
* **stop**: ``P[stop at n] = 1 / (1 + c·(2^I·P(B_n))^{3/4})`` with the public information level
  ``I`` (bits): stopping becomes likely once ``B_n`` has shrunk to the width of Q, ``P(B_n) ≈ 2^{−I}``.
  ``c = 1.28`` and the exponent 3/4 were fitted once (logistic regression of the stop events on
  ``log2 P(B_n) + I``; fitted slope 0.74) on the Gaussian channel of ``ldp-rec bench rec`` with seed 1
  at ``I ∈ {0.1, 1, 3.5, 6, 12}``; the bench runs seed 0. They are constants, not refitted per run.

The events are coded by an exact binary arithmetic code (Shannon–Fano–Elias on the product of
probabilities quantised to ``PREC`` bits, Python integers, no renormalisation): the codeword is the
shortest dyadic interval ``[m/2^k, (m+1)/2^k)`` inside the path's model interval, so the code is
prefix-free and ``len ≤ ⌈−log2 Π q⌉ + 1`` (:meth:`PathCode.model_bits` is ``−log2 Π q``).

Determinism: the probabilities use only IEEE-exact operations (``1 − u``, products, ``sqrt``,
division) of values that both ends compute with the same functions (:func:`~.unimodal.sample_interval`
on the same uniforms), then are rounded to integers; ``2^I`` is one ``float`` power on both sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DecodeError, IncompatibleError, ParameterError
from ..mechanisms.base import Reference
from .base import EncodedPaths
from .gprs_bnb import _uniforms
from .unimodal import interval_ops, sample_interval

__all__ = ["PathModel", "PathCode", "PREC"]

PREC = 24  #: bits of each quantised probability
_ONE = 1 << PREC


def quantize(p) -> np.ndarray:
    """Probability of a 1 as an integer in ``[1, 2^PREC − 1]`` (out of ``2^PREC``)."""
    return np.clip(np.rint(np.asarray(p, dtype=np.float64) * _ONE), 1, _ONE - 1).astype(np.int64)


@dataclass(frozen=True)
class PathModel:
    """Decoder-known probabilities of the search events (module doc). ``info_bits`` is public."""

    info_bits: float
    stop_scale: float = 1.28

    def __post_init__(self) -> None:
        if not (math.isfinite(self.info_bits) and self.info_bits >= 0):
            raise ParameterError("info_bits must be finite and >= 0")
        if not (math.isfinite(self.stop_scale) and self.stop_scale > 0):
            raise ParameterError("stop_scale must be > 0")

    def p_stop(self, mass) -> np.ndarray:
        """``1 / (1 + c·(2^I·P(B))^{3/4})`` from the search interval's P-mass."""
        v = np.asarray(mass, dtype=np.float64) * (2.0 ** float(self.info_bits))
        r = np.sqrt(v)
        return 1.0 / (1.0 + self.stop_scale * (r * np.sqrt(r)))

    @staticmethod
    def p_right(u) -> np.ndarray:
        """``P[mode > X_n] = 1 − U_n`` under "mode ~ P restricted to B_n"."""
        return 1.0 - np.asarray(u, dtype=np.float64)


class _Encoder:
    """Exact interval arithmetic over ``n`` streams: ``[low, low + width) / 2^{PREC·count}``."""

    def __init__(self, n: int) -> None:
        self.low = np.zeros(n, dtype=object)
        self.width = np.ones(n, dtype=object)
        self.count = np.zeros(n, dtype=np.int64)
        self.cost = np.zeros(n)  # −log2 of the quantised model probability, bits

    def push(self, idx, bits, q1) -> None:
        """Code ``bits`` (0/1) of streams ``idx`` with ``P[1] = q1 / 2^PREC``."""
        q1 = np.asarray(q1, dtype=np.int64)
        q0 = _ONE - q1
        one = np.asarray(bits, dtype=bool)
        w = self.width[idx]
        self.low[idx] = self.low[idx] * _ONE + np.where(one, w * q0.astype(object), 0)
        self.width[idx] = w * np.where(one, q1, q0).astype(object)
        self.count[idx] += 1
        self.cost[idx] += PREC - np.log2(np.where(one, q1, q0))

    def finish(self) -> list[tuple[int, ...]]:
        """Shortest dyadic interval inside each model interval, as a tuple of bits (MSB first)."""
        out = []
        for low, width, cnt in zip(self.low.tolist(), self.width.tolist(), self.count.tolist()):
            E = PREC * cnt
            k = max(E - width.bit_length() + 1, 0)  # width / 2^E >= 2^-k, so k or k + 1 suffices
            while True:
                m = -((-low << k) >> E)  # ceil(low·2^k / 2^E)
                if (m + 1) << E <= (low + width) << k:
                    break
                k += 1
            out.append(tuple(int(c) for c in format(m, f"0{k}b")) if k else ())
        return out


class _Decoder:
    """Reads events back from codewords: the point ``m / 2^k`` picks the sub-interval."""

    def __init__(self, codewords) -> None:
        n = len(codewords)
        self.m = np.array([int("".join(map(str, c)), 2) if c else 0 for c in codewords], dtype=object)
        self.k = np.array([len(c) for c in codewords], dtype=object)
        self.low = np.zeros(n, dtype=object)
        self.width = np.ones(n, dtype=object)
        self.E = np.zeros(n, dtype=object)

    def pull(self, idx, q1) -> np.ndarray:
        q1 = np.asarray(q1, dtype=np.int64)
        q0 = _ONE - q1
        w = self.width[idx]
        split = self.low[idx] * _ONE + w * q0.astype(object)
        E = self.E[idx] + PREC
        one = np.array((self.m[idx] << E) >= (split << self.k[idx]), dtype=bool)
        self.low[idx] = np.where(one, split, self.low[idx] * _ONE)
        self.width[idx] = w * np.where(one, q1, q0).astype(object)
        self.E[idx] = E
        return one


@dataclass(frozen=True)
class PathCode:
    """Codes :class:`~.base.Message` paths of branch-and-bound GPRS as bit tuples and back.

    ``encode`` and ``decode`` replay the same search intervals from ``reference`` and ``keys`` (the
    decoder needs neither the times nor the mode); ``decode(encode(m)) == m`` and a codeword that is
    not exactly what ``encode`` would write raises :class:`~ldp_rec.errors.DecodeError`.
    """

    model: PathModel
    max_depth: int = 2048

    def __post_init__(self) -> None:
        if not isinstance(self.model, PathModel):
            raise ParameterError("model must be a PathModel")
        if isinstance(self.max_depth, bool) or int(self.max_depth) < 1:
            raise ParameterError("max_depth must be >= 1")

    def _walk(self, reference: Reference, keys, decide) -> None:
        ops = interval_ops(reference)
        n = keys.size
        a, b = np.full(n, -np.inf), np.full(n, np.inf)
        active = np.arange(n)
        for step in range(int(self.max_depth) + 1):
            u = _uniforms(keys[active], step)
            x, mass = sample_interval(ops, a[active], b[active], u)
            stop, right = decide(step, active, u, mass)
            keep = ~stop
            if not keep.any():
                return
            cont, xc, rc = active[keep], x[keep], right[keep]
            a[cont] = np.where(rc, xc, a[cont])
            b[cont] = np.where(rc, b[cont], xc)
            active = cont
        raise DecodeError(f"no stop within max_depth={self.max_depth}")

    def _encoder(self, messages, reference: Reference, keys) -> _Encoder:
        keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
        if len(messages) != keys.size:
            raise ParameterError(f"{len(messages)} messages for {keys.size} keys")
        depth = np.array([len(getattr(m, "path", m)) for m in messages], dtype=np.int64)
        if depth.max(initial=0) > self.max_depth:
            raise ParameterError(f"a path is longer than max_depth={self.max_depth}")
        bits = np.zeros((keys.size, int(depth.max(initial=0)) + 1), dtype=bool)
        for c, m in enumerate(messages):
            bits[c, : depth[c]] = getattr(m, "path", m)
        enc = _Encoder(keys.size)

        def decide(step, active, u, mass):
            stop = depth[active] == step
            enc.push(active, stop, quantize(self.model.p_stop(mass)))
            right = bits[active, step]
            go = ~stop
            enc.push(active[go], right[go], quantize(self.model.p_right(u[go])))
            return stop, right

        self._walk(reference, keys, decide)
        return enc

    def encode(self, messages, reference: Reference, keys) -> list[tuple[int, ...]]:
        """One prefix-free codeword (tuple of 0/1) per message."""
        return self._encoder(messages, reference, keys).finish()

    def model_bits(self, messages, reference: Reference, keys) -> np.ndarray:
        """``−log2`` of each path's quantised model probability (the code's target; length ≤ ⌈·⌉ + 1)."""
        return self._encoder(messages, reference, keys).cost

    def decode(self, codewords, reference: Reference, keys) -> EncodedPaths:
        keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
        if len(codewords) != keys.size:
            raise DecodeError(f"{len(codewords)} codewords for {keys.size} keys")
        for c in codewords:
            if not isinstance(c, tuple) or any(isinstance(v, bool) or v not in (0, 1) for v in c):
                raise DecodeError("a codeword is a tuple of 0/1")
        dec = _Decoder(codewords)
        depth = np.zeros(keys.size, dtype=np.int64)
        cols: list[tuple[np.ndarray, np.ndarray]] = []  # (clients, direction bits) per step

        def decide(step, active, u, mass):
            stop = dec.pull(active, quantize(self.model.p_stop(mass)))
            right = np.zeros(active.size, dtype=bool)
            go = ~stop
            right[go] = dec.pull(active[go], quantize(self.model.p_right(u[go])))
            depth[active[stop]] = step
            cols.append((active[go], right[go]))
            return stop, right

        try:
            self._walk(reference, keys, decide)
        except IncompatibleError as exc:
            raise DecodeError(f"codeword leads outside float64 precision: {exc}") from exc
        bits = np.zeros((keys.size, len(cols)), dtype=np.int8)
        for step, (who, right) in enumerate(cols):
            bits[who, step] = right
        msgs = EncodedPaths([tuple(bits[c, : depth[c]].tolist()) for c in range(keys.size)], depth + 1)
        if self.encode(msgs, reference, keys) != list(codewords):
            raise DecodeError("a codeword is not the canonical code of the path it decodes to")
        return msgs
