"""examples/plugin, installed for real: a third-party package adds a non-ideality source
(1/f readout-gain noise) and a study measure (chip yield) through entry points, and physim's
commands use them — `physim nonideals --kinds`, `physim run`, a study and `physim budget`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physim

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin"
#: the physim tree under test, ahead of any installed copy
PHYSIM_TREE = Path(physim.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory, pip_install) -> Path:
    """The plugin installed by pip into a folder of its own (no network, no build isolation:
    the build backend, hatchling, comes with physim's test extras)."""
    pytest.importorskip("hatchling", reason="pip install 'physim[test]' brings hatchling")
    target = pip_install(PLUGIN, tmp_path_factory.mktemp("plugin-site"))
    assert (target / "physim_plugin_example" / "gain_noise.py").exists()
    assert list(target.glob("physim_plugin_example-*.dist-info/entry_points.txt"))
    return target


def _env(site: Path) -> dict:
    path = [str(PHYSIM_TREE), str(site), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def _physim(site: Path, *args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "physim.cli", *args],
        capture_output=True,
        text=True,
        env=_env(site),
        cwd=cwd,
    )
    assert r.returncode == 0, f"physim {' '.join(args)} failed:\n{r.stderr[-3000:]}"
    return r.stdout


def _python(site: Path, code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(site))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


#: the stationary rms of the gain over 40 000 samples of a 1/f process with correlation times
#: up to 100 samples is known to a few percent; 15 % leaves room for the slow poles
RMS_RTOL = 0.15

API_CHECKS = """
import json
import numpy as np
from physim.instrument.hardware import Instrument
from physim.instrument.sources import SOURCES
from physim.instrument.specs import NOISE_STREAMS, SOURCE_KINDS, parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol
from physim.specs import load_device
from physim.study.measures import MEASURES
from physim.study.spec import MEASURE_KINDS

dev = load_device("chain-16")
pro = load_protocol("rhel-centred")
pro = pro.model_copy(update={"task": pro.task.model_copy(update={"n_steps": 30})})

def records(sources):
    inst = Instrument(dev, parse_nonideal({"sources": sources}), seed=1)
    return inst, [r.value for r in run_protocol(inst, pro, check=False).records]

_, ideal = records([])
inst0, zero = records([{"kind": "gain_noise", "relative_std": 0.0, "seed": 4}])
_, noisy = records([{"kind": "gain_noise", "relative_std": 1e-2, "seed": 4}])
src = SOURCES.get("gain_noise")(
    parse_nonideal({"sources": [{"kind": "gain_noise", "relative_std": 0.02, "longest_samples": 100.0, "seed": 9}]}).sources[0],
    inst0,
)
g = np.concatenate([src.gains(1000, 1) for _ in range(40)])
print(json.dumps({
    "kinds": list(SOURCE_KINDS),
    "measures": list(MEASURE_KINDS),
    "stream": NOISE_STREAMS[("gain_noise", "")],
    "zero_skipped": inst0.active == [],
    "zero_equal": all(np.array_equal(a, b) for a, b in zip(ideal, zero)),
    "noisy_differs": not all(np.array_equal(a, b) for a, b in zip(ideal, noisy)),
    "rms": float(np.sqrt(np.mean(g ** 2))),
}))
"""


def test_plugin_kinds_are_registered_and_zero_valued_gain_noise_is_skipped(site):
    out = json.loads(_python(site, API_CHECKS).strip().splitlines()[-1])
    assert "gain_noise" in out["kinds"] and "yield" in out["measures"]
    assert out["stream"] >= 1024  # derived from the kind's name, past the built-in streams
    assert out["zero_skipped"] and out["zero_equal"] and out["noisy_differs"]
    assert out["rms"] == pytest.approx(0.02, rel=RMS_RTOL)


def test_nonideals_lists_the_plugin_source(site):
    lines = _physim(site, "nonideals", "--kinds").splitlines()
    row = next(line for line in lines if line.split()[0] == "gain_noise")
    assert "physim_plugin_example" in row


def test_physim_run_uses_the_gain_noise_source(site):
    args = ["run", "chain-16", "rhel-centred", "--steps", "30", "--json"]
    noisy = json.loads(_physim(site, *args, "--nonideal", str(PLUGIN / "gain-noise.toml")))
    ideal = json.loads(_physim(site, *args))
    assert noisy["nonideal"] == "gain-noise"
    assert noisy["loss"] != ideal["loss"]  # the measured readout carries the gain noise
    assert 0.5 < noisy["fidelity_vs_ideal_twin"]["cosine"] <= 1.0


def test_yield_study_over_gain_noise(site, tmp_path):
    study = (PLUGIN / "yield-study.toml").read_text()
    study = study.replace("replicates = 8", "replicates = 2").replace(
        "logspace = [1e-2, 1.0, 5]", "values = [1e-5, 0.3]"
    )
    study = study.replace("threshold = 0.99", "threshold = 0.999")
    path = tmp_path / "yield.toml"
    path.write_text(study)
    out = tmp_path / "out"
    _physim(site, "sweep", "run", str(path), "--out", str(out), "--workers", "1", "--no-progress")
    _physim(site, "sweep", "plot", str(out))
    assert (out / "passed.png").exists()
    import xarray as xr

    ds = xr.load_dataset(out / "results.nc")
    assert ds.attrs["measure"] == "yield" and int(ds.failed.sum()) == 0
    assert set(np.unique(ds.passed.values)) <= {0.0, 1.0}
    yield_ = ds.passed.mean("replicate")
    # a tiny gain noise passes every chip; a 30 % rms gain noise costs the measured error
    # signal, and so the gradient, more than 1e-3 of cosine
    assert float(yield_.sel(gain_rms=1e-5)) == 1.0
    assert float(yield_.sel(gain_rms=0.3)) < 1.0
    assert ds.passed.attrs["long_name"].endswith("mean over replicates = yield")


def test_budget_searches_the_gain_noise_level(site, tmp_path):
    non = tmp_path / "gain.toml"
    non.write_text('name = "gain"\n[[sources]]\nkind = "gain_noise"\nrelative_std = 1e-3\n')
    rep = json.loads(
        _physim(
            site,
            "budget",
            "chain-16",
            "--nonideal",
            str(non),
            "--steps",
            "200",
            "--target",
            "0.999",
            "--replicates",
            "1",
            "--eps",
            "1e-3",
            "--no-plot",
            "--json",
        )
    )
    (tol,) = rep["tolerances"]
    assert tol["source"] == "gain_noise" and tol["field"] == "relative_std"
    # found inside the search range, below the 30 % that fails in the study above
    assert tol["level"] is not None and 1e-6 < tol["level"] < 0.3
    assert [r["source"] for r in rep["attribution"]] == ["all", "gain_noise"]
