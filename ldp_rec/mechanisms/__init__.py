"""ε-LDP mechanisms. See :mod:`ldp_rec.mechanisms.base` for the interface."""

from .base import GaussianReference, Mechanism, PrivacyGuarantee, RatioMechanism, Reference, SphereReference

__all__ = ["GaussianReference", "Mechanism", "PrivacyGuarantee", "RatioMechanism", "Reference", "SphereReference"]
