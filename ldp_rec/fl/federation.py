"""The federated round without Flower: data, cohorts, client work and server aggregation.

The Flower apps (:mod:`.client_app`, :mod:`.server_app`, :mod:`.strategy`) only move bytes and
call these functions, so everything here is testable (and benchmarked) without Flower.

Client identity for seeds
-------------------------
Users have global ids ``0 … n_users−1``. Each round the *server* assigns every sampled node a
contiguous cohort of user ids (in the order of its sorted node ids) and sends it in the node's
config. Shared-randomness keys are derived from ``(run seed, round, user id, chunk)``: the server
decodes a reply with the cohort *it* assigned to the reply's source node (message metadata), never
with ids read from the payload. Payloads are also bound to (round, user) by their tag
(:mod:`ldp_rec.codec.wire`), so a replay of an earlier round's payload is rejected. Cohort ranges
depend only on the number of nodes (the k-th smallest node id gets the k-th range). (In this
simulator a node can produce any user's data: the embedded data sets are generated
deterministically on every node.)

Private coins (references.md §6)
--------------------------------
Everything the server knows (the run seed, rounds, cohorts, configs) is public. The client's
private randomness (mechanism noise, rounding, selection draws, local minibatch order) comes from
:func:`private_coins`: OS entropy on the node by default, which the server cannot reproduce. A
run with ``private_seed >= 0`` seeds them from ``(private_seed, round, cohort start)`` so that a
*simulation* replays bit for bit; the server of such a run could re-run every client, so it is
labelled "simulation only" everywhere and refused by a node's default policy
(:mod:`.policy`) and by the deployment path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..codec.registry import FIXED_CANDIDATE_CODECS, make_codec, make_mechanism
from ..codec.registry import default_bits as registry_default_bits
from ..data.partition import Partition, partition
from ..errors import ParameterError
from ..privacy.accountant import BasicAccountant, PLDAccountant, plan_epsilon
from ..privacy.events import NonPrivateEvent
from . import models, task
from .config import FLConfig


@dataclass(frozen=True)
class FLData:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    users: Partition
    input_shape: tuple
    num_classes: int


@functools.lru_cache(maxsize=8)
def _load(dataset, seed, clients, scheme, dirichlet_alpha, syn_alpha, syn_beta) -> FLData:
    if dataset == "digits":
        from ..data.digits import DIGITS_NUM_CLASSES, load_digits_split

        Xtr, ytr, Xte, yte = load_digits_split(seed=seed)
        shape, k = (Xtr.shape[1],), DIGITS_NUM_CLASSES
    elif dataset == "synthetic":
        from ..data.synthetic import make_synthetic

        n_dev = clients if clients else 30
        syn = make_synthetic(syn_alpha, syn_beta, num_clients=n_dev, seed=seed)
        Xtr, ytr, Xte, yte = syn.X_train, syn.y_train, syn.X_test, syn.y_test
        shape, k = (Xtr.shape[1],), int(max(ytr.max(), yte.max()) + 1)
        if scheme != "per_example":  # Synthetic(α, β) comes with its own non-IID device split
            return FLData(Xtr, ytr, Xte, yte, syn.partition, shape, k)
    else:
        from ..data.hub import load_hub_dataset

        Xtr, ytr, Xte, yte = load_hub_dataset(dataset)
        shape, k = tuple(Xtr.shape[1:]), int(ytr.max() + 1)
    if scheme == "per_example":
        users = Partition.per_example(len(Xtr))
    else:
        users = partition(Xtr, ytr, clients, scheme, seed, alpha=dirichlet_alpha)
    return FLData(Xtr, ytr, Xte, yte, users, shape, k)


def load_data(cfg: FLConfig) -> FLData:
    return _load(cfg.dataset, cfg.seed, cfg.clients, cfg.partition, cfg.dirichlet_alpha, cfg.synthetic_alpha,
                 cfg.synthetic_beta)


def make_fl_model(cfg: FLConfig, data: FLData):
    return models.make_model(cfg.model, data.input_shape, data.num_classes, seed=cfg.seed)


def default_bits(cfg: FLConfig) -> int | None:
    """Index bits of MRC-type codecs: the registry's one rule (:func:`~ldp_rec.codec.registry.default_bits`)
    unless configured."""
    if cfg.bits:
        return int(cfg.bits)
    if cfg.codec in FIXED_CANDIDATE_CODECS:
        return registry_default_bits(cfg.epsilon)
    return None


def model_dim(cfg: FLConfig) -> int:
    """Number of model parameters (the dimension every codec of the run works in)."""
    return int(models.num_params(make_fl_model(cfg, load_data(cfg))))


@functools.lru_cache(maxsize=16)
def _codec(mode, mechanism, codec, epsilon, dim, clip, bits, alpha):
    if mode == "none":
        return make_codec(None, "none", dim=dim, clip=clip)
    if mode == "ldp":
        return make_codec(make_mechanism(mechanism, epsilon=epsilon, dim=dim, clip=clip), "none")
    opts = {"alpha": alpha} if codec == "ppr" else {}
    return make_codec(mechanism, codec, epsilon=epsilon, dim=dim, bits=bits, clip=clip, **opts)


def round_codec(cfg: FLConfig, dim: int):
    return _codec(cfg.mode, cfg.mechanism, cfg.codec, float(cfg.epsilon), int(dim), float(cfg.clip),
                  default_bits(cfg), float(cfg.alpha))


def cohorts(n_users: int, node_ids) -> dict[int, tuple[int, int]]:
    """Contiguous user-id ranges for the sorted node ids."""
    nodes = sorted(int(n) for n in node_ids)
    if not nodes:
        raise ParameterError("no nodes to assign users to")
    bounds = np.linspace(0, n_users, len(nodes) + 1).round().astype(int)
    return {n: (int(bounds[i]), int(bounds[i + 1])) for i, n in enumerate(nodes)}


def user_slice(users: Partition, start: int, stop: int) -> Partition:
    off = users.offsets[start : stop + 1]
    return Partition(users.indices[off[0] : off[-1]], off - off[0])


def private_coins(cfg: FLConfig, rnd: int, start: int) -> np.random.SeedSequence:
    """The node's private randomness for round ``rnd`` and the cohort starting at user ``start``:
    fresh OS entropy (``SeedSequence()``), or, only with ``cfg.private_seed >= 0`` (simulation),
    ``SeedSequence([private_seed, rnd, start])``. Never derived from the run seed."""
    if cfg.private_seed < 0:
        return np.random.SeedSequence()
    return np.random.SeedSequence([cfg.private_seed, rnd, start])


@dataclass
class ClientResult:
    """What a node computed for its cohort. Only ``payloads`` leave the node; ``replaced`` (users
    whose local update was non-finite and was replaced by the public value 0) stays on it."""

    payloads: list
    replaced: int


def privatize_cohort(cfg: FLConfig, U: np.ndarray, rnd: int, start: int, rng) -> ClientResult:
    """Clip, privatise and encode the updates ``U`` (users ``start …``) with the private ``rng``.

    A non-finite update is replaced by the public value 0 (which the mechanism privatises like any
    other input), so every user sends a payload of the same form and length: the server cannot
    tell from the transcript that a user's data produced NaN."""
    bad = task.check_finite(U)
    if bad.any():
        U = U.copy()
        U[bad] = 0.0
    codec = round_codec(cfg, U.shape[1])
    payloads = codec.encode(task.clip_updates(U, cfg.clip), run_seed=cfg.seed, round=rnd,
                            clients=np.arange(start, start + U.shape[0]), rng=rng)
    return ClientResult(payloads, int(bad.sum()))


def client_round(cfg: FLConfig, params: np.ndarray, rnd: int, start: int, stop: int, *,
                 coins: np.random.SeedSequence | None = None) -> ClientResult:
    """A node's work for users ``start … stop−1``: local training, clipping, privatisation and
    encoding, all private randomness from ``coins`` (default :func:`private_coins`)."""
    data = load_data(cfg)
    if not 0 <= start <= stop <= data.users.num_users:
        raise ParameterError(f"cohort [{start}, {stop}) outside 0..{data.users.num_users}")
    train_coins, mech_coins = (coins if coins is not None else private_coins(cfg, rnd, start)).spawn(2)
    model = make_fl_model(cfg, data)
    models.set_flat_params(model, params)
    part = user_slice(data.users, start, stop)
    U, _, _ = task.local_updates(
        model, data.X_train, data.y_train, part, epochs=cfg.local_epochs, lr=cfg.local_lr,
        batch_size=cfg.batch_size or None, rng=train_coins,
    )
    return privatize_cohort(cfg, U, rnd, start, np.random.default_rng(mech_coins))


def check_plan(cfg: FLConfig, dim: int) -> None:
    """The max-epsilon guard: raise :class:`ParameterError` when the plan's PLD ε (the codec of the
    model's real dimension ``dim``, composed over ``cfg.rounds``) would exceed ``cfg.max_epsilon``."""
    if cfg.max_epsilon > 0:
        event = round_codec(cfg, dim).transcript_event()
        if not isinstance(event, NonPrivateEvent):
            plan_epsilon(event, cfg.rounds, cfg.delta, "pld", max_epsilon=cfg.max_epsilon)


@dataclass
class ServerState:
    """Global parameters, server optimiser state and the privacy ledger."""

    cfg: FLConfig
    params: np.ndarray
    velocity: np.ndarray | None = None
    basic: BasicAccountant = field(default_factory=BasicAccountant)
    pld: PLDAccountant = field(default_factory=PLDAccountant)

    def event(self):
        return round_codec(self.cfg, self.params.size).transcript_event()

    def check_plan(self) -> None:
        """The max-epsilon guard: refuse, before training, a plan that would exceed it."""
        check_plan(self.cfg, self.params.size)

    def decode(self, rnd: int, payloads, start: int, stop: int):
        codec = round_codec(self.cfg, self.params.size)
        if len(payloads) != stop - start:
            raise ParameterError(f"{len(payloads)} payloads for a cohort of {stop - start} users")
        return codec.decode(payloads, run_seed=self.cfg.seed, round=rnd, clients=np.arange(start, stop))

    def apply(self, total: np.ndarray, n_ok: int) -> None:
        """θ ← θ + η·v, v ← μ v + mean of the decoded estimates (FedAvg with server momentum)."""
        if n_ok == 0:
            return
        mean = total / n_ok
        self.velocity = mean if self.velocity is None else self.cfg.server_momentum * self.velocity + mean
        self.params = (self.params + self.cfg.server_lr * self.velocity).astype(np.float32)

    def account(self) -> tuple[float, float, float]:
        """(ε this round, ε total basic, ε total PLD) after recording one round."""
        ev = self.event()
        if isinstance(ev, NonPrivateEvent):
            return float("inf"), float("inf"), float("inf")
        self.basic.step(ev)
        self.pld.step(ev)
        eps_round = plan_epsilon(ev, 1, self.cfg.delta, "basic").epsilon
        return eps_round, self.basic.get_epsilon(self.cfg.delta), self.pld.get_epsilon(self.cfg.delta)
