"""``gradient``: one protocol execution — the measured gradient vs the ideal twin (and vs the
twin of the chip as built), and the protocol's cost.

``cosine``, ``norm_ratio`` and ``rel_error`` (and their ``_as_built`` twins) are of the θ-scaled
gradient, the unit-free fidelity of :mod:`physim.fidelity`; ``cosine_si`` is the raw SI cosine,
kept for reference and never a verdict."""

from __future__ import annotations

import math
from typing import Literal

from physim.spec_base import SpecModel
from physim.study.measures.base import Measure, MetricTable, Point, register_measure

GRADIENT_METRICS = {
    "cosine": ("1", "θ-scaled cosine of the measured vs the ideal-twin gradient (the verdict)"),
    "norm_ratio": ("1", "θ-scaled norm of the measured over the ideal-twin gradient"),
    "rel_error": ("1", "θ-scaled relative error of the measured gradient vs the ideal twin"),
    "cosine_si": ("1", "raw SI cosine vs the ideal twin (unit-dependent; not a verdict)"),
    "worst_group_cosine": (
        "1",
        "lowest cosine vs the ideal twin among groups carrying >= 1 % of the θ-scaled norm",
    ),
    "cosine_as_built": ("1", "θ-scaled cosine of the measured vs the as-built-twin gradient"),
    "norm_ratio_as_built": ("1", "θ-scaled norm of the measured over the as-built-twin gradient"),
    "rel_error_as_built": (
        "1",
        "θ-scaled relative error vs the twin of the chip as built (mismatch, drift applied)",
    ),
    "cosine_si_as_built": ("1", "raw SI cosine vs the as-built twin (not a verdict)"),
    "worst_group_cosine_as_built": (
        "1",
        "lowest cosine vs the as-built twin among groups carrying >= 1 % of the θ-scaled norm",
    ),
    "loss": ("readout unit²", "loss measured by the protocol"),
    "n_runs": ("1", "physical runs of one protocol execution"),
    "n_steps": ("1", "integrator steps driven in one execution"),
    "drive_energy": ("input unit² s", "drive energy Σ |u|² δ of one execution"),
    "n_saturated": ("1", "saturated converter samples"),
}
#: joules and seconds of one execution (one gradient update), from its EnergyCost field of the
#: same name; NaN where unavailable (a dimensionless device, a figure the preset lacks)
ENERGY_METRICS = {
    "energy_drive": ("J", "work the drive delivers into the device in one update", "drive"),
    "energy_dissipated": ("J", "friction loss in the device during one update", "dissipated"),
    "energy_converters": ("J", "ADC conversions and DAC writes of one update", "converters"),
    "energy_flip": ("J", "time-reversal (flip) stage energy of one update", "flip"),
    "energy_compensation": (
        "J",
        "energy the echoes' loss compensation supplies in one update",
        "compensation",
    ),
    "energy_total": (
        "J",
        "energy per gradient update: drive + compensation + converters + flip",
        "total",
    ),
    "time_update": ("s", "physical time of one update: runs, flips, resets", "time"),
}
GRADIENT_METRICS.update({k: (u, ln) for k, (u, ln, _) in ENERGY_METRICS.items()})
GROUP_METRICS = ("cosine", "norm_ratio", "rel_error")


class GradientMeasure(SpecModel):
    """One protocol execution: measured gradient vs the ideal twin, and the protocol's cost."""

    kind: Literal["gradient"]


def gradient_metrics(device, protocol, nonideal, seed, log) -> dict[str, float]:
    """The ``gradient`` metrics of one protocol execution on one chip."""
    from physim.protocol.session import run_session

    res = run_session(device, protocol, nonideal, seed=seed, log=log)
    last = res.results[-1]
    out: dict[str, float] = {}
    for suffix, f in (("", res.fidelity), ("_as_built", res.fidelity_as_built)):
        if f is None:
            continue
        out.update(
            {
                f"cosine{suffix}": f.cosine,
                f"norm_ratio{suffix}": f.norm_ratio,
                f"rel_error{suffix}": f.rel_error,
                f"cosine_si{suffix}": f.cosine_si,
                f"worst_group_cosine{suffix}": f.worst_group_cosine,
            }
        )
    out["loss"] = float(last.loss) if last.loss is not None else math.nan
    out.update({k: float(v) for k, v in last.cost.as_dict().items()})
    out["n_saturated"] = float(sum(last.n_saturated.values()))
    energy = last.cost.energy
    for name, (_, _, field) in ENERGY_METRICS.items():
        value = getattr(energy, field) if energy is not None else None
        out[name] = math.nan if value is None else float(value)
    if res.fidelity is not None:
        for g, d in res.fidelity.groups.items():
            for m in GROUP_METRICS:
                out[f"{m}_{g}"] = float(d[m])
    if res.fidelity_as_built is not None:
        for g, d in res.fidelity_as_built.groups.items():
            for m in GROUP_METRICS:
                out[f"{m}_as_built_{g}"] = float(d[m])
    return out


@register_measure
class Gradient(Measure):
    kind = "gradient"
    spec_class = GradientMeasure
    plot_metric = "cosine"
    # the gradient is "good" above cosine 0.99
    thresholds = {"cosine": 0.99}
    threshold_notes = {"cosine": "a good gradient above"}
    finite = ("cosine", "rel_error")

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        out = dict(GRADIENT_METRICS)
        for g in groups:
            for m in GROUP_METRICS:
                u, ln = GRADIENT_METRICS[m]
                out[f"{m}_{g}"] = (u, f"{ln}, group {g}")
            for m in GROUP_METRICS:
                u, ln = GRADIENT_METRICS[f"{m}_as_built"]
                out[f"{m}_as_built_{g}"] = (u, f"{ln}, group {g}")
        return out

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        return gradient_metrics(point.device, point.protocol, point.nonideal, point.seed, point.log)
