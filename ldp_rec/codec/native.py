"""Codec for mechanisms that are their own code (SQKR, RRSC): the b-bit message is sent as is."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..coding.codes import FixedLength
from ..privacy.events import PrivacyEvent, PureEvent
from ..rec import randomness
from .core import Codec, Fields


@dataclass
class NativeCodec(Codec):
    """Sends the mechanism's own message (``mechanism.encode``/``decode``, ``message_bits``); the
    shared randomness (rotations, sampled coordinates) comes from keys derived per client."""

    mechanism: object
    codec_id: int = field(default=8, init=False)

    def __post_init__(self) -> None:
        self.dim = self.mechanism.dim
        self.name = "native"

    def transcript_event(self) -> PrivacyEvent:
        return PureEvent(float(self.mechanism.guarantee.epsilon))

    def _describe(self) -> tuple:
        return (*super()._describe(), repr(self.mechanism))

    def output_norm_bound(self) -> float:
        return float(self.mechanism.output_norm_bound())

    def _keys(self, run_seed, round, clients):
        return randomness.derive_keys(run_seed, round, clients, 0, domain=f"native:{self.mechanism.name}")

    def max_body_bits(self) -> int:
        return int(self.mechanism.message_bits)

    def _encode_fields(self, X, *, run_seed, round, clients, rng):
        bits = int(self.mechanism.message_bits)
        msgs = np.asarray(self.mechanism.encode(X, rng=rng, keys=self._keys(run_seed, round, clients)), dtype=np.uint64)
        return Fields.uniform(msgs, bits, X.shape[0])

    def _decode_rows(self, buf, starts, nbits, *, run_seed, round, clients):
        bits = int(self.mechanism.message_bits)
        errors = [None if nb == bits else f"native payload of {nb} bits, expected {bits}" for nb in nbits.tolist()]
        est = np.zeros((starts.size, self.dim))
        live = np.flatnonzero(nbits == bits)
        if live.size:
            vals, _ = FixedLength(bits).decode_rows(buf, starts[live], nbits[live], 1)
            msgs = vals[:, 0] - 1
            est[live] = np.asarray(self.mechanism.decode(msgs, keys=self._keys(run_seed, round, clients[live])),
                                   dtype=np.float64)
        return est, errors
