"""The command line: catalogue listing, gradcheck verdicts and the demo."""

import json

import pytest

from physim.cli import main
from physim.logs import open_log
from physim.specs import catalogue


def test_devices_lists_every_catalogue_entry_name_first(capsys):
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(catalogue())


def test_gradcheck_json_passes_on_a_linear_device(capsys):
    assert main(["gradcheck", "chain-16", "--steps", "100", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["passed"] is True
    assert rep["rhel_vs_bptt"]["max_rel_err"] <= 1e-6
    assert rep["rhel_vs_bptt"]["cosine"] >= 1 - 1e-12
    assert rep["rhel_vs_fd"]["max_rel_err"] <= 1e-5
    assert {g["name"] for g in rep["groups"]} >= {"spring", "coupling", "input_weight"}


def test_gradcheck_fails_when_the_nudge_is_too_large_for_a_nonlinear_device(capsys):
    # eps = 0.5 of the momentum scale: the O(eps²) centred bias of a Duffing chain is far
    # above the 1e-6 tolerance, so the three routes genuinely disagree
    assert main(["gradcheck", "duffing-chain-5", "--steps", "100", "--eps", "0.5"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_gradcheck_accepts_a_toml_path(tmp_path, capsys):
    path = tmp_path / "pair.toml"
    path.write_text(
        'kind = "oscillator_network"\nname = "pair"\ndt = 0.05\nmasses = [1.0, 2.0]\n'
        "springs = [{ node = 0, k = 1.0 }]\ncouplings = [{ nodes = [0, 1], k = 0.5 }]\n"
        "n_inputs = 1\ninput_weights = [[1.0], [0.5]]\n"
    )
    assert main(["gradcheck", str(path), "--steps", "50"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_unknown_device_is_a_clear_error(capsys):
    assert main(["gradcheck", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'no-such-device'" in err and "two-mass" in err


def test_demo_trains_and_writes_metrics_and_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--epochs", "30", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "demo_metrics.json").read_text())
    assert len(metrics["loss_per_epoch"]) == 31
    # 30 Adam steps on the two-mass device cut the loss by more than 10x (measured ~40x)
    assert metrics["loss_final"] < 0.1 * metrics["loss_initial"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    with open_log(tmp_path / "demo.h5") as f:
        assert int(f.attrs["complete"]) == 1
        loss = f["observables/training/loss/value"][:]
        assert loss.tolist() == metrics["loss_per_epoch"]
        assert "two-mass" in f["parameters/physim/device"][()].decode()
        assert f["observables/forward_q_before/value"].shape == (1001, 1, 2)
    # a second demo into the same folder is refused unless --force
    assert main(["demo", "--epochs", "1", "--out", str(tmp_path), "--no-plot"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
