"""ε-LDP mechanisms. See :mod:`ldp_rec.mechanisms.base` for the interface.

| name | class | guarantee | reference P |
|---|---|---|---|
| privunit2 | :class:`PrivUnit2` (Bhowmick et al. 2018) | ε | uniform on the sphere |
| privunitg | :class:`PrivUnitG` (Asi, Feldman, Talwar 2022) | ε | N(0, I) |
| duchi | :class:`DuchiL2` (Duchi, Jordan, Wainwright 2013) | ε | uniform on the sphere |
| laplace | :class:`LaplaceMechanism` (L1 clip C, scale 2C/ε) | ε | Laplace(0, 2C/ε)^d |
| gaussian | :class:`GaussianMechanism` (analytic σ, Balle & Wang 2018) | (ε, δ) | N(0, σ² I) |
| rr | :class:`CoordinateRR` (one coordinate, binary RR) | ε | uniform on ±e_j |
| sqkr | :class:`SQKR` (Chen, Kairouz, Özgür 2020) | ε | — (its own k-bit code) |
| rrsc | :class:`RRSC` (Isik et al. 2023) | ε | — (its own b-bit code) |
| projunit | :class:`ProjUnit` (Asi, Feldman, Nelson, Nguyen, Talwar 2023; dense W) | ε | PrivUnitG's in R^k, after W |
| fastprojunit | :class:`FastProjUnit` (same paper; randomised Hadamard W) | ε | PrivUnitG's in R^k, after W |

The projection W of a user comes from that user's public key (:mod:`.projection`); behind a codec the
projection runs in :class:`ldp_rec.codec.projection.ProjectedCodec`.
"""

from .base import GaussianReference, Mechanism, PrivacyGuarantee, RatioMechanism, Reference, SphereReference
from .duchi import DuchiL2
from .gaussian import GaussianMechanism
from .laplace import LaplaceMechanism
from .privunit2 import PrivUnit2
from .privunitg import PrivUnitG
from .projunit import FastProjUnit, ProjUnit
from .randomized_response import BinaryRR, CoordinateRR, KaryRR
from .rrsc import RRSC
from .sqkr import SQKR

__all__ = [
    "BinaryRR", "CoordinateRR", "DuchiL2", "GaussianMechanism", "GaussianReference", "KaryRR", "LaplaceMechanism",
    "FastProjUnit", "Mechanism", "PrivUnit2", "ProjUnit", "PrivUnitG", "PrivacyGuarantee", "RRSC", "RatioMechanism", "Reference", "SQKR",
    "SphereReference",
]
