"""A node's own privacy policy: what a ClientApp agrees to do, whatever the server asks.

Under LDP the server is the adversary, and the run configuration (mode, mechanism, codec, ε,
private seed) arrives in the server's message. A client that obeyed it blindly would send its
raw update when told ``mode="none"``, privatise at ε = 50 when told so, or draw its private coins
from a seed the server chose. :class:`NodePolicy` is configured on the node, never by the server,
and the ClientApp refuses (and reports the refusal in its reply) any request outside it.

Where the policy comes from (first found):

1. the node config key ``ldp-rec-policy`` (``flower-supernode --node-config
   "ldp-rec-policy='/etc/ldp-rec/policy.toml'"``),
2. the environment variable ``LDP_REC_NODE_POLICY``,
3. the default policy: modes ``ldp`` and ``ldp-rec`` only (``none`` is refused), any mechanism and
   codec, at most ε = 10 per participation (the transcript's ε, as the codec reports it), no per-user
   cap, and private coins from OS entropy only (seeded coins refused).

Either source is a path to a TOML or JSON file, or inline JSON, with the keys of
:class:`NodePolicy` (``modes``, ``mechanisms``, ``codecs``, ``max_epsilon_round``,
``max_epsilon_user``, ``allow_seeded_coins``), for example::

    modes = ["ldp-rec"]
    codecs = ["modified-mrc", "subset"]
    max_epsilon_round = 4.0
    max_epsilon_user = 200.0

``max_epsilon_user`` is enforced with the node's own ledger of the users it has served (basic
composition of the transcript ε, an upper bound on any tighter accounting), kept in the node's
``Context.state`` for the run. ``ldp-rec fl`` runs its simulated nodes with
:meth:`NodePolicy.simulation` (every mode, seeded coins allowed), which the result file records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError
from .config import MODES, FLConfig

ENV_VAR = "LDP_REC_NODE_POLICY"
NODE_CONFIG_KEY = "ldp-rec-policy"


@dataclass(frozen=True)
class NodePolicy:
    """What this node agrees to; ``None`` for mechanisms/codecs means any."""

    modes: tuple[str, ...] = ("ldp", "ldp-rec")
    mechanisms: tuple[str, ...] | None = None
    codecs: tuple[str, ...] | None = None
    max_epsilon_round: float = 10.0
    max_epsilon_user: float = math.inf
    allow_seeded_coins: bool = False

    def __post_init__(self) -> None:
        for name in ("modes", "mechanisms", "codecs"):
            v = getattr(self, name)
            if v is not None:
                if isinstance(v, str) or not all(isinstance(s, str) for s in v):
                    raise ParameterError(f"node policy: {name} must be a list of names")
                object.__setattr__(self, name, tuple(v))
        bad = set(self.modes) - set(MODES)
        if bad:
            raise ParameterError(f"node policy: unknown modes {sorted(bad)}; choose from {MODES}")
        for name in ("max_epsilon_round", "max_epsilon_user"):
            v = float(getattr(self, name))
            if not v > 0:
                raise ParameterError(f"node policy: {name} must be > 0, got {v}")
            object.__setattr__(self, name, v)
        if not isinstance(self.allow_seeded_coins, bool):
            raise ParameterError("node policy: allow_seeded_coins must be true or false")

    @classmethod
    def simulation(cls) -> "NodePolicy":
        """The policy of ``ldp-rec fl``'s simulated nodes: the operator runs both ends, so every mode
        and seeded (replayable) coins are allowed; the result file says which coins were used."""
        return cls(modes=MODES, max_epsilon_round=math.inf, allow_seeded_coins=True)

    @classmethod
    def parse(cls, text: str) -> "NodePolicy":
        """From a TOML/JSON file path or inline JSON."""
        text = str(text).strip()
        try:
            if text.startswith("{"):
                raw = json.loads(text)
            else:
                path = Path(text)
                body = path.read_text()
                raw = json.loads(body) if path.suffix == ".json" else tomllib.loads(body)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"node policy {text[:80]!r} cannot be read: {exc}") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ParameterError(f"node policy: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**raw)

    @classmethod
    def from_node(cls, node_config=None, environ=None) -> "NodePolicy":
        """The node config key, else the environment variable, else the default policy."""
        environ = os.environ if environ is None else environ
        src = (node_config or {}).get(NODE_CONFIG_KEY) or environ.get(ENV_VAR)
        return cls.parse(src) if src else cls()

    def refusal(self, cfg: FLConfig, epsilon_round: float, spent_before: float = 0.0) -> str | None:
        """Why this node refuses the request ``cfg`` (``None``: it complies). ``epsilon_round`` is the
        transcript ε of one participation (``inf`` for non-private); ``spent_before`` the most any
        of the requested users has already spent on this node."""
        if cfg.mode not in self.modes:
            return f"mode {cfg.mode!r} is not allowed by this node's policy (allowed: {list(self.modes)})"
        if cfg.mode not in ("none", "cdp"):  # non-private uploads: allowed only by the mode list
            if self.mechanisms is not None and cfg.mechanism not in self.mechanisms:
                return f"mechanism {cfg.mechanism!r} is not allowed by this node's policy"
            if cfg.mode == "ldp-rec" and self.codecs is not None and cfg.codec not in self.codecs:
                return f"codec {cfg.codec!r} is not allowed by this node's policy"
            if not epsilon_round <= self.max_epsilon_round:
                return (f"transcript epsilon {epsilon_round:.4g} per participation exceeds this node's "
                        f"maximum {self.max_epsilon_round:.4g}")
            if not spent_before + epsilon_round <= self.max_epsilon_user:
                return (f"a user would reach epsilon {spent_before + epsilon_round:.4g} on this node, above its "
                        f"per-user maximum {self.max_epsilon_user:.4g}")
        if cfg.private_seed >= 0 and not self.allow_seeded_coins:
            return ("seeded private coins were requested (private_seed >= 0): the server would know them, so "
                    "this node refuses; they are for simulations only")
        return None
