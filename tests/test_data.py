"""Tests of ldp_rec.data: digits split, partitions, Synthetic(α, β), hub loaders offline."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats

from ldp_rec.data import Partition, load_digits_split, make_synthetic, partition
from ldp_rec.data import hub
from ldp_rec.errors import InputError, ParameterError


# --------------------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits():
    return load_digits_split(0)


def test_digits_shapes_dtypes_range(digits):
    Xtr, ytr, Xte, yte = load_digits_split(0, scaling="unit")
    np.testing.assert_allclose(Xtr, load_digits_split(0, scaling="unit")[0])
    assert Xtr.shape == (1437, 64) and Xte.shape == (360, 64)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64 and yte.dtype == np.int64
    assert Xtr.min() >= 0.0 and Xtr.max() <= 1.0 and Xtr.max() == 1.0
    assert set(np.unique(ytr)) == set(range(10))


def test_digits_split_is_stratified_and_seeded(digits):
    Xtr, ytr, Xte, yte = digits
    total = np.bincount(ytr, minlength=10) + np.bincount(yte, minlength=10)
    # stratified: each class's test count is within 1 of 20 % of the class
    assert np.all(np.abs(np.bincount(yte, minlength=10) - 0.2 * total) <= 1.0)
    again = load_digits_split(0)
    for a, b in zip(digits, again):
        np.testing.assert_array_equal(a, b)
    other = load_digits_split(1)
    assert not np.array_equal(other[0], Xtr)


def test_digits_standard_scaling(digits):
    Xtr, _, Xte, _ = digits  # the default
    unit = load_digits_split(0, scaling="unit")[0].astype(np.float64)
    sd = unit.std(axis=0)
    np.testing.assert_allclose(Xtr[:, sd > 0], ((unit - unit.mean(0)) / np.where(sd > 0, sd, 1))[:, sd > 0], rtol=1e-4, atol=1e-4)
    live = Xtr.std(axis=0) > 0
    np.testing.assert_allclose(Xtr.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Xtr.std(axis=0)[live], 1.0, atol=1e-4)
    with pytest.raises(ParameterError):
        load_digits_split(0, scaling="minmax")


# --------------------------------------------------------------------------- partitions
def test_partition_container_round_trip():
    groups = [np.array([4, 1]), np.array([], dtype=np.int64), np.array([0, 2, 3])]
    p = Partition.from_list(groups)
    assert p.num_users == 3 and list(p.sizes) == [2, 0, 3]
    for g, h in zip(groups, p.as_list()):
        np.testing.assert_array_equal(g, h)
    np.testing.assert_array_equal(p[-1], [0, 2, 3])
    sub = p.select([2, 0])
    assert [list(a) for a in sub.as_list()] == [[0, 2, 3], [4, 1]]
    with pytest.raises(InputError):
        Partition(np.arange(3), np.array([0, 2]))
    with pytest.raises(IndexError):
        p[3]


def test_per_example_partition_is_fast_and_exact():
    n = 200_000
    X, y = np.zeros((n, 1)), np.zeros(n, dtype=np.int64)
    t = time.perf_counter()
    p = partition(X, y, None, "per_example")
    assert time.perf_counter() - t < 0.2
    assert p.num_users == n and np.all(p.sizes == 1)
    np.testing.assert_array_equal(p.indices, np.arange(n))
    with pytest.raises(ParameterError):
        partition(X, y, 10, "per_example")


def _assert_exact_cover(p: Partition, n: int) -> None:
    np.testing.assert_array_equal(np.sort(p.indices), np.arange(n))  # every index exactly once


def test_iid_partition(digits):
    Xtr, ytr, _, _ = digits
    p = partition(Xtr, ytr, 10, "iid", seed=3)
    _assert_exact_cover(p, len(ytr))
    assert p.sizes.max() - p.sizes.min() <= 1
    np.testing.assert_array_equal(p.indices, partition(Xtr, ytr, 10, "iid", seed=3).indices)
    assert not np.array_equal(p.indices, partition(Xtr, ytr, 10, "iid", seed=4).indices)
    # shuffled: user 0 is not simply the first rows
    assert not np.array_equal(np.sort(p[0]), np.arange(p.sizes[0]))


def _mean_tv_to_global(p: Partition, y: np.ndarray) -> float:
    h = p.labels_histogram(y, 10).astype(float)
    keep = h.sum(1) > 0
    local = h[keep] / h[keep].sum(1, keepdims=True)
    glob = np.bincount(y, minlength=10) / y.size
    return float(0.5 * np.abs(local - glob).sum(1).mean())


def test_dirichlet_partition_covers_and_skews(digits):
    Xtr, ytr, _, _ = digits
    skewed = partition(Xtr, ytr, 20, "dirichlet", seed=0, alpha=0.1)
    _assert_exact_cover(skewed, len(ytr))
    np.testing.assert_array_equal(skewed.indices, partition(Xtr, ytr, 20, "dirichlet", seed=0, alpha=0.1).indices)
    flat = partition(Xtr, ytr, 20, "dirichlet", seed=0, alpha=1000.0)
    _assert_exact_cover(flat, len(ytr))
    # α = 0.1: users hold a few classes (mean TV to the global label law ≈ 0.7);
    # α = 1000: near IID (measured ≈ 0.02).
    assert _mean_tv_to_global(skewed, ytr) > 0.5
    assert _mean_tv_to_global(flat, ytr) < 0.2
    with pytest.raises(ParameterError):
        partition(Xtr, ytr, 20, "dirichlet", alpha=0.0)
    with pytest.raises(ParameterError):
        partition(Xtr, ytr, 5, "shards")


# --------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def synth():
    return make_synthetic(1.0, 1.0, 30, seed=0)


def test_synthetic_shapes_and_determinism(synth):
    d = synth
    assert d.X_train.shape[1] == 60 and d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.num_clients == 30 and d.test_partition.num_users == 30
    counts = d.partition.sizes + d.test_partition.sizes
    assert counts.min() >= 50  # floor(LogNormal(4, 2)) + 50
    # 90 % / 10 % split per device
    np.testing.assert_array_equal(d.partition.sizes, np.floor(counts * 0.9).astype(int))
    _assert_exact_cover(d.partition, d.X_train.shape[0])
    again = make_synthetic(1.0, 1.0, 30, seed=0)
    np.testing.assert_array_equal(again.X_train, d.X_train)
    np.testing.assert_array_equal(again.y_test, d.y_test)
    Xk, yk = d.client_arrays()[3]
    np.testing.assert_array_equal(Xk, d.X_train[d.partition[3]])
    # heavy-tailed power law: the largest device holds far more than the median
    assert counts.max() > 5 * np.median(counts)


def test_synthetic_label_distribution_differs_across_devices(synth):
    """α = β = 1: label laws differ across devices (chi² homogeneity test rejects, p < 1e-10);
    Synthetic-IID: they do not (p > 1e-3, fixed seed)."""
    h = synth.partition.labels_histogram(synth.y_train, 10)
    h = h[:, h.sum(0) > 0]
    p_het = stats.chi2_contingency(h)[1]
    assert p_het < 1e-10
    iid = make_synthetic(0.0, 0.0, 30, seed=1, iid=True, max_samples=400)
    hi = iid.partition.labels_histogram(iid.y_train, 10)
    hi = hi[:, hi.sum(0) > 0]
    assert stats.chi2_contingency(hi)[1] > 1e-3


def test_synthetic_covariance_and_means():
    """Within a device x ~ N(v_k, diag(j^-1.2)): the pooled within-device variance of feature j
    matches j^-1.2 to 8 % (N ≈ 1.5·10^4, relative s.e. ≈ 1.2 %; j^-1 would be off by 60^0.2 = 2.3×).
    With β = 0, v_k entries ~ N(0, 1): their variance over devices and features is 1 ± 10 %."""
    d = make_synthetic(0.0, 0.0, 60, seed=2, max_samples=1000)
    X = np.concatenate([d.X_train, d.X_test]).astype(np.float64)
    owner = np.concatenate([np.repeat(np.arange(60), d.partition.sizes), np.repeat(np.arange(60), d.test_partition.sizes)])
    counts = np.bincount(owner)
    means = np.zeros((60, 60))
    np.add.at(means, owner, X)
    means /= counts[:, None]
    resid = X - means[owner]
    var = (resid**2).sum(0) / (X.shape[0] - 60)
    target = np.arange(1, 61) ** -1.2
    assert np.max(np.abs(var / target - 1)) < 0.08
    # client means are v_k + noise of variance ≤ 1/50
    assert abs(means.var() - 1.0) < 0.1
    wide = make_synthetic(0.0, 5.0, 60, seed=2, max_samples=200)
    wide_means = np.array([x.mean() for x, _ in wide.client_arrays()])
    assert wide_means.std() > 2.5  # B_k ~ N(0, 5²) shifts whole devices


def test_synthetic_bad_parameters():
    with pytest.raises(ParameterError):
        make_synthetic(-1.0, 0.0)
    with pytest.raises(ParameterError):
        make_synthetic(0.0, 0.0, test_fraction=1.0)


# --------------------------------------------------------------------------- hub (offline)
def test_hub_offline_env_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    with pytest.raises(RuntimeError, match="needs internet access to the Hugging Face hub"):
        hub.load_hub_dataset("mnist", num_partitions=10)
    assert time.perf_counter() - t < 1.0


def test_hub_unreachable_host_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HUB_HOST", "hub.invalid")  # RFC 2606: never resolves
    t = time.perf_counter()
    with pytest.raises(hub.HubUnavailableError, match="use dataset=digits or synthetic offline"):
        hub.load_hub_dataset("cifar10", num_partitions=10, timeout=2.0)
    assert time.perf_counter() - t < 5.0


def test_hub_unknown_name():
    with pytest.raises(ParameterError):
        hub.load_hub_dataset("imagenet", num_partitions=10)


# ----------------------------------------------------- hub loaders on a small local copy (no download)
def _image_split(n, shape, label_key, image_key, rng, extra=None):
    """A ``datasets.Dataset`` in the hub's format: PIL images in ``image_key``, int labels, extra columns."""
    import datasets
    from PIL import Image

    pix = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    cols = {image_key: [Image.fromarray(p) for p in pix], label_key: rng.integers(0, 10, n).tolist(), **(extra or {})}
    feats = {image_key: datasets.Image(), label_key: datasets.Value("int64")}
    feats.update({k: datasets.Value("string") for k in (extra or {})})
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats)), pix


@pytest.fixture()
def local_hub(monkeypatch, tmp_path):
    """flwr-datasets' FederatedDataset served from small data sets saved on disk in each hub data set's
    format (mnist and cifar10: train and test splits; femnist: train only, with writer ids)."""
    import datasets
    import flwr_datasets

    rng = np.random.default_rng(0)
    writers = [f"w{k % 7}" for k in range(60)]
    made = {
        "ylecun/mnist": {"train": _image_split(50, (28, 28), "label", "image", rng),
                         "test": _image_split(20, (28, 28), "label", "image", rng)},
        "uoft-cs/cifar10": {"train": _image_split(40, (32, 32, 3), "label", "img", rng),
                            "test": _image_split(10, (32, 32, 3), "label", "img", rng)},
        "flwrlabs/femnist": {"train": _image_split(60, (28, 28), "character", "image", rng,
                                                   extra={"writer_id": writers})},
    }
    for hub_id, splits in made.items():
        datasets.DatasetDict({k: v[0] for k, v in splits.items()}).save_to_disk(tmp_path / hub_id)
    calls = []

    class LocalFederatedDataset:
        def __init__(self, *, dataset, partitioners, seed=42, **kw):
            calls.append((dataset, partitioners))
            self._dd = datasets.load_from_disk(str(tmp_path / dataset))

        def load_split(self, split):
            return self._dd[split]

    monkeypatch.setattr(flwr_datasets, "FederatedDataset", LocalFederatedDataset)
    monkeypatch.setattr(hub, "check_hub_reachable", lambda *a, **k: None)
    return made, calls


def test_hub_loaders_offline_arrays_and_layout(local_hub):
    made, calls = local_hub
    m = hub.load_hub_arrays("mnist", seed=0)
    assert m.X_train.shape == (50, 784) and m.X_test.shape == (20, 784) and m.writers is None
    assert m.X_train.dtype == np.float32 and m.y_train.dtype == np.int64
    np.testing.assert_allclose(m.X_train, made["ylecun/mnist"]["train"][1].reshape(50, -1) / 255.0, rtol=1e-6)
    c = hub.load_hub_arrays("cifar10", seed=0)
    hwc = made["uoft-cs/cifar10"]["train"][1]  # (n, 32, 32, 3) pixels become CHW rows for the CNN
    np.testing.assert_allclose(c.X_train.reshape(40, 3, 32, 32), hwc.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    assert calls[0][0] == "ylecun/mnist" and calls[1][0] == "uoft-cs/cifar10"


def test_femnist_natural_split_holds_out_part_of_every_writer(local_hub):
    f = hub.load_hub_arrays("femnist", seed=3)
    assert f.X_train.shape[0] + f.X_test.shape[0] == 60 and f.writers.shape == (f.X_train.shape[0],)
    assert f.X_test.shape[0] == 7  # every writer holds 8 or 9 examples: round(10%) = 1 of each is held out
    assert np.bincount(f.writers).tolist() == [8, 8, 8, 8, 7, 7, 7]
    users = Partition.from_owners(f.writers)
    assert users.num_users == 7 and sorted(users.indices.tolist()) == list(range(f.X_train.shape[0]))
    assert all((f.writers[users[k]] == k).all() for k in range(7))
    again = hub.load_hub_arrays("femnist", seed=3)
    np.testing.assert_array_equal(again.y_test, f.y_test)


@pytest.mark.parametrize("dataset, model, shape, users", [
    ("mnist", "cnn", (1, 28, 28), 50), ("cifar10", "logreg", (3, 32, 32), 40), ("femnist", "mlp", (1, 28, 28), 7)])
def test_fl_runs_on_hub_data_sets_offline(local_hub, dataset, model, shape, users):
    """The `ldp-rec fl --dataset mnist|cifar10|femnist` path (argument parsing, data, model, codec at the
    model's dimension, one client round decoded by the server) on the local copies."""
    from ldp_rec.cli import build_parser
    from ldp_rec.experiments.fl import config_from_args
    from ldp_rec.fl import federation as F
    from ldp_rec.fl.server import FederationServer

    F._load.cache_clear()
    try:
        args = build_parser("fl").parse_args(["fl", "--dataset", dataset, "--model", model, "--rounds", "1"])
        cfg = config_from_args(args, "ldp-rec")
        assert cfg.partition == ("natural" if dataset == "femnist" else "per_example")
        data = F.load_data(cfg)
        assert data.input_shape == shape and data.num_classes == (62 if dataset == "femnist" else 10)
        assert data.users.num_users == users
        server = FederationServer(cfg)
        res = F.client_round(cfg, server.params, 1, np.arange(3))
        assert server.decode(1, res.frame, np.arange(3)).ok.all()
    finally:
        F._load.cache_clear()
