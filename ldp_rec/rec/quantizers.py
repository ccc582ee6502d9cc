"""Dithered (universal) quantisation and the layered quantiser with exact Gaussian/Laplace error.

**Dithered quantisation** (Agustsson & Theis 2020, "Universally quantized neural compression", §2):
with a shared dither ``U ~ U(−½, ½)``, ``K = round(y/Δ + U)`` and ``ŷ = Δ(K − U)``; then
``ŷ − y ~ Uniform(−Δ/2, Δ/2)`` exactly, independent of y.

**Layered quantiser** (Hegazy & Li 2022, "Randomized quantization with exact error distribution",
§III; Hegazy, Leluc, Li & Dieuleveut 2024): a symmetric unimodal noise density f is a mixture of
uniforms on its superlevel intervals ``L_h = [m − w(h), m + w(h)]``, ``f(z) = ∫ 1[z ∈ L_h] dh``. A shared
height ``H`` with density ``|L_h|`` (drawn as ``H = V·f(Z')``, ``Z' ~ f``, ``V ~ U(0, 1)``) picks
the interval; dithered quantisation with step ``Δ = 2w(H)`` and shift ``m`` gives error ``~ f`` exactly:

* Gaussian N(0, σ²): ``w(H) = sqrt(Z'² + 2σ²E)``, ``E = −log V ~ Exp(1)`` (so ``w ~ σ·χ_3``);
* Laplace(0, β): ``w(H) = |Z'| + βE`` (so ``w ~ Gamma(2, β)``).

Shared randomness per client comes from the uniform stream of its key (candidate 0, width 3·d:
dither, then the two layer uniforms); derive those keys in their own domain (for example
``derive_key(..., domain="quantizer")``) so they never coincide with a REC candidate stream.

Privacy: the server knows the dither and the layer, so it learns ``y ∈ [ŷ − w, ŷ + w]`` exactly;
neither quantiser is LDP on its own (transcript privacy ``unbounded``). The exact error law
protects ``y`` only against parties who do not hold the shared randomness (references.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from ..errors import DecodeError, InputError, ParameterError
from ..privacy.events import TranscriptPrivacy
from . import randomness

_NO_LDP = TranscriptPrivacy(
    kind="unbounded",
    note="dithered/layered quantisation: the server knows the shared dither, so y is pinned to an interval",
)


def _as_2d(y, name: str = "y") -> tuple[np.ndarray, bool]:
    arr = np.asarray(y)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name} must be a real array")
    single = arr.ndim == 1
    arr = np.atleast_2d(arr).astype(np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must have shape (d,) or (n, d), got {np.shape(y)}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or Inf")
    return arr, single


def shared_uniforms(keys, dim: int, width: int = 3) -> np.ndarray:
    """``(n, width, dim)`` shared uniforms in (0, 1) from candidate 0 of each key's uniform stream."""
    u = randomness.block(np.asarray(keys, dtype=np.uint64).reshape(-1), 0, 1, width * dim, "uniform")
    return u[:, 0, :].reshape(-1, width, dim)


def dithered_encode(y, dither, step) -> np.ndarray:
    """``K = round(y/Δ + U)`` (int64), elementwise; ``dither`` in [−½, ½), ``step`` > 0 broadcastable."""
    return np.rint(np.asarray(y) / step + dither).astype(np.int64)


def dithered_decode(K, dither, step, shift=0.0) -> np.ndarray:
    """``ŷ = Δ(K − U) + shift``."""
    return step * (np.asarray(K, dtype=np.float64) - dither) + shift


def index_entropy_bits(K) -> float:
    """Plug-in entropy (bits) of the integers ``K`` pooled over all entries: what an entropy coder
    with a matched model spends per integer."""
    _, counts = np.unique(np.asarray(K).ravel(), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def elias_gamma_bits(K) -> np.ndarray:
    """Model-free cost: Elias-γ of the zig-zag map ``K ↦ 2|K| − [K < 0] + 1``, per integer."""
    from ..coding.codes import EliasGamma, zigzag

    return EliasGamma().lengths(zigzag(np.ravel(K)) + 1).reshape(np.shape(K))


class _SharedDither:
    """Encode/decode shared by the quantisers: a subclass gives the shared ``(dither U, step Δ)``
    of every coordinate (:meth:`grid`); K = round(y/Δ + U), ŷ = Δ(K − U)."""

    def grid(self, keys, dim: int) -> tuple[np.ndarray, np.ndarray | float]:
        raise NotImplementedError

    def encode(self, y, keys) -> np.ndarray:
        Y, single = _as_2d(y)
        U, step = self.grid(keys, Y.shape[1])
        K = dithered_encode(Y, U, step)
        return K[0] if single else K

    def decode(self, K, keys) -> np.ndarray:
        Kt = np.asarray(K)
        if Kt.dtype.kind not in "iu":
            raise DecodeError("quantiser messages must be integers")
        K2 = np.atleast_2d(Kt)
        U, step = self.grid(keys, K2.shape[1])
        out = dithered_decode(K2, U, step)
        return out[0] if Kt.ndim == 1 else out


@dataclass(frozen=True)
class DitheredQuantizer(_SharedDither):
    """Subtractive dithered quantiser with step Δ; error exactly Uniform(−Δ/2, Δ/2)."""

    step: float
    transcript: ClassVar[TranscriptPrivacy] = _NO_LDP

    def __post_init__(self) -> None:
        if not (np.isfinite(self.step) and self.step > 0):
            raise ParameterError(f"step must be finite and > 0, got {self.step!r}")

    def dither(self, keys, dim: int) -> np.ndarray:
        return shared_uniforms(keys, dim, 1)[:, 0, :] - 0.5

    def grid(self, keys, dim: int):
        return self.dither(keys, dim), self.step


@dataclass(frozen=True)
class LayeredQuantizer(_SharedDither):
    """Layered quantiser with exact ``noise`` ∈ {"gaussian", "laplace"} error of ``scale``
    (σ for Gaussian, β for Laplace), vectorised over clients and coordinates."""

    noise: str
    scale: float
    transcript: ClassVar[TranscriptPrivacy] = _NO_LDP

    def __post_init__(self) -> None:
        if self.noise not in ("gaussian", "laplace"):
            raise ParameterError(f"noise must be 'gaussian' or 'laplace', got {self.noise!r}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ParameterError(f"scale must be finite and > 0, got {self.scale!r}")

    def layer(self, keys, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Shared ``(dither U, half-width w)``, each ``(n, dim)``."""
        u = shared_uniforms(keys, dim, 3)
        E = -np.log(u[:, 2])
        if self.noise == "gaussian":
            z = self.scale * special.ndtri(u[:, 1])
            w = np.sqrt(z * z + 2 * self.scale**2 * E)
        else:
            z = np.where(u[:, 1] < 0.5, np.log(2 * u[:, 1]), -np.log(2 * (1 - u[:, 1])))
            w = self.scale * (np.abs(z) + E)
        return u[:, 0] - 0.5, w

    def grid(self, keys, dim: int):
        U, w = self.layer(keys, dim)
        return U, 2 * w

    def error_variance(self) -> float:
        """Per-coordinate error variance: σ² (Gaussian) or 2β² (Laplace)."""
        return self.scale**2 if self.noise == "gaussian" else 2 * self.scale**2
