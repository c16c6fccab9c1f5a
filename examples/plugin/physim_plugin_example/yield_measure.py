"""``yield``: does this chip's in-situ gradient pass? The mean over replicates is the yield.

Each study point is one chip (a replicate). The measure runs the protocol once on it, as the
``gradient`` measure does, and returns

* ``cosine`` — the cosine of the measured gradient against the ideal twin's
  (``reference = "ideal"``) or the as-built twin's (``"as_built"``), unit-free as everywhere in
  physim (the θ-scaled gradient);
* ``passed`` — 1 when that cosine is >= ``threshold``, else 0.

The **yield** at a point is the fraction of its replicate chips that pass: the mean of
``passed`` over the ``replicate`` dimension of ``results.nc``, which is what ``physim sweep
plot`` draws by default (with a line at 90 % yield).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.spec_base import SpecModel
from physim.study.measures import Measure, MetricTable, Point, register_measure
from physim.study.measures.gradient import gradient_metrics


class YieldMeasure(SpecModel):
    """Chip yield: a chip passes when its measured gradient's cosine reaches ``threshold``."""

    kind: Literal["yield"]
    threshold: float = Field(
        0.99, gt=-1, le=1, description="cosine a chip's measured gradient must reach (1)"
    )
    reference: Literal["ideal", "as_built"] = Field(
        "ideal", description="twin the gradient is compared with: nominal (ideal) or as built"
    )


@register_measure
class Yield(Measure):
    kind = "yield"
    spec_class = YieldMeasure
    plot_metric = "passed"
    thresholds = {"passed": 0.9}  # a 90 % yield line
    bounds = {"passed": (0.0, 1.0)}  # a yield is a fraction of chips
    finite = ("cosine",)

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        return {
            "passed": ("1", "1 = the chip passes; mean over replicates = yield"),
            "cosine": ("1", "cosine of the measured vs the twin gradient"),
        }

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        m = point.measure
        g = gradient_metrics(point.device, point.protocol, point.nonideal, point.seed, point.log)
        cos = g.get("cosine" if m.reference == "ideal" else "cosine_as_built", float("nan"))
        return {"passed": float(cos >= m.threshold), "cosine": float(cos)}
