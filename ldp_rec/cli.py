"""The ``ldp-rec`` command: thin dispatch over the experiment runners.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their subcommand runs.

User errors (a bad value, a nonsense pair, an existing or unwritable result file, an impossible
budget) are :class:`~ldp_rec.errors.LdpRecError`: the command prints one line
``ldp-rec: error: …`` and exits 2, with no traceback. Every runner checks its whole configuration
before it starts work; the result file (``--out``) of the commands that write one file is checked
here, before the runner is called.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("ldp_rec.experiments.demo", "run the main job on the embedded default"),
    "mechanisms": ("ldp_rec.experiments.mechanisms_table", "closed-form vs measured MSE of every mechanism"),
    "bench": ("ldp_rec.experiments.bench", "benchmarks (bench rec: steps/bits of the channel simulators)"),
    "dme": ("ldp_rec.experiments.dme", "distributed mean estimation with compressed LDP"),
    "fl": ("ldp_rec.experiments.fl", "federated learning under LDP with REC (Flower simulation)"),
    "report": ("ldp_rec.experiments.report", "render a report from result files"),
    "audit": ("ldp_rec.experiments.audit", "statistical privacy audit of a codec's transcript"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldp-rec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if only is None or only == name:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a command whose module is not built yet
                if exc.name != module:
                    raise
                p.set_defaults(_missing=module)
                continue
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        parser.error(f"command {args.command!r} is not available in this build ({args._missing} missing)")
    from .errors import LdpRecError

    try:
        check_output(args)
        return int(args._run(args) or 0)
    except LdpRecError as exc:  # a user error (bad value, nonsense pair, impossible budget): one line, no traceback
        print(f"ldp-rec: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # a runner's own one-line refusal, raise SystemExit("...")
        if not isinstance(exc.code, str):
            raise
        print(f"ldp-rec: error: {' '.join(exc.code.split())}", file=sys.stderr)
        return 2


#: commands whose ``--out`` is always one result file (``fl`` and ``dme`` check their own: a file, or a
#: sweep's folder)
ONE_FILE_OUT = ("mechanisms", "bench", "audit")


def check_output(args) -> None:
    """Refuse an existing (without ``--force``) or unwritable ``--out`` and a negative ``--seed`` (seeds
    are non-negative integers everywhere) before the command runs."""
    from ._validation import check_output_path, check_positive_int

    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not isinstance(seed, bool):
        check_positive_int(seed, "--seed", minimum=0)

    if args.command in ONE_FILE_OUT and isinstance(getattr(args, "out", None), str) and args.out:
        check_output_path(args.out, force=bool(getattr(args, "force", False)))
    roots = getattr(args, "results_dir", None) if args.command == "report" else None
    for root in [roots] if isinstance(roots, str) else roots or []:
        from pathlib import Path

        from .errors import ParameterError

        if not Path(root).is_dir():
            raise ParameterError(f"{root} is not a folder of result files")


if __name__ == "__main__":
    raise SystemExit(main())
