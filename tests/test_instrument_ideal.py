"""Zero-valued non-idealities reproduce the ideal instrument and the ideal RHEL gradient."""

from __future__ import annotations

import numpy as np
import pytest

import physim
from physim.fidelity import fidelity
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.estimate import estimate_gradient
from physim.protocol.specs import TaskSpec, load_protocol
from physim.protocol.task import build_task

#: RHEL vs BPTT on a linear/weakly nonlinear device at eps = 1e-6: round-off of the echo only
TWIN_RTOL = 1e-8
#: the foundation forms ∂L/∂B inside its kernel with its own summation order; the instrument's
#: integrating readout folds the drive gradient with numpy, so the B part agrees to round-off
B_PART_RTOL = 1e-12

ZERO_SOURCES = {
    "name": "all-zero",
    "sources": [
        {"kind": "dissipation", "quality_factor": float("inf"), "temperature": 0.0, "seed": 3},
        {"kind": "mismatch", "relative_dtod": 0.0, "input_dtod": 0.0, "seed": 4},
        {"kind": "drift", "model": "random_walk", "relative_std": 0.0, "seed": 5},
        {"kind": "flip_error", "gain_error": 0.0, "timing_error": 0.0, "seed": 6},
        {"kind": "amplifier", "density": 0.0, "seed": 7},
        {"kind": "numerics", "mode": "float64"},
    ],
}


def _run(device, protocol_name, nonideal=None, task=None):
    proto = load_protocol(protocol_name)
    task = task or build_task(device, proto.task, proto.loss)
    res = run_protocol(Instrument(device, nonideal), proto, task=task)
    return res, estimate_gradient(res, device, proto.estimator), task


@pytest.mark.parametrize("protocol", ["rhel-centred", "rhel-centred-rerun", "rhel-one-sided"])
def test_zero_valued_sources_are_bit_identical_to_ideal(protocol):
    device = physim.load_device("duffing-chain-5")
    ideal, g_ideal, task = _run(device, protocol)
    zero, g_zero, _ = _run(device, protocol, parse_nonideal(ZERO_SOURCES), task)
    assert np.array_equal(g_ideal.grad, g_zero.grad)
    for a, b in zip(ideal.records, zero.records, strict=True):
        assert a.name == b.name
        assert np.array_equal(a.value, b.value)


def test_ideal_centred_protocol_is_the_rhel_gradient_bit_for_bit():
    # two-mass has no input matrix: the whole gradient is the w part
    device = physim.load_device("two-mass")
    proto = load_protocol("rhel-centred")
    task = build_task(device, TaskSpec(kind="device"), "mse")
    res = run_protocol(Instrument(device, parse_nonideal(ZERO_SOURCES)), proto, task=task)
    est = estimate_gradient(res, device, proto.estimator)
    ref = physim.rhel_gradient(device, None, task.u, task.target)
    assert res.kick == ref.kick
    assert np.array_equal(est.grad, ref.grad)


@pytest.mark.parametrize("name", ["lc-ladder-8", "duffing-chain-5", "nonlinhru-16"])
def test_ideal_centred_protocol_matches_rhel_and_bptt(name):
    device = physim.load_device(name)
    res, est, task = _run(device, "rhel-centred")
    ref = physim.rhel_gradient(device, None, task.u, task.target)
    assert np.array_equal(est.grad_w, ref.grad_w)
    scale = np.max(np.abs(ref.grad_B)) or 1.0
    assert np.max(np.abs(est.grad_B - ref.grad_B)) <= B_PART_RTOL * scale
    twin = physim.bptt_gradient(device, None, task.u, task.target)
    assert fidelity(est.grad, twin.grad, device).rel_error < TWIN_RTOL


def test_forward_measurement_is_the_simulated_readout():
    device = physim.load_device("lc-ladder-8")
    res, _, task = _run(device, "rhel-centred")
    y = physim.simulate(device, None, task.u).y
    assert np.array_equal(res.get("forward").value[:, 0], y)
    assert res.cost.n_runs == 3  # forward, +ε echo, −ε echo
    assert res.get("forward").codes is None


def test_rerun_costs_four_physical_runs_and_matches_centred():
    device = physim.load_device("duffing-chain-5")
    res_c, est_c, task = _run(device, "rhel-centred")
    res_r, est_r, _ = _run(device, "rhel-centred-rerun", task=task)
    assert res_r.cost.n_runs == 4 and res_c.cost.n_runs == 3
    # the two echoes are accumulated separately: the difference loses ~|G|/|ΔG| ulps
    assert fidelity(est_r.grad, est_c.grad, device).rel_error < TWIN_RTOL


def test_zero_valued_instrument_with_a_readout_matrix_is_rhel_bit_for_bit():
    # a readout matrix and dense input weights: y and the error kick take one arithmetic path
    device = physim.parse_spec(
        {
            "kind": "oscillator_network",
            "name": "mixed-readout",
            "dt": 0.05,
            "masses": [1.0, 2.0, 0.5, 1.5],
            "springs": [{"node": i, "k": 1.0 + 0.3 * i} for i in range(4)],
            "couplings": [{"nodes": [i, i + 1], "k": 0.7} for i in range(3)],
            "n_inputs": 3,
            "input_weights": {"kind": "random", "seed": 2},
            "readout": [[0.3, 0.7, 0.1, 0.0], [0.0, 0.2, -0.5, 1.0]],
        }
    ).build()
    proto = load_protocol("rhel-centred")
    task = build_task(device, proto.task, proto.loss)
    res = run_protocol(Instrument(device, parse_nonideal(ZERO_SOURCES)), proto, task=task)
    est = estimate_gradient(res, device, proto.estimator)
    ref = physim.rhel_gradient(device, None, task.u, task.target, eps=proto.eps)
    y = physim.simulate(device, None, task.u).y
    assert np.array_equal(res.get("forward").value[:, 0], y)
    assert res.kick == ref.kick
    assert np.array_equal(est.grad_w, ref.grad_w)
    scale = np.max(np.abs(ref.grad_B))
    assert np.max(np.abs(est.grad_B - ref.grad_B)) <= B_PART_RTOL * scale
