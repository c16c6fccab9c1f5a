"""The study task: a pure function of one point's spec JSON and seeds → a small summary.

It dispatches on the measure kind through the registry (:mod:`physim.study.measures`); each
measure calls only the protocol layer, never a kernel or the instrument's internals. It runs
with numba and BLAS single-threaded so that the result is the same in any worker, any process
and any order.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import numba
from pydantic import TypeAdapter

from physim.instrument.specs import nonideal_from_json
from physim.protocol.specs import protocol_from_json
from physim.specs import spec_from_json
from physim.study.measures import MEASURES, Point, metric_info
from physim.study.measures.gradient import GRADIENT_METRICS, GROUP_METRICS
from physim.study.measures.train import TRAIN_METRICS
from physim.study.outcome import catch_point_warnings, warning_texts
from physim.study.point import PointTask
from physim.study.spec import MeasureSpec
from physim.threads import single_threaded_blas
from physim.warnings import PhysimWarning

_MEASURE: TypeAdapter = TypeAdapter(MeasureSpec)

__all__ = ["GRADIENT_METRICS", "GROUP_METRICS", "TRAIN_METRICS", "metric_info", "run_point"]


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
        ``index``, ``metrics`` (name → float), ``error`` (None or a message), ``warnings``
        (the distinct warning messages the point raised) and ``seconds``.
    """
    t0 = time.perf_counter()
    # a worker would print warnings raw, naming no point: they travel in the result instead
    # and the client summarises them (physim.study.outcome)
    with catch_point_warnings() as caught:
        warnings.filterwarnings("always", category=PhysimWarning)  # every point's, not once
        error, metrics = _run(task)
    return {
        "index": task.index,
        "metrics": metrics,
        "error": error,
        "warnings": warning_texts(caught),
        "seconds": time.perf_counter() - t0,
    }


def _run(task: PointTask) -> tuple[str | None, dict[str, float]]:
    """``(error, metrics)`` of one point; a failure is returned as its message."""
    prev = numba.get_num_threads()
    metrics: dict[str, float] = {}
    error = None
    try:
        numba.set_num_threads(1)
        with single_threaded_blas():
            device = spec_from_json(task.device).build()
            protocol = protocol_from_json(task.protocol)
            nonideal = nonideal_from_json(task.nonideal)
            measure = _MEASURE.validate_json(task.measure)
            log = task.log
            if log is not None:
                # a log left by a killed or failed attempt of this very point is replaced
                Path(log).parent.mkdir(parents=True, exist_ok=True)
                Path(log).unlink(missing_ok=True)
            kind = MEASURES.get(measure.kind)
            metrics = kind.run(
                Point(
                    device=device,
                    protocol=protocol,
                    nonideal=nonideal,
                    measure=measure,
                    seed=task.seed,
                    device_json=task.device,
                    protocol_json=task.protocol,
                    log=log,
                )
            )
        bad = [k for k in kind.finite if k in metrics and not math.isfinite(metrics[k])]
        if bad:
            error = "non-finite result: " + ", ".join(f"{k} = {metrics[k]}" for k in bad)
    except Exception as err:  # a failed point is a recorded result, not a crash of the study
        error = f"{type(err).__name__}: {' '.join(str(err).split())}"
    finally:
        numba.set_num_threads(prev)
    return error, metrics
