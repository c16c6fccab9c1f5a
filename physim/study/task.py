"""The study task: a pure function of one point's spec JSON and seeds → a small summary.

It calls only the protocol layer (:func:`physim.protocol.session.run_session`), never a kernel
or the instrument's internals, and runs with numba and BLAS single-threaded so that the result
is the same in any worker, any process and any order.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from physim.instrument.specs import NonidealSpec, nonideal_from_json
from physim.protocol.session import run_session
from physim.protocol.specs import protocol_from_json
from physim.specs import spec_from_json
from physim.study.point import PointTask
from physim.threads import single_threaded_blas

# what each metric means: name → (units, long name); per-group metrics add "_<group>"
GRADIENT_METRICS = {
    "cosine": ("1", "cosine of the measured vs the ideal-twin gradient"),
    "norm_ratio": ("1", "norm of the measured over the ideal-twin gradient"),
    "rel_error": ("1", "relative error of the measured gradient, |g - g_ideal| / |g_ideal|"),
    "cosine_as_built": ("1", "cosine of the measured vs the as-built-twin gradient"),
    "norm_ratio_as_built": ("1", "norm of the measured over the as-built-twin gradient"),
    "rel_error_as_built": (
        "1",
        "relative error vs the twin of the chip as built (mismatch, drift applied)",
    ),
    "loss": ("readout unit²", "loss measured by the protocol"),
    "n_runs": ("1", "physical runs of one protocol execution"),
    "n_steps": ("1", "integrator steps driven in one execution"),
    "drive_energy": ("input unit² s", "drive energy Σ |u|² δ of one execution"),
    "n_saturated": ("1", "saturated converter samples"),
}
TRAIN_METRICS = {
    "loss_initial": ("readout unit²", "loss at the first epoch"),
    "loss_final": ("readout unit²", "loss at the last epoch"),
    "loss_final_ideal": ("readout unit²", "final loss of ideal in-situ training, same device"),
    "loss_ratio": ("1", "final loss over the ideal instrument's final loss"),
    "epochs_to_threshold": ("1", "epochs until loss <= threshold × initial (NaN: never)"),
    "diverged": ("1", "1 when training diverged (non-finite or above diverge_factor × initial)"),
    "n_runs": ("1", "physical runs of the whole training"),
}
GROUP_METRICS = ("cosine", "norm_ratio", "rel_error")


def metric_info(kind: str, groups: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Every metric a ``kind`` measurement returns, with (units, long name), in order."""
    if kind == "train":
        return dict(TRAIN_METRICS)
    if kind == "offline_vs_insitu":
        from physim.study.offline import OFFLINE_METRICS

        return dict(OFFLINE_METRICS)
    out = dict(GRADIENT_METRICS)
    for g in groups:
        for m in GROUP_METRICS:
            u, ln = GRADIENT_METRICS[m]
            out[f"{m}_{g}"] = (u, f"{ln}, group {g}")
        for m in GROUP_METRICS:
            u, ln = GRADIENT_METRICS[f"{m}_as_built"]
            out[f"{m}_as_built_{g}"] = (u, f"{ln}, group {g}")
    return out


def _gradient(device, protocol, nonideal, seed, log) -> dict[str, float]:
    res = run_session(device, protocol, nonideal, seed=seed, log=log)
    last = res.results[-1]
    out: dict[str, float] = {}
    if res.fidelity is not None:
        f = res.fidelity
        out.update(cosine=f.cosine, norm_ratio=f.norm_ratio, rel_error=f.rel_error)
    if res.fidelity_as_built is not None:
        f = res.fidelity_as_built
        out.update(
            cosine_as_built=f.cosine,
            norm_ratio_as_built=f.norm_ratio,
            rel_error_as_built=f.rel_error,
        )
    out["loss"] = float(last.loss) if last.loss is not None else math.nan
    out.update({k: float(v) for k, v in last.cost.as_dict().items()})
    out["n_saturated"] = float(sum(last.n_saturated.values()))
    if res.fidelity is not None:
        for g, d in res.fidelity.groups.items():
            for m in GROUP_METRICS:
                out[f"{m}_{g}"] = float(d[m])
    if res.fidelity_as_built is not None:
        for g, d in res.fidelity_as_built.groups.items():
            for m in GROUP_METRICS:
                out[f"{m}_as_built_{g}"] = float(d[m])
    return out


@functools.lru_cache(maxsize=16)
def _ideal_final_loss(device_json: str, protocol_json: str, epochs: int, lr: float) -> float:
    # the ideal in-situ reference depends on neither replicate nor noise: one per worker
    device = spec_from_json(device_json).build()
    res = run_session(
        device, protocol_from_json(protocol_json), NonidealSpec(), epochs=epochs, lr=lr
    )
    return float(res.losses[-1])


def _train(device, protocol, nonideal, seed, m, device_json, protocol_json, log) -> dict:
    res = run_session(
        device, protocol, nonideal, seed=seed, epochs=m["epochs"], lr=m["lr"], log=log
    )
    losses = np.asarray(res.losses, dtype=np.float64)
    first, final = float(losses[0]), float(losses[-1])
    ideal = _ideal_final_loss(device_json, protocol_json, m["epochs"], m["lr"])
    hit = np.nonzero(losses <= m["threshold"] * first)[0]
    diverged = not np.all(np.isfinite(losses)) or final > m["diverge_factor"] * first
    return {
        "loss_initial": first,
        "loss_final": final,
        "loss_final_ideal": ideal,
        "loss_ratio": final / ideal if ideal > 0 else math.nan,
        "epochs_to_threshold": float(hit[0]) if hit.size else math.nan,
        "diverged": float(diverged),
        "n_runs": float(sum(r.cost.n_runs for r in res.results)),
    }


def run_point(task: PointTask) -> dict[str, Any]:
    """Run one point. Never raises: a failure is returned as ``error`` (with its message).

    Parameters
    ----------
    task
        ``Plan.task(i)`` (or :func:`physim.answers.budget.point_task`): device, protocol,
        non-ideality and measure spec JSON, the instrument ``seed``, the point ``index`` and
        optionally ``log``, the path of the point's own H5MD log.

    Returns
    -------
    dict
        ``index``, ``metrics`` (name → float), ``error`` (None or a message) and ``seconds``.
    """
    t0 = time.perf_counter()
    prev = numba.get_num_threads()
    metrics: dict[str, float] = {}
    error = None
    try:
        numba.set_num_threads(1)
        with single_threaded_blas():
            device = spec_from_json(task.device).build()
            protocol = protocol_from_json(task.protocol)
            nonideal = nonideal_from_json(task.nonideal)
            m = task.measure_spec()
            log = task.log
            if log is not None:
                # a log left by a killed or failed attempt of this very point is replaced
                Path(log).parent.mkdir(parents=True, exist_ok=True)
                Path(log).unlink(missing_ok=True)
            if m["kind"] == "train":
                metrics = _train(
                    device,
                    protocol,
                    nonideal,
                    task.seed,
                    m,
                    task.device,
                    task.protocol,
                    log,
                )
            elif m["kind"] == "offline_vs_insitu":
                from physim.study.offline import offline_vs_insitu

                metrics = offline_vs_insitu(
                    device, protocol, nonideal, seed=task.seed, epochs=m["epochs"], lr=m["lr"]
                )
            else:
                metrics = _gradient(device, protocol, nonideal, task.seed, log)
        bad = [
            k
            for k in ("cosine", "rel_error", "loss_final")
            if k in metrics and not math.isfinite(metrics[k])
        ]
        if bad:
            error = "non-finite result: " + ", ".join(f"{k} = {metrics[k]}" for k in bad)
    except Exception as err:  # a failed point is a recorded result, not a crash of the study
        error = f"{type(err).__name__}: {' '.join(str(err).split())}"
    finally:
        numba.set_num_threads(prev)
    return {
        "index": task.index,
        "metrics": metrics,
        "error": error,
        "seconds": time.perf_counter() - t0,
    }
