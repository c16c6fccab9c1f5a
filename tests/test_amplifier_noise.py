"""Readout amplifier noise: the measured variance is density² × bandwidth, a zero source is no
source bit for bit, the draws follow the seed, and the kind is listed, swept and budgeted."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import constants

from physim.answers.budget import LEVELS, level_of, tolerance
from physim.cli import main
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealError, load_nonideal, parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol, parse_protocol
from physim.specs import load_device
from physim.study.expand import expand
from physim.study.spec import parse_study

#: samples per statistical check: 20000 steps × 2 readout nodes
N_STEPS = 20000
#: 5 standard errors: of a sample variance of N Gaussian samples, √(2/N) relative (χ²_N / N);
#: of a sample mean, σ/√N
Z = 5.0

PROBE = parse_protocol(
    {
        "name": "probe",
        "steps": [
            {"op": "prepare", "state": "zero"},
            {"op": "drive", "input": "impulse", "n_steps": N_STEPS, "measure": "y"},
        ],
    }
)


def _record(device: str, sources: list[dict], protocol=PROBE, name: str = "y") -> np.ndarray:
    inst = Instrument(load_device(device), parse_nonideal({"sources": sources}))
    return run_protocol(inst, protocol, check=False).get(name).value


def _check_white(noise: np.ndarray, std: float) -> None:
    n = noise.size
    var = float(np.mean(noise**2))  # the mean is 0 by construction; checked apart
    assert abs(var / std**2 - 1.0) < Z * math.sqrt(2.0 / n), (var, std**2)
    assert abs(float(np.mean(noise))) < Z * std / math.sqrt(n)
    # independent samples: the lag-1 correlation of white noise is 0 ± 1/√N
    x = noise.reshape(noise.shape[0], -1)
    lag1 = float(np.mean(x[1:] * x[:-1])) / var
    assert abs(lag1) < Z / math.sqrt(x[1:].size)


@pytest.mark.parametrize("bandwidth_factor", [None, 4.0])
def test_measured_variance_is_density_squared_times_bandwidth(bandwidth_factor):
    device = load_device("lc-ladder-8")
    nyquist = 1.0 / (2.0 * device.dt)
    density = 3e-17  # Wb/√Hz
    amp = {"kind": "amplifier", "density": density, "seed": 3}
    bandwidth = nyquist
    if bandwidth_factor is not None:
        bandwidth = bandwidth_factor * nyquist  # a chain without an anti-alias filter
        amp["bandwidth"] = bandwidth
    clean = _record("lc-ladder-8", [])
    noisy = _record("lc-ladder-8", [amp])
    assert noisy.shape == clean.shape == (N_STEPS, 1, 1, 2)
    _check_white(noisy - clean, density * math.sqrt(bandwidth))


def test_noise_temperature_is_johnson_noise_of_the_source_resistance_referred_to_flux():
    """T_N = 4 K, R_s = 50 Ω, f = 5 MHz on an LC ladder: the open-circuit noise voltage of R_s
    at T_N has variance 4 k_B T_N R_s Δf (k_B from scipy, not physim); a tone at f of voltage V
    has flux V/(2πf)."""
    device = load_device("lc-ladder-8")
    T_N, R_s, f = 4.0, 50.0, 5e6
    bandwidth = 1.0 / (2.0 * device.dt)
    v_var = 4.0 * constants.k * T_N * R_s * bandwidth
    std = math.sqrt(v_var) / (2.0 * math.pi * f)
    amp = {"kind": "amplifier", "noise_temperature": T_N, "impedance": R_s, "frequency": f}
    noise = _record("lc-ladder-8", [{**amp, "seed": 8}]) - _record("lc-ladder-8", [])
    _check_white(noise, std)


def test_density_in_metres_on_an_oscillator_network_and_every_kth_sample():
    """An oscillator network reads positions (m); samples every 5th step carry the whole
    band's noise (variance S²/(2·dt)), independent from one sample to the next."""
    device = load_device("mems-array-8")
    density = 3e-14  # m/√Hz
    every = {**PROBE.steps[1].model_dump(), "every": 5}
    protocol = PROBE.model_copy(update={"steps": [PROBE.steps[0], type(PROBE.steps[1])(**every)]})
    amp = {"kind": "amplifier", "density": density, "seed": 4}
    noise = _record("mems-array-8", [amp], protocol) - _record("mems-array-8", [], protocol)
    assert noise.shape[0] == N_STEPS // 5
    _check_white(noise, density / math.sqrt(2.0 * device.dt))


def test_amplifier_acts_before_the_readout_adc():
    """With a readout ADC the record is codes × LSB exactly: the noise was digitised."""
    adc = {"kind": "adc", "target": "readout", "bits": 12, "seed": 2}
    amp = {"kind": "amplifier", "density": 3e-17, "seed": 3}
    inst = Instrument(load_device("lc-ladder-8"), parse_nonideal({"sources": [amp, adc]}))
    rec = run_protocol(inst, PROBE, check=False).get("y")
    np.testing.assert_array_equal(rec.value, rec.codes * rec.lsb)
    assert [type(s).kind for s in inst.active] == ["amplifier", "adc"]


def test_zero_amplifier_is_bit_for_bit_no_amplifier_in_a_preset():
    device = load_device("lc-ladder-8")
    protocol = load_protocol("rhel-centred").model_copy(update={"eps": 1e-3})
    base = load_nonideal("pcb-c0g")
    without = base.model_copy(
        update={"sources": [s for s in base.sources if s.kind != "amplifier"]}
    )
    zero = parse_nonideal(
        {
            "sources": [
                *(s.model_dump() for s in without.sources),
                {"kind": "amplifier", "density": 0.0, "seed": 99},
            ]
        }
    )
    a = run_protocol(Instrument(device, without, seed=1), protocol, check=False)
    inst = Instrument(device, zero, seed=1)
    b = run_protocol(inst, protocol, check=False)
    assert "amplifier" not in [type(s).kind for s in inst.active]
    assert [r.name for r in a.records] == [r.name for r in b.records]
    for ra, rb in zip(a.records, b.records, strict=True):
        np.testing.assert_array_equal(ra.value, rb.value)
    assert a.loss == b.loss


def test_noise_is_reproducible_from_the_seed_and_changes_with_it():
    amp = {"kind": "amplifier", "density": 3e-17}
    a = _record("lc-ladder-8", [{**amp, "seed": 5}])
    b = _record("lc-ladder-8", [{**amp, "seed": 5}])
    c = _record("lc-ladder-8", [{**amp, "seed": 6}])
    np.testing.assert_array_equal(a, b)
    clean = _record("lc-ladder-8", [])
    # two seeds: independent draws, so their noises are uncorrelated (0 ± 1/√N)
    na, nc = (a - clean).ravel(), (c - clean).ravel()
    assert abs(float(np.corrcoef(na, nc)[0, 1])) < Z / math.sqrt(na.size)


def test_the_kind_is_listed_swept_and_budgeted(capsys):
    assert main(["nonideals", "--kinds"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "amplifier" in rows and "input-referred" in rows["amplifier"]
    # a study axis over a base without an amplifier adds one
    plan = expand(
        parse_study(
            {
                "name": "amp",
                "replicates": 1,
                "base": {"device": "lc-ladder-8", "protocol": "rhel-centred-rerun"},
                "axes": [{"path": "nonideal.amplifier.density", "values": [0.0, 3e-17]}],
            }
        )
    )
    assert plan.axes[0].units == "readout unit/√Hz"
    assert '"kind":"amplifier"' in plan.task(1).nonideal and "3e-17" in plan.task(1).nonideal
    # budget levels: the density, or the noise temperature when that is what is given
    assert LEVELS["amplifier"].field == "density" and LEVELS["amplifier"].worse == +1
    spec = parse_nonideal(
        {
            "sources": [
                {"kind": "amplifier", "noise_temperature": 4.0, "impedance": 50, "frequency": 5e6}
            ]
        }
    )
    assert level_of(spec.sources[0]).field == "noise_temperature"


def test_budget_finds_the_amplifier_tolerance_on_a_small_run():
    device = load_device("lc-ladder-8")
    protocol = load_protocol("rhel-centred-rerun")
    protocol = protocol.model_copy(
        update={"eps": 1e-3, "task": protocol.task.model_copy(update={"n_steps": 100})}
    )
    spec = parse_nonideal({"sources": [{"kind": "amplifier", "density": 1e-16, "seed": 1}]})
    tol = tolerance(device, protocol, spec, 0, target=0.99, replicates=1)
    assert tol["source"] == "amplifier" and tol["field"] == "density"
    assert tol["level"] is not None and tol["level"] > 0, tol


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (
            {"density": 1e-17, "noise_temperature": 4.0, "impedance": 50.0, "frequency": 5e6},
            r"give density \(1e-17\) or noise_temperature \(4 K\), not both",
        ),
        (
            {"noise_temperature": 4.0},
            r"noise_temperature = 4 K needs impedance and frequency to refer it to the node "
            r"flux .* or give density",
        ),
        ({"density": -1.0}, r"density"),
    ],
)
def test_bad_values_are_refused_with_field_value_and_fix(source, match):
    with pytest.raises(NonidealError, match=match):
        parse_nonideal({"sources": [{"kind": "amplifier", **source}]})


def test_a_noise_temperature_on_a_readout_not_in_flux_is_refused():
    spec = parse_nonideal(
        {
            "sources": [
                {"kind": "amplifier", "noise_temperature": 4.0, "impedance": 50, "frequency": 1e5}
            ]
        }
    )
    with pytest.raises(
        ValueError,
        match=r"amplifier.noise_temperature = 4 K cannot be referred to device 'mems-array-8'"
        r"'s readout, which is in 'm', not node flux in Wb; give amplifier.density in m/√Hz",
    ):
        Instrument(load_device("mems-array-8"), spec)


def test_a_bandwidth_below_the_step_nyquist_is_refused():
    spec = parse_nonideal({"sources": [{"kind": "amplifier", "density": 1e-17, "bandwidth": 1e6}]})
    with pytest.raises(
        ValueError,
        match=r"amplifier.bandwidth = 1e\+06 Hz is below the step's Nyquist bandwidth "
        r"1/\(2·dt\) = 2.5e\+08 Hz of device 'lc-ladder-8'.*omit bandwidth",
    ):
        Instrument(load_device("lc-ladder-8"), spec)
