"""PhysimWarning: each fires on a probably-wrong result and stays quiet on a sound one."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import physim
from physim.cli import main
from physim.fidelity import describe, fidelity
from physim.gradcheck import gradcheck
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.estimate import estimate_gradient, ideal_gradient
from physim.protocol.specs import load_protocol
from physim.protocol.task import build_task
from physim.specs import parse_spec
from physim.warnings import PhysimWarning

#: the cosine a user may trust; the LSB warning must fire where the estimate falls below it
GOOD_COSINE = 0.99


def _adc(target: str, **kw) -> dict:
    return parse_nonideal({"sources": [{"kind": "adc", "target": target, "seed": 2, **kw}]})


def _measure(device, protocol: str, nonideal, eps: float | None = None, **task):
    proto = load_protocol(protocol)
    if eps is not None:
        proto = proto.model_copy(update={"eps": eps})
    if task:
        proto = proto.model_copy(update={"task": proto.task.model_copy(update=task)})
    t = build_task(device, proto.task, proto.loss)
    res = run_protocol(Instrument(device, nonideal), proto, task=t, theta=device.theta0)
    est = estimate_gradient(res, device, proto.estimator, eps=proto.eps, check=True)
    return fidelity(est.grad, ideal_gradient(device, res.theta, t), device)


@pytest.fixture(scope="module")
def ladder():
    return physim.load_device("lc-ladder-8")


def test_accumulator_below_lsb_warns_with_an_eps_that_fixes_it(ladder):
    ni = _adc("accumulator", bits=16)
    with pytest.warns(
        PhysimWarning, match=r"median \S+ LSB per entry.*raise eps to >= (\S+)"
    ) as rec:
        bad = _measure(ladder, "rhel-centred-rerun", ni, eps=1e-6)
    assert bad.cosine < GOOD_COSINE  # the warning is right: the estimate is mostly rounding
    suggested = float(str(rec[0].message).split("raise eps to >= ")[1].split()[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysimWarning)
        good = _measure(ladder, "rhel-centred-rerun", ni, eps=suggested)
    assert good.cosine >= GOOD_COSINE


def test_accumulator_well_resolved_is_quiet(ladder):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysimWarning)
        fid = _measure(ladder, "rhel-centred-rerun", _adc("accumulator", bits=24), eps=1e-6)
        _measure(ladder, "rhel-centred-rerun", None, eps=1e-6)  # no ADC: nothing to check
    assert fid.cosine >= GOOD_COSINE


def test_saturating_readout_warns_by_how_much(ladder):
    proto = load_protocol("rhel-centred")
    task = build_task(ladder, proto.task, proto.loss)
    peak = float(np.max(np.abs(physim.simulate(ladder, None, task.u).y)))
    ni = _adc("readout", bits=12, full_scale=peak / 3)
    with pytest.warns(
        PhysimWarning, match=r"readout ADC saturated on \d+ sample\(s\), up to (\S+)×"
    ) as rec:
        _measure(ladder, "rhel-centred", ni)
    msg = str(rec[0].message)
    over = float(msg.split("up to ")[1].split("×")[0])
    assert over >= 3 * 0.999  # at least the forward run's own overshoot of the range
    assert "set full_scale >= " in msg


def test_auto_ranged_readout_is_quiet(ladder):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysimWarning)
        _measure(ladder, "rhel-centred", _adc("readout", bits=16))


def test_loss_error_below_a_readout_lsb_warns(ladder):
    # a teacher within 1e-6 of the device: y − target is far below a 6-bit LSB
    ni = _adc("readout", bits=6)
    with pytest.warns(PhysimWarning, match=r"loss error y − target at \S+ LSB rms"):
        _measure(ladder, "rhel-centred", ni, teacher_spread=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysimWarning)
        _measure(ladder, "rhel-centred", _adc("readout", bits=24), teacher_spread=0.1)


def _tank(gain: float):
    return parse_spec(
        {
            "kind": "lc_network",
            "name": "tank",
            "dt": 1e-9,
            "nodes": ["a", "b"],
            "elements": [
                {"type": "capacitor", "name": "C1", "a": "a", "C": 1e-9},
                {"type": "inductor", "name": "L1", "a": "a", "b": "b", "L": 1e-6},
                {"type": "capacitor", "name": "C2", "a": "b", "C": 1e-9},
                {"type": "josephson", "name": "J1", "a": "b", "E_J": 2e-23},
            ],
            "sources": [{"node": "a", "input": 0, "gain": gain}],
        }
    ).build()


def test_junction_driven_far_past_two_pi_warns_in_gradcheck_and_runs():
    dev = _tank(1e-3)  # the README's old value: ~1e4 × the critical current
    with pytest.warns(PhysimWarning, match=r"josephson J1 winds through \S+ turns.*× I_c"):
        rep = gradcheck(dev, n_steps=100, n_fd=1)
    assert not rep.passed  # and the gradient is indeed wrong
    with pytest.warns(PhysimWarning, match=r"josephson J1 winds through"):
        run_protocol(Instrument(dev, None), load_protocol("rhel-centred"))


def test_junction_below_its_critical_current_is_quiet():
    dev = _tank(1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysimWarning)
        rep = gradcheck(dev, n_steps=100, n_fd=1)
        run_protocol(Instrument(dev, None), load_protocol("rhel-centred"))
        gradcheck(physim.load_device("josephson-4"), n_steps=50, n_fd=1)
    assert rep.passed


def test_one_parameter_group_reports_sign_and_ratio(ladder):
    ref = np.linspace(1.0, 2.0, ladder.n_params)
    est = ref.copy()
    sl = ladder.slices()["input_weight"]
    assert sl.stop - sl.start == 1
    est[sl] = -3.0 * ref[sl]
    g = fidelity(est, ref, ladder).groups
    assert g["input_weight"]["sign"] == -1.0 and g["input_weight"]["ratio"] == pytest.approx(-3)
    assert g["input_weight"]["cosine"] == pytest.approx(-1.0)  # what it replaces: no information
    assert describe(g["input_weight"]).startswith("1 parameter: OPPOSITE sign, ratio -3")
    assert "sign" not in g["capacitance"] and describe(g["capacitance"]).startswith("cosine 1.0")


def test_run_prints_sign_and_ratio_for_one_parameter_groups(capsys):
    assert main(["run", "lc-ladder-8", "rhel-centred"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if "input_weight" in x][0]
    assert "1 parameter: same sign, ratio 1" in line and "cosine 1" not in line


def test_run_json_with_log_is_pure_json(tmp_path, capsys):
    log = tmp_path / "x.h5"
    argv = ["run", "lc-ladder-8", "rhel-centred-rerun", "--json", "--log", str(log)]
    with pytest.warns(PhysimWarning, match="accumulator ADC reads the gradient"):
        assert main([*argv, "--nonideal", str(_write_pcb(tmp_path))]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)  # warnings and "wrote" are not on stdout
    assert out["fidelity_vs_ideal_twin"]["groups"]["input_weight"]["size"] == 1
    assert f"wrote {log}" in cap.err and log.exists()


def _write_pcb(tmp_path):
    p = tmp_path / "pcb.toml"
    p.write_text(
        'name = "pcb"\n[[sources]]\nkind = "adc"\ntarget = "accumulator"\nbits = 16\nseed = 2\n'
    )
    return p


def test_duffing_spring_stiffened_past_the_step_warns():
    from physim.rangecheck import check_drive_range

    dev = physim.load_device("duffing-chain-5")
    u = np.full((400, 1, dev.n_inputs), 2e3)  # a 2 kN push: displacements of ~60 m
    traj = physim.simulate(dev, None, u, record=True)
    with pytest.warns(PhysimWarning, match=r"Duffing term on masses \[\d\] .* ω·dt = 1\.\d+"):
        check_drive_range(dev, traj.q, u)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysimWarning)
        u = np.random.default_rng(0).normal(size=(400, 2, dev.n_inputs))
        check_drive_range(dev, physim.simulate(dev, None, u, record=True).q, u)
        gradcheck(dev, n_steps=50, n_fd=1)


def test_training_warns_once_not_every_epoch(ladder):
    from physim.protocol.session import run_session

    proto = load_protocol("rhel-centred-rerun")
    with pytest.warns(PhysimWarning) as rec:
        run_session(ladder, proto, _adc("accumulator", bits=16), epochs=3)
    assert len(rec) == 1, [str(w.message) for w in rec]
    assert str(rec[0].message).startswith("the accumulator ADC reads the gradient at a median")


def test_gradcheck_table_gives_the_sign_of_one_parameter_groups():
    from physim.gradcheck import GradcheckReport, GroupCheck, format_report

    groups = [
        GroupCheck("k", 3, 1e-9, 0.999, None, None, 0),
        GroupCheck("gain", 1, 2.0, -1.0, None, None, 0),
    ]
    text = format_report(GradcheckReport("d", 10, 1, 1e-6, 0, 1.0, groups))
    assert "OPPOSITE sign" in text.splitlines()[4] and "0.999000" in text.splitlines()[3]
