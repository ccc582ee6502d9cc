"""Cap mechanisms: ε-LDP randomisers whose density ratio is a step in ⟨v, u⟩.

A cap mechanism over a public reference ``P`` takes a unit input ``u`` and outputs

    V ~ P( · | t ≥ γ)  with probability p,   V ~ P( · | t < γ)  otherwise,     t = ⟨v, u⟩

(on the sphere t is taken of the normalised v). With ``q = P[t ≥ γ]`` (:attr:`cap_mass`) the density
ratio against ``P`` is the two-valued step

    r_u(v) = p/q            if t ≥ γ,
    r_u(v) = (1−p)/(1−q)    if t < γ,

so the mechanism is ε-LDP iff ``log[p(1−q)/((1−p)q)] ≤ ε`` (for p > q). Writing
``a = E_P[t | t ≥ γ]`` and ``b = E_P[t | t < γ]`` (:attr:`cap_means`), ``E[V | u] = m u`` with
``m = p a + (1−p) b`` (the orthogonal part of V is isotropic around u), hence ``Z = C V / m`` is
unbiased for ``C u``.

Members: PrivUnit2 (Bhowmick et al. 2018, Alg. 1) and Duchi et al.'s L2 mechanism (2013, Sec. 4.2.3)
over the uniform sphere; PrivUnitG (Asi, Feldman, Talwar 2022, Sec. 4) over N(0, I_d).

Tightness fact used by all parameter choices: for a fixed γ the best p makes the constraint tight,
``p = e^ε q / (e^ε q + 1 − q)``, and then ``p/q − (1−p)/(1−q) = (e^ε − 1)/(1 + (e^ε − 1) q)``. Since
``E_P[t 1{t ≥ γ}]`` is even in γ for both references
(sphere: ``c(γ) = (1−γ²)^{(d−1)/2} / ((d−1) B((d−1)/2, 1/2))``; Gaussian: ``φ(γ)``) and
``q(−γ) = 1 − q(γ) > q(γ)`` for γ > 0, every γ < 0 is beaten by −γ: optimal caps have γ ≥ 0.

This module also holds the exact numerics of the sphere projection ``t = ⟨V, u⟩`` for V uniform on
S^{d−1}: density ``(1−t²)^{(d−3)/2} / B((d−1)/2, 1/2)`` on [−1, 1], i.e. ``t² ~ Beta(1/2, (d−1)/2)``
with a symmetric sign, so ``P[t ≥ γ] = ½ I_{1−γ²}((d−1)/2, ½)`` for γ ≥ 0 (regularised incomplete beta).
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import numpy as np
from scipy import special

from .._validation import check_positive_int, check_probability, check_positive_float
from ..errors import InputError, ParameterError
from .base import RatioMechanism, SphereReference, round_to_sphere

_SPREAD_SLACK = 1e-9  # rounding allowance in the privacy-constraint check of explicit overrides


# --------------------------------------------------------------------------- shared numerics


def tight_cap_probability(q, epsilon: float):
    """``p = e^ε q / (e^ε q + 1 − q)`` (the constraint made tight), computed as ``expit(ε + logit q)``."""
    q = np.asarray(q, dtype=np.float64)
    return special.expit(epsilon + np.log(q) - np.log1p(-q))


def tight_cap_mass(p, epsilon: float):
    """Inverse of :func:`tight_cap_probability`: ``q = expit(logit p − ε)``."""
    p = np.asarray(p, dtype=np.float64)
    return special.expit(np.log(p) - np.log1p(-p) - epsilon)


def sphere_cap_mass(gamma, dim: int):
    """``P[t ≥ γ]`` for t = ⟨V, u⟩, V uniform on S^{dim−1}: ``½ I_{1−γ²}((d−1)/2, ½)`` for γ ≥ 0 and
    ``1 − P[t ≥ −γ]`` for γ < 0 (Bhowmick et al. 2018, Alg. 1). Uses ``½ Ī_{γ²}(½, (d−1)/2)`` (the
    complementary form, exact for small γ) when γ² ≤ ½."""
    a = 0.5 * (dim - 1)
    g = np.abs(np.asarray(gamma, dtype=np.float64))
    g2 = g * g
    upper = np.where(g2 <= 0.5, 0.5 * special.betaincc(0.5, a, g2), 0.5 * special.betainc(a, 0.5, (1 - g) * (1 + g)))
    return np.where(np.asarray(gamma) >= 0, upper, 1.0 - upper)


def sphere_projection_isf(s, dim: int):
    """Inverse survival function of t = ⟨V, u⟩: the t in [−1, 1] with ``P[t' ≥ t] = s``, for s in [0, 1].

    For s ≤ ½, ``t² = Ī⁻¹_{2s}(½, (d−1)/2)`` (``scipy.special.betainccinv``); for s > ½ by symmetry
    ``t = −isf(1 − s)``. Exact up to floating point: used to draw t from its conditional laws."""
    a = 0.5 * (dim - 1)
    s = np.asarray(s, dtype=np.float64)
    lower = s > 0.5
    r = np.where(lower, 1.0 - s, s)
    t = np.sqrt(special.betainccinv(0.5, a, 2.0 * r))
    return np.where(lower, -t, t)


def log_beta_half(a: float) -> float:
    """``log B(a, ½) = log Γ(½) − log[Γ(a + ½)/Γ(a)]``, accurate to ~1e-15 for every a > 0.

    ``scipy.special.betaln(a, ½)`` loses ~1e-11 (absolute) for a ~ 5·10^4, because it differences two
    large log-Gammas. For a ≥ 200 we use the asymptotic series
    Γ(a + ½)/Γ(a) = √a (1 − 1/(8a) + 1/(128a²) + 5/(1024a³) − 21/(32768a⁴) + O(a⁻⁵))."""
    a = float(a)
    if a < 200:
        log_ratio = special.gammaln(a + 0.5) - special.gammaln(a)
    else:
        series = -1 / (8 * a) + 1 / (128 * a**2) + 5 / (1024 * a**3) - 21 / (32768 * a**4)
        log_ratio = 0.5 * math.log(a) + math.log1p(series)
    return 0.5 * math.log(math.pi) - log_ratio


def sphere_log_partial_mean(gamma, dim: int):
    """``log c(γ)`` with ``c(γ) = E_P[t 1{t ≥ γ}] = (1−γ²)^{(d−1)/2} / ((d−1) B((d−1)/2, ½))``.

    Derivation: ∫_γ^1 t (1−t²)^{(d−3)/2} dt = (1−γ²)^{(d−1)/2}/(d−1), divided by the normaliser
    B((d−1)/2, ½). In log space (:func:`log_beta_half`, log1p), so it is accurate for d up to 10^5 and beyond."""
    a = 0.5 * (dim - 1)
    g = np.asarray(gamma, dtype=np.float64)
    return a * np.log1p(-g * g) - math.log(dim - 1) - log_beta_half(a)


def _spread(p: float, q: float) -> float:
    """``log(p/q) − log((1−p)/(1−q))``: the privacy loss of the cap ratio."""
    return (math.log(p) - math.log(q)) - (math.log1p(-p) - math.log1p(-q))


# --------------------------------------------------------------------------- base class


class CapMechanism(RatioMechanism):
    """Abstract base of the cap mechanisms (see module doc). Subclasses are frozen dataclasses with
    fields ``epsilon``, ``dim``, ``clip`` (and optional overrides) and call :meth:`_init_cap` from
    ``__post_init__``; they implement the reference-specific hooks below."""

    epsilon: float
    dim: int
    clip: float
    min_dim: ClassVar[int] = 1

    # ---- hooks
    @abc.abstractmethod
    def _default_parameters(self) -> tuple[float, float]:
        """(p, γ) when neither is overridden (p is then recomputed tight from the forward q(γ))."""

    @abc.abstractmethod
    def _cap_mass(self, gamma: float) -> float:
        """q = P[t ≥ γ] under the reference."""

    @abc.abstractmethod
    def _threshold(self, q: float) -> float:
        """γ with P[t ≥ γ] = q."""

    @abc.abstractmethod
    def _cap_means(self) -> tuple[float, float]:
        """(E_P[t | t ≥ γ], E_P[t | t < γ])."""

    @abc.abstractmethod
    def _draw_projection(self, in_cap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """t = ⟨V, u⟩ for each row: from the conditional law on the cap where ``in_cap``, else off it."""

    @abc.abstractmethod
    def _assemble(self, u: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """V from its projection t on u and an isotropic part orthogonal to u."""

    @abc.abstractmethod
    def _second_moment(self) -> float:
        """E‖V‖² under the mechanism (any unit u)."""

    @abc.abstractmethod
    def _norm_quantile(self, tail: float) -> float:
        """A bound on ‖V‖ that V exceeds with probability at most ``tail`` (any unit u)."""

    def output_norm_bound(self) -> float:
        """``C·v/m`` with ``P[‖V‖ > v] ≤ 1e-12``: the output is ``Z = C V/m`` (:meth:`unbias`)."""
        from .base import OUTPUT_TAIL

        return float(self.clip) * self._norm_quantile(OUTPUT_TAIL) / float(self.m())

    # ---- set-up
    def _init_cap(self, p_override=None, gamma_override=None) -> None:
        self._check_common()
        check_positive_int(self.dim, "dim", minimum=self.min_dim)
        check_positive_float(self.clip, "clip")
        eps = float(self.epsilon)
        if p_override is None:
            # p is the tight value for γ (recomputed from the forward q), nudged down by a few ulps
            # where rounding would otherwise leave the spread a hair above ε
            gamma = self._default_parameters()[1] if gamma_override is None else self._check_gamma(gamma_override)
            q = float(self._cap_mass(gamma))
            p = float(tight_cap_probability(q, eps))
            shave = 0.0
            while 0 < q < 1 and 0 < p < 1 and _spread(p, q) > eps and shave < 1e-9 * eps:
                shave = max(2 * shave, 4 * (_spread(p, q) - eps), 1e-15 * eps)
                p = float(tight_cap_probability(q, eps - shave))
        else:
            p = check_probability(p_override, "p")
            if gamma_override is None:
                gamma = float(self._threshold(float(tight_cap_mass(p, eps))))
            else:
                gamma = self._check_gamma(gamma_override)
            q = float(self._cap_mass(gamma))
        if not 0 < q < 1:
            raise ParameterError(f"cap mass q = P[t >= gamma] = {q} is degenerate (gamma = {gamma})")
        if not 0 < p < 1:
            raise ParameterError(f"cap probability p = {p} must lie in (0, 1)")
        if not p > q:
            raise ParameterError(f"p = {p} must exceed the cap mass q = {q}, else E<V,u> <= 0")
        lo = math.log1p(-p) - math.log1p(-q)
        hi = math.log(p) - math.log(q)
        if _spread(p, q) > eps + _SPREAD_SLACK:
            raise ParameterError(
                f"(p, gamma) = ({p}, {gamma}) violates the privacy constraint: spread {hi - lo} > {eps}")
        for k, v in (("_p", float(p)), ("_gamma", float(gamma)), ("_q", q), ("_bounds", (lo, hi))):
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_means", tuple(float(v) for v in self._cap_means()))

    def _check_gamma(self, gamma) -> float:
        g = float(gamma)
        if not math.isfinite(g):
            raise ParameterError(f"gamma must be finite, got {gamma!r}")
        return g

    # ---- parameters
    @property
    def p(self) -> float:
        """Probability of outputting a point of the cap."""
        return self._p

    @property
    def gamma(self) -> float:
        """Cap threshold γ on t = ⟨v, u⟩."""
        return self._gamma

    @property
    def cap_mass(self) -> float:
        """q = P[t ≥ γ] under the reference P."""
        return self._q

    @property
    def cap_means(self) -> tuple[float, float]:
        """(a, b) = (E_P[t | t ≥ γ], E_P[t | t < γ]), exact closed forms."""
        return self._means

    def m(self, p_eff=None):
        """``E⟨V, u⟩ = p a + (1 − p) b`` with cap probability ``p_eff`` (default p; scalar or array)."""
        a, b = self._means
        if p_eff is None:
            return self._p * a + (1 - self._p) * b
        pe = np.asarray(p_eff, dtype=np.float64)
        if not np.all((pe >= 0) & (pe <= 1)):
            raise ParameterError("p_eff must lie in [0, 1]")
        out = pe * a + (1 - pe) * b
        if np.any(out <= 0):
            raise ParameterError("p_eff too small: E<V,u> <= 0, the output cannot be unbiased")
        return float(out) if out.ndim == 0 else out

    # ---- density ratio
    def log_ratio_bounds(self) -> tuple[float, float]:
        """``(log((1−p)/(1−q)), log(p/q))``; their difference is ≤ ε."""
        return self._bounds

    def _cap_indicator(self, dots, sqnorms):
        return np.asarray(dots, dtype=np.float64) >= self._gamma

    def log_ratio_from_projection(self, dots, sqnorms=None) -> np.ndarray:
        """``log r_u`` from ``dots = ⟨g, u⟩`` and ``sqnorms = ‖g‖²`` of un-normalised base variates g
        (the fused REC path, :func:`ldp_rec.rec.randomness.project_block`)."""
        lo, hi = self._bounds
        return np.where(self._cap_indicator(dots, sqnorms), hi, lo)

    def log_ratio(self, z, u) -> np.ndarray:
        """``log dQ(·|u)/dP(z)``: z ``(..., m, d)`` or ``(m, d)`` against u ``(..., d)`` → ``(..., m)``."""
        z = np.asarray(z)
        u = np.asarray(u)
        if z.ndim < 2 or u.ndim < 1 or z.shape[-1] != self.dim or u.shape[-1] != self.dim:
            raise InputError(
                f"log_ratio needs z (..., m, {self.dim}) and u (..., {self.dim}), got {z.shape}, {u.shape}")
        if z.dtype.kind not in "fiu" or u.dtype.kind not in "fiu":
            raise InputError("z and u must be real arrays")
        z = z.astype(np.float64, copy=False)
        u = u.astype(np.float64, copy=False)
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(u))):
            raise InputError("z or u contains NaN or Inf")
        try:
            dots = np.matmul(z, u[..., :, None])[..., 0]
        except ValueError as exc:
            raise InputError(f"z {z.shape} and u {u.shape} do not broadcast") from exc
        sq = np.einsum("...d,...d->...", z, z)
        return self.log_ratio_from_projection(dots, np.broadcast_to(sq, dots.shape))

    # ---- encoder side
    def prepare(self, x, *, rng=None) -> np.ndarray:
        """Clip to L2 norm C, then round unbiasedly onto the unit sphere.

        With ``r = min(‖x‖, C)/C``, output ``u = +x/‖x‖`` with probability ``(1 + r)/2`` and ``−x/‖x‖``
        otherwise (x = 0: a uniform random direction), so ``E[u] = clip(x)/C`` and
        ``E[C V/m] = C E[u] = clip(x)``. This is the rounding step of Duchi, Jordan & Wainwright
        (2013, Sec. 4.2.3; JASA 2018 Sec. 4.2), used here for every cap mechanism."""
        X, _ = self.check_input(x)
        return round_to_sphere(X, self.clip, np.random.default_rng(rng))

    def _check_unit(self, u) -> np.ndarray:
        U, _ = self.check_input(u)
        if not np.allclose(np.einsum("nd,nd->n", U, U), 1.0, rtol=0, atol=1e-6):
            raise InputError("sample expects unit-norm prepared inputs (call prepare first)")
        return U

    def sample(self, u, *, rng=None) -> np.ndarray:
        """Draw ``V ~ Q(·|u)`` for unit rows u ``(n, d)``, vectorised: the side (cap w.p. p), then t
        from its exact conditional law on that side, then an isotropic part orthogonal to u."""
        rng = np.random.default_rng(rng)
        U = self._check_unit(u)
        in_cap = rng.random(U.shape[0]) < self._p
        t = self._draw_projection(in_cap, rng)
        return self._assemble(U, t, rng)

    # ---- decoder side
    def unbias(self, v, *, p_eff=None, mean=None) -> np.ndarray:
        """``C v / m(p_eff)``; ``p_eff`` (scalar or one per row) is the effective cap probability a
        finite-candidate codec achieves (references.md §3, MRC). ``mean``: ``E⟨V, u⟩`` given directly
        (a codec whose output law is not a cap law, e.g. subset selection), in place of m(p_eff)."""
        v = np.asarray(v, dtype=np.float64)
        if mean is not None:
            if p_eff is not None or not float(mean) > 0:
                raise ParameterError("give either p_eff or a positive mean E<V,u>")
            return v * (float(self.clip) / float(mean))
        m = self.m(p_eff)
        if np.ndim(m) == 0:
            return v * (float(self.clip) / m)
        return v * (float(self.clip) / np.asarray(m))[..., None]

    def expected_mse(self, *, norm: float | None = None) -> float:
        """Closed-form ``E‖Z − x‖² = C² E‖V‖²/m² − ‖x‖²`` for an input of norm ``norm ≤ C``
        (default ``norm = C``: ``C² (E‖V‖²/m² − 1)``). Rounding makes it depend on ‖x‖ only."""
        c = float(self.clip)
        r = c if norm is None else float(norm)
        if not 0 <= r <= c:
            raise ParameterError(f"norm must lie in [0, clip], got {norm!r}")
        return c * c * self._second_moment() / self.m() ** 2 - r * r


class SphereCapMechanism(CapMechanism):
    """Cap mechanisms over P = uniform on S^{d−1} (PrivUnit2, Duchi L2): the reference-specific hooks.

    t is drawn by inversion of its exact survival function (:func:`sphere_projection_isf`) restricted
    to the chosen side, and ``V = t u + √(1−t²) w`` with w uniform on the unit sphere of u^⊥
    (a normalised Gaussian with its u-component removed)."""

    min_dim: ClassVar[int] = 2

    @property
    def reference(self) -> SphereReference:
        return SphereReference(int(self.dim))

    def _cap_mass(self, gamma: float) -> float:
        if not -1 < gamma < 1:
            raise ParameterError(f"gamma must lie in (-1, 1) on the sphere, got {gamma}")
        return float(sphere_cap_mass(gamma, int(self.dim)))

    def _threshold(self, q: float) -> float:
        return float(sphere_projection_isf(q, int(self.dim)))

    def _cap_means(self) -> tuple[float, float]:
        log_c = float(sphere_log_partial_mean(self._gamma, int(self.dim)))
        return math.exp(log_c - math.log(self._q)), -math.exp(log_c - math.log1p(-self._q))

    def _draw_projection(self, in_cap, rng):
        q, g = self._q, self._gamma
        s = rng.random(in_cap.shape[0])
        t_cap = sphere_projection_isf(q * s, int(self.dim))  # P[T >= t] ~ U(0, q)
        t_off = -sphere_projection_isf((1.0 - q) * s, int(self.dim))  # -T | -T > -γ by symmetry
        # clamp floating-point stragglers to the correct side of the boundary (measure zero)
        return np.where(in_cap, np.maximum(t_cap, g), np.minimum(t_off, np.nextafter(g, -np.inf)))

    def _assemble(self, u, t, rng):
        g = rng.standard_normal(u.shape)
        g -= np.einsum("nd,nd->n", g, u)[:, None] * u
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        return t[:, None] * u + np.sqrt((1.0 - t) * (1.0 + t))[:, None] * g

    def _second_moment(self) -> float:
        return 1.0

    def _norm_quantile(self, tail: float) -> float:
        return 1.0  # V lies on the unit sphere: the output has the fixed norm C/m

    @property
    def projection_law(self):
        """Law of ``t = ⟨Z, u⟩`` for Z uniform on the sphere (:class:`ldp_rec.rec.subset.ProjectionLaw`)."""
        from ..rec.subset import ProjectionLaw

        return ProjectionLaw("sphere", int(self.dim))

    def projection_score(self, dots, sqnorms=None) -> np.ndarray:
        """``t = ⟨g, u⟩/‖g‖`` of the candidates Z = g/‖g‖ from their base normals' ``dots`` and ``sqnorms``."""
        if sqnorms is None:
            raise InputError("the sphere reference needs sqnorms = ||g||^2 to normalise the base variates")
        return np.asarray(dots, dtype=np.float64) / np.sqrt(np.asarray(sqnorms, dtype=np.float64))

    def _cap_indicator(self, dots, sqnorms):
        """t = dots/√sqnorms ≥ γ, evaluated as ``dots ≥ γ √sqnorms`` (no division; γ = 0: ``dots ≥ 0``)."""
        if sqnorms is None:
            raise InputError("the sphere reference needs sqnorms = ||g||^2 to normalise the base variates")
        dots = np.asarray(dots, dtype=np.float64)
        if self._gamma == 0:
            return dots >= 0
        return dots >= self._gamma * np.sqrt(np.asarray(sqnorms, dtype=np.float64))
