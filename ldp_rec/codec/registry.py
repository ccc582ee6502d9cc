"""Command-line names of mechanisms and codecs, and :func:`make_codec`.

Mechanisms: privunit2, privunitg, sqkr (ldp-rec's unbiased bounded-Kashin SQKR), sqkr-faithful (Chen, Kairouz
and Ozgur's own setting), rrsc, duchi, laplace, gaussian, rr.
Codecs: none (uncompressed floats), mrc, modified-mrc, orc, ppr, rs-fallback, pfr, gprs, subset (ε-LDP
subset selection on shared candidates, :mod:`ldp_rec.rec.subset`), and native (the mechanism's own b-bit
code: SQKR and RRSC, whose mechanism and code are one).
A pair that does not make sense raises :class:`~ldp_rec.errors.IncompatibleError` saying why.
"""

from __future__ import annotations

import importlib
import math

import numpy as np

from ..errors import IncompatibleError, ParameterError

# name -> "module:Class"
MECHANISMS = {
    "privunit2": "ldp_rec.mechanisms.privunit2:PrivUnit2",
    "privunitg": "ldp_rec.mechanisms.privunitg:PrivUnitG",
    "duchi": "ldp_rec.mechanisms.duchi:DuchiL2",
    "laplace": "ldp_rec.mechanisms.laplace:LaplaceMechanism",
    "gaussian": "ldp_rec.mechanisms.gaussian:GaussianMechanism",
    "rr": "ldp_rec.mechanisms.randomized_response:CoordinateRR",
    "sqkr": "ldp_rec.mechanisms.sqkr:SQKR.bounded",  # ldp-rec's unbiased SQKR (0.8x the published MSE)
    "sqkr-faithful": "ldp_rec.mechanisms.sqkr:SQKR.chen_kairouz_ozgur",  # the authors' setting (clipping bias)
    "rrsc": "ldp_rec.mechanisms.rrsc:RRSC",
    "projunit": "ldp_rec.mechanisms.projunit:ProjUnit",  # random projection + PrivUnitG in R^k (Asi et al. 2023)
    "fastprojunit": "ldp_rec.mechanisms.projunit:FastProjUnit",  # the same with the SRHT, O(d log d)
}

# codec name -> (wire codec id, description)
CODECS = {
    "none": (0, "uncompressed LDP: the unbiased estimate as float32"),
    "mrc": (1, "minimal random coding, N = 2^bits shared candidates (transcript 2ε)"),
    "modified-mrc": (2, "Shah et al.'s modified MRC (transcript ε)"),
    "orc": (3, "ordered random coding"),
    "ppr": (4, "Poisson private representation (transcript 2αε, exact)"),
    "rs-fallback": (5, "rejection sampling with fallback on shared candidates (transcript unbounded)"),
    "pfr": (6, "Poisson functional representation (exact, transcript not established)"),
    "gprs": (7, "greedy Poisson rejection sampling (exact, transcript not established)"),
    "native": (8, "the mechanism's own code (SQKR, RRSC)"),
    "subset": (9, "ε-LDP subset selection on N = 2^bits shared candidates: the top m by <Z,u> weighted e^ε "
                  "(RRSC's rule on the reference's candidates; transcript ε; cap mechanisms)"),
}


# codecs over N = 2^bits shared candidates (bits default to the same value for simulator and index code)
FIXED_CANDIDATE_CODECS = ("mrc", "modified-mrc", "orc", "subset")


def default_bits(epsilon: float) -> int:
    """The one default index length of the fixed-candidate codecs, used by every entry point:
    ``b = ⌈ε·log2 e⌉ + 4`` bits for a mechanism (chunk) at ε, i.e. N = 2^b ≈ 16·e^ε candidates, so
    the candidates cover the mechanism's D_∞ = ε nats with a 4-bit margin (Shah et al. 2022 use
    ``max(⌈ε/ln 2 + t⌉, 8)`` with t ≈ 2–3: :func:`ldp_rec.rec.mrc.mrc_bits`)."""
    from .._validation import check_epsilon

    return int(math.ceil(check_epsilon(epsilon) * math.log2(math.e))) + 4


def _load(spec: str):
    module, attr = spec.split(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):  # a class or one of its constructors (Class.factory)
        obj = getattr(obj, part)
    return obj


def make_mechanism(name: str, *, epsilon: float, dim: int, **kwargs):
    if name not in MECHANISMS:
        raise ParameterError(f"unknown mechanism {name!r}; choose from {sorted(MECHANISMS)}")
    return _load(MECHANISMS[name])(epsilon=epsilon, dim=dim, **kwargs)


def _index_code(kind: str, bits: int | None = None):
    from ..coding import codes

    if kind == "fixed":
        return codes.FixedLength(bits)
    return codes.EliasDelta()


def _simulator_factory(codec: str, *, bits, alpha, tries, band_epsilon=None, top=None):
    """(factory chunk_mechanism -> Simulator, index code kind)."""
    from ..rec import mrc

    if codec == "mrc":
        return (lambda m: mrc.MRC(bits=bits)), "fixed"
    if codec == "modified-mrc":
        return (lambda m: mrc.ModifiedMRC(bits=bits, epsilon=band_epsilon or m.epsilon)), "fixed"
    if codec == "subset":
        from ..rec.subset import SubsetSelection
        return (lambda m: SubsetSelection(bits=bits, epsilon=m.epsilon, top=top)), "fixed"
    if codec == "orc":
        from ..rec.orc import ORC
        return (lambda m: ORC(bits=bits)), "variable"
    if codec == "pfr":
        from ..rec.pfr import PFR
        return (lambda m: PFR()), "variable"
    if codec == "ppr":
        from ..rec.ppr import PPR

        def ppr(m):
            cap = m.log_ratio_cap() if hasattr(m, "log_ratio_cap") and not np.isfinite(m.log_ratio_bounds()[1]) else None
            return PPR(alpha=2.0 if alpha is None else alpha, log_ratio_cap=cap)

        return ppr, "variable"
    if codec == "rs-fallback":
        from ..rec.rejection import RejectionSampler
        return (lambda m: RejectionSampler(tries=tries if tries is not None else max(1, int(math.ceil(
            math.exp(m.log_ratio_bounds()[1]) * 8))))), "variable"
    if codec == "gprs":
        from ..rec.gprs import GPRS
        return (lambda m: GPRS()), "variable"
    raise ParameterError(f"unknown codec {codec!r}; choose from {sorted(CODECS)}")


def make_codec(mechanism, codec: str, *, epsilon: float | None = None, dim: int | None = None, bits: int | None = None,
               alpha: float | None = None, tries: int | None = None, repetitions: int = 1, blocks: int = 1,
               band_tuning: bool = True, top: int | None = None, **mechanism_kwargs):
    """Build the codec ``codec`` for ``mechanism`` (a name, a Mechanism instance, or None for non-private).

    ``top``: the size m of the favoured set of codec ``subset`` (default: the m of least error).

    With ``codec="modified-mrc"`` (unchunked), ``band_tuning`` runs the mechanism's own
    :meth:`~ldp_rec.mechanisms.base.RatioMechanism.tuned_for_band` (PrivUnitG and PrivUnit2 without p/γ
    overrides: parameters tuned for the band, :mod:`.tuning`), whether it is given by name or as an
    instance: the transcript is still ε-LDP (the band's guarantee) while the MSE is lower.
    """
    from .core import FloatCodec, RecCodec
    from .native import NativeCodec

    if codec not in CODECS:
        raise ParameterError(f"unknown codec {codec!r}; choose from {sorted(CODECS)}")
    band_epsilon = None
    if isinstance(mechanism, str):
        if mechanism in ("sqkr", "sqkr-faithful", "rrsc") and bits is not None:
            mechanism_kwargs.setdefault("bits", bits)
        mech = make_mechanism(mechanism, epsilon=epsilon, dim=dim, **mechanism_kwargs)
    else:
        mech = mechanism
    from ..mechanisms.projunit import ProjUnit

    if isinstance(mech, ProjUnit):  # the projection front end: the codec runs PrivUnitG in R^k
        from .projection import projected_codec

        return projected_codec(mech, codec, bits=bits, alpha=alpha, tries=tries, repetitions=repetitions,
                               blocks=blocks, band_tuning=band_tuning, top=top)
    if mech is None:
        if codec != "none":
            raise IncompatibleError("the non-private baseline sends floats: use codec 'none'")
        clip = mechanism_kwargs.get("clip")
        return FloatCodec(None, dim, norm_bound=None if clip is None else float(clip))
    if codec == "none":
        return FloatCodec(mech, mech.dim)
    if codec == "native":
        if not hasattr(mech, "encode") or not hasattr(mech, "decode"):
            raise IncompatibleError(f"{mech.name} has no native code; only SQKR and RRSC are their own codes")
        return NativeCodec(mech)
    if mech.name in ("sqkr", "rrsc"):
        raise IncompatibleError(
            f"{mech.name} is a discrete mechanism whose output already is a b-bit code; use codec 'native' "
            "(or 'none' for floats)")
    from ..mechanisms.base import RatioMechanism

    if not isinstance(mech, RatioMechanism):
        raise IncompatibleError(f"{codec} needs a density ratio against a public reference; {mech.name} has none")
    if codec == "modified-mrc" and band_tuning and repetitions == 1 and blocks == 1:
        tuned = mech.tuned_for_band(epsilon=mech.epsilon, bits=bits if bits is not None else default_bits(mech.epsilon))
        if tuned is not mech:  # the mechanism's own band tuning (name or instance alike)
            band_epsilon, mech = float(mech.epsilon), tuned
    lo, hi = mech.log_ratio_bounds()
    if codec in ("mrc", "modified-mrc", "orc", "rs-fallback", "pfr", "gprs") and not (math.isfinite(lo) and math.isfinite(hi)):
        raise IncompatibleError(
            f"{codec} needs a bounded density ratio, but {mech.name}'s ratio against its reference is unbounded "
            f"(log bounds {lo}, {hi}); use codec 'ppr' or 'none'")
    if codec == "subset" and not hasattr(mech, "projection_law"):
        raise IncompatibleError(
            f"subset selection ranks the shared candidates by <Z, u>, so it needs a cap mechanism "
            f"(privunit2, privunitg, duchi); {mech.name} is not one")
    if top is not None and codec != "subset":
        raise ParameterError("top (the favoured-set size m) applies to codec 'subset' only")
    if bits is None and codec in FIXED_CANDIDATE_CODECS:  # one default for simulator and index code
        bits = default_bits((band_epsilon or mech.epsilon) / (repetitions * blocks))
    factory, code_kind = _simulator_factory(codec, bits=bits, alpha=alpha, tries=tries, band_epsilon=band_epsilon,
                                             top=top)
    if code_kind == "fixed":
        index_code = _index_code("fixed", bits)
    else:
        index_code = _index_code("variable")
    return RecCodec(mech, factory, index_code, repetitions=repetitions, blocks=blocks, codec_id=CODECS[codec][0])
