"""``hssm_train``: a deep HSSM trained by RHEL with every block's core on a chip of the point's
non-ideality, on a real task, scored against the ideal chip trained with the same seed.

The point's non-ideality spec is the chips' (one chip per block, replicate chip i of the
point's instrument seed, :mod:`physim.hssm.chips`); its device names the core family and is
not driven itself (the HSSM builds its own cores from the training configuration). The ideal
model (RHEL on ideal cores) and the BPTT baseline, which depend on neither chip nor replicate,
are trained once per worker process and configuration.
"""

from __future__ import annotations

import functools
import math
import tempfile
from typing import Literal

from pydantic import Field

from physim.spec_base import Seed, SpecModel
from physim.study.measures.base import Measure, MetricTable, Point, register_measure

HSSM_TRAIN_METRICS = {
    "score": ("1", "test score of the model on chips: accuracy (classification) or MSE"),
    "score_ideal": ("1", "test score of the same model on ideal cores, same seed (RHEL)"),
    "score_bptt": ("1", "test score of the ideal model trained by BPTT, same seed"),
    "accuracy_drop": (
        "percentage points",
        "classification: 100 × (ideal accuracy − accuracy on chips); NaN for regression",
    ),
    "mse_ratio": ("1", "regression: MSE on chips / ideal MSE; NaN for classification"),
    "train_seconds": ("s", "wall time of the training on chips"),
}


class HSSMTrainMeasure(SpecModel):
    """An HSSM trained by RHEL on chips of the point's non-ideality, vs the ideal chip."""

    kind: Literal["hssm_train"]
    training: str = Field(
        "scp1-linhru-cpu", description="training configuration: a preset name or a TOML path"
    )
    n_steps: int | None = Field(None, ge=1, description="training steps (default: the config's)")
    n_blocks: int | None = Field(None, ge=1, description="blocks (default: the config's)")
    eval_every: int | None = Field(None, ge=1, description="validation every this many steps")
    length: int | None = Field(
        None, ge=1, description="sequence length, steps (default: the dataset's)"
    )
    seed: Seed = Field(0, description="training seed (initialisation, batches): same for all")


def _train_spec(m: HSSMTrainMeasure, algo: str = "rhel", nonideal=None, chip_seed: int = 0):
    from physim.hssm.config import load_train_spec

    spec = load_train_spec(m.training)
    model = spec.model.model_copy(
        update={
            k: v
            for k, v in (("n_blocks", m.n_blocks), ("nonideal", nonideal), ("chip_seed", chip_seed))
            if v is not None
        }
    )
    upd = {"model": model, "algo": algo, "seed": m.seed}
    if m.n_steps is not None:
        upd["n_steps"] = m.n_steps
    for k in ("eval_every", "length"):
        if getattr(m, k) is not None:
            upd[k] = getattr(m, k)
    # validated again, as a file would be
    return spec.model_validate({**spec.model_dump(), **upd})


def _score(spec) -> tuple[float, str, float]:
    """(test score, its name, training seconds) of one training run in a scratch folder."""
    from physim.hssm.train import train

    with tempfile.TemporaryDirectory(prefix="physim-hssm-") as out:
        res = train(spec, out, resume=False, progress=False, plots=False)
    m = res.metrics
    name = "accuracy" if "test_accuracy" in m else "mse"
    return float(m[f"test_{name}"]), name, float(m["train_seconds"])


@functools.lru_cache(maxsize=8)
def _reference(measure_json: str, algo: str) -> tuple[float, str]:
    m = HSSMTrainMeasure.model_validate_json(measure_json)
    score, name, _ = _score(_train_spec(m, algo))
    return score, name


@register_measure
class HSSMTrain(Measure):
    kind = "hssm_train"
    spec_class = HSSMTrainMeasure
    plot_metric = "accuracy_drop"
    # a designer's budget: within 2 points of the ideal chip
    thresholds = {"accuracy_drop": 2.0, "mse_ratio": 2.0}
    finite = ("score",)

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        return dict(HSSM_TRAIN_METRICS)

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        m = point.measure
        spec = _train_spec(m, "rhel", point.nonideal, int(point.seed))
        score, name, seconds = _score(spec)
        key = m.model_dump_json()
        ideal, _ = _reference(key, "rhel")
        bptt, _ = _reference(key, "bptt")
        classify = name == "accuracy"
        return {
            "score": score,
            "score_ideal": ideal,
            "score_bptt": bptt,
            "accuracy_drop": 100.0 * (ideal - score) if classify else math.nan,
            "mse_ratio": score / ideal if not classify and ideal > 0 else math.nan,
            "train_seconds": seconds,
        }
