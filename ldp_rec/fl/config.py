"""Configuration of a federated run, shared by the CLI, the ServerApp and the ClientApp.

One frozen :class:`FLConfig` describes everything both ends must agree on. The server sends it
to every node in the round's ConfigRecord (kebab-case keys, as in ``[tool.flwr.app.config]``),
so a ClientApp needs no local configuration: ``flwr run .`` and the ``ldp-rec fl`` command run the
same code path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._validation import check_epsilon, check_positive_int
from ..errors import ParameterError

MODES = ("none", "cdp", "ldp", "ldp-rec")
PROJECTIONS = ("none", "srht", "gaussian")
SAMPLINGS = ("all", "fixed", "poisson")
PRIVATE_COINS_OS = "os-entropy"
PRIVATE_COINS_SEEDED = "seeded (simulation only, not private against the server)"


# one-line help of every field: the `ldp-rec fl` options are generated from FLConfig with these
HELP = {
    "dataset": "digits | synthetic (Synthetic(alpha, beta), `clients` devices) | mnist | cifar10 | femnist (online) "
               "| package.module:loader (your own, see ldp_rec.fl.federation.FLData)",
    "clients": "number of users in the population (0: every training example its own user)",
    "nodes": "number of Flower nodes hosting the sampled users",
    "min_nodes": "a round goes on with at least this many nodes present (0: 1)",
    "rounds": "number of rounds",
    "sampling": "the round's cohort: all | fixed (cohort-size users) | poisson (each user w.p. sample-rate)",
    "cohort_size": "users per round with --sampling fixed",
    "sample_rate": "inclusion probability with --sampling poisson",
    "mode": "none | cdp (trusted server, DP-FedAvg) | ldp (floats) | ldp-rec (REC index)",
    "mechanism": "LDP mechanism (ldp, ldp-rec)",
    "codec": "channel simulator of ldp-rec",
    "epsilon": "epsilon per participation of the mechanism; cdp: the run's total user-level epsilon target",
    "noise_multiplier": "cdp: sigma of DP-FedAvg (0: calibrated to reach --epsilon after --rounds)",
    "bits": "index bits of MRC-type codecs (0: ceil(eps log2 e) + 4)",
    "alpha": "PPR's alpha",
    "clip": "L2 clipping norm C of every user's update",
    "server_lr": "server learning rate",
    "server_momentum": "server momentum",
    "local_lr": "local learning rate",
    "local_epochs": "local epochs",
    "batch_size": "local minibatch size (0: full batch)",
    "model": "logreg | mlp | cnn | package.module:factory (your own torch model, see ldp_rec.fl.models.make_model)",
    "width": "mlp hidden units / cnn first-layer channels (0: 64 / 8)",
    "projection": "random projection before PrivUnitG (ProjUnit, Asi et al. 2023): none | srht | gaussian",
    "proj_dim": "projected dimension k (0: the default from the ProjUnit analysis)",
    "partition": "per_example | iid | dirichlet | natural (the data set's own users: FEMNIST's writers, "
                 "a loader's users)",
    "dirichlet_alpha": "concentration of the dirichlet partition",
    "synthetic_alpha": "Synthetic(alpha, beta): alpha",
    "synthetic_beta": "Synthetic(alpha, beta): beta",
    "synthetic_min_samples": "Synthetic(alpha, beta): fewest examples per device",
    "synthetic_max_samples": "Synthetic(alpha, beta): most examples per device (0: no cap)",
    "seed": "public run seed (shared candidates, model init, cohort sampling)",
    "private_seed": "-1: clients' private coins from OS entropy; S >= 0: seeded so the simulation replays "
                    "(simulation only: not private against the server)",
    "delta": "delta at which epsilon is reported",
    "max_epsilon": "per-user budget: a user whose next participation would exceed it is retired (0: none)",
    "timeout": "seconds a round waits for replies",
    "fault": "testing hook (not a command-line option): raise | corrupt:K, comma-separated",
}

DATASETS = ("digits", "synthetic", "mnist", "cifar10", "femnist")
PARTITIONS = ("per_example", "iid", "dirichlet", "natural")


def is_import_spec(name: str) -> bool:
    """True for a ``package.module:callable`` name (your own model factory or data loader)."""
    return isinstance(name, str) and name.count(":") == 1 and all(part.strip() for part in name.split(":"))


def parse_faults(spec: str) -> tuple[tuple[str, int], ...]:
    """The fault-injection hook's items (tests only): ``raise`` (the node hosting user 0 fails) and
    ``corrupt:K`` (a byte of user K's payload is flipped), comma-separated; ParameterError for anything else."""
    items = []
    for item in (f.strip() for f in str(spec).split(",")):
        if not item:
            continue
        if item == "raise":
            items.append(("raise", 0))
            continue
        kind, _, user = item.partition(":")
        if kind != "corrupt" or not user.isdigit():
            raise ParameterError(f"unknown fault {item!r}: the testing hook takes 'raise' or 'corrupt:K' (K a user id)")
        items.append(("corrupt", int(user)))
    return tuple(items)


@dataclass(frozen=True)
class FLConfig:
    """A federated LDP(-REC) run.

    ``clients`` is the number of *users* (0 = every training example its own user); ``nodes`` is
    the number of Flower nodes (virtual SuperNodes) that host them in cohorts.
    """

    dataset: str = "digits"
    clients: int = 0
    nodes: int = 2
    min_nodes: int = 0  # a round proceeds with at least this many nodes (0: all `nodes`)
    rounds: int = 50
    sampling: str = "all"  # the round's cohort: all | fixed (cohort_size users) | poisson (rate sample_rate)
    cohort_size: int = 0
    sample_rate: float = 0.0
    mode: str = "ldp-rec"
    mechanism: str = "privunitg"
    codec: str = "modified-mrc"
    epsilon: float = 4.0  # ε per participation of the mechanism; mode cdp: the run's total user-level ε target
    noise_multiplier: float = 0.0  # cdp: σ of DP-FedAvg (0: calibrated to reach `epsilon` after `rounds`)
    bits: int = 0  # 0: the codec's default (ceil(eps*log2 e) + 4 for MRC-type codecs)
    alpha: float = 2.0  # PPR
    projection: str = "none"  # random projection before the mechanism: none | srht (FastProjUnit) | gaussian (ProjUnit)
    proj_dim: int = 0  # k of the projection (0: ldp_rec.mechanisms.projunit.default_proj_dim)
    clip: float = 0.5  # tuned on digits (simulations/tune_fedsgd.py): 92% at eps=4 uncompressed
    server_lr: float = 4.0
    server_momentum: float = 0.0
    local_lr: float = 1.0
    local_epochs: int = 1
    batch_size: int = 0  # 0: full batch
    model: str = "logreg"
    width: int = 0  # mlp hidden units / cnn channels of the first layer (0: the model's default, 64 / 8)
    partition: str = "per_example"  # per_example | iid | dirichlet
    dirichlet_alpha: float = 0.5
    synthetic_alpha: float = 1.0
    synthetic_beta: float = 1.0
    synthetic_min_samples: int = 50
    synthetic_max_samples: int = 0  # 0: no cap (the power law's tail; cap it for populations of 10^5 devices)
    seed: int = 0  # the public run seed: shared candidate streams and the model's initialisation
    private_seed: int = -1  # -1: private coins from OS entropy on each node; >= 0: seeded (simulation only)
    delta: float = 1e-5
    max_epsilon: float = 0.0  # per-user budget: a user whose next participation would exceed it is retired (0: none)
    timeout: float = 600.0
    fault: str = ""  # testing hook, comma-separated: "raise" (the node hosting user 0 fails), "corrupt:K" (flip a byte of user K's payload)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.dataset not in DATASETS and not is_import_spec(self.dataset):
            raise ParameterError(f"unknown dataset {self.dataset!r}; choose one of {DATASETS} or give your own "
                                 "loader as 'package.module:loader'")
        from .models import MODELS

        if self.model not in MODELS and not is_import_spec(self.model):
            raise ParameterError(f"unknown model {self.model!r}; choose one of {MODELS} or give your own "
                                 "factory as 'package.module:factory'")
        parse_faults(self.fault)
        check_epsilon(self.epsilon)
        check_positive_int(self.nodes, "nodes")
        check_positive_int(self.min_nodes, "min_nodes", minimum=0)
        if self.min_nodes > self.nodes:
            raise ParameterError(f"min_nodes ({self.min_nodes}) cannot exceed nodes ({self.nodes})")
        if self.sampling not in SAMPLINGS:
            raise ParameterError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.sampling == "fixed":
            check_positive_int(self.cohort_size, "cohort_size")
        if self.sampling == "poisson" and not 0 < self.sample_rate <= 1:
            raise ParameterError(f"poisson sampling needs sample_rate in (0, 1], got {self.sample_rate!r}")
        if self.mode == "cdp" and self.sampling == "fixed" and not self.noise_multiplier > 0:
            raise ParameterError("mode cdp is analysed for Poisson sampling (or all users), so it cannot calibrate "
                                 "sigma for fixed-size sampling: use --sampling poisson, or give --noise-multiplier "
                                 "(the run then reports no epsilon)")
        if not (self.noise_multiplier >= 0 and self.noise_multiplier < float("inf")):
            raise ParameterError(f"noise_multiplier must be finite and >= 0, got {self.noise_multiplier!r}")
        check_positive_int(self.rounds, "rounds")
        check_positive_int(self.clients, "clients", minimum=0)
        check_positive_int(self.local_epochs, "local_epochs")
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.batch_size, "batch_size", minimum=0)
        check_positive_int(self.bits, "bits", minimum=0)
        check_positive_int(self.cohort_size, "cohort_size", minimum=0)
        check_positive_int(self.synthetic_min_samples, "synthetic_min_samples", minimum=2)
        check_positive_int(self.synthetic_max_samples, "synthetic_max_samples", minimum=0)
        if self.partition in ("iid", "dirichlet") and self.dataset != "synthetic" and self.clients < 1:
            raise ParameterError(f"partition {self.partition} splits the examples among `clients` users: give "
                                 "clients >= 1")
        if not 0 < self.delta < 1:
            raise ParameterError(f"delta must be in (0, 1), got {self.delta!r}")
        if not (self.max_epsilon >= 0 and self.max_epsilon < float("inf")):
            raise ParameterError(f"max_epsilon must be finite and >= 0 (0: no budget), got {self.max_epsilon!r}")
        if isinstance(self.private_seed, bool) or not isinstance(self.private_seed, int) or self.private_seed < -1:
            raise ParameterError(f"private_seed must be -1 (OS entropy) or a seed >= 0, got {self.private_seed!r}")
        for name in ("clip", "server_lr", "local_lr", "timeout"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be > 0")
        if not 0 <= self.server_momentum < 1:
            raise ParameterError("server_momentum must be in [0, 1)")
        if self.partition not in PARTITIONS:
            raise ParameterError(f"unknown partition {self.partition!r}; choose one of {PARTITIONS}")
        check_positive_int(self.width, "width", minimum=0)
        check_positive_int(self.proj_dim, "proj_dim", minimum=0)
        if self.projection not in PROJECTIONS:
            raise ParameterError(f"unknown projection {self.projection!r}; choose one of {PROJECTIONS}")
        if self.projection != "none" and self.mechanism != "privunitg":  # modes none and cdp send the update unprojected
            raise ParameterError(f"a projection runs PrivUnitG in R^k: it needs mechanism privunitg, not {self.mechanism!r}")
        if self.partition == "natural" and self.dataset in ("digits", "mnist", "cifar10"):
            raise ParameterError(f"{self.dataset} has no natural split into users; use partition per_example, iid "
                                 "or dirichlet")
        if self.partition == "per_example" and self.clients not in (0,):
            raise ParameterError("partition 'per_example' fixes clients = number of training examples; pass clients=0")

    @property
    def private_coins(self) -> str:
        """Where the clients' private coins come from, as result files record it."""
        return PRIVATE_COINS_OS if self.private_seed < 0 else PRIVATE_COINS_SEEDED

    @property
    def codec_name(self) -> str:
        return {"none": "none", "cdp": "none", "ldp": "none", "ldp-rec": self.codec}[self.mode]

    def replace(self, **kw) -> "FLConfig":
        return dataclasses.replace(self, **kw)

    def to_record(self) -> dict:
        """Kebab-case dict (ConfigRecord / run_config values)."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_record(cls, record) -> "FLConfig":
        """From kebab-case keys (a ConfigRecord or a run config); an unknown key is an error, never
        silently dropped."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        kw = {}
        unknown = []
        for key, value in dict(record).items():
            name = key.replace("-", "_")
            if name not in names:
                unknown.append(key)
                continue
            typ = names[name].type
            kw[name] = {"int": int, "float": float, "str": str}.get(typ, lambda v: v)(value)
        if unknown:
            raise ParameterError(f"unknown run-config keys {sorted(unknown)}; known: "
                                 f"{sorted(f.replace('_', '-') for f in names)}")
        return cls(**kw)
