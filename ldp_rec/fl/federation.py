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
depend only on the number of nodes (the k-th smallest node id gets the k-th range), and a node's
private randomness is seeded by (seed, round, cohort start), so a run is reproducible even though
simulated node ids are random. (In this simulator a node can produce any user's data: the
embedded data sets are generated deterministically on every node.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..codec.registry import FIXED_CANDIDATE_CODECS, make_codec, make_mechanism
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
    """Index bits of MRC-type codecs: ⌈ε·log2 e⌉ + 4 unless configured."""
    if cfg.bits:
        return int(cfg.bits)
    if cfg.codec in FIXED_CANDIDATE_CODECS:
        return int(np.ceil(cfg.epsilon * np.log2(np.e))) + 4
    return None


@functools.lru_cache(maxsize=16)
def _codec(mode, mechanism, codec, epsilon, dim, clip, bits, alpha):
    if mode == "none":
        return make_codec(None, "none", dim=dim)
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


@dataclass
class ClientResult:
    payloads: list
    num_examples: int
    loss: float
    rejected: int


def client_round(cfg: FLConfig, params: np.ndarray, rnd: int, start: int, stop: int) -> ClientResult:
    """A node's work for users ``start … stop−1``: local training, non-finite rejection, clipping,
    privatisation and encoding. A rejected user's payload is empty (the server counts it)."""
    data = load_data(cfg)
    if not 0 <= start <= stop <= data.users.num_users:
        raise ParameterError(f"cohort [{start}, {stop}) outside 0..{data.users.num_users}")
    model = make_fl_model(cfg, data)
    models.set_flat_params(model, params)
    part = user_slice(data.users, start, stop)
    U, losses, nex = task.local_updates(
        model, data.X_train, data.y_train, part, epochs=cfg.local_epochs, lr=cfg.local_lr,
        batch_size=cfg.batch_size or None, rng=np.random.SeedSequence([cfg.seed, rnd, start, 11]),
    )
    ok = ~task.check_finite(U)
    ids = np.arange(start, stop)
    payloads = [b""] * (stop - start)
    if ok.any():
        Uc = task.clip_updates(U[ok], cfg.clip)
        codec = round_codec(cfg, U.shape[1])
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, rnd, start, 13]))
        enc = codec.encode(Uc, run_seed=cfg.seed, round=rnd, clients=ids[ok], rng=rng)
        for i, p in zip(np.flatnonzero(ok), enc):
            payloads[i] = p
    return ClientResult(payloads, int(nex.sum()), float(np.nanmean(losses)) if len(losses) else float("nan"),
                        int((~ok).sum()))


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
        if self.cfg.max_epsilon > 0 and not isinstance(self.event(), NonPrivateEvent):
            plan_epsilon(self.event(), self.cfg.rounds, self.cfg.delta, "pld", max_epsilon=self.cfg.max_epsilon)

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
