"""Bring your own model and data (issue 15 item 2): ``model="package.module:factory"`` and
``dataset="package.module:loader"`` through the Python API, the run config and ``ldp-rec fl``.

The example module is written to a temporary folder, as a user's own code would be; the contracts are
in :func:`ldp_rec.fl.models.make_model` (module doc) and :class:`ldp_rec.fl.federation.FLData`."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from ldp_rec.cli import main
from ldp_rec.errors import ParameterError
from ldp_rec.fl import federation as F
from ldp_rec.fl.config import FLConfig
from ldp_rec.fl.models import num_params

MODULE = "ldp_rec_byo_example"
SOURCE = '''
"""A user's own model and federated data set for ldp-rec."""
import numpy as np
import torch
from torch import nn

from ldp_rec.fl.federation import FLData


def tiny_mlp(input_shape, num_classes):
    """Contract: (input_shape, num_classes) -> torch.nn.Module mapping (batch, prod(input_shape)) to logits."""
    d = int(np.prod(input_shape))
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, num_classes))


def blobs(*, seed, clients):
    """Contract: (seed=, clients=) -> FLData. Three Gaussian classes in R^6; 24 users of 3 examples each."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((3, 6))
    y = rng.integers(0, 3, 102)
    X = (centres[y] + rng.standard_normal((102, 6))).astype(np.float32)
    users = [np.arange(3 * k, 3 * k + 3) for k in range(24)]
    return FLData(X[:72], y[:72], X[72:], y[72:], users=users)


def per_example(*, seed, clients):
    """The same data without users: the run splits it (per_example, iid, dirichlet)."""
    d = blobs(seed=seed, clients=clients)
    return FLData(d.X_train, d.y_train, d.X_test, d.y_test)


def not_a_module(input_shape, num_classes):
    return "a string"


def with_batchnorm(input_shape, num_classes):
    return nn.Sequential(nn.Linear(int(np.prod(input_shape)), 4), nn.BatchNorm1d(4), nn.Linear(4, num_classes))


def wrong_width(input_shape, num_classes):
    return nn.Linear(int(np.prod(input_shape)), num_classes + 1)


def not_fldata(*, seed, clients):
    return ([1, 2], [3])


def bad_labels(*, seed, clients):
    d = blobs(seed=seed, clients=clients)
    return FLData(d.X_train, d.y_train, d.X_test, d.y_test, num_classes=2)


def crashes(*, seed, clients):
    raise OSError("no such file: data.npz")
'''


@pytest.fixture()
def byo(tmp_path, monkeypatch):
    """The example module importable as a user's would be (its folder on sys.path); PYTHONPATH restored after."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    F._load.cache_clear()
    F.load_custom_data.cache_clear()
    yield tmp_path
    F._load.cache_clear()
    F.load_custom_data.cache_clear()


def test_own_model_and_data_through_the_python_api(byo):
    import os

    cfg = FLConfig(dataset=f"{MODULE}:blobs", model=f"{MODULE}:tiny_mlp", partition="natural", rounds=1)
    data = F.load_data(cfg)
    assert data.users.num_users == 24 and data.input_shape == (6,) and data.num_classes == 3
    model = F.make_fl_model(cfg, data)
    assert num_params(model) == 6 * 8 + 8 + 8 * 3 + 3
    # the same initialisation on every node (seeded from the run seed), another for another seed
    from ldp_rec.fl.models import get_flat_params

    np.testing.assert_array_equal(get_flat_params(model), get_flat_params(F.make_fl_model(cfg, data)))
    assert not np.array_equal(get_flat_params(model), get_flat_params(F.make_fl_model(cfg.replace(seed=1), data)))
    assert str(byo) in os.environ["PYTHONPATH"].split(os.pathsep)  # the simulation's workers import it too
    res = F.client_round(cfg, get_flat_params(model), 1, np.arange(24))
    from ldp_rec.fl.server import FederationServer

    assert FederationServer(cfg).decode(1, res.frame, np.arange(24)).ok.all()
    # a loader without users: the run splits its examples like a built-in data set's
    cfg2 = cfg.replace(dataset=f"{MODULE}:per_example", partition="iid", clients=9)
    assert F.load_data(cfg2).users.num_users == 9
    # the run config of `flwr run` carries the same strings
    assert FLConfig.from_record(cfg.to_record()) == cfg


@pytest.mark.parametrize("option, value, match", [
    ("--model", "not_a_module", "returned str, expected a torch.nn.Module"),
    ("--model", "with_batchnorm", "has buffers"),
    ("--model", "wrong_width", "expected logits (2, 3)"),
    ("--model", "nowhere", "has no attribute 'nowhere'"),
    ("--dataset", "not_fldata", "returned tuple, expected ldp_rec.fl.federation.FLData"),
    ("--dataset", "bad_labels", "labels must lie in 0 … num_classes − 1"),
    ("--dataset", "crashes", "raised OSError: no such file: data.npz"),
])
def test_bad_own_model_or_data_is_one_line_before_any_work(byo, option, value, match, capsys, monkeypatch):
    work = byo / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    other = {"--model": ["--dataset", f"{MODULE}:blobs"], "--dataset": ["--model", f"{MODULE}:tiny_mlp"]}[option]
    rc = main(["fl", "--rounds", "1", "--mode", "ldp-rec", option, f"{MODULE}:{value}", *other])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("ldp-rec: error: ") and "Traceback" not in err
    assert match in err, err
    assert list(work.iterdir()) == []


def test_bad_import_spec_syntax():
    with pytest.raises(ParameterError, match="unknown model"):
        FLConfig(model="pkg.module")
    with pytest.raises(ParameterError, match="unknown dataset"):
        FLConfig(dataset="a:b:c")


@pytest.mark.slow
def test_own_model_and_data_round_trip_through_ldp_rec_fl(byo, capsys, monkeypatch):
    """`ldp-rec fl --model M:f --dataset M:g` on Flower's simulation engine: 2 rounds, the nodes import the
    user's module, and the result file records the names and can be read back."""
    monkeypatch.chdir(byo)
    out = byo / "byo.json"
    rc = main(["fl", "--model", f"{MODULE}:tiny_mlp", "--dataset", f"{MODULE}:blobs", "--rounds", "2",
               "--nodes", "2", "--mode", "ldp-rec", "--epsilon", "4", "--clip", "1", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["config"]["model"] == f"{MODULE}:tiny_mlp" and res["config"]["dataset"] == f"{MODULE}:blobs"
    assert res["config"]["partition"] == "natural"
    rows = res["runs"]["ldp-rec"]
    assert [r["round"] for r in rows] == [1, 2]
    assert all(r["clients_ok"] == 24 and r["clients_failed"] == 0 for r in rows)
