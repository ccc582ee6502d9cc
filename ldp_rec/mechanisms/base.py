"""The mechanism interface shared by every ε-LDP randomiser and every channel simulator.

A mechanism ``Q(·|x)`` maps a client's vector to a privatised, *unbiased* estimate. Mechanisms
that REC can compress also expose a density ratio against a public reference ``P``:

    r_x(z) = dQ(·|x)/dP(z) ∈ [c_min, c_max],  log r_x = :meth:`RatioMechanism.log_ratio`,

with ``c_max / c_min ≤ e^ε`` for pure ε-LDP. The channel simulators in :mod:`ldp_rec.rec` only
use ``reference``, ``log_ratio``/``log_ratio_bounds`` and, on the decoder side, ``unbias``.

Conventions (house rules): parameters are frozen dataclass fields validated in
``__post_init__`` (raising :class:`~ldp_rec.errors.ParameterError`); data is positional and
options keyword-only; randomness comes in as ``rng`` and is normalised with
``np.random.default_rng(rng)``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from .._validation import as_batch, check_epsilon
from ..errors import ParameterError


OUTPUT_TAIL = 1e-12
"""Probability that an honest output exceeds :meth:`Mechanism.output_norm_bound`."""


@dataclass(frozen=True)
class PrivacyGuarantee:
    """The guarantee of one use of a mechanism: (ε, δ)-LDP, pure when δ = 0."""

    epsilon: float
    delta: float = 0.0

    @property
    def pure(self) -> bool:
        return self.delta == 0.0


class Reference(abc.ABC):
    """A public reference distribution ``P`` on R^dim that both ends can sample.

    Shared candidates are built from base variates of a :class:`~ldp_rec.rec.randomness.CandidateStream`
    (``base`` = "normal" or "uniform", ``base_width`` of them per candidate) through
    :meth:`transform`, so a decoder that regenerates the base variates of candidate K obtains
    exactly the candidate the encoder saw.
    """

    dim: int
    base: ClassVar[Literal["normal", "uniform"]] = "normal"

    @property
    def base_width(self) -> int:
        return self.dim

    @abc.abstractmethod
    def transform(self, base: np.ndarray) -> np.ndarray:
        """Map base variates ``(..., base_width)`` to samples ``(..., dim)`` of P."""

    def sample(self, n: int, *, rng=None) -> np.ndarray:
        """``n`` i.i.d. samples of P, shape ``(n, dim)``."""
        rng = np.random.default_rng(rng)
        if self.base == "normal":
            b = rng.standard_normal((n, self.base_width))
        else:
            b = rng.random((n, self.base_width))
        return self.transform(b)

    def logpdf(self, z: np.ndarray) -> np.ndarray:  # optional, used by 1-D pairs and tests
        raise NotImplementedError


@dataclass(frozen=True)
class GaussianReference(Reference):
    """P = N(0, scale² I_dim)."""

    dim: int
    scale: float = 1.0

    def transform(self, base: np.ndarray) -> np.ndarray:
        return base * self.scale if self.scale != 1.0 else base

    def logpdf(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return -0.5 * np.sum((z / self.scale) ** 2, axis=-1) - self.dim * (np.log(self.scale) + 0.5 * np.log(2 * np.pi))


@dataclass(frozen=True)
class SphereReference(Reference):
    """P = uniform distribution on the unit sphere S^{dim-1} (normalised Gaussians)."""

    dim: int

    def transform(self, base: np.ndarray) -> np.ndarray:
        base = np.asarray(base, dtype=np.float64)
        return base / np.linalg.norm(base, axis=-1, keepdims=True)


def round_to_sphere(X: np.ndarray, clip: float, rng: np.random.Generator) -> np.ndarray:
    """Clip rows of ``X`` (n, d) to L2 norm C, then round them unbiasedly onto the unit sphere.

    With ``r = min(‖x‖, C)/C``, output ``u = +x/‖x‖`` with probability ``(1 + r)/2`` and ``−x/‖x‖``
    otherwise (x = 0: a uniform random direction), so ``E[u] = clip(x)/C``: the rounding step of
    Duchi, Jordan & Wainwright (2013, Sec. 4.2.3; JASA 2018 Sec. 4.2). Norms are overflow-safe."""
    n, d = X.shape
    scale = np.max(np.abs(X), axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    norms = scale * np.linalg.norm(X / safe[:, None], axis=1)
    zero = norms == 0
    direction = X / np.where(zero, 1.0, norms)[:, None]
    if np.any(zero):
        g = rng.standard_normal((int(zero.sum()), d))
        direction[zero] = g / np.linalg.norm(g, axis=1, keepdims=True)
    r = np.minimum(norms / float(clip), 1.0)
    sign = np.where(rng.random(n) < 0.5 * (1.0 + r), 1.0, -1.0)
    return sign[:, None] * direction


class Mechanism(abc.ABC):
    """An LDP randomiser for vectors of dimension ``dim`` (subclasses are frozen dataclasses).

    Subclasses define ``epsilon`` and ``dim`` fields, ``name`` (the command-line name),
    :attr:`guarantee`, :meth:`privatize` and :meth:`expected_mse`.
    """

    name: ClassVar[str]
    epsilon: float
    dim: int

    def _check_common(self) -> None:
        check_epsilon(self.epsilon)
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            raise ParameterError(f"dim must be a positive integer, got {self.dim!r}")

    @property
    def guarantee(self) -> PrivacyGuarantee:
        """The exact LDP guarantee of one use: pure ε unless a subclass says otherwise."""
        return PrivacyGuarantee(float(self.epsilon))

    def check_input(self, x) -> tuple[np.ndarray, bool]:
        """Validate ``x`` (``(d,)`` or ``(n, d)``, finite); returns ``(X, single)``."""
        return as_batch(x, self.dim)

    @abc.abstractmethod
    def privatize(self, x, *, rng=None) -> np.ndarray:
        """Unbiased privatised estimate of ``x``: same shape as ``x``."""

    @abc.abstractmethod
    def expected_mse(self) -> float:
        """Closed-form per-user E‖Z − x‖² for a unit-norm input (or the worst case over inputs)."""

    def output_norm_bound(self) -> float:
        """An L2 bound on the unbiased output Z that an honest client's output exceeds with
        probability below :data:`OUTPUT_TAIL` (= 1e-12), for every input.

        The server rejects a decoded float estimate beyond it (a malicious node cannot move the
        mean arbitrarily far; :meth:`ldp_rec.codec.core.Codec.decode`). Mechanisms with a bounded
        output return their exact maximum norm."""
        raise NotImplementedError(f"{type(self).__name__} states no output bound")


class RatioMechanism(Mechanism):
    """A mechanism with a density ratio against a public reference: what REC compresses.

    ``privatize(x) = unbias(sample(prepare(x)))``, where

    * :meth:`prepare` (private, randomised) maps a raw input to the mechanism's input domain,
      for example clipping and the unbiased randomised rounding of a short vector onto the sphere;
    * :meth:`sample` draws ``V ~ Q(·|u)`` on the support of P;
    * :meth:`log_ratio` evaluates ``log dQ(·|u)/dP(v)``;
    * :meth:`unbias` (decoder side, knows only V) maps V to an unbiased estimate of x.
    """

    @property
    @abc.abstractmethod
    def reference(self) -> Reference:
        """The public reference distribution P."""

    def prepare(self, x, *, rng=None) -> np.ndarray:
        """Map validated raw inputs ``(n, d)`` into the mechanism's input domain (default: identity)."""
        X, _ = self.check_input(x)
        return X

    @abc.abstractmethod
    def sample(self, u: np.ndarray, *, rng=None) -> np.ndarray:
        """Draw ``V ~ Q(·|u)`` for prepared inputs ``u`` of shape ``(n, d)``: shape ``(n, dim_P)``."""

    @abc.abstractmethod
    def log_ratio(self, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``log dQ(·|u)/dP(z)``, vectorised: ``z`` of shape ``(..., m, d)`` or ``(m, d)`` against ``u``
        of shape ``(..., d)``; returns ``(..., m)``."""

    @abc.abstractmethod
    def log_ratio_bounds(self) -> tuple[float, float]:
        """``(log c_min, log c_max)`` over all inputs and outputs (±inf when unbounded)."""

    @abc.abstractmethod
    def unbias(self, v: np.ndarray) -> np.ndarray:
        """Decoder-side unbiasing of samples ``V`` (``(n, dim_P)``) into estimates of x (``(n, d)``)."""

    def privatize(self, x, *, rng=None) -> np.ndarray:
        rng = np.random.default_rng(rng)
        X, single = self.check_input(x)
        est = self.unbias(self.sample(self.prepare(X, rng=rng), rng=rng))
        return est[0] if single else est

    def tuned_for_band(self, *, epsilon: float, bits: int) -> "RatioMechanism":
        """The mechanism to run behind modified MRC whose band makes the transcript ``epsilon``-LDP with
        ``N = 2^bits`` candidates (Shah et al. 2022, Sec. 4: the band needs only ``log c_max ≤ ε``, so the
        mechanism's own spread may exceed ε). Default: ``self`` (no tuning known). A property of the
        mechanism object, so a mechanism passed by name and an equal instance give the same codec."""
        return self
