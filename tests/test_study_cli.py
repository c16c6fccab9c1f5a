"""``physim sweep run|status|table|plot`` end to end, and the three kinds of study plot."""

import tomllib
from concurrent.futures import ThreadPoolExecutor

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr

from physim.cli import main
from physim.study import StudyError, expand, parse_study, run_study
from physim.study.plot import plot_study

TOML = """
name = "cli-test"
replicates = 2
[base]
device = "lc-ladder-8"
protocol = "rhel-centred-rerun"
nonideal = { sources = [{ kind = "dissipation", quality_factor = 100.0, temperature = 1e9 }] }
set = { "task.n_steps" = 30 }
[[axes]]
path = "nonideal.dissipation.quality_factor"
name = "Q"
logspace = [30.0, 3000.0, 3]
"""


def _small(axes: list, replicates: int = 1, measure: dict | None = None) -> dict:
    d = {
        "name": "plot-test",
        "replicates": replicates,
        "base": {
            "device": "lc-ladder-8",
            "protocol": "rhel-centred-rerun",
            "nonideal": {"sources": [{"kind": "adc", "target": "accumulator", "bits": 12}]},
            "set": {"task.n_steps": 30},
        },
        "axes": axes,
    }
    if measure:
        d["measure"] = measure
    return d


def test_sweep_run_status_table_plot(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(TOML)
    out = tmp_path / "out"
    assert main(["sweep", "run", str(path), "--dry-run", "--workers", "2"]) == 0
    dry = capsys.readouterr().out
    assert "6 points = 3 combinations (grid) × 2 replicates" in dry and "about" in dry
    assert not out.exists()
    args = ["sweep", "run", str(path), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    assert "6 points, 0 failed" in capsys.readouterr().out
    assert main(args) == 0  # everything is done: nothing reruns
    assert "resuming" in capsys.readouterr().out
    # the local pool with 1 worker process == one worker thread in this process, bit for bit
    with ThreadPoolExecutor(1) as ex:
        here = run_study(parse_study(tomllib.loads(TOML)), executor=ex)
    pool = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    for v in ("cosine", "rel_error", "norm_ratio", "loss"):
        np.testing.assert_array_equal(pool[v].values, here[v].values)
    assert main(["sweep", "status", str(out)]) == 0
    assert "6 of 6 points done, 0 failed; complete" in capsys.readouterr().out
    assert main(["sweep", "table", str(out), "--metric", "cosine"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["point", "Q", "replicate", "cosine", "error"] and len(table) == 7
    assert main(["sweep", "plot", str(out)]) == 0
    png = out / "cosine.png"
    assert png.exists() and mpimg.imread(png).shape[1] > 300
    assert main(["sweep", "plot", str(out), "--metric", "error"]) == 2  # was a TypeError
    assert "physim sweep: error: no numeric metric 'error'" in capsys.readouterr().err
    path.write_text(TOML.replace("replicates = 2", "replicates = 3"))
    assert main(args) == 2
    assert "--restart" in capsys.readouterr().err


def test_plot_heatmap_facets_and_sampled(tmp_path):
    bits = {"path": "nonideal.adc.bits", "values": [8, 12]}
    eps = {"path": "protocol.eps", "logspace": [1e-4, 1e-2, 2]}
    steps = {"path": "task.n_steps", "name": "L", "values": [20, 30]}
    with ThreadPoolExecutor(1) as ex:
        for name, d in {
            "heat": _small([bits, eps]),
            "facets": _small([bits, eps, steps]),
            "lhs": {
                **_small([{"path": "protocol.eps", "loguniform": [1e-4, 1e-2]}]),
                "combine": "random",
                "n_samples": 3,
            },
        }.items():
            run_study(parse_study(d), executor=ex, out=tmp_path / name)
            png = plot_study(tmp_path / name, metric="cosine", threshold=0.99)
            assert png.exists()
    with pytest.raises(StudyError, match=r"axis name\(s\) n_steps clash with result variables"):
        expand(parse_study(_small([{**steps, "name": None}])))
    with pytest.raises(KeyError, match=r"no numeric metric 'cos' in .*; choose one of cosine"):
        plot_study(tmp_path / "heat", metric="cos")
    # `error` holds the failure messages: offered no more, and asked for, a one-line error
    with pytest.raises(KeyError, match=r"choose one of (?!.*\berror\b).*sweep status"):
        plot_study(tmp_path / "heat", metric="error")
    with pytest.raises(FileNotFoundError, match=r"does not exist yet; finish the study"):
        plot_study(tmp_path / "nothing")


def test_train_measure_reports_convergence(tmp_path):
    d = _small(
        [{"path": "nonideal.mismatch.relative_dtod", "values": [0.0, 0.1]}],
        measure={"kind": "train", "epochs": 30, "lr": 0.02, "threshold": 0.9},
    )
    # 200 steps: the drive at mass 0 must reach the readout masses 7 and 15
    d["base"] = {**d["base"], "device": "chain-16", "nonideal": None}
    d["base"]["set"] = {"task.n_steps": 200, "protocol.eps": 1e-3}
    with ThreadPoolExecutor(1) as ex:
        ds = run_study(parse_study(d), executor=ex, out=tmp_path)
    assert int(ds.failed.sum()) == 0
    # the nominal chip is the ideal instrument: its training is the reference itself
    assert float(ds.loss_ratio.sel(relative_dtod=0.0).item()) == 1.0
    assert (ds.loss_final < ds.loss_initial).all() and (ds.diverged == 0).all()
    assert ds.loss_final_ideal.attrs["long_name"].startswith("final loss of ideal")


def test_log_points_writes_one_complete_h5md_log_per_point(tmp_path):
    import h5py

    d = {**_small([{"path": "protocol.eps", "values": [1e-3, 1e-2]}]), "log_points": True}
    with ThreadPoolExecutor(1) as ex:
        ds = run_study(parse_study(d), executor=ex, out=tmp_path)
    logs = sorted((tmp_path / "points").glob("point-*.h5"))
    assert [p.name for p in logs] == ["point-000000.h5", "point-000001.h5"]
    with h5py.File(logs[1], "r") as f:
        assert int(f.attrs["complete"]) == 1
        assert '"eps":0.01' in f["parameters/physim/protocol"][()].decode()
    assert int(ds.failed.sum()) == 0
