"""``offline_vs_insitu``: offline (twin BPTT, θ programmed) vs in-situ (RHEL on the chip)
training of each chip, scored by the loss measured on the chip (the routes: :mod:`physim.study.offline`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.spec_base import SpecModel
from physim.study.measures.base import Measure, MetricTable, Point, register_measure

OFFLINE_METRICS = {
    "loss_initial": ("readout unit²", "loss of the chip at the initial θ0"),
    "loss_offline": ("readout unit²", "loss of the chip programmed with the twin-trained θ"),
    "loss_insitu": ("readout unit²", "loss of the chip after in-situ RHEL training"),
    "loss_twin": ("readout unit²", "final loss of the nominal twin (what offline expects)"),
    "offline_over_insitu": ("1", "loss_offline / loss_insitu (> 1: in situ wins)"),
}


class OfflineVsInsituMeasure(SpecModel):
    """Offline (nominal twin trained by BPTT, θ programmed through the DAC) vs in-situ (RHEL on
    the chip) training of each chip, scored by the loss measured on the chip
    (:mod:`physim.answers.offline`)."""

    kind: Literal["offline_vs_insitu"]
    epochs: int = Field(60, ge=1, description="gradient steps of each route (1)")
    lr: float = Field(2e-2, gt=0, description="relative Adam learning rate of both routes (1)")


@register_measure
class OfflineVsInsitu(Measure):
    kind = "offline_vs_insitu"
    spec_class = OfflineVsInsituMeasure
    plot_metric = "offline_over_insitu"
    # above 1 the chip trained on itself beats the twin-trained θ
    thresholds = {"offline_over_insitu": 1.0}
    threshold_notes = {"offline_over_insitu": "in-situ learning beats the twin-trained θ above"}
    # the ratio spans decades as the mismatch grows (1 at σ = 0, ~500 at 10 % on chain-16)
    log_metrics = ("offline_over_insitu",)

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        return dict(OFFLINE_METRICS)

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        # the training routes import the protocol engine: loaded when a point runs
        from physim.study.offline import offline_vs_insitu

        m = point.measure
        return offline_vs_insitu(
            point.device, point.protocol, point.nonideal, seed=point.seed, epochs=m.epochs, lr=m.lr
        )
