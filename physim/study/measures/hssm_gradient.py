"""``hssm_gradient``: the paper's Figure 4 on imperfect hardware — one RHEL gradient of a deep
HSSM whose cores are chips of the point's non-ideality, against the BPTT gradient of the ideal
twin, per block.

The error of each block's measured input gradient ∂L/∂u becomes the nudge of the block below,
so the blocks nearest the input (and the encoder, whose gradient is formed from block 0's
measured ∂L/∂u) show how measurement errors compound with depth. One synthetic classification
batch (N(0, 1) inputs, random labels) of the configured sizes; the point's device names the core
family and is not driven itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.spec_base import Seed, SpecModel
from physim.study.measures.base import Measure, MetricTable, Point, register_measure

HSSM_GRADIENT_METRICS = {
    "cosine_core_min": (
        "1",
        "lowest cosine of a core parameter group's gradient (A, Δt, B) vs the ideal BPTT twin",
    ),
    "cosine_core_first": (
        "1",
        "cosine of block 0's core gradient (the block whose nudge crossed every chip above it)",
    ),
    "cosine_encoder": (
        "1",
        "cosine of the encoder's gradient, formed from block 0's measured input gradient",
    ),
    "norm_ratio_max_dev": ("1", "largest |norm ratio − 1| over blocks and parameters"),
}


class HSSMGradientMeasure(SpecModel):
    """One RHEL gradient of an HSSM on chips vs the BPTT gradient of the ideal twin."""

    kind: Literal["hssm_gradient"]
    model: Literal["linhru", "nonlinhru"] = Field("linhru", description="HRU family")
    n_blocks: int = Field(2, ge=1, description="blocks")
    hidden: int = Field(16, ge=1, description="hidden width H")
    ssm_dim: int = Field(32, ge=1, description="oscillators per core P")
    length: int = Field(256, ge=1, description="sequence length, steps")
    batch: int = Field(8, ge=1, description="batch size")
    seed: Seed = Field(0, description="seed of the parameters and the batch")


@register_measure
class HSSMGradient(Measure):
    kind = "hssm_gradient"
    spec_class = HSSMGradientMeasure
    plot_metric = "cosine_encoder"
    thresholds = {"cosine_encoder": 0.99, "cosine_core_min": 0.99}
    bounds = {"cosine_core_min": (-1.0, 1.0), "cosine_encoder": (-1.0, 1.0)}
    finite = ("cosine_core_min", "cosine_encoder")

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        return dict(HSSM_GRADIENT_METRICS)

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        from physim.hssm.compare import compare_gradients

        m = point.measure
        res = compare_gradients(
            m.model,
            n_blocks=m.n_blocks,
            hidden=m.hidden,
            ssm_dim=m.ssm_dim,
            length=m.length,
            batch=m.batch,
            seed=m.seed,
            nonideal=point.nonideal,
            chip_seed=int(point.seed),
        )
        # each core's named groups (A, Δt, B of a LinHRU): a block's worst group
        cores: dict[str, float] = {}
        for r in res.rows:
            if r.param.startswith("core"):
                cores[r.block] = min(cores.get(r.block, 1.0), r.cosine)
        enc = [r.cosine for r in res.rows if r.block == "encoder" and r.param == "W"]
        return {
            "cosine_core_min": min(cores.values()),
            "cosine_core_first": cores["block 0"],
            "cosine_encoder": enc[0],
            "norm_ratio_max_dev": max(abs(r.norm_ratio - 1.0) for r in res.rows),
        }
