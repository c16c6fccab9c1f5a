"""HDF5 log of an HSSM training run (h5py, H5MD-like layout, one writer per file).

Layout::

    /h5md                       version, creator (attributes)
    /run                        attrs: config (TrainSpec JSON), parameter names
    /observables/train/{step, loss, metric, grad_norm, param_grad_norm, seconds}
    /observables/eval/{step, val_loss, val_metric}

Every dataset is resizable along its first axis and gzip + shuffle compressed. On resume the
log is truncated back to the checkpoint step, so a resumed run logs exactly what an
uninterrupted one would.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

import physim

TRAIN = "observables/train"
EVAL = "observables/eval"
_TRAIN_FIELDS = ("step", "loss", "metric", "grad_norm", "seconds")
_EVAL_FIELDS = ("step", "val_loss", "val_metric")


class TrainLog:
    """Append-only (until truncated) training log; use as a context manager."""

    def __init__(
        self,
        path: str | Path,
        *,
        config_json: str,
        param_names: list[str],
        metric: str,
        resume_step: int | None = None,
    ):
        self.path = Path(path)
        mode = "a" if resume_step is not None and self.path.exists() else "w"
        self.f = h5py.File(self.path, mode)
        if mode == "w":
            self._create(config_json, param_names, metric)
        else:
            self._truncate(resume_step)

    def _dset(self, group: str, name: str, shape_tail: tuple[int, ...] = (), dtype="f8"):
        self.f.require_group(group).create_dataset(
            name,
            shape=(0, *shape_tail),
            maxshape=(None, *shape_tail),
            dtype=dtype,
            chunks=(4096 // max(1, int(np.prod(shape_tail))) or 1, *shape_tail),
            compression="gzip",
            shuffle=True,
        )

    def _create(self, config_json: str, param_names: list[str], metric: str) -> None:
        h = self.f.create_group("h5md")
        h.attrs["version"] = np.array([1, 1])
        h.attrs["creator"] = "physim"
        h.attrs["creator_version"] = physim.__version__
        run = self.f.create_group("run")
        run.attrs["config"] = config_json
        run.attrs["param_names"] = np.array(param_names, dtype=h5py.string_dtype())
        run.attrs["metric"] = metric
        for name in _TRAIN_FIELDS:
            self._dset(TRAIN, name, dtype="i8" if name == "step" else "f8")
        self._dset(TRAIN, "param_grad_norm", (len(param_names),))
        for name in _EVAL_FIELDS:
            self._dset(EVAL, name, dtype="i8" if name == "step" else "f8")

    def _truncate(self, step: int) -> None:
        for group in (TRAIN, EVAL):
            g = self.f[group]
            keep = int(np.searchsorted(g["step"][...], step, side="right"))
            for d in g.values():
                d.resize(keep, axis=0)

    @staticmethod
    def _append(group: h5py.Group, values: dict) -> None:
        for name, val in values.items():
            d = group[name]
            n = d.shape[0]
            d.resize(n + 1, axis=0)
            d[n] = val

    def log_step(
        self,
        step: int,
        loss: float,
        metric: float,
        grad_norm: float,
        param_grad_norm: np.ndarray,
        seconds: float,
    ) -> None:
        self._append(
            self.f[TRAIN],
            dict(
                step=step,
                loss=loss,
                metric=metric,
                grad_norm=grad_norm,
                param_grad_norm=param_grad_norm,
                seconds=seconds,
            ),
        )

    def log_eval(self, step: int, val_loss: float, val_metric: float) -> None:
        self._append(self.f[EVAL], dict(step=step, val_loss=val_loss, val_metric=val_metric))

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> TrainLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """The whole log as ``{"train": {...}, "eval": {...}, "attrs": {...}}`` of numpy arrays."""
    with h5py.File(path, "r") as f:
        out = {
            key: {n: d[...] for n, d in f[group].items()}
            for key, group in (("train", TRAIN), ("eval", EVAL))
        }
        out["attrs"] = {k: f["run"].attrs[k] for k in f["run"].attrs}
    return out
