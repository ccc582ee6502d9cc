"""Codec for mechanisms that are their own code (SQKR, RRSC): the b-bit message is sent as is."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DecodeError
from ..privacy.events import PrivacyEvent, PureEvent
from ..rec import randomness
from .core import Codec


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

    def _encode_bodies(self, X, *, run_seed, round, clients, rng):
        from ..coding.bits import pack_fixed

        bits = int(self.mechanism.message_bits)
        msgs = np.asarray(self.mechanism.encode(X, rng=rng, keys=self._keys(run_seed, round, clients)), dtype=np.uint64)
        return [pack_fixed(msgs[i : i + 1], bits) for i in range(X.shape[0])], np.full(X.shape[0], bits), 1

    def _decode_bodies(self, frames, *, run_seed, round, clients):
        from ..coding.bits import unpack_fixed

        bits = int(self.mechanism.message_bits)
        msgs = np.empty(len(frames), dtype=np.int64)
        for i, f in enumerate(frames):
            if f.nbits != bits or f.chunks != 1:
                raise DecodeError(f"native payload of {f.nbits} bits, expected {bits}")
            msgs[i] = int(unpack_fixed(f.body, bits, 1)[0])
        return np.asarray(self.mechanism.decode(msgs, keys=self._keys(run_seed, round, clients)), dtype=np.float64)
