"""One log schema for every writer: xarray opens every group with named dimensions, units and
parameter names everywhere, scalar scale factors; inspect / plot / replay on every log kind."""

from __future__ import annotations

import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest

import physim
from physim import logs
from physim.cli import main
from physim.instrument.specs import parse_nonideal
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol
from physim.tools.replay import replay

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

NONIDEAL = parse_nonideal(
    {
        "name": "adc-both",
        "sources": [
            {"kind": "adc", "target": "readout", "bits": 12, "full_scale": 1e-8, "seed": 2},
            {"kind": "adc", "target": "accumulator", "bits": 16, "seed": 3},
        ],
    }
)

TRAIN_CONFIG = {
    "data": "adding",
    "algo": "rhel",
    "length": 16,
    "n_samples": 80,
    "lr": 0.01,
    "batch_size": 8,
    "eval_batch_size": 16,
    "n_steps": 12,
    "eval_every": 4,
    "checkpoint_every": 4,
    "patience": None,
    "model": {"model": "linhru", "n_blocks": 1, "hidden": 4, "ssm_dim": 3, "dropout": 0.1},
}


def _protocol(name="rhel-centred-traced", n_steps=60):
    p = load_protocol(name)
    return p.model_copy(update={"task": p.task.model_copy(update={"n_steps": n_steps})})


@pytest.fixture(scope="module")
def run_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.h5"
    run_session(physim.load_device("lc-ladder-8"), _protocol(), NONIDEAL, seed=1, log=path)
    return path


@pytest.fixture(scope="module")
def training_log(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    cfg = out / "cfg.json"
    cfg.write_text(json.dumps(TRAIN_CONFIG))
    assert main(["train", "--config", str(cfg), "--out", str(out / "r"), "--quiet"]) == 0
    return out / "r" / "train_log.h5"


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory):
    from physim.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    res = run_demo(epochs=3, out=out, progress=False)
    return res.log


def _groups(path):
    """Every group path that holds at least one dataset."""
    found = []
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and any(
                isinstance(v, h5py.Dataset) for v in obj.values()
            ):
                found.append(name)

        f.visititems(visit)
    return found


def _check_every_group(path):
    tree = xr.open_datatree(path, engine="h5netcdf")
    n = 0
    for node in tree.subtree:
        for dim in node.dataset.dims:
            assert not str(dim).startswith("phony_dim"), (node.path, dim)
        for name, var in node.dataset.variables.items():
            if var.ndim:
                assert (
                    var.attrs.get("units") or name in node.dataset.dims or var.dtype.kind in "OUS"
                ), (
                    node.path,
                    name,
                )
            n += 1
    for g in _groups(path):
        ds = xr.open_dataset(path, engine="h5netcdf", group=g)
        assert not [d for d in ds.dims if str(d).startswith("phony_dim")], g
        ds.close()
    assert n > 0


def _units_and_scale_factors(path):
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or obj.dtype.kind in "OSU":
                return
            if "scale_factor" in obj.attrs:
                assert np.ndim(obj.attrs["scale_factor"]) == 0, name  # CF: one per variable
            is_coord = (
                obj.attrs.get("CLASS") == b"DIMENSION_SCALE" and name.rsplit("/", 1)[-1] != "step"
            )
            if obj.ndim and not is_coord and not name.endswith("/step"):
                assert obj.attrs.get("unit") not in (None, "", b""), name

        f.visititems(visit)


def test_xarray_opens_a_run_log_with_named_dimensions(run_log):
    _check_every_group(run_log)
    _units_and_scale_factors(run_log)
    g = logs.OBS + "/exec-0000/gradient"
    ds = xr.open_dataset(run_log, engine="h5netcdf", group=g)
    assert ds["estimate"].dims == ("parameter",)
    assert "capacitance[0]" in str(ds["parameter"].values[0]) or ds["parameter"].values[0]
    assert set(ds["parameter_group"].values) == {
        "capacitance",
        "inverse_inductance",
        "input_weight",
    }
    assert ds["estimate"].attrs["units"] == "Wb^2/parameter_unit"
    fwd = xr.open_dataset(run_log, engine="h5netcdf", group=logs.OBS + "/exec-0000/001-forward")
    assert fwd["value"].dims == ("step", "branch", "batch", "output")
    # CF decoding of the integer ADC codes gives the controller's values bit for bit
    with logs.open_log(run_log) as f:
        raw = logs.read_value(logs.records(f, "exec-0000")["forward"])
    assert np.array_equal(fwd["value"].values, raw)


def test_xarray_opens_a_training_log(training_log):
    _check_every_group(training_log)
    _units_and_scale_factors(training_log)
    ds = xr.open_dataset(training_log, engine="h5netcdf", group=logs.TRAIN + "/param_grad_norm")
    assert ds["value"].dims == ("step", "tensor") and ds.sizes["step"] == 12
    assert "encoder.W" in list(ds["tensor"].values)


def test_xarray_opens_a_demo_log_which_is_a_run_log(demo_log):
    _check_every_group(demo_log)
    _units_and_scale_factors(demo_log)
    with logs.open_log(demo_log) as f:
        assert logs.kind(f) == "run" and "demo" in logs.provenance(f)
        assert logs.training(f)["loss"]["value"].attrs["unit"] == "m^2"
    th = xr.open_dataset(demo_log, engine="h5netcdf", group=logs.TRAIN + "/theta")
    assert list(th["parameter_group"].values) == ["spring", "spring", "coupling"]
    assert th.sizes["step"] == 4  # three updates and the final measurement


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="h5dump (hdf5-tools) not installed")
def test_h5dump_reads_every_log_kind(run_log, training_log, demo_log):
    for path in (run_log, training_log, demo_log):
        out = subprocess.run(
            ["h5dump", "-H", str(path)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr[:500]
        assert "DIMENSION_LIST" in out.stdout


def test_inspect_plot_replay_on_every_log_kind(run_log, training_log, demo_log, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for name, path in (("run", run_log), ("training", training_log), ("demo", demo_log)):
        assert main(["inspect", str(path)]) == 0
        text = capsys.readouterr().out
        assert f"{'training' if name == 'training' else 'run'} log" in text
        png = tmp_path / f"{name}.png"
        assert main(["plot", str(path), "--out", str(png)]) == 0
        assert png.stat().st_size > 5000
        assert main(["replay", str(path)]) == 0
        text = capsys.readouterr().out
        if name == "training":
            assert "replay re-runs protocol sessions only" in text
        else:
            assert "bit for bit" in text


def test_tools_on_an_incomplete_log(tmp_path, capsys):
    # a log whose writer stopped after the forward run: every tool reads what is there
    path = tmp_path / "part.h5"
    device = physim.load_device("two-mass")
    proto = _protocol("rhel-centred-traced", 100)

    class Stop(Exception):
        pass

    def stop_after_forward(i, step, records):
        if i == 1:
            raise Stop

    from physim.instrument.hardware import Instrument
    from physim.protocol.engine import run_protocol
    from physim.protocol.session import make_provenance

    nonideal = parse_nonideal({"name": "ideal", "sources": []})
    with pytest.raises(Stop):
        with logs.LogWriter(
            path, provenance=make_provenance(device, nonideal, proto, 0), device=device
        ) as w:
            w.f.require_group("observables/exec-0000").attrs["theta_requested"] = json.dumps(
                device.theta0.tolist()
            )

            def on_step(i, step, records):
                for r in records:
                    w.write_record("exec-0000", r, device.dt)
                w.step_done()
                stop_after_forward(i, step, records)

            run_protocol(Instrument(device), proto, on_step=on_step)
    assert main(["inspect", str(path)]) == 0
    assert "INCOMPLETE" in capsys.readouterr().out
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 0
    rep = replay(path)
    assert rep.ok and rep.n_records == 1 and "incomplete" in rep.note


def test_plot_never_overwrites_a_figure_it_did_not_write(demo_log, tmp_path, capsys):
    # `physim plot physim-out/demo.h5` defaults to demo.png: the demo's own figure
    pytest.importorskip("matplotlib")
    log, png = tmp_path / "demo.h5", tmp_path / "demo.png"
    shutil.copy(demo_log, log)
    shutil.copy(demo_log.with_suffix(".png"), png)
    before = png.read_bytes()
    assert main(["plot", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physim plot: error:") and "demo.png exists" in err and "--force" in err
    assert png.read_bytes() == before
    assert main(["plot", str(log), "--force"]) == 0
    assert png.read_bytes() != before


def test_cf_units_are_real_units_where_the_parameters_share_one(demo_log, run_log):
    # `m^2/parameter_unit` on two-mass, whose parameters are all N/m, was a placeholder
    with h5py.File(demo_log, "r") as f:
        g = f[logs.OBS + "/exec-0000/gradient"]
        assert g["estimate"].attrs["units"] == "m^2/(N/m)"
        assert g["step_unit"].attrs["units"] == "N/m"
        assert f[logs.OBS + "/training/theta/value"].attrs["units"] == "N/m"
    # an LC network mixes F, 1/H and A: the placeholder stays, the units sit beside the entries
    with h5py.File(run_log, "r") as f:
        g = f[logs.OBS + "/exec-0000/gradient"]
        assert g["estimate"].attrs["units"] == "Wb^2/parameter_unit"


@pytest.mark.parametrize(
    ("units", "shown"),
    [(["N/m", "N/m"], "m^2/(N/m)"), (["F", "F"], "m^2/F"), (["1"], "m^2"), (["F", "A"], "m^2/p")],
)
def test_per_entry_unit(units, shown):
    assert logs.per_entry_unit("m^2", units, "p") == shown
