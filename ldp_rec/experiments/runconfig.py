"""Run configuration files and sweeps for ``ldp-rec fl`` and ``ldp-rec dme`` (one copy for both).

A config file is TOML with the same keys as the command's options (kebab-case or snake_case;
for ``fl`` these are the :class:`~ldp_rec.fl.config.FLConfig` fields, i.e. the keys of
``[tool.flwr.app.config]``, plus the runner's own such as ``mode`` and ``out``). A
``pyproject.toml`` is read from its ``[tool.flwr.app.config]`` table. An optional ``[sweep]``
table maps keys to lists of values; ``seed`` (or ``seeds``) lists the seeds::

    rounds = 20
    epsilon = 4
    [sweep]
    epsilon = [2, 4, 8]
    seed = [0, 1, 2]

Precedence: an option given on the command line > the file > the option's default. A key swept on
the command line (``--sweep epsilon=2,4,8``, ``--seeds 0,1,2``) replaces the file's axis, and a
plain option given on the command line fixes a key the file sweeps. An unknown key is a one-line
:class:`~ldp_rec.errors.ParameterError`.

How the command line is told apart from defaults: :func:`add_config_arguments` makes every option
record its name in the namespace's ``_given`` set when it is parsed (the values themselves stay
plain), and :func:`resolve` lets exactly those override the file.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError

# options that are about the invocation, never read from a file or swept
NOT_IN_FILE = frozenset({"help", "config", "sweep", "seeds", "resume", "force", "verbose"})
NOT_SWEPT = frozenset({"out", "mode", "poll_interval"})


_RECORDING: dict[type, type] = {}


def _recording(cls: type) -> type:
    """``cls`` (an argparse Action class) that also adds its dest to ``namespace._given``."""
    if cls not in _RECORDING:
        def __call__(self, parser, namespace, values, option_string=None):
            cls.__call__(self, parser, namespace, values, option_string)
            namespace._given = getattr(namespace, "_given", frozenset()) | {self.dest}

        _RECORDING[cls] = type(f"Recording{cls.__name__}", (cls,), {"__call__": __call__})
    return _RECORDING[cls]


def given(args) -> frozenset:
    """The dests of the options given on the command line (module doc)."""
    return frozenset(getattr(args, "_given", ()))


def add_config_arguments(p: argparse.ArgumentParser, *, resume: bool = False) -> None:
    """Add ``--config``, ``--sweep``, ``--seeds`` (and ``--resume``) to a parser whose other options
    are already added, and make every option record that it was given (module doc). Call last in
    ``add_arguments``."""
    for a in p._actions:
        if a.option_strings and a.dest != "help" and type(a) not in _RECORDING.values():
            a.__class__ = _recording(type(a))
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="TOML file with the same keys as these options; options given here override it")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="sweep KEY over the values (repeatable: the grid is the product); one result per point")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...", help="run every grid point with each seed")
    if resume:
        p.add_argument("--resume", default=None, metavar="OUT",
                       help="resume the interrupted run (or sweep) whose output is OUT, from its last completed round")


def option_table(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The options a config file may set, by dest."""
    return {a.dest: a for a in p._actions if a.option_strings and a.dest not in NOT_IN_FILE}


def _key(key: str, known: dict, where: str) -> str:
    name = str(key).replace("-", "_")
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
        raise ParameterError(f"{where}: unknown key {key!r}{hint}; known keys: "
                             f"{', '.join(sorted(k.replace('_', '-') for k in known))}")
    return name


def convert(action: argparse.Action, value, where: str):
    """``value`` (from TOML or a ``--sweep`` string) as the option's type, checked against its choices."""
    name = action.option_strings[-1]
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ParameterError(f"{where}: {name} takes true or false, got {value!r}")
        return value
    if isinstance(value, list) and action.dest == "mode":
        value = ",".join(map(str, value))
    if isinstance(value, (list, dict)):
        raise ParameterError(f"{where}: {name} takes one value, got {value!r} (lists go in [sweep])")
    typ = action.type or str
    try:
        if typ is int and (isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())):
            raise ValueError
        out = typ(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {name} takes a {getattr(typ, '__name__', typ)}, got {value!r}") from None
    if action.choices is not None and out not in action.choices:
        raise ParameterError(f"{where}: {name} must be one of {list(action.choices)}, got {out!r}")
    return out


def load_config(path, known: dict[str, argparse.Action]) -> tuple[dict, dict]:
    """(values, sweep axes) of a TOML config file, keys as dests, values converted (module doc)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ParameterError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{path} is not valid TOML: {exc}") from None
    if "tool" in doc:  # a pyproject.toml: its Flower run config
        doc = dict(doc.get("tool", {}).get("flwr", {}).get("app", {}).get("config", {}))
    sweep_doc = doc.pop("sweep", {})
    if not isinstance(sweep_doc, dict):
        raise ParameterError(f"{path}: 'sweep' must be a table of lists")
    values = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            raise ParameterError(f"{path}: unknown table [{key}]; a run config has top-level keys (the options) "
                                 "and an optional [sweep] table")
        name = _key(key, known, str(path))
        values[name] = convert(known[name], value, str(path))
    axes = {}
    for key, value in sweep_doc.items():
        name = "seed" if key == "seeds" else _key(key, {k: v for k, v in known.items() if k not in NOT_SWEPT},
                                                    f"{path} [sweep]")
        vals = value if isinstance(value, list) else [value]
        if not vals:
            raise ParameterError(f"{path} [sweep]: {key} has no values")
        axes[name] = [convert(known[name], v, f"{path} [sweep]") for v in vals]
    return values, axes


def parse_sweep(items, seeds, known: dict[str, argparse.Action]) -> dict[str, list]:
    """Axes from ``--sweep KEY=V1,V2`` (repeatable) and ``--seeds S1,S2``."""
    axes = {}
    for item in items or []:
        key, sep, vals = item.partition("=")
        if not sep or not vals.strip():
            raise ParameterError(f"--sweep {item!r}: expected KEY=V1,V2,...")
        name = _key(key.strip(), {k: v for k, v in known.items() if k not in NOT_SWEPT}, "--sweep")
        axes[name] = [convert(known[name], v.strip(), "--sweep") for v in vals.split(",") if v.strip()]
    if seeds is not None:
        axes["seed"] = [convert(known["seed"], v.strip(), "--seeds") for v in str(seeds).split(",") if v.strip()]
        if not axes["seed"]:
            raise ParameterError("--seeds: no seeds given")
    return axes


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its folder name, the swept values, and the full option namespace."""

    name: str
    params: dict
    args: argparse.Namespace


def resolve(args: argparse.Namespace, parser_options: dict[str, argparse.Action]) -> tuple[argparse.Namespace, dict]:
    """Merge defaults, the config file and the command line (module doc) into a new namespace and
    the sweep axes."""
    explicit = given(args)
    file_values, file_axes = ({}, {}) if not getattr(args, "config", None) else load_config(args.config, parser_options)
    out = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "_given"})
    for k, v in file_values.items():
        if k not in explicit:
            setattr(out, k, v)
    cli_axes = parse_sweep(getattr(args, "sweep", None), getattr(args, "seeds", None), parser_options)
    axes = {k: v for k, v in file_axes.items() if k not in explicit}
    axes.update(cli_axes)
    return out, axes


def _label(v) -> str:
    return format(v, "g") if isinstance(v, float) else str(v)


def expand(base: argparse.Namespace, axes: dict[str, list]) -> list[Point]:
    """Every point of the grid (the product of the axes, seeds varying fastest), each a namespace
    with the swept values set and a folder name such as ``epsilon=2_seed=0``."""
    keys = [k for k in axes if k != "seed"] + (["seed"] if "seed" in axes else [])
    points, names = [], set()
    for combo in itertools.product(*(axes[k] for k in keys)):
        params = dict(zip(keys, combo))
        name = "_".join(f"{k.replace('_', '-')}={_label(v)}" for k, v in params.items()) or "run"
        if name in names:
            raise ParameterError(f"the sweep repeats the point {name}")
        names.add(name)
        points.append(Point(name, params, argparse.Namespace(**{**vars(base), **params})))
    return points
