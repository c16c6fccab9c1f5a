"""Seeded, resumable training of an HSSM by chained RHEL or the BPTT twin.

Randomness is stateless per step: the batch of step ``k`` is slice ``k mod n_batches`` of a
permutation drawn from ``default_rng([seed, 1, epoch])`` and its dropout masks come from
``default_rng([seed, 2, k])``. A checkpoint therefore only needs parameters, Adam moments and
the early-stopping bookkeeping, and a resumed run continues bit-identically.

Outputs in ``out_dir``: ``checkpoint.npz`` (latest), ``best.npz`` (best validation),
``train_log.h5`` (a ``training`` log of :mod:`physim.logs`, flushed after every step), ``metrics.json``
and plots. A kill at any moment leaves a readable log and an intact checkpoint (written to a
temporary file, then renamed); a resumed run rebuilds the log from the rows up to its checkpoint
and then logs exactly what an uninterrupted run would.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physim import jsonio, memory
from physim.errors import NumericalFault, check_training
from physim.hssm.buffers import StepBuffers
from physim.hssm.chips import chip_states
from physim.hssm.config import ConfigError, TrainSpec, config_differences
from physim.hssm.model import HSSM, estimate_memory_bytes
from physim.logs import Axis, LogWriter
from physim.optim import AdamState, adam_update, clip_by_global_norm
from physim.spec_base import with_updates
from physim.stability import UnstableStepError
from physim.threads import single_threaded_blas

CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"
LOG = "train_log.h5"


def chips_record(model: HSSM) -> list[dict] | None:
    """What a log and metrics.json keep of a model whose cores are chips: per block the
    non-ideality spec as built and the chip's instrument seed."""
    if model.chips is None:
        return None
    return [
        {"block": c.block, "seed": c.seed, "nonideal": json.loads(c.nonideal.model_dump_json())}
        for c in model.chips
    ]


def open_train_log(
    path: Path,
    spec: TrainSpec,
    metric: str,
    resume_step: int | None,
    chips: list | None = None,
    dataset: str = "",
):
    """The run directory's training log: resumed up to ``resume_step`` (the checkpoint), else
    started afresh — ``physim train`` owns its ``--out`` directory and documents that it
    resumes, so the log of an earlier attempt at the same directory is replaced. ``dataset``
    is the resolved dataset (``Dataset.source``: ``tiny`` names which set it used)."""
    prov = {"train_config": spec.model_dump_json(), "metric": metric, "dataset": dataset}
    if chips is not None:
        prov["chips"] = json.dumps(chips)
    return LogWriter(path, provenance=prov, kind="training", force=True, resume_upto=resume_step)


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    params: dict[str, np.ndarray]
    out_dir: Path
    model: HSSM


def load_data(spec: TrainSpec):
    """The dataset of ``spec`` through :func:`physim.data.load_dataset`."""
    try:
        from physim.data import load_dataset
    except ImportError as err:  # the data module is optional for the model itself
        raise ConfigError(f"physim.data is not available in this installation: {err}") from None
    return load_dataset(
        spec.data,
        seed=spec.seed,
        time_channel=spec.time_channel,
        length=spec.length,
        n_samples=spec.n_samples,
        **spec.data_options,
    )


def _n_outputs(ds) -> int:
    if ds.task == "classification":
        return int(ds.n_classes)
    y = np.asarray(ds.y_train)
    return 1 if y.ndim == 1 else int(y.shape[-1])


def _regression_targets(model: HSSM, y: np.ndarray, n_steps: int) -> np.ndarray:
    """Targets as (n, n_out_steps, n_outputs); per-sample targets need one output step."""
    y = np.asarray(y, dtype=np.float64)
    n_out = model.n_out_steps(n_steps)
    if y.ndim == 1:
        y = y[:, None, None]
    elif y.ndim == 2:
        y = y[:, None, :]
    if y.shape[1] != n_out:
        raise ConfigError(
            f"regression targets have {y.shape[1]} value(s) per sample but the model reads "
            f"{n_out} output step(s) (L = {n_steps} // output_step = {model.spec.output_step or 1}); "
            f"set model.output_step = {n_steps // max(1, y.shape[1])}"
        )
    return y


def output_step_for(spec: TrainSpec, ds) -> TrainSpec:
    """Fill ``model.output_step`` from the dataset's regression target steps when unset."""
    steps = getattr(ds, "target_steps", None)
    if ds.task != "regression" or steps is None or spec.model.output_step is not None:
        return spec
    steps = np.asarray(steps)
    s = int(steps[0]) + 1
    if not np.array_equal(steps, np.arange(s - 1, int(ds.X_train.shape[1]), s)):
        raise ConfigError(
            f"dataset {spec.data!r} targets steps {steps[:4]}… which are not every s-th step; "
            "the HSSM regression head reads x[s-1::s]"
        )
    return with_updates(spec, model=with_updates(spec.model, output_step=s))


def check_memory(spec: TrainSpec, n_steps: int) -> int:
    """Estimated peak bytes of one training step; :class:`ConfigError` above the budget."""
    est = max(
        estimate_memory_bytes(spec.model, n_steps, spec.batch_size, spec.algo),
        estimate_memory_bytes(spec.model, n_steps, spec.eval_batch_size, None),
    )
    budget = spec.memory_budget_gb * 1e9
    if est > budget:
        per_step = est / n_steps
        raise ConfigError(
            f"sequence length {n_steps} needs about {est / 1e9:.2f} GB per training step with "
            f"{spec.algo} (batch {spec.batch_size}, {spec.model.n_blocks} blocks, H = "
            f"{spec.model.hidden}, P = {spec.model.ssm_dim}) but memory_budget_gb = "
            f"{spec.memory_budget_gb}; the budget allows L <= {int(budget // per_step)} — "
            "shorten the sequence, lower the batch size or raise memory_budget_gb"
        )
    # the configuration's own budget first, then the machine-wide one (physim.memory)
    memory.check(
        est,
        f"one {spec.algo} training step at L = {n_steps}, batch {spec.batch_size}",
        "shorten the sequence or lower the batch size",
    )
    return est


def baseline(ds, ys: dict, metric: str) -> float:
    """What a model that learned nothing scores on the test split: the majority class's share
    (accuracy) or the MSE of predicting the training targets' mean."""
    if metric == "accuracy":
        counts = np.bincount(np.asarray(ys["test"], dtype=np.int64))
        return float(counts.max() / counts.sum())
    mean = np.mean(ys["train"], axis=0)
    return float(np.mean((ys["test"] - mean) ** 2))


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> np.ndarray:
    """Sample indices of training step ``step`` (epoch permutations, last partial batch dropped)."""
    b = min(batch_size, n)
    per_epoch = n // b
    epoch, j = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, 1, epoch]).permutation(n)
    return perm[j * b : (j + 1) * b]


def learning_rate(spec: TrainSpec, step: int) -> float:
    """Adam's learning rate at training step ``step`` (0-based): a linear warm-up to ``lr``
    over ``lr_warmup`` steps, then ``lr`` or, with ``lr_decay = "cosine"``, half a cosine
    from ``lr`` down to 0 at step ``n_steps``."""
    k = step + 1
    if spec.lr_warmup and k <= spec.lr_warmup:
        return spec.lr * k / spec.lr_warmup
    if spec.lr_decay == "cosine":
        span = max(spec.n_steps - spec.lr_warmup, 1)
        frac = min(max(k - spec.lr_warmup, 0) / span, 1.0)
        return spec.lr * 0.5 * (1.0 + np.cos(np.pi * frac))
    return spec.lr


def stat_batches(spec: TrainSpec, step: int, X: np.ndarray):
    """The ``spec.norm_stat_batches`` training batches whose statistics the batch norms take
    before the evaluation at ``step`` (drawn without replacement while the set lasts)."""
    n = X.shape[0]
    b = min(spec.batch_size, n)
    k = spec.norm_stat_batches
    rng = np.random.default_rng([spec.seed, 3, step])
    idx = rng.permutation(n) if k * b <= n else rng.integers(0, n, size=k * b)
    for j in range(k):
        yield X[np.sort(idx[j * b : (j + 1) * b])]


def curve(run: str | Path) -> dict[str, list]:
    """A run's learning curve from its log, small enough for a results file: the step and
    validation metric of every evaluation, and the mean training metric over the steps since
    the previous evaluation."""
    from physim.logs import read_training

    log = read_training(Path(run) / LOG)
    metric = "accuracy" if "val_accuracy" in log else "mse"
    steps, val = log[f"val_{metric}"]["step"], log[f"val_{metric}"]["value"]
    ts, tv = log[metric]["step"], log[metric]["value"]
    edges = np.concatenate([[0], steps])
    train = [
        float(tv[(ts > a) & (ts <= b)].mean()) for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    return {"step": steps.tolist(), f"val_{metric}": val.tolist(), f"train_{metric}": train}


def evaluate(model: HSSM, params, X, y, batch_size: int) -> dict[str, float]:
    """Loss and metric (accuracy or MSE) over a split, in batches, without dropout."""
    tot: dict[str, float] = {}
    n = X.shape[0]
    for i in range(0, n, batch_size):
        out = model.predict(params, X[i : i + batch_size])
        _, _, m = model.loss(out, y[i : i + batch_size])
        w = out.shape[0] / n
        for k, v in m.items():
            tot[k] = tot.get(k, 0.0) + w * v
    return tot


def _save(path: Path, params, adam: AdamState | None, meta: dict, chips=None) -> None:
    arrays = {f"p/{k}": v for k, v in params.items()}
    if chips is not None:  # the chips' noise streams, drifts and converter ranges
        arrays["chips"] = np.frombuffer(pickle.dumps(chips), dtype=np.uint8)
    if adam is not None:
        arrays.update({f"m/{k}": v for k, v in adam.m.items()})
        arrays.update({f"v/{k}": v for k, v in adam.v.items()})
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)  # atomic: an interrupted write never leaves a broken checkpoint


def _load_chips(path: Path):
    """The chips' states a checkpoint holds (``None`` for ideal cores); written by physim
    itself (the checkpoint of this run's own folder), so unpickling it is safe."""
    with np.load(path) as z:
        return pickle.loads(z["chips"].tobytes()) if "chips" in z.files else None


def _load(path: Path) -> tuple[dict, dict, dict, dict]:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        parts: dict[str, dict] = {"p": {}, "m": {}, "v": {}}
        for key in z.files:
            if "/" in key:
                kind, name = key.split("/", 1)
                parts[kind][name] = z[key].copy()
    return parts["p"], parts["m"], parts["v"], meta


def load_init(source: str | Path, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parameters of an earlier run (a run directory's best.npz, or an .npz file), checked
    against the names and shapes of ``like`` (a fresh initialisation of this model)."""
    path = Path(source)
    if path.is_dir():
        path = path / BEST
    if not path.is_file():
        raise ConfigError(f"init_from: {path} does not exist (give a run directory or an .npz)")
    params = _load(path)[0]
    missing = sorted(set(like) - set(params))
    extra = sorted(set(params) - set(like))
    if missing or extra:
        raise ConfigError(
            f"init_from: {path} holds a different architecture (missing {missing[:4]}, "
            f"unexpected {extra[:4]})"
        )
    for k, v in like.items():
        if params[k].shape != v.shape:
            raise ConfigError(
                f"init_from: {path}: {k} has shape {params[k].shape}, this model needs {v.shape}"
            )
    return {k: np.array(params[k], dtype=np.float64) for k in like}


def train(*args, **kwargs) -> TrainResult:
    """Train with BLAS single-threaded (see :mod:`physim.threads`); arguments of :func:`_train`."""
    with single_threaded_blas():
        return _train(*args, **kwargs)


def _train(
    spec: TrainSpec,
    out_dir: str | Path,
    *,
    dataset=None,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    plots: bool = True,
) -> TrainResult:
    """Train, evaluate and write checkpoints, the HDF5 log, ``metrics.json`` and plots.

    ``dataset`` defaults to ``load_data(spec)``. With ``resume`` an existing checkpoint of the
    same configuration is continued. ``stop_after`` ends the run after that many steps in this
    call (an interruption, for tests) without final evaluation.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = dataset if dataset is not None else load_data(spec)
    if progress:  # which data a name such as `tiny` resolved to is printed, not guessed
        print(f"data {spec.data}: {ds.source}", file=sys.stderr)
    n_steps_seq = int(ds.X_train.shape[1])
    spec = output_step_for(spec, ds)
    check_memory(spec, n_steps_seq)
    model = HSSM.build(spec.model, int(ds.X_train.shape[2]), _n_outputs(ds), ds.task, spec.seed)
    ys = {}
    for split in ("train", "val", "test"):
        y = getattr(ds, f"y_{split}")
        ys[split] = y if ds.task == "classification" else _regression_targets(model, y, n_steps_seq)
    metric = "accuracy" if ds.task == "classification" else "mse"
    better = (lambda a, b: a > b) if metric == "accuracy" else (lambda a, b: a < b)
    config_json = spec.model_dump_json()

    ckpt = out / CHECKPOINT
    if resume and ckpt.exists():
        params, m, v, meta = _load(ckpt)
        differ = config_differences(json.loads(meta["config"]), spec, str(ckpt))
        if differ:
            raise ConfigError(
                f"{ckpt} belongs to a different configuration (differs in "
                f"{', '.join(differ)}); use another --out directory or delete the checkpoint "
                "to start afresh"
            )
        # the same configuration can name different data (`tiny` takes what is installed):
        # resuming a model on other data would mix two runs in one result
        trained_on = meta.get("dataset", "(not recorded: an older physim)")
        if trained_on != ds.source:
            raise ConfigError(
                f"{ckpt} was trained on {trained_on}, but data {spec.data!r} is now "
                f"{ds.source}; use another --out directory (or --no-resume to start afresh)"
            )
        adam = AdamState(meta["adam_step"], m, v)
        state = meta["state"]
        if model.chips is not None:
            from physim.hssm.chips import restore_chip_states

            saved = _load_chips(ckpt)
            if saved is None:
                raise ConfigError(f"{ckpt} holds no chip states; delete it to start afresh")
            restore_chip_states(model, saved)
        best_params = _load(out / BEST)[0] if (out / BEST).exists() else dict(params)
    else:
        params = model.init_params(spec.seed)
        if spec.init_from is not None:
            params = load_init(spec.init_from, params)
            if spec.init_dt_scale is not None:
                model.scale_dt(params, spec.init_dt_scale)
        adam = AdamState.zeros(params)
        state = {
            "step": 0,
            "best": None,
            "best_step": 0,
            "bad_evals": 0,
            "stopped": False,
            "train_seconds": 0.0,
        }
        best_params = {k: v.copy() for k, v in params.items()}
    names = list(params)
    log = open_train_log(
        out / LOG,
        spec,
        metric,
        state["step"] if ckpt.exists() and resume else None,
        chips_record(model),
        dataset=ds.source,
    )
    tensors = [Axis("tensor", names)]

    n_train = ds.X_train.shape[0]
    start = state["step"]
    end = spec.n_steps if stop_after is None else min(spec.n_steps, start + stop_after)
    # the bar starts after the first step, which pays numba's compiling: its ETA leaves it out
    bar = None
    last_val = float("nan")
    buffers = StepBuffers()  # the steps' activations, reused from step to step
    try:
        step = start
        while step < end and not state["stopped"]:
            t0 = time.perf_counter()
            lr = learning_rate(spec, step)
            idx = batch_indices(spec.seed, step, n_train, spec.batch_size)
            try:
                value, mets, grads = model.loss_and_grad(
                    params,
                    ds.X_train[idx],
                    ys["train"][idx],
                    algo=spec.algo,
                    rng=np.random.default_rng([spec.seed, 2, step]),
                    update_stats=True,
                    buffers=buffers,
                )
            except NumericalFault as fault:
                raise fault.during(f"training step {step + 1} (lr = {lr:g})") from None
            except UnstableStepError as err:  # a learned θ beyond the integrator's limit
                raise UnstableStepError(f"training step {step + 1} (lr = {lr:g}): {err}") from None
            check_training(step + 1, value, grads, lr)
            grads, gnorm = clip_by_global_norm(grads, spec.clip_norm)
            adam_update(params, grads, adam, lr=lr, betas=spec.betas, eps=spec.adam_eps)
            step += 1
            secs = time.perf_counter() - t0
            state["train_seconds"] += secs
            pgn = np.array([np.linalg.norm(grads[k]) for k in names])
            del grads  # not held through the next step
            for key, x in (("loss", value), (metric, mets[metric]), ("grad_norm", gnorm)):
                log.append(key, step, float(step), x, "1", time_unit="step", flush=False)
            log.append("seconds", step, float(step), secs, "s", time_unit="step", flush=False)
            log.append(
                "param_grad_norm",
                step,
                float(step),
                pgn,
                "1",
                time_unit="step",
                axes=tensors,
                flush=False,
            )
            if step % spec.eval_every == 0 or step == spec.n_steps:
                if spec.norm_stat_batches:  # precise batch norm (HSSM.recompute_norm_stats)
                    model.recompute_norm_stats(params, stat_batches(spec, step, ds.X_train))
                ev = evaluate(model, params, ds.X_val, ys["val"], spec.eval_batch_size)
                last_val = ev[metric]
                log.append(
                    "val_loss", step, float(step), ev["loss"], "1", time_unit="step", flush=False
                )
                log.append(
                    f"val_{metric}", step, float(step), last_val, "1", time_unit="step", flush=False
                )
                if state["best"] is None or better(last_val, state["best"]):
                    state.update(best=last_val, best_step=step, bad_evals=0)
                    best_params = {k: v.copy() for k, v in params.items()}
                    _save(out / BEST, best_params, None, {"step": step})
                else:
                    state["bad_evals"] += 1
                    if spec.patience is not None and state["bad_evals"] >= spec.patience:
                        state["stopped"] = True
            log.flush()  # every step: a kill loses at most the step being written
            state["step"] = step
            if step % spec.checkpoint_every == 0 or step == end or state["stopped"]:
                log.flush()
                _save(
                    ckpt,
                    params,
                    adam,
                    {
                        "config": config_json,
                        "dataset": ds.source,
                        "adam_step": adam.step,
                        "state": state,
                    },
                    chip_states(model) if model.chips is not None else None,
                )
            if progress and bar is None:
                from physim.feedback import progress as progress_bar

                bar = progress_bar(spec.n_steps, f"{spec.algo} {spec.data}", initial=step)
            elif bar is not None:
                bar.update(1)
            if bar is not None:
                bar.set_postfix(
                    loss=f"{value:.4f}",
                    **{metric[:3]: f"{mets[metric]:.3f}"},
                    val=f"{last_val:.3f}",
                    gnorm=f"{gnorm:.2e}",
                )
    finally:
        if bar is not None:
            bar.close()
        log.close(complete=state["step"] >= spec.n_steps or state["stopped"])

    finished = state["step"] >= spec.n_steps or state["stopped"]
    metrics: dict[str, Any] = {
        "config": json.loads(config_json),
        "dataset": ds.source,
        "steps": state["step"],
        "finished": finished,
        "early_stopped": state["stopped"],
        "best_step": state["best_step"],
        "train_seconds": state["train_seconds"],
        "seconds_per_step": state["train_seconds"] / max(1, state["step"]),
        "metric": metric,
    }
    if model.chips is not None:
        metrics["chips"] = chips_record(model)
    if finished:
        final = best_params if state["best"] is not None else params
        for split, X in (("val", ds.X_val), ("test", ds.X_test)):
            ev = evaluate(model, final, X, ys[split], spec.eval_batch_size)
            metrics.update({f"{split}_{k}": v for k, v in ev.items()})
        metrics["baseline"] = baseline(ds, ys, metric)
        (out / "metrics.json").write_text(jsonio.dumps(metrics, indent=2))
        if plots:
            from physim.hssm.plots import plot_training

            plot_training(out / LOG, out / "training.png", metrics=metrics)
    return TrainResult(metrics, params, out, model)
