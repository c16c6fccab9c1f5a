"""The paper's data protocol: seeded 70/15/15 split, training-only statistics, time channel.

Order of operations (see :func:`physim.data.load.build_dataset`): merge train+test →
optional seeded subset → seeded random split → per-channel standardisation fitted on the
training split → optional time channel t/L prepended (not standardised) → regression targets
mapped into tanh range with training statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.data.specs import DataError

#: train / validation / test fractions of the merged pool (paper: random 70/15/15)
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)

#: training targets are mapped onto [-TARGET_MARGIN, TARGET_MARGIN] so a tanh output can reach
#: them without saturating (val/test targets may fall slightly outside)
TARGET_MARGIN = 0.9


def split_sizes(n: int) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) for ``n`` samples: rounded 70 % and 15 %, the rest to test."""
    if n < 3:
        raise DataError(
            f"need at least 3 samples to split into train/val/test, got {n}; raise n_samples"
        )
    n_train = int(round(SPLIT_FRACTIONS[0] * n))
    n_val = int(round(SPLIT_FRACTIONS[1] * n))
    n_train = min(max(n_train, 1), n - 2)
    n_val = min(max(n_val, 1), n - n_train - 1)
    return n_train, n_val, n - n_train - n_val


def split_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random permutation of ``range(n)`` cut into train/val/test index arrays."""
    n_train, n_val, _ = split_sizes(n)
    perm = rng.permutation(n)
    return perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]


def subset_indices(n: int, n_keep: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted seeded random subset of ``range(n)`` of size ``n_keep`` (all when None)."""
    if n_keep is None or n_keep >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=n_keep, replace=False))


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """Per-channel mean and standard deviation fitted on training data (shape (n_channels,))."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X_train: np.ndarray) -> ChannelStats:
        """Statistics over every training sample and time step; a constant channel keeps std 1."""
        mean = X_train.mean(axis=(0, 1))
        std = X_train.std(axis=(0, 1))
        std = np.where(std > 0, std, 1.0)
        return cls(mean, std)

    @classmethod
    def identity(cls, n_channels: int) -> ChannelStats:
        return cls(np.zeros(n_channels), np.ones(n_channels))

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.std


def add_time_channel(X: np.ndarray) -> np.ndarray:
    """Prepend channel 0 = t/L for t = 0 … L−1 (same for every sample)."""
    n, length, _ = X.shape
    t = np.broadcast_to((np.arange(length) / length)[None, :, None], (n, length, 1))
    return np.concatenate([t, X], axis=2)


@dataclass(frozen=True)
class TargetScaling:
    """Affine map of regression targets: ``normalised = (raw − offset) / scale``."""

    offset: float = 0.0
    scale: float = 1.0

    @classmethod
    def from_range(cls, lo: float, hi: float) -> TargetScaling:
        """Map [lo, hi] onto [−TARGET_MARGIN, TARGET_MARGIN] (scale 1 if lo == hi)."""
        half = 0.5 * (hi - lo) / TARGET_MARGIN
        return cls(offset=0.5 * (hi + lo), scale=half if half > 0 else 1.0)

    @classmethod
    def fit(cls, y_train: np.ndarray) -> TargetScaling:
        """Map the training targets' range onto [−TARGET_MARGIN, TARGET_MARGIN]."""
        return cls.from_range(float(np.min(y_train)), float(np.max(y_train)))

    def apply(self, y: np.ndarray) -> np.ndarray:
        return (y - self.offset) / self.scale

    def invert(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y) * self.scale + self.offset


def window_starts(n_steps: int, length: int, stride: int) -> np.ndarray:
    """Start indices of every full window of ``length`` steps taken every ``stride`` steps."""
    if length > n_steps:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_steps - length + 1, stride, dtype=np.int64)


def output_steps(length: int, output_step: int) -> np.ndarray:
    """Time indices (0-based) of every ``output_step``-th step: output_step−1, 2·output_step−1, …"""
    return np.arange(output_step - 1, length, output_step, dtype=np.int64)
