"""HDF5 run logs: H5MD layout, bit-exact round trip, h5dump, crash safety, replay, CLI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import physim
from physim import logs
from physim.cli import main
from physim.instrument.specs import parse_nonideal
from physim.protocol.commands import register
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol
from physim.tools.commands import register as register_tools
from physim.tools.loginspect import summary
from physim.tools.replay import replay

NONIDEAL = parse_nonideal(
    {
        "name": "noisy",
        "sources": [
            {"kind": "dissipation", "quality_factor": 300.0, "temperature": 1e6, "seed": 1},
            {"kind": "adc", "target": "readout", "bits": 12, "noise_lsb": 0.5, "seed": 2},
            {"kind": "adc", "target": "accumulator", "bits": 16, "seed": 3},
            {"kind": "flip_error", "gain_std": 1e-3, "seed": 4},
        ],
    }
)


def _protocol(n_steps=120):
    p = load_protocol("rhel-centred-rerun")
    return p.model_copy(update={"task": p.task.model_copy(update={"n_steps": n_steps})})


def test_log_round_trip_is_bit_exact_and_h5md_shaped(tmp_path):
    device = physim.load_device("lc-ladder-8")
    path = tmp_path / "run.h5"
    res = run_session(device, _protocol(), NONIDEAL, seed=5, log=path)
    with logs.open_log(path) as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "physim"
        assert int(f.attrs["complete"]) == 1
        prov = logs.provenance(f)
        assert json.loads(prov["nonideal"])["name"] == "noisy"
        assert json.loads(prov["device"])["name"] == "lc-ladder-8"
        recs = logs.records(f, "exec-0000")
        for r in res.results[0].records:
            g = recs[r.name]
            stored = logs.read_value(g)
            expect = r.value if r.index is not None else r.value[None]
            assert np.array_equal(stored, expect), r.name
            d = g["value"]
            if "scale_factor" in d.attrs:  # one LSB for every channel: integer codes, exact
                assert d.dtype.kind == "i" and np.ndim(d.attrs["scale_factor"]) == 0
            else:  # auto-ranged per channel: the value beside its lsb, value / lsb integer
                codes = d[()] / g["lsb"][()]
                assert np.array_equal(codes, np.rint(codes))
            assert d.compression == "gzip" and d.shuffle
            assert g["time"].attrs["unit"] == "s" and "unit" in d.attrs
            assert len(g["step"]) == d.shape[0] == len(g["time"])


def test_replay_reproduces_a_noisy_training_log(tmp_path):
    device = physim.load_device("chain-16")
    path = tmp_path / "train.h5"
    run_session(device, _protocol(60), NONIDEAL, seed=2, log=path, epochs=3, lr=0.01)
    with logs.open_log(path) as f:
        assert logs.training(f)["loss"]["value"].shape == (3,)
    rep = replay(path)
    assert rep.ok and rep.n_runs == 3 and rep.n_records == 12


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="h5dump (hdf5-tools) not installed")
def test_h5dump_reads_a_log(tmp_path):
    path = tmp_path / "run.h5"
    run_session(physim.load_device("two-mass"), load_protocol("rhel-centred"), NONIDEAL, log=path)
    out = subprocess.run(
        ["h5dump", "-A", "-d", "/observables/exec-0000/001-forward/value", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "scale_factor" in out.stdout and "DATA" in out.stdout


CHILD = textwrap.dedent("""
    import sys, time
    import physim
    from physim import logs
    from physim.instrument.hardware import Instrument
    from physim.protocol.engine import run_protocol
    from physim.protocol.specs import load_protocol
    device = physim.load_device("lc-ladder-8")
    proto = load_protocol("rhel-centred-rerun")
    w = logs.LogWriter(sys.argv[1], provenance={"device": device.spec.model_dump_json()})
    def on_step(i, step, records):
        for r in records:
            w.write_record("exec-0000", r, device.dt)
        w.step_done()
        if i == 4:  # the first echo has been integrated and written
            print("ready", flush=True)
            time.sleep(120)
    run_protocol(Instrument(device), proto, on_step=on_step)
""")


def test_sigkill_mid_protocol_leaves_completed_steps_readable(tmp_path):
    path = tmp_path / "killed.h5"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    with logs.open_log(path) as f:
        assert int(f.attrs["complete"]) == 0
        assert int(f.attrs["n_steps_done"]) == 5
        recs = logs.records(f, "exec-0000")
        assert set(recs) == {"forward+", "dH/dtheta+"}
        assert logs.read_value(recs["forward+"]).shape == (200, 1, 1, 2)
    assert "INCOMPLETE" in summary(path)


def _cli(*argv):
    ap = argparse.ArgumentParser(prog="physim")
    sub = ap.add_subparsers(dest="command", required=True)
    register(sub)
    register_tools(sub)
    args = ap.parse_args(list(argv))
    return args.func(args)


def test_cli_run_inspect_plot_replay(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    ni = tmp_path / "ni.toml"
    ni.write_text('name = "adc10"\n[[sources]]\nkind = "adc"\ntarget = "readout"\nbits = 10\n')
    log = tmp_path / "out.h5"
    assert (
        _cli(
            "run",
            "lc-ladder-8",
            "rhel-centred",
            "--nonideal",
            str(ni),
            "--log",
            str(log),
            "--steps",
            "80",
        )
        == 0
    )
    assert "gradient vs ideal twin" in capsys.readouterr().out
    assert _cli("inspect", str(log)) == 0
    text = capsys.readouterr().out
    assert "complete" in text and "adc10" in text and "ADC codes" in text
    assert _cli("plot", str(log), "--out", str(tmp_path / "p.png")) == 0
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert _cli("replay", str(log)) == 0
    assert _cli("protocols") == 0
    assert "rhel-centred-rerun" in capsys.readouterr().out


def test_cli_rejects_a_bad_nonideal_file_naming_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nkind = "adc"\ntarget = "readout"\nbits = 0\n')
    with pytest.raises(ValueError, match=r"sources\.0\.adc\.bits.*greater than or equal to 2"):
        _cli("run", "two-mass", "rhel-centred", "--nonideal", str(bad))


def test_writer_api_for_free_form_logs(tmp_path):
    path = tmp_path / "demo.h5"
    q = np.random.default_rng(0).standard_normal((1000, 16))
    with logs.LogWriter(path, provenance={"note": "demo"}) as w:
        w.write_array("trajectory_q", q, unit="m")
        for epoch in range(4):
            w.append("loss", epoch, float(epoch), 1.0 / (epoch + 1))
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["observables/trajectory_q/value"][()], q)
        assert f["observables/training/loss/value"][()].tolist() == [1.0, 0.5, 1 / 3, 0.25]
        assert int(f.attrs["complete"]) == 1


def test_replay_of_a_complete_log_with_a_deleted_record_value_fails(tmp_path, capsys):
    import h5py

    path = tmp_path / "run.h5"
    run_session(physim.load_device("lc-ladder-8"), _protocol(60), NONIDEAL, seed=5, log=path)
    with logs.open_log(path) as f:
        name, group = next(iter(logs.records(f, "exec-0000").items()))
        where = group.name
    with h5py.File(path, "r+") as f:
        del f[f"{where}/value"]
    rep = replay(path)
    assert rep.mismatches == [f"exec-0000/{name} (missing from the log)"]
    assert _cli("replay", str(path)) == 1
    assert "replay differs in 1 of" in capsys.readouterr().out


def test_plot_out_never_replaces_a_users_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    log = tmp_path / "run.h5"
    run_session(physim.load_device("lc-ladder-8"), _protocol(60), NONIDEAL, seed=5, log=log)
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my own figure")
    assert main(["plot", str(log), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine} exists and physim plot did not write it" in err and "--force" in err
    assert mine.read_bytes() == b"my own figure"
    ours = tmp_path / "ours.png"
    assert main(["plot", str(log), "--out", str(ours)]) == 0
    assert main(["plot", str(log), "--out", str(ours)]) == 0  # its own figure: replotted
    assert main(["plot", str(log), "--out", str(mine), "--force"]) == 0
    assert mine.read_bytes()[:4] == b"\x89PNG"
