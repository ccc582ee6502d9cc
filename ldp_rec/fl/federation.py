"""The client's side of a round, without Flower: data, the round's codec and the client's work.

The Flower apps (:mod:`.client_app`, :mod:`.server_app`, :mod:`.strategy`) only move bytes and
call these functions and the server's round (:mod:`.server`), so everything is testable (and
benchmarked) without Flower.

Client identity for seeds
-------------------------
Users have global ids ``0 … n_users−1``. Each round the *server* samples a cohort
(:mod:`.cohort`) and sends every node the ids of the users it hosts this round. Shared-randomness
keys are derived from ``(run seed, round, user id, chunk)``: the server decodes a reply with the
ids *it* assigned to the reply's source node (message metadata), never with ids read from the
payload. Payloads are also bound to (round, user, codec configuration) by their tag
(:mod:`ldp_rec.codec.wire`), so a replay of an earlier round's payload is rejected. (In this
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
from dataclasses import dataclass

import numpy as np

from ..codec.registry import FIXED_CANDIDATE_CODECS, make_codec, make_mechanism
from ..codec.registry import default_bits as registry_default_bits
from ..data.hub import HUB_DATASETS
from ..data.partition import Partition, partition
from ..errors import ParameterError
from . import models, task
from .config import FLConfig


@dataclass(frozen=True)
class FLData:
    """A federated data set: what every loader returns, built-in or your own.

    ``X_train`` ``(n, ...)`` and ``X_test`` ``(m, ...)``: finite float features (stored as float32,
    flattened to ``(n, prod(input_shape))``); ``y_train`` ``(n,)`` and ``y_test`` ``(m,)``: integer labels
    in ``0 … num_classes − 1``; ``users``: which training rows each user holds, a
    :class:`~ldp_rec.data.partition.Partition` or a list of per-user index arrays, or None to let the run
    split the rows (``partition``: per_example, iid, dirichlet); ``input_shape``: one example's shape
    (default ``X_train.shape[1:]``); ``num_classes`` (default: the largest label + 1).

    Your own data set: ``dataset="package.module:loader"`` (``--dataset``, or the run config's
    ``dataset``), where ``loader(*, seed: int, clients: int) -> FLData`` is called with the run's seed
    and ``clients`` (0 unless given) on the server and on every node, so it must be deterministic in
    ``seed`` and importable where the nodes run. A loader that returns ``users`` gives the run its
    natural split (``partition="natural"``, the command line's default for such a loader).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    users: Partition | None = None
    input_shape: tuple | None = None
    num_classes: int | None = None


def check_fldata(data, name: str) -> FLData:
    """``data`` as a checked :class:`FLData` (float32 flattened features, int64 labels, the defaults
    filled in); ParameterError with one line naming ``name`` otherwise."""
    from ..errors import LdpRecError

    if not isinstance(data, FLData):
        raise ParameterError(f"dataset {name!r}: the loader returned {type(data).__name__}, expected "
                             "ldp_rec.fl.federation.FLData")
    try:
        Xtr, ytr = task.as_examples(data.X_train, data.y_train, "train")
        Xte, yte = task.as_examples(data.X_test, data.y_test, "test")
        shape = tuple(int(s) for s in (data.input_shape or np.shape(data.X_train)[1:]))
        if int(np.prod(shape)) != Xtr.shape[1] or Xte.shape[1] != Xtr.shape[1]:
            raise ParameterError(f"input_shape {shape} does not match {Xtr.shape[1]} train and "
                                 f"{Xte.shape[1]} test features per example")
        k = int(data.num_classes) if data.num_classes is not None else int(max(ytr.max(), yte.max()) + 1)
        if k < 2 or ytr.max() >= k or yte.max() >= k:
            raise ParameterError(f"labels must lie in 0 … num_classes − 1 with num_classes >= 2 (num_classes {k})")
        users = data.users
        if users is not None and not isinstance(users, Partition):
            users = Partition.from_list(users)
        if users is not None and users.indices.size and users.indices.max() >= len(Xtr):
            raise ParameterError(f"users refer to row {users.indices.max()} but X_train has {len(Xtr)} rows")
    except LdpRecError as exc:
        raise ParameterError(f"dataset {name!r}: {exc}") from None
    return FLData(Xtr, ytr, Xte, yte, users, shape, k)


@functools.lru_cache(maxsize=4)
def load_custom_data(spec: str, *, seed: int, clients: int) -> FLData:
    """Your own data set ``"package.module:loader"`` (:class:`FLData`: the contract), checked."""
    from .._validation import load_object

    loader = load_object(spec, "dataset")
    try:
        data = loader(seed=int(seed), clients=int(clients))
    except Exception as exc:  # noqa: BLE001 - the user's loader failing is a user error
        raise ParameterError(f"dataset {spec!r}: loader(seed={seed}, clients={clients}) raised "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
    return check_fldata(data, spec)


@functools.lru_cache(maxsize=8)
def _load(dataset, seed, clients, scheme, dirichlet_alpha, syn_alpha, syn_beta, syn_min=50, syn_max=0) -> FLData:
    if dataset == "digits":
        from ..data.digits import DIGITS_NUM_CLASSES, load_digits_split

        Xtr, ytr, Xte, yte = load_digits_split(seed=seed)
        shape, k = (Xtr.shape[1],), DIGITS_NUM_CLASSES
    elif dataset == "synthetic":
        from ..data.synthetic import make_synthetic

        n_dev = clients if clients else 30
        syn = make_synthetic(syn_alpha, syn_beta, num_clients=n_dev, seed=seed, min_samples=syn_min,
                             max_samples=syn_max or None)
        Xtr, ytr, Xte, yte = syn.X_train, syn.y_train, syn.X_test, syn.y_test
        shape, k = (Xtr.shape[1],), int(max(ytr.max(), yte.max()) + 1)
        if scheme != "per_example":  # Synthetic(α, β) comes with its own non-IID device split
            return FLData(Xtr, ytr, Xte, yte, syn.partition, shape, k)
    elif dataset in HUB_DATASETS:
        from ..data.hub import load_hub_arrays

        hub = load_hub_arrays(dataset, seed=seed)
        Xtr, ytr, Xte, yte = hub.X_train, hub.y_train, hub.X_test, hub.y_test
        shape, k = hub.spec.input_shape, hub.spec.num_classes
        if scheme == "natural":
            if hub.writers is None:
                raise ParameterError(f"{dataset} has no natural split into users; use partition iid or dirichlet")
            return FLData(Xtr, ytr, Xte, yte, Partition.from_owners(hub.writers), shape, k)
    else:  # your own loader, "package.module:loader"
        own = load_custom_data(dataset, seed=seed, clients=clients)
        Xtr, ytr, Xte, yte = own.X_train, own.y_train, own.X_test, own.y_test
        shape, k = own.input_shape, own.num_classes
        if scheme == "natural":
            if own.users is None:
                raise ParameterError(f"dataset {dataset!r}: the loader returned no users, so there is no natural "
                                     "split; use partition per_example, iid or dirichlet")
            return own
    if scheme == "natural":
        raise ParameterError(f"{dataset} has no natural split into users; use partition per_example, iid or dirichlet")
    if scheme == "per_example":
        users = Partition.per_example(len(Xtr))
    else:
        users = partition(Xtr, ytr, clients, scheme, seed, alpha=dirichlet_alpha)
    return FLData(Xtr, ytr, Xte, yte, users, shape, k)


def load_data(cfg: FLConfig) -> FLData:
    return _load(cfg.dataset, cfg.seed, cfg.clients, cfg.partition, cfg.dirichlet_alpha, cfg.synthetic_alpha,
                 cfg.synthetic_beta, cfg.synthetic_min_samples, cfg.synthetic_max_samples)


def make_fl_model(cfg: FLConfig, data: FLData):
    width = {"hidden": cfg.width} if cfg.model == "mlp" and cfg.width else (
        {"channels": cfg.width} if cfg.model == "cnn" and cfg.width else {})
    return models.make_model(cfg.model, data.input_shape, data.num_classes, seed=cfg.seed, **width)


def default_bits(cfg: FLConfig) -> int | None:
    """Index bits of MRC-type codecs: the registry's one rule (:func:`~ldp_rec.codec.registry.default_bits`)
    unless configured."""
    if cfg.bits:
        return int(cfg.bits)
    if cfg.codec in FIXED_CANDIDATE_CODECS:
        return registry_default_bits(cfg.epsilon)
    return None


def mechanism_epsilon(cfg: FLConfig, dim: int, transcript_epsilon: float) -> float:
    """The mechanism ε at which ``cfg``'s codec has a transcript ε of ``transcript_epsilon``, from the
    codec's own transcript event (its factor: 1 for floats and modified MRC, 2 for MRC, 2α for PPR),
    never from a table. ValueError for a codec whose transcript has no finite ε."""
    from ..privacy.events import event_epsilon

    t = float(transcript_epsilon)
    if cfg.mode in ("none", "cdp"):
        return t
    factor = event_epsilon(round_codec(cfg.replace(epsilon=t), dim).transcript_event()) / t
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"codec {cfg.codec!r} has no finite transcript epsilon for {cfg.mechanism}")
    eps = t / factor
    got = event_epsilon(round_codec(cfg.replace(epsilon=eps), dim).transcript_event())
    if not np.isclose(got, t, rtol=1e-9):
        raise ValueError(f"codec {cfg.codec!r}: transcript epsilon is not linear in the mechanism's ({got} != {t})")
    return eps


def model_dim(cfg: FLConfig) -> int:
    """Number of model parameters (the dimension every codec of the run works in)."""
    return int(models.num_params(make_fl_model(cfg, load_data(cfg))))


def check_resources(cfg: FLConfig) -> None:
    """Refuse, before any work, a run whose nodes could not hold their cohort's updates (users × model
    dimension) or, for the fixed-candidate codecs, the 2^bits candidates of every user they encode at once."""
    import math

    from .._validation import check_candidate_memory, check_memory

    data = load_data(cfg)
    dim = model_dim(cfg)
    n = data.users.num_users
    if cfg.nodes > n:
        raise ParameterError(f"nodes ({cfg.nodes}) cannot exceed the number of users ({n}): a node hosts a cohort "
                             "of users")
    if cfg.sampling == "fixed" and cfg.cohort_size > n:
        raise ParameterError(f"cohort_size ({cfg.cohort_size}) cannot exceed the number of users ({n})")
    cohort = {"all": n, "fixed": min(cfg.cohort_size, n), "poisson": math.ceil(cfg.sample_rate * n)}[cfg.sampling]
    per_node = max(1, -(-cohort // cfg.nodes))
    check_memory(4.0 * 4 * per_node * dim, f"{per_node} users per node with a model of {dim} parameters",
                 "use a smaller model, more --nodes or a smaller cohort")
    if cfg.mode == "ldp-rec" and cfg.codec in FIXED_CANDIDATE_CODECS:
        width = round_codec(cfg, dim).mechanism.proj_dim if cfg.projection != "none" else dim  # candidates in R^k
        check_candidate_memory(codec=cfg.codec, bits=default_bits(cfg), users=per_node, dim=width)


@functools.lru_cache(maxsize=16)
def _codec(mode, mechanism, codec, epsilon, dim, clip, bits, alpha, projection="none", proj_dim=0):
    if mode in ("none", "cdp"):  # the clipped update as floats (cdp: to a trusted server that adds the noise)
        return make_codec(None, "none", dim=dim, clip=clip)
    if projection != "none":  # ProjUnit front end: PrivUnitG in R^k behind the codec (ldp_rec.codec.projection)
        mech = make_mechanism("fastprojunit" if projection == "srht" else "projunit", epsilon=epsilon, dim=dim,
                              clip=clip, proj_dim=proj_dim, projection=projection)
        return make_codec(mech, "none" if mode == "ldp" else codec, bits=bits, alpha=alpha if codec == "ppr" else None)
    if mode == "ldp":
        return make_codec(make_mechanism(mechanism, epsilon=epsilon, dim=dim, clip=clip), "none")
    opts = {"alpha": alpha} if codec == "ppr" else {}
    return make_codec(mechanism, codec, epsilon=epsilon, dim=dim, bits=bits, clip=clip, **opts)


def round_codec(cfg: FLConfig, dim: int):
    return _codec(cfg.mode, cfg.mechanism, cfg.codec, float(cfg.epsilon), int(dim), float(cfg.clip),
                  default_bits(cfg), float(cfg.alpha), cfg.projection, int(cfg.proj_dim))


def private_coins(cfg: FLConfig, rnd: int, first_user: int) -> np.random.SeedSequence:
    """The node's private randomness for round ``rnd`` and the cohort whose first user id is
    ``first_user``: fresh OS entropy (``SeedSequence()``), or, only with ``cfg.private_seed >= 0``
    (simulation), ``SeedSequence([private_seed, rnd, first_user])``. Never derived from the run seed."""
    if cfg.private_seed < 0:
        return np.random.SeedSequence()
    return np.random.SeedSequence([cfg.private_seed, rnd, first_user])


@dataclass
class ClientResult:
    """What a node computed for its cohort. Only ``frame`` (the cohort's wire-v2 frame,
    :func:`ldp_rec.codec.wire.pack_cohort`) leaves the node; ``replaced`` (users whose local update
    was non-finite and was replaced by the public value 0) stays on it."""

    frame: bytes
    replaced: int


def privatize_cohort(cfg: FLConfig, U: np.ndarray, rnd: int, users, rng) -> ClientResult:
    """Clip, privatise and encode the updates ``U`` of the user ids ``users`` with the private ``rng``.

    A non-finite update is replaced by the public value 0 (which the mechanism privatises like any
    other input), so every user sends a body of the same form and length: the server cannot
    tell from the transcript that a user's data produced NaN."""
    bad = task.check_finite(U)
    if bad.any():
        U = U.copy()
        U[bad] = 0.0
    codec = round_codec(cfg, U.shape[1])
    frame = codec.encode_cohort(task.clip_updates(U, cfg.clip), run_seed=cfg.seed, round=rnd,
                                clients=np.asarray(users, dtype=np.int64), rng=rng)
    return ClientResult(frame, int(bad.sum()))


def check_users(users, n_users: int) -> np.ndarray:
    """The cohort's user ids as int64, distinct and within the population (ParameterError if not)."""
    ids = np.asarray(users)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise ParameterError("user ids must be a 1-D integer array")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n_users):
        raise ParameterError(f"user ids outside 0..{n_users - 1}")
    if np.unique(ids).size != ids.size:
        raise ParameterError("user ids of a cohort must be distinct")
    return ids


def client_round(cfg: FLConfig, params: np.ndarray, rnd: int, users, *,
                 coins: np.random.SeedSequence | None = None) -> ClientResult:
    """A node's work for the user ids ``users``: local training, clipping, privatisation and
    encoding, all private randomness from ``coins`` (default :func:`private_coins`)."""
    data = load_data(cfg)
    ids = check_users(users, data.users.num_users)
    if ids.size == 0:
        return ClientResult([], 0)
    train_coins, mech_coins = (coins if coins is not None else private_coins(cfg, rnd, int(ids[0]))).spawn(2)
    model = make_fl_model(cfg, data)
    models.set_flat_params(model, params)
    U, _, _ = task.local_updates(
        model, data.X_train, data.y_train, data.users.select(ids), epochs=cfg.local_epochs, lr=cfg.local_lr,
        batch_size=cfg.batch_size or None, rng=train_coins,
    )
    return privatize_cohort(cfg, U, rnd, ids, np.random.default_rng(mech_coins))

