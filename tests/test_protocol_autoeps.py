"""eps = "auto": the calibrated nudge vs the error-minimising ε of a dense scan."""

import json

import numpy as np
import pytest

from physim.answers.budget import eps_curve
from physim.cli import main
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.logs import open_log, provenance
from physim.protocol.autoeps import calibrate_eps
from physim.protocol.specs import ProtocolError, load_protocol, parse_protocol
from physim.protocol.task import build_task
from physim.specs import load_device
from physim.warnings import PhysimWarning

#: the issue's acceptance band: auto within a factor of 3 of the dense-scan optimum
FACTOR = 3.0
#: the dense scan: 4 points per decade, averaged over 4 replicate chips
DENSE = np.logspace(-7, 0.5, 31)

CASES = {
    # linear, a 12-bit accumulator ADC: LSB ∝ 1/ε below, range growth ∝ ε above the optimum
    "linear-adc": ("chain-16", {"kind": "adc", "target": "accumulator", "bits": 12}),
    # nonlinear (Duffing), Gaussian ADC input noise: noise ∝ 1/ε against the bias ∝ ε²
    "nonlinear-noise": (
        "duffing-chain-5",
        {"kind": "adc", "target": "accumulator", "bits": 24, "noise_lsb": 1.0},
    ),
}


def _protocol(eps):
    p = load_protocol("rhel-centred-rerun")
    return p.model_copy(update={"eps": eps, "task": p.task.model_copy(update={"n_steps": 150})})


@pytest.mark.parametrize("case", sorted(CASES))
def test_auto_eps_lands_within_a_factor_3_of_the_dense_scan_optimum(case):
    name, source = CASES[case]
    device = load_device(name)
    non = parse_nonideal({"name": case, "sources": [source]})
    scan = eps_curve(device, _protocol(1e-3), non, eps=DENSE, replicates=4)
    # the scan's optimum is interior, so the comparison is meaningful
    assert DENSE[1] < scan["best_eps"] < DENSE[-2]
    p = _protocol("auto")
    cal = calibrate_eps(Instrument(device, non), p, build_task(device, p.task, p.loss))
    assert scan["best_eps"] / FACTOR <= cal.eps <= scan["best_eps"] * FACTOR, cal.reason


def test_auto_eps_is_recorded_in_the_result_and_the_log(tmp_path, capsys):
    log = tmp_path / "auto.h5"
    args = ["run", "duffing-chain-5", "rhel-centred-rerun", "--eps", "auto", "--steps", "100"]
    assert main([*args, "--json", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    rep = json.loads(out[: out.rindex("}") + 1])
    cal = rep["eps_calibration"]
    assert rep["eps"] == cal["eps"] and "minimises the modelled relative error" in cal["reason"]
    with open_log(log) as f:
        assert json.loads(provenance(f)["eps_auto"])["eps"] == cal["eps"]
    assert main(["replay", str(log)]) == 0  # calibration runs on copies: the log replays


def test_auto_eps_with_a_coarse_accumulator_adc_warns_with_the_calibrated_eps(tmp_path, capsys):
    """The ADC-resolution warning suggests an ε relative to the one used: with eps = "auto"
    that is the calibrated number (it once formatted the string "auto" and crashed)."""
    coarse = tmp_path / "adc4.toml"
    coarse.write_text('sources = [{ kind = "adc", target = "accumulator", bits = 4 }]\n')
    args = ["run", "lc-ladder-8", "rhel-centred", "--nonideal", str(coarse), "--eps", "auto"]
    with pytest.warns(PhysimWarning, match=r"raise eps to >= \S+ \(now \de-\d+\)"):
        assert main([*args, "--steps", "100"]) == 0
    assert "TypeError" not in capsys.readouterr().err


def test_auto_eps_needs_a_gradient_estimator():
    data = {
        "name": "look",
        "eps": "auto",
        "steps": [{"op": "prepare"}, {"op": "drive", "measure": "y"}],
    }
    with pytest.raises(ProtocolError, match='eps = "auto" calibrates ε from measured gradients'):
        parse_protocol(data)


def test_auto_eps_grid_must_be_ordered():
    p = load_protocol("rhel-centred").model_dump()
    p["auto_eps"] = {"lo": 1.0, "hi": 1e-3}
    with pytest.raises(ProtocolError, match="auto_eps needs lo < hi"):
        parse_protocol(p)


def test_run_rejects_a_bad_eps(capsys):
    with pytest.raises(SystemExit):
        main(["run", "chain-16", "rhel-centred", "--eps", "big"])
    assert "--eps must be a positive number or 'auto', got 'big'" in capsys.readouterr().err
