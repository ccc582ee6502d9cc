"""Checkpoints of a federated run after each completed round, so an interrupted run can resume.

A checkpoint is two files, ``NAME.npz`` (arrays) and ``NAME.json`` (everything else), written
after every round by :meth:`~ldp_rec.fl.server.FederationServer.record` when the server has a
``checkpoint`` path:

* arrays: the global parameters, the server optimiser's velocity (momentum), the per-user
  participation counts of the privacy ledger (:class:`~ldp_rec.privacy.ledger.UserLedger`);
* json: the format name and :data:`VERSION`, the run's config record, the last completed round,
  the rows so far, and the position of the server's own generator (cdp noise).

Every other random draw of a round is a pure function of public coordinates or of the seeded
private coins (cohort: ``(seed, round)``; clients: ``(private_seed, round, first user)``, see
:mod:`.federation`), so these are all the generator positions there are, and a resumed run with
``private_seed >= 0`` replays the uninterrupted one exactly. With OS-entropy private coins the
resumed rounds draw fresh coins, as any run does.

The ``.json`` is written last and names the round of the ``.npz``, so a checkpoint torn by a kill
is detected, not used. A checkpoint of another config or another format version is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import ParameterError

FORMAT = "ldp-rec-fl-checkpoint"
VERSION = 1


def paths(path) -> tuple[Path, Path]:
    path = Path(path)
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def exists(path) -> bool:
    return paths(path)[1].exists()


def _atomic(target: Path, write) -> None:
    tmp = target.with_name(target.name + ".tmp")
    write(tmp)
    os.replace(tmp, target)


def save(path, *, config: dict, round: int, arrays: dict[str, np.ndarray], state: dict) -> None:
    """Write the checkpoint ``path`` (.npz then .json, each atomically)."""
    npz, js = paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)

    def write_npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, round=np.int64(round), **arrays)

    _atomic(npz, write_npz)
    doc = {"format": FORMAT, "version": VERSION, "round": int(round), "config": config, **state}
    # internal file: floats round-trip exactly (inf/nan kept) so a resumed run equals an uninterrupted one
    _atomic(js, lambda tmp: tmp.write_text(json.dumps(doc, indent=1, allow_nan=True)))


def load(path, *, config: dict) -> tuple[dict, dict]:
    """(state, arrays) of the checkpoint ``path``, refused (ParameterError, one line) if it is of
    another format or version, torn, or of a config other than ``config``."""
    npz, js = paths(path)
    try:
        doc = json.loads(js.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ParameterError(f"cannot read checkpoint {js}: {exc}") from None
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ParameterError(f"{js} is not an ldp-rec FL checkpoint of version {VERSION} "
                             f"(format {doc.get('format')!r}, version {doc.get('version')!r})")
    theirs = doc.get("config", {})
    diff = sorted(k for k in set(theirs) | set(config) if theirs.get(k) != config.get(k))
    if diff:
        shown = ", ".join(f"{k} {theirs.get(k)!r} there, {config.get(k)!r} here" for k in diff[:3])
        raise ParameterError(f"checkpoint {js} is of a different configuration ({shown}"
                             f"{', …' if len(diff) > 3 else ''}); resume with the run's own settings")
    try:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read checkpoint arrays {npz}: {exc}") from None
    if int(arrays.pop("round", -1)) != doc["round"]:
        raise ParameterError(f"checkpoint {npz} does not match {js.name} (torn write); it cannot be resumed")
    return doc, arrays
