"""Run the ldp-rec ClientApp/ServerApp on Flower's deployment engine over loopback.

The same apps as ``ldp-rec fl`` (which uses the simulation engine) run as real processes:
one ``flower-superlink --insecure`` on 127.0.0.1 (Fleet, Control and Runtime HTTP APIs on one
free port), N ``flower-supernode --insecure`` processes (each with its own Runtime API port and
``--node-config "partition-id=k num-partitions=N"``), and ``flwr run`` submitting a staged copy
of the app with the run configuration. Runtime dependency installation is off
(``FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1``): the apps import the packages of this
interpreter's environment. The script waits for the run to finish, writes the per-round rows
the ServerApp recorded, and stops every process it started (also on failure or Ctrl-C).
See :mod:`ldp_rec.tools.deploy` for the mechanics. Loopback and insecure mode: for testing only;
docker/README.md describes a real deployment with TLS and SuperNode authentication.

Usage::

    .venv/bin/python simulations/deploy_loopback.py --supernodes 2 --rounds 2 --clients 24 \
        --partition iid --mode ldp-rec --bits 8 --out results/deploy/loopback.json

    # only write the staged app (pyproject with every FLConfig key declared), e.g. for docker/:
    .venv/bin/python simulations/deploy_loopback.py --stage-only build/ldp-rec-app

Options not listed map one-to-one to :class:`ldp_rec.fl.config.FLConfig` fields
(``--set key=value`` for any other field, kebab-case). ``--nodes`` is always the number of
SuperNodes. Exit status: 0 on success, 1 if the deployment failed (the message names the
failing process and shows the tails of the logs kept under ``--workdir``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from ldp_rec.experiments.results import write_result
from ldp_rec.tools import deploy
from ldp_rec.fl.config import FLConfig
from ldp_rec.tools.proctree import become_subreaper


def _terminate(signum, frame):  # turn SIGTERM into an exception so the finally blocks run
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv=None) -> argparse.Namespace:
    d = FLConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernodes", type=int, default=2, help="number of SuperNodes (= FLConfig.nodes)")
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--clients", type=int, default=24, help="number of users (0 with --partition per_example)")
    p.add_argument("--partition", default="iid", choices=["per_example", "iid", "dirichlet"])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--mode", default="ldp-rec", choices=["none", "ldp", "ldp-rec"])
    p.add_argument("--mechanism", default=d.mechanism)
    p.add_argument("--codec", default=d.codec)
    p.add_argument("--epsilon", type=float, default=d.epsilon)
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other FLConfig field, kebab-case (repeatable)")
    p.add_argument("--serverapp-isolation", default="subprocess", choices=["subprocess", "process"],
                   help="'process': a separate flower-superexec runs the ServerApp, as in docker/compose.yml")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds for the whole run")
    p.add_argument("--node-policy", default="", metavar="FILE|JSON",
                   help="the SuperNodes' own privacy policy (ldp_rec.fl.policy; default: refuse mode 'none', "
                        "seeded coins and epsilon > 10 per participation)")
    p.add_argument("--workdir", default=None, help="logs, staged app, Flower homes (default: a temp folder)")
    p.add_argument("--out", default=None, help="result JSON (default: <workdir>/result.json)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--stage-only", default=None, metavar="DIR", help="only write the staged app to DIR and exit")
    return p.parse_args(argv)


def config_from_args(args) -> FLConfig:
    kw = dict(dataset=args.dataset, clients=args.clients, partition=args.partition, rounds=args.rounds,
              mode=args.mode, mechanism=args.mechanism, codec=args.codec, epsilon=args.epsilon, bits=args.bits,
              seed=args.seed, nodes=args.supernodes)
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        extra[key.strip()] = value.strip()
    cfg = FLConfig(**kw)
    if extra:
        if "nodes" in extra:
            raise SystemExit("--set nodes=… is not allowed: --supernodes sets it")
        cfg = FLConfig.from_record({**cfg.to_record(), **extra})
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.stage_only:
        try:
            print(deploy.stage_app(Path(args.stage_only)))
        except deploy.DeploymentError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    cfg = config_from_args(args)
    settings = deploy.LoopbackSettings(supernodes=args.supernodes, timeout=args.timeout,
                                       serverapp_isolation=args.serverapp_isolation, node_policy=args.node_policy)
    signal.signal(signal.SIGTERM, _terminate)
    become_subreaper()  # orphaned SuperExec/app processes come back to us and get stopped
    t0 = time.perf_counter()
    try:
        res = deploy.run_loopback(cfg, settings=settings, workdir=args.workdir)
    except deploy.DeploymentError as exc:
        print(f"deployment failed after {time.perf_counter() - t0:.1f} s:\n{exc}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else Path(res.workdir) / "result.json"
    record = res.to_record()
    rows = record.pop("rows")
    record.pop("config")
    write_result(out, {"config": {"command": "deploy_loopback", "engine": "deployment", **cfg.to_record(),
                                  "supernodes": args.supernodes},
                       "rounds": rows, "deployment": record}, force=args.force)
    print(f"{'round':>5s} {'clients_ok':>10s} {'accuracy':>9s} {'loss':>8s} {'bits/user':>9s} {'eps total':>9s}")
    for r in rows:
        print(f"{r['round']:5d} {r['clients_ok']:10d} {r['accuracy']:9.4f} {r['loss']:8.4f} "
              f"{r['payload_bits_per_client']:9.1f} {r['epsilon_total']:9.3g}")
    print(f"run {res.run_id} {res.status} in {res.wall_seconds:.1f} s on {args.supernodes} SuperNodes "
          f"(flwr {res.flwr_version}); listeners: "
          + ", ".join(f"{r['process']}@{r['address']}:{r['port']}" for r in res.listening))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
