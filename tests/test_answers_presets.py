"""Technology presets (the nonideal/ catalogue) and the as-built twin."""

import json
import re

import numpy as np
import pytest

from physim.cli import main
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec, load_nonideal, nonideal_catalogue, parse_nonideal
from physim.logs import open_log
from physim.protocol.estimate import as_built_gradient, ideal_gradient
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol
from physim.protocol.task import build_task
from physim.specs import catalogue, load_device

PRESETS = sorted(nonideal_catalogue())

#: in-situ RHEL under pure mismatch vs the as-built twin: a quadratic device is exact at any ε,
#: so only float64 round-off of ~1e3 steps and of the two echo runs remains
AS_BUILT_RTOL = 1e-9
#: 5 % element mismatch moves the nominal gradient by far more than this
NOMINAL_MOVES = 1e-2


def _paired_device(spec: NonidealSpec) -> str:
    assert spec.pairs_with, f"preset {spec.name} names no device to pair with (pairs_with)"
    m = re.search(r"pair with device ([\w-]+)", spec.description)
    assert m and m.group(1) == spec.pairs_with, "the description names another device"
    return spec.pairs_with


def test_the_catalogue_has_the_four_technologies():
    assert {"mems-vacuum", "pcb-c0g", "cmos-onchip", "superconducting-20mk"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_cites_sources_and_pairs_with_a_catalogue_device(name):
    spec = load_nonideal(name)
    assert spec.name == name
    assert re.search(r"\(\d{4}\)|datasheet", spec.description), "no citation in the description"
    assert _paired_device(spec) in catalogue()
    assert spec.get("adc", "readout") is not None and spec.get("adc", "accumulator") is not None


#: the designer-facing Q ranges each technology is documented with (REFERENCE.md §4)
Q_RANGE = {
    "mems-vacuum": (1e3, 1e5),
    "pcb-c0g": (50, 200),
    "cmos-onchip": (3, 20),
    "superconducting-20mk": (1e5, 1e6),
}


@pytest.mark.parametrize("name", sorted(Q_RANGE))
def test_preset_quality_factor_is_in_its_technology_range(name):
    q = load_nonideal(name).get("dissipation").quality_factor
    lo, hi = Q_RANGE[name]
    assert lo <= q <= hi


@pytest.mark.parametrize("name", PRESETS)
def test_preset_runs_a_protocol_on_its_device(name):
    spec = load_nonideal(name)
    device = load_device(_paired_device(spec))
    protocol = load_protocol("rhel-centred-rerun")
    protocol = protocol.model_copy(
        update={"eps": 1e-3, "task": protocol.task.model_copy(update={"n_steps": 100})}
    )
    res = run_session(device, protocol, spec)
    assert np.all(np.isfinite(res.estimate))
    assert -1.0 <= res.fidelity_as_built.cosine <= 1.0


def test_nonideals_lists_presets_name_first(capsys):
    assert main(["nonideals"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == PRESETS


def test_unknown_preset_names_the_presets():
    with pytest.raises(FileNotFoundError, match="no preset of that name; presets: .*pcb-c0g"):
        load_nonideal("pcb-x7r")


def _mismatch(sigma: float, seed: int = 3) -> NonidealSpec:
    return parse_nonideal(
        {
            "name": "mismatch",
            "sources": [
                {"kind": "mismatch", "relative_dtod": sigma, "input_dtod": sigma, "seed": seed}
            ],
        }
    )


@pytest.mark.parametrize("name", ["chain-16", "lc-ladder-8"])
def test_in_situ_gradient_under_mismatch_is_exact_for_the_as_built_twin(name):
    device = load_device(name)
    protocol = load_protocol("rhel-centred-rerun").model_copy(update={"eps": 1e-2})
    res = run_session(device, protocol, _mismatch(0.05))
    assert res.fidelity_as_built.rel_error <= AS_BUILT_RTOL
    assert res.fidelity.rel_error >= NOMINAL_MOVES  # the target moved; the estimate did not err


def test_as_built_twin_of_an_ideal_chip_is_the_nominal_twin():
    device = load_device("chain-16")
    protocol = load_protocol("rhel-centred")
    task = build_task(device, protocol.task, protocol.loss)
    inst = Instrument(device, NonidealSpec())
    theta = device.theta0
    np.testing.assert_array_equal(
        as_built_gradient(inst, theta, task), ideal_gradient(device, theta, task)
    )


def test_as_built_twin_follows_drift():
    """Drift moves the chip between runs; the twin is taken at the current drift."""
    device = load_device("chain-16")
    spec = parse_nonideal({"sources": [{"kind": "drift", "relative_std": 1e-2, "seed": 1}]})
    inst = Instrument(device, spec)
    inst.program(device.theta0)
    for _ in range(3):
        inst.prepare("device", 1)
    twin = inst.as_built()
    w_nom = device.physical(device.theta0).w
    np.testing.assert_allclose(twin.w_base, w_nom * (1.0 + inst.drift), rtol=1e-15)


def test_run_reports_and_logs_the_as_built_twin(tmp_path, capsys):
    mis = tmp_path / "mis.toml"
    mis.write_text('name = "mis"\n[[sources]]\nkind = "mismatch"\nrelative_dtod = 0.05\nseed = 2\n')
    log = tmp_path / "run.h5"
    args = ["run", "lc-ladder-8", "rhel-centred", "--nonideal", str(mis), "--json"]
    assert main([*args, "--log", str(log)]) == 0
    out = capsys.readouterr().out
    rep = json.loads(out[: out.rindex("}") + 1])
    assert rep["fidelity_vs_as_built_twin"]["rel_error"] <= AS_BUILT_RTOL
    assert rep["fidelity_vs_ideal_twin"]["rel_error"] >= NOMINAL_MOVES
    with open_log(log) as f:
        g = f["observables/exec-0000/gradient"]
        assert g["as_built"].shape == g["estimate"].shape
        assert json.loads(g.attrs["fidelity_as_built"])["rel_error"] <= AS_BUILT_RTOL
