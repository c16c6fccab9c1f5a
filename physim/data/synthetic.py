"""Seeded synthetic tasks of any length: the adding problem, delayed recall, a tiny 2-class set.

Every generator takes an explicit ``np.random.Generator`` and returns batch-first arrays
``X`` (n_samples, length, n_channels) float64.
"""

from __future__ import annotations

import numpy as np

from physim.data.specs import DataError

#: largest input array (bytes, float64) a synthetic task may allocate; a guard against
#: ``length=50_000, n_samples=10_000`` silently asking for gigabytes
MAX_ARRAY_BYTES = 2 * 1024**3

#: default sample count of synthetic tasks, reduced for long sequences to keep arrays near
#: DEFAULT_ARRAY_BYTES
DEFAULT_N_SAMPLES = 1000
DEFAULT_ARRAY_BYTES = 256 * 1024**2


def default_n_samples(length: int, n_channels: int) -> int:
    """DEFAULT_N_SAMPLES, fewer (at least 32) when that would exceed DEFAULT_ARRAY_BYTES."""
    fit = DEFAULT_ARRAY_BYTES // (8 * length * n_channels)
    return int(min(DEFAULT_N_SAMPLES, max(32, fit)))


def check_budget(n_samples: int, length: int, n_channels: int, what: str) -> None:
    """Raise :class:`DataError` when the input array would exceed MAX_ARRAY_BYTES."""
    need = 8 * n_samples * length * n_channels
    if need > MAX_ARRAY_BYTES:
        raise DataError(
            f"{what}: n_samples={n_samples} × length={length} × {n_channels} channels needs "
            f"{need / 1024**3:.1f} GiB, above the {MAX_ARRAY_BYTES / 1024**3:.0f} GiB budget; "
            "lower n_samples or length"
        )


def adding_problem(
    n_samples: int,
    length: int,
    rng: np.random.Generator,
    values: tuple[float, float] = (0.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997; U[0, 1] values as in Le et al. 2015).

    Channel 0 holds values drawn from U[values] (default U[0, 1]; the original paper used
    U[−1, 1], which leaves no constant offset in the input); channel 1 is 0 except for two
    markers (= 1), one at a uniformly drawn step of the first half and one in the second half.
    The target is the sum of the two marked values (in [2·low, 2·high]), to be read out at the
    final step. Predicting the mean gives MSE (high − low)²/6 in these raw units (1/6 for U[0, 1]).

    Returns
    -------
    X : (n_samples, length, 2) float64
    y : (n_samples,) float64, the raw sums
    """
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    low, high = values
    if not low < high:
        raise ValueError(
            f"the adding problem needs values = (low, high) with low < high, got {values}"
        )
    half = length // 2
    X = np.zeros((n_samples, length, 2))
    X[:, :, 0] = rng.uniform(low, high, size=(n_samples, length))
    first = rng.integers(0, half, size=n_samples)
    second = rng.integers(half, length, size=n_samples)
    rows = np.arange(n_samples)
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    y = X[rows, first, 0] + X[rows, second, 0]
    return X, y


def delayed_recall(
    n_samples: int, length: int, n_symbols: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Copy/memory task as classification: recall the symbol shown at step 0 after a long delay.

    Channels 0 … n_symbols−1 are a one-hot code: the sample's symbol s is shown at step 0
    only; steps 1 … L−1 carry zeros plus Gaussian noise of std ``noise`` on those channels.
    Channel n_symbols is a recall cue, 1 at the final step only. The label is s (uniform over
    the symbols), so chance accuracy is 1/n_symbols.

    Returns
    -------
    X : (n_samples, length, n_symbols + 1) float64
    y : (n_samples,) int64
    """
    if length < 2:
        raise ValueError(f"the copy task needs length >= 2, got {length}")
    X = np.zeros((n_samples, length, n_symbols + 1))
    if noise > 0:
        X[:, 1:, :n_symbols] = rng.normal(0.0, noise, size=(n_samples, length - 1, n_symbols))
    y = rng.integers(0, n_symbols, size=n_samples)
    X[np.arange(n_samples), 0, y] = 1.0
    X[:, -1, n_symbols] = 1.0
    return X, y.astype(np.int64)


def two_tone(
    n_samples: int, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Tiny fallback classification set: which of two tones is in a noisy sine (1 channel).

    Class c has 2·(c + 1) periods over the window, a random phase and N(0, 0.3²) noise;
    classes are balanced (alternating, before the split's shuffle).
    """
    y = np.arange(n_samples) % 2
    t = np.arange(length) / length
    phase = rng.uniform(0.0, 2 * np.pi, size=(n_samples, 1))
    periods = 2.0 * (y[:, None] + 1)
    X = np.sin(2 * np.pi * periods * t[None, :] + phase)
    X += rng.normal(0.0, 0.3, size=X.shape)
    return X[:, :, None], y.astype(np.int64)
