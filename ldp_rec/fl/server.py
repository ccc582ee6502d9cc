"""The server's round, without Flower: one object that every runner drives.

:class:`FederationServer` holds the global parameters, the server optimiser state, the per-user
privacy ledger and the round's assignment. A round is two calls:

1. :meth:`FederationServer.plan` samples the cohort among the eligible users (:mod:`.cohort`) and
   assigns it to the nodes that are there;
2. :meth:`FederationServer.finish` takes one :class:`Reply` per assigned node (a cohort frame,
   a refusal, a failure, or nothing), decodes each node's frame with the ids *it* assigned (a
   corrupt user fails its own row only, :mod:`ldp_rec.codec.wire`), aggregates, applies the
   update, charges the ledger of exactly the users whose messages decoded, and returns the
   round's row.

The Flower strategy (:mod:`.strategy`), the in-process runner (:func:`run_in_process`, used by
the simulation suites) and the tests all use it, so there is one copy of the round.

Aggregation
-----------
* ``none``, ``ldp``, ``ldp-rec``: the mean of the decoded (unbiased) estimates.
* ``cdp`` (user-level DP-FedAvg, McMahan, Ramage, Talwar, Zhang, ICLR 2018; references.md §7): the
  clients send their update clipped to C; the trusted server sums them, adds N(0, σ²C² I) and
  divides by the *expected* cohort size q·U (fixed denominator). The guarantee is that of the
  Poisson-subsampled Gaussian composed over rounds (:func:`~ldp_rec.privacy.ledger.dpfedavg_epsilon`);
  σ is calibrated to the run's total ε unless ``noise_multiplier`` is set. The server's noise
  comes from its own coins (OS entropy; seeded with ``private_seed`` in a simulation).

Then ``θ ← θ + η·v`` with ``v ← μ v + aggregate`` (FedAvg with server momentum).

Checkpoint, resume, stop
------------------------
With ``server.checkpoint`` set to a path, every completed round (:meth:`FederationServer.record`)
is saved there (:mod:`.checkpoint`); :meth:`FederationServer.resume` restores one, and the runners
continue from round ``server.rounds_done + 1``. ``server.stop`` (a ``threading.Event``) asks the
runners to stop after the round in progress; :func:`run_in_process` checks it between rounds.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codec.core import DecodeResult
from ..errors import ParameterError
from ..privacy.accountant import plan_epsilon
from ..privacy.events import NonPrivateEvent
from ..privacy.ledger import UserLedger, dpfedavg_epsilon, dpfedavg_noise_multiplier
from . import checkpoint as ckpt
from . import models, task
from .cohort import assign, sample_cohort, sampling_rate
from .config import FLConfig
from .federation import load_data, make_fl_model, round_codec


@dataclass
class Reply:
    """What the server got from one assigned node: ``frame`` (the cohort frame of its assigned
    users), or a ``refused`` reason (the node's own policy), or a ``failed`` reason (error,
    malformed, missing)."""

    frame: bytes | None = None
    coins: str = ""
    refused: str = ""
    failed: str = ""


class FederationServer:
    """The server of a run (module doc)."""

    def __init__(self, cfg: FLConfig, params: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.data = load_data(cfg)
        self.model = make_fl_model(cfg, self.data)
        self.params = (models.get_flat_params(self.model) if params is None else
                       np.asarray(params, dtype=np.float32).copy())
        self.velocity: np.ndarray | None = None
        self.n_users = self.data.users.num_users
        self.codec = round_codec(cfg, self.params.size)
        event = self.codec.transcript_event() if cfg.mode != "cdp" else NonPrivateEvent()
        self.ledger = UserLedger(self.n_users, event, cfg.delta)
        self.q = sampling_rate(self.n_users, sampling=cfg.sampling, cohort_size=cfg.cohort_size,
                               rate=cfg.sample_rate)
        self.sigma = self._noise_multiplier() if cfg.mode == "cdp" else 0.0
        self.server_rng = np.random.default_rng(
            np.random.SeedSequence() if cfg.private_seed < 0 else np.random.SeedSequence([cfg.private_seed, 0x5E]))
        self.assigned: dict[int, np.ndarray] = {}
        self.rows: list[dict] = []
        self.checkpoint: Path | None = None  # save every completed round here (module doc)
        self.stop = threading.Event()  # set: the runners stop after the round in progress
        self._recorded = False  # has this object recorded a round (see record)
        self._check_budget()

    # ---- set-up
    def _noise_multiplier(self) -> float:
        c = self.cfg
        if c.noise_multiplier > 0:
            return float(c.noise_multiplier)
        return dpfedavg_noise_multiplier(target_epsilon=c.epsilon, sample_rate=self.q, rounds=c.rounds, delta=c.delta)

    @property
    def epsilon_round(self) -> float:
        """Transcript ε of one participation (LDP modes; inf for non-private, nan for cdp)."""
        if self.cfg.mode == "cdp":
            return math.nan
        if not self.ledger.private:
            return math.inf
        return float(plan_epsilon(self.ledger.event, 1, self.cfg.delta, "basic").epsilon)

    def _check_budget(self) -> None:
        """Refuse before any work a per-user budget that not even one participation fits."""
        b = self.cfg.max_epsilon
        if b > 0 and self.cfg.mode in ("ldp", "ldp-rec") and not self.ledger.epsilon_of(1) <= b:
            raise ParameterError(f"one participation costs epsilon {self.ledger.epsilon_of(1):.4g}, above the "
                                 f"per-user budget max_epsilon {b}: no user could ever take part")

    # ---- the round
    def plan(self, rnd: int, node_ids) -> dict[int, np.ndarray]:
        """Sample round ``rnd``'s cohort (public randomness from the run seed) and assign it to ``node_ids``."""
        c = self.cfg
        eligible = self.ledger.eligible(c.max_epsilon) if c.mode in ("ldp", "ldp-rec") else None
        rng = np.random.default_rng([c.seed, rnd, 0xC0407])
        cohort = sample_cohort(self.n_users, sampling=c.sampling, cohort_size=c.cohort_size, rate=c.sample_rate,
                               eligible=eligible, rng=rng)
        self.assigned = assign(cohort, node_ids)
        self.nodes_missing = max(0, c.nodes - len(self.assigned))
        self._t0 = time.perf_counter()
        return self.assigned

    def decode(self, rnd: int, frame, users) -> DecodeResult:
        """Decode one node's cohort frame for the users the server assigned to it (in that order)."""
        return self.codec.decode_cohort(frame, run_seed=self.cfg.seed, round=rnd,
                                        clients=np.asarray(users, dtype=np.int64))

    def finish(self, rnd: int, replies: dict[int, Reply], *, log=None) -> dict:
        """Aggregate the replies of the assigned nodes (a node without a reply counts as failed)."""
        total = np.zeros(self.params.size)
        n_ok = n_failed = n_refused = 0
        bits, coins, decoded = [], set(), []
        frame_bytes = frame_users = 0  # bytes on the wire per user: whole frames over their users
        replied = 0
        for node, users in self.assigned.items():
            reply = replies.get(node)
            if reply is None:
                reply = Reply(failed="no reply")
            else:
                replied += 1
            if reply.refused:
                n_refused += users.size
                _log(log, "round %d: node %s refused: %s", rnd, node, reply.refused)
                continue
            if reply.failed or reply.frame is None:
                n_failed += users.size
                _log(log, "round %d: node %s failed: %s", rnd, node, reply.failed or "no frame")
                continue
            try:
                res = self.decode(rnd, reply.frame, users)
            except Exception as exc:  # a malformed reply fails its node's cohort, not the round
                n_failed += users.size
                _log(log, "round %d: node %s sent a malformed reply: %s", rnd, node, exc)
                continue
            coins.add(reply.coins)
            total += res.estimates[res.ok].sum(axis=0)
            n_ok += int(res.ok.sum())
            n_failed += res.n_failed
            decoded.append(users[res.ok])
            if res.ok.any():
                bits.extend(res.bits[res.ok].tolist())
                frame_bytes += len(reply.frame)
                frame_users += users.size
        if decoded:
            self.ledger.charge(np.concatenate(decoded))  # only users whose payloads were decoded
        self.apply(total, n_ok)
        row = {"round": rnd, "cohort_size": int(sum(u.size for u in self.assigned.values())),
               "clients_ok": n_ok, "clients_failed": n_failed, "clients_refused": n_refused,
               "private_coins": sorted(coins), "nodes_sampled": len(self.assigned), "nodes_replied": replied,
               "nodes_missing": self.nodes_missing,
               "payload_bits_per_client": float(np.mean(bits)) if bits else 0.0,
               "message_bytes_per_client": frame_bytes / frame_users if frame_users else 0.0,
               **self.privacy_row(rnd)}
        self._pending = row
        return row

    def apply(self, total: np.ndarray, n_ok: int) -> None:
        """Aggregate (module doc) and take the server step."""
        c = self.cfg
        if c.mode == "cdp":
            denom = self.q * self.n_users
            noisy = total + self.server_rng.normal(0.0, self.sigma * c.clip, size=total.shape)
            mean = noisy / denom
        elif n_ok == 0:
            return
        else:
            mean = total / n_ok
        self.velocity = mean if self.velocity is None else c.server_momentum * self.velocity + mean
        self.params = (self.params + c.server_lr * self.velocity).astype(np.float32)

    def privacy_row(self, rnd: int) -> dict:
        """ε per participation and the population's ε after round ``rnd`` (max/median/mean user)."""
        c = self.cfg
        if c.mode == "cdp":
            # the Poisson-subsampled Gaussian's analysis; fixed-size sampling (without replacement) is not
            # covered by it, so such a run reports no epsilon rather than a wrong one
            eps = (None if c.sampling == "fixed" else
                   dpfedavg_epsilon(sample_rate=self.q, noise_multiplier=self.sigma, rounds=rnd, delta=c.delta))
            return {"epsilon_round": None, "noise_multiplier": self.sigma, "sample_rate": self.q,
                    "epsilon_total": eps, "epsilon_total_pld": eps, "epsilon_user_max": eps,
                    "epsilon_user_median": eps, "epsilon_user_mean": eps, "users_retired": 0}
        s = self.ledger.summary(c.max_epsilon)
        kmax = s["participations_max"]
        basic = 0.0 if kmax == 0 else (math.inf if not self.ledger.private else
                                       float(plan_epsilon(self.ledger.event, kmax, c.delta, "basic").epsilon))
        return {"epsilon_round": self.epsilon_round, "epsilon_total": basic, "epsilon_total_pld": s["epsilon_user_max"],
                **{k: s[k] for k in ("epsilon_user_max", "epsilon_user_median", "epsilon_user_mean",
                                     "participations_max", "users_retired")}}

    def evaluate(self) -> tuple[float, float]:
        """(test loss, test accuracy) of the current global model."""
        models.set_flat_params(self.model, self.params)
        return task.evaluate(self.model, self.data.X_test, self.data.y_test)

    def record(self, row: dict, loss: float, accuracy: float) -> dict:
        """Complete the round: its row gets the evaluation and the round's seconds (from :meth:`plan`
        to now), with ``warm_up`` true for the first round this server ran (a fresh run's round 1, a
        resumed run's first round), whose seconds include the nodes' start-up; saved to
        ``checkpoint`` if set."""
        row = {**row, "accuracy": accuracy, "loss": loss, "seconds": time.perf_counter() - self._t0,
               "warm_up": not self._recorded}  # this process's first round: its seconds carry the start-up
        self._recorded = True
        self.rows.append(row)
        if self.checkpoint is not None:
            self.save(self.checkpoint)
        return row

    # ---- checkpoint and resume
    @property
    def rounds_done(self) -> int:
        return len(self.rows)

    def save(self, path) -> None:
        """Checkpoint the server after its last completed round (:mod:`.checkpoint`)."""
        arrays = {"params": self.params, "ledger_counts": self.ledger.counts}
        if self.velocity is not None:
            arrays["velocity"] = self.velocity
        ckpt.save(path, config=self.cfg.to_record(), round=self.rounds_done, arrays=arrays,
                  state={"rows": self.rows, "server_rng": self.server_rng.bit_generator.state})

    @classmethod
    def resume(cls, cfg: FLConfig, path) -> "FederationServer":
        """The server of ``cfg`` as it was after the round checkpointed at ``path`` (ParameterError
        for a checkpoint of another config or format)."""
        server = cls(cfg)
        doc, arrays = ckpt.load(path, config=cfg.to_record())
        if arrays["params"].shape != server.params.shape or arrays["ledger_counts"].shape != server.ledger.counts.shape:
            raise ParameterError(f"checkpoint {path} does not fit this run's model or population")
        server.params = arrays["params"].astype(np.float32)
        server.velocity = arrays.get("velocity")
        server.ledger.counts = arrays["ledger_counts"].astype(np.int32)
        server.server_rng.bit_generator.state = doc["server_rng"]
        server.rows[:] = doc["rows"]
        return server

    def final_record(self) -> dict:
        """What a result file keeps of the population's privacy: the per-user distribution."""
        if self.cfg.mode == "cdp":
            last = self.rows[-1] if self.rows else {}
            return {"mode": "cdp", "epsilon_every_user": last.get("epsilon_total"), "delta": self.cfg.delta,
                    "noise_multiplier": self.sigma, "sample_rate": self.q}
        return {"mode": self.cfg.mode, **self.ledger.distribution()}


def _log(log, msg, *args) -> None:
    if log is not None:
        log.warning(msg, *args)


def run_in_process(cfg: FLConfig, *, progress=None, client=None,
                   server: FederationServer | None = None) -> tuple[list[dict], float, FederationServer]:
    """``cfg.rounds`` rounds with the nodes simulated in this process (ids 0 … nodes−1): the same
    server round and client work as the Flower apps, without Ray. ``client(cfg, params, rnd, users)``
    defaults to :func:`~ldp_rec.fl.federation.client_round`. A given ``server`` (for example
    :meth:`FederationServer.resume`) continues after its last completed round; the loop stops
    early, after a completed round, once ``server.stop`` is set."""
    from .federation import client_round

    client = client or client_round
    t_start = time.perf_counter()
    server = server if server is not None else FederationServer(cfg)
    for rnd in range(server.rounds_done + 1, cfg.rounds + 1):
        if server.stop.is_set():
            break
        assigned = server.plan(rnd, range(cfg.nodes))
        replies = {}
        for node, users in assigned.items():
            res = client(cfg, server.params, rnd, users)
            replies[node] = Reply(frame=res.frame, coins=cfg.private_coins)
        row = server.finish(rnd, replies)
        loss, acc = server.evaluate()
        row = server.record(row, loss, acc)
        if progress is not None:
            progress(row)
    return server.rows, time.perf_counter() - t_start, server
