"""Typed errors raised by ldp-rec.

Every error derives from :class:`LdpRecError` and from the matching builtin
(``ValueError``), so callers can catch either.
"""


class LdpRecError(Exception):
    """Base class of every error raised on purpose by ldp-rec."""


class ParameterError(LdpRecError, ValueError):
    """An invalid parameter: ε ≤ 0, a dimension a mechanism cannot take, an unknown name."""


class InputError(LdpRecError, ValueError):
    """Invalid data handed to a mechanism or codec: NaN/Inf, wrong shape, wrong dtype."""


class DecodeError(LdpRecError, ValueError):
    """A message or payload that cannot be decoded: truncated, corrupted, over-long,
    an index past the candidate stream, or an unknown format version."""


class StreamError(LdpRecError, ValueError):
    """Invalid access to a shared-randomness stream (negative or out-of-range index)."""


class IncompatibleError(LdpRecError, ValueError):
    """A pairing that does not make sense (for example a codec that needs a bounded
    density ratio with a mechanism whose ratio is unbounded)."""


class RunFailedError(LdpRecError):
    """A run that produced nothing to report: for example a federated run in which no user's update
    was decoded in any round (every node failed, refused or did not reply)."""
