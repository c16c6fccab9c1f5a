"""The :class:`Dataset` every loader returns: split arrays, task facts and batching."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

Split = Literal["train", "val", "test"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset split into train / validation / test, ready for a sequence model.

    Arrays are **batch-first**: ``X_*`` has shape (n, length, n_channels), float64, read-only.
    (physim's simulator is time-major, ``u`` (n_steps, batch, n_inputs): use
    ``X.transpose(1, 0, 2)``.) When ``time_channel`` is true, channel 0 is t/L, t = 0 … L−1.

    Classification: ``y_*`` are int64 class codes, shape (n,); ``class_names[code]`` is the
    original label; ``target_steps`` is None (the model pools over time).

    Regression: ``y_*`` are float64, shape (n, len(target_steps), n_targets), the targets at
    time indices ``target_steps`` (0-based into the length axis), already normalised for a
    tanh output: ``y = (raw − target_offset) / target_scale`` with training-split statistics;
    :meth:`denormalize` undoes it (an MSE in raw units is ``target_scale**2`` × the
    normalised MSE).

    Attributes
    ----------
    name : str
        Dataset name given to :func:`physim.data.load_dataset`.
    task : {'classification', 'regression'}
    n_classes : int or None
        Number of classes (None for regression).
    n_channels : int
        Input channels including the time channel.
    length : int
        Time steps per sample.
    channel_mean, channel_std : ndarray (n_data_channels,)
        Standardisation fitted on the training split (0 and 1 when not standardised); the
        time channel is never standardised and is not included.
    source : str
        Where the data came from (package and files, or ``synthetic:…``).
    spec : pydantic model
        The validated options (a :data:`physim.data.DataSpec`); ``spec.model_dump_json()`` is
        the provenance to store in logs.
    """

    name: str
    task: Task
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    n_channels: int
    length: int
    time_channel: bool
    class_names: tuple[str, ...]
    target_steps: np.ndarray | None
    target_offset: float
    target_scale: float
    channel_mean: np.ndarray
    channel_std: np.ndarray
    source: str
    spec: object

    def __post_init__(self) -> None:
        for field in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
            arr = np.ascontiguousarray(getattr(self, field))
            arr.setflags(write=False)
            object.__setattr__(self, field, arr)

    @property
    def n_outputs(self) -> int:
        """Decoder width: n_classes, or the number of regression targets per step."""
        return int(self.n_classes) if self.n_classes is not None else int(self.y_train.shape[-1])

    @property
    def sizes(self) -> dict[str, int]:
        return {s: int(self.arrays(s)[0].shape[0]) for s in ("train", "val", "test")}

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of a split."""
        if split == "train":
            return self.X_train, self.y_train
        if split == "val":
            return self.X_val, self.y_val
        if split == "test":
            return self.X_test, self.y_test
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")

    def batches(
        self,
        split: Split,
        batch_size: int,
        rng: np.random.Generator | None = None,
        *,
        drop_last: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over ``(X, y)`` minibatches of a split, batch-first.

        Parameters
        ----------
        split : {'train', 'val', 'test'}
        batch_size : int
            Samples per batch (>= 1); the last batch is smaller unless ``drop_last``.
        rng : numpy Generator or None
            Shuffles the order (one permutation per call); None keeps the stored order.
        drop_last : bool
            Skip a final incomplete batch.
        """
        X, y = self.arrays(split)
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy Generator (np.random.default_rng(seed)) or None, "
                f"got {type(rng).__name__}"
            )
        n = X.shape[0]
        order = rng.permutation(n) if rng is not None else np.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield X[idx], y[idx]

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """Regression targets or predictions back in raw units (e.g. bpm for ``ppg``)."""
        if self.task != "regression":
            raise ValueError(f"{self.name} is a classification dataset: there is nothing to undo")
        return np.asarray(y) * self.target_scale + self.target_offset

    def class_counts(self, split: Split) -> np.ndarray:
        """Samples per class in a split (classification only)."""
        if self.n_classes is None:
            raise ValueError(f"{self.name} is a regression dataset: it has no classes")
        return np.bincount(self.arrays(split)[1], minlength=self.n_classes)

    def describe(self) -> str:
        """One-line summary: name, task, shapes and split sizes."""
        s = self.sizes
        what = f"{self.n_classes} classes" if self.n_classes else f"{self.n_outputs} target(s)"
        return (
            f"{self.name}: {self.task}, {what}, length {self.length}, {self.n_channels} channels"
            f"{' (incl. time)' if self.time_channel else ''}, "
            f"train/val/test {s['train']}/{s['val']}/{s['test']} [{self.source}]"
        )
