"""``train``: in-situ training through the instrument, compared with ideal in-situ training."""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
from pydantic import Field

from physim.spec_base import SpecModel
from physim.study.measures.base import Measure, MetricTable, Point, register_measure

TRAIN_METRICS = {
    "loss_initial": ("readout unit²", "loss at the first epoch"),
    "loss_final": ("readout unit²", "loss at the last epoch"),
    "loss_final_ideal": ("readout unit²", "final loss of ideal in-situ training, same device"),
    "loss_ratio": ("1", "final loss over the ideal instrument's final loss"),
    "epochs_to_threshold": ("1", "epochs until loss <= threshold × initial (NaN: never)"),
    "diverged": ("1", "1 when training diverged (non-finite or above diverge_factor × initial)"),
    "n_runs": ("1", "physical runs of the whole training"),
    "energy_training": ("J", "energy of the whole training: Σ of each update's total (NaN: n/a)"),
    "time_training": ("s", "physical time of the whole training (NaN: n/a)"),
}


def _sum_of(results, field: str) -> float:
    """Σ over the executions of their EnergyCost ``field``; NaN when one lacks it."""
    values = [getattr(r.cost.energy, field, None) if r.cost.energy else None for r in results]
    return math.nan if any(v is None for v in values) else float(sum(values))


class TrainMeasure(SpecModel):
    """In-situ training through the instrument, compared with ideal in-situ training."""

    kind: Literal["train"]
    epochs: int = Field(20, ge=1, description="training epochs (protocol executions)")
    lr: float = Field(1e-2, gt=0, description="relative Adam learning rate (1)")
    threshold: float = Field(
        0.1,
        gt=0,
        description="epochs_to_threshold counts epochs until loss <= threshold × initial (1)",
    )
    diverge_factor: float = Field(
        10.0, gt=1, description="diverged when the final loss exceeds this × initial (1)"
    )


@functools.lru_cache(maxsize=16)
def _ideal_final_loss(device_json: str, protocol_json: str, epochs: int, lr: float) -> float:
    # the ideal in-situ reference depends on neither replicate nor noise: one per worker
    from physim.instrument.specs import NonidealSpec
    from physim.protocol.session import run_session
    from physim.protocol.specs import protocol_from_json
    from physim.specs import spec_from_json

    device = spec_from_json(device_json).build()
    res = run_session(
        device, protocol_from_json(protocol_json), NonidealSpec(), epochs=epochs, lr=lr
    )
    return float(res.losses[-1])


@register_measure
class Train(Measure):
    kind = "train"
    spec_class = TrainMeasure
    plot_metric = "loss_ratio"
    # training "works" when its final loss is within 2x the ideal instrument's
    thresholds = {"loss_ratio": 2.0}
    threshold_notes = {"loss_ratio": "training works (within 2× the ideal chip's loss) below"}
    finite = ("loss_final",)

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        return dict(TRAIN_METRICS)

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        from physim.protocol.session import run_session

        m = point.measure
        res = run_session(
            point.device,
            point.protocol,
            point.nonideal,
            seed=point.seed,
            epochs=m.epochs,
            lr=m.lr,
            log=point.log,
        )
        losses = np.asarray(res.losses, dtype=np.float64)
        first, final = float(losses[0]), float(losses[-1])
        ideal = _ideal_final_loss(point.device_json, point.protocol_json, m.epochs, m.lr)
        hit = np.nonzero(losses <= m.threshold * first)[0]
        diverged = not np.all(np.isfinite(losses)) or final > m.diverge_factor * first
        return {
            "loss_initial": first,
            "loss_final": final,
            "loss_final_ideal": ideal,
            "loss_ratio": final / ideal if ideal > 0 else math.nan,
            "epochs_to_threshold": float(hit[0]) if hit.size else math.nan,
            "diverged": float(diverged),
            "n_runs": float(sum(r.cost.n_runs for r in res.results)),
            "energy_training": _sum_of(res.results, "total"),
            "time_training": _sum_of(res.results, "time"),
        }
