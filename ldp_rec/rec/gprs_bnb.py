"""Branch-and-bound GPRS for 1-D unimodal ratios (Flamich, NeurIPS 2023, §3.2, Alg. 3,
"split-on-sample" GPRS).

The same Poisson process and σ as global GPRS (:mod:`.gprs`), searched greedily. Keep an interval
``B`` (initially the support of P), ``T_0 = 0``. At step n:

    T_n = T_{n−1} + E_n / P(B),        E_n ~ Exp(1)      (shared, time stream)
    X_n = F^{-1}(F(a) + U_n (F(b) − F(a)))  ~ P|_B     (shared uniform U_n of the client's stream)
    accept if T_n ≤ σ(r(X_n)); otherwise B ← B ∩ (X_n, ∞) if X_n ≤ mode (bit 1), else B ∩ (−∞, X_n) (bit 0).

Points on the discarded side have ``r ≤ r(X_n)``, hence ``σ(r) ≤ σ(r(X_n)) < T_n``: none of them
could be accepted later, so the output is exactly Q. The message is the search path
(``Message.path``); ``E|path| = O(D_KL)``. The decoder replays the path with the shared uniforms
``U_1 … U_{|path|+1}`` alone: it needs neither the times nor the mode.

Message bits: :class:`~.gprs_bnb_code.PathCode` codes the path arithmetically under a
decoder-known model (direction ``P[right] = 1 − U_n``, stop probability from ``P(B_n)`` and the
public I), about ``I + 3`` bits at I = 12 (``ldp-rec bench rec``). :func:`path_bits` (Elias-γ of
``|path| + 1`` followed by the path bits) is the model-free prefix code it replaces (~``I + 11``).

Transcript privacy: not established (references.md §4). ``rng`` is unused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import DecodeError, IncompatibleError, ParameterError
from ..mechanisms.base import Reference
from ..privacy.events import TranscriptPrivacy
from . import randomness
from .base import EncodedPaths, PathSimulator, Target
from .gprs import NOT_ESTABLISHED, sigma_for, time_keys
from .unimodal import interval_ops, sample_interval


def _uniforms(keys, step: int) -> np.ndarray:
    k = np.asarray(keys, dtype=np.uint64)
    return randomness.gather(k, np.full(k.size, step), 1, "uniform")[:, 0]


def path_bits(depth) -> np.ndarray:
    """Bits of Elias-γ(|path| + 1) + |path|: ``2⌊log2(L+1)⌋ + 1 + L``."""
    L = np.asarray(depth, dtype=np.int64)
    return 2 * np.floor(np.log2(L + 1)).astype(np.int64) + 1 + L


def depth_center(info_bits: float) -> int:
    """A decoder-known centre for the path length of a channel with I = ``info_bits`` (public):
    ``round(I + log2(I + 1) − 1/2)``, the E|path| = I + O(log I) scaling of Flamich (2023, Thm 3.3)."""
    return max(0, int(round(info_bits + math.log2(info_bits + 1.0) - 0.5)))


def centered_path_bits(depth, center: int) -> np.ndarray:
    """Bits of Elias-γ(zigzag(|path| − center) + 1) + |path|: cheaper than :func:`path_bits` when
    the decoder knows where the path lengths concentrate (``center`` from :func:`depth_center`)."""
    from ..coding.codes import EliasGamma, zigzag

    L = np.asarray(depth, dtype=np.int64)
    return EliasGamma().lengths(zigzag(L - int(center)) + 1) + L


def _as_paths(paths) -> list:
    """Paths from :class:`EncodedPaths`, a list of tuples, or path messages."""
    if isinstance(paths, EncodedPaths):
        return list(paths.paths)
    return [getattr(p, "path", p) if not isinstance(p, tuple) else p for p in paths]


@dataclass(frozen=True)
class BranchAndBoundGPRS(PathSimulator):
    """Split-on-sample GPRS, vectorised over clients (one numpy pass per search step).

    Targets need ``mode()``, ``log_ratio(z)`` for ``z`` of shape ``(n, 1)``, a 1-D reference with
    ``cdf/sf/ppf/isf`` and a σ (:func:`~.gprs.sigma_for`). ``max_depth`` bounds the search (and the
    path lengths a decoder accepts).
    """

    max_depth: int = 2048

    name: ClassVar[str] = "gprs-bnb"
    exact: ClassVar[bool] = True
    transcript: ClassVar[TranscriptPrivacy] = NOT_ESTABLISHED
    needs_bounded_ratio: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if isinstance(self.max_depth, bool) or int(self.max_depth) < 1:
            raise ParameterError("max_depth must be >= 1")

    def encode(self, target: Target, *, rng=None, sigma=None) -> EncodedPaths:
        return self.encode_with_samples(target, sigma=sigma)[0]

    def encode_with_samples(self, target: Target, *, sigma=None) -> tuple[EncodedPaths, np.ndarray]:
        """Paths and the encoder's own samples ``(n, 1)`` (what the decoder must reproduce)."""
        if not (hasattr(target, "mode") and hasattr(target, "log_ratio")):
            raise IncompatibleError(f"{type(target).__name__} is not a 1-D unimodal pair (needs mode, log_ratio)")
        if not np.isfinite(target.bounds[1]):
            raise IncompatibleError("branch-and-bound GPRS needs a ratio bounded above")
        ops = interval_ops(target.reference)
        sigma = sigma_for(target) if sigma is None else sigma
        n = target.n
        keys, tkeys = target.keys, time_keys(target.keys)
        mode = np.asarray(target.mode(), dtype=np.float64)
        a, b = np.full(n, -np.inf), np.full(n, np.inf)
        T = np.zeros(n)
        x_all = np.zeros(n)
        depth = np.full(n, -1, dtype=np.int64)
        bits = np.zeros((n, 0), dtype=np.int8)
        active = np.arange(n)
        for step in range(int(self.max_depth) + 1):
            x, mass = sample_interval(ops, a[active], b[active], _uniforms(keys[active], step))
            T[active] += -np.log(_uniforms(tkeys[active], step)) / mass
            x_all[active] = x
            lr = target.log_ratio(x_all[:, None])[active, 0]
            acc = T[active] <= sigma(lr[:, None], active)[:, 0]
            depth[active[acc]] = step
            rej = active[~acc]
            if rej.size == 0:
                break
            if step == self.max_depth:
                raise IncompatibleError(f"branch-and-bound GPRS exceeded max_depth={self.max_depth}")
            go_right = x_all[rej] <= mode[rej]
            col = np.zeros((n, 1), dtype=np.int8)
            col[rej, 0] = go_right
            bits = np.concatenate([bits, col], axis=1)
            a[rej] = np.where(go_right, x_all[rej], a[rej])
            b[rej] = np.where(go_right, b[rej], x_all[rej])
            active = rej
        paths = [tuple(bits[c, : depth[c]].tolist()) for c in range(n)]
        return EncodedPaths(paths, depth + 1), x_all[:, None]

    def decode(self, paths, reference: Reference, keys) -> np.ndarray:
        """Replay each path (a tuple of 0/1; :class:`EncodedPaths` or path messages are accepted)."""
        ops = interval_ops(reference)
        keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
        paths = _as_paths(paths)
        if len(paths) != keys.size:
            raise DecodeError(f"{len(paths)} paths for {keys.size} keys")
        depth = np.empty(keys.size, dtype=np.int64)
        for c, p in enumerate(paths):
            if p is None or not isinstance(p, tuple):
                raise DecodeError("a branch-and-bound GPRS message carries a path (tuple of 0/1)")
            if len(p) > self.max_depth:
                raise DecodeError(f"path of length {len(p)} exceeds max_depth={self.max_depth}")
            depth[c] = len(p)
        L = int(depth.max(initial=0))
        bits = np.zeros((keys.size, L), dtype=np.int8)
        for c, p in enumerate(paths):
            if any(isinstance(v, bool) or v not in (0, 1) for v in p):
                raise DecodeError("path entries must be 0 or 1")
            bits[c, : len(p)] = p
        a, b = np.full(keys.size, -np.inf), np.full(keys.size, np.inf)
        out = np.empty(keys.size)
        active = np.arange(keys.size)
        for step in range(L + 1):
            x, _ = sample_interval(ops, a[active], b[active], _uniforms(keys[active], step))
            done = depth[active] == step
            out[active[done]] = x[done]
            cont, xc = active[~done], x[~done]
            if cont.size == 0:
                break
            right = bits[cont, step] == 1
            a[cont] = np.where(right, xc, a[cont])
            b[cont] = np.where(right, b[cont], xc)
            active = cont
        return out[:, None]

    def expected_codelength(self, kl_bits: float) -> float:
        """``D_KL + log2(D_KL + 1)`` bits (Flamich 2023, Thm 3.3, without its O(1) constant)."""
        return float(kl_bits) + math.log2(float(kl_bits) + 1.0)
