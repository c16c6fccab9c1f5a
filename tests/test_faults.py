"""Numerical faults are loud: the stability check at build time and NumericalFault at run time.

Every blow-up names its run (forward, echo +, echo −, adjoint) and the exact step; the step is
checked against an independent route — the kernel run directly with every state recorded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import physim
from physim.errors import NumericalFault
from physim.kernels import leapfrog
from physim.simulate import readout_matrix
from physim.specs import parse_spec
from physim.stability import StabilityWarning, UnstableStepError, stability_ratio


def _chain(dt: float, k: float = 1.0, m: float = 1.0, **extra) -> dict:
    return {
        "kind": "oscillator_network",
        "name": "stiff-3",
        "dt": dt,
        "masses": [m, m, m],
        "springs": [{"node": 0, "k": k}, {"node": 2, "k": k}],
        "couplings": [{"nodes": [0, 1], "k": k}, {"nodes": [1, 2], "k": k}],
        "n_inputs": 1,
        "input_weights": [[1.0], [0.0], [0.0]],
        "readout": [2],
        **extra,
    }


def _omega_max_chain(k: float = 1.0, m: float = 1.0) -> float:
    """Independent route: the stiffness matrix written out by hand, eigenvalues by numpy."""
    K = k * np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    return float(np.sqrt(np.max(np.linalg.eigvalsh(K / m))))


def _leapfrog_radius(dt: float, k: float = 1.0, m: float = 1.0) -> float:
    """Spectral radius of one drift–kick–drift step of the linear chain (> 1: unstable)."""
    K = k * np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    eye, zero = np.eye(3), np.zeros((3, 3))
    drift = np.block([[eye, 0.5 * dt / m * eye], [zero, eye]])
    kick = np.block([[eye, zero], [-dt * K, eye]])
    return float(np.max(np.abs(np.linalg.eigvals(drift @ kick @ drift))))


#: the limit is sharp: a step 0.1 % past it already grows (radius > 1 + 1e-3 over one step is
#: not needed — any radius above 1 + round-off means growth); round-off of eigvals ~1e-12
RADIUS_ROUNDOFF = 1e-9


def test_stability_limit_matches_the_leapfrog_transfer_matrix():
    w = _omega_max_chain()
    dt_limit = 2.0 / w
    assert _leapfrog_radius(0.999 * dt_limit) < 1 + RADIUS_ROUNDOFF
    assert _leapfrog_radius(1.001 * dt_limit) > 1 + 1e-3
    dev = parse_spec(_chain(0.5 * dt_limit)).build()
    r, w_dev = stability_ratio(dev, dev.physical())
    assert w_dev == pytest.approx(w, rel=1e-12)
    assert r == pytest.approx(0.5 * 2.0, rel=1e-12)


def test_unstable_step_is_refused_at_build_with_the_largest_stable_dt():
    dt_limit = 2.0 / _omega_max_chain()
    with pytest.raises(UnstableStepError, match=rf"dt·ω_max must be < 2.*use dt < {dt_limit:.4g}"):
        parse_spec(_chain(1.01 * dt_limit)).build()


def test_step_near_the_limit_warns():
    dt_limit = 2.0 / _omega_max_chain()
    with pytest.warns(StabilityWarning, match=r"within 10 % of the leapfrog limit"):
        parse_spec(_chain(0.95 * dt_limit)).build()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StabilityWarning)
        parse_spec(_chain(0.85 * dt_limit)).build()


def test_unstable_hru_step_is_refused():
    spec = {
        "kind": "linhru",
        "name": "fast-hru",
        "n_modes": 4,
        "n_inputs": 2,
        "a_range": (100.0, 101.0),
        "dt_raw_range": (3.0, 3.0),
    }
    # ω_i = Δt_i √A_i = sigmoid(3) · 10 ≈ 9.5 per step: far beyond 2
    with pytest.raises(UnstableStepError, match=r"linhru|fast-hru.*dt·ω_max must be < 2"):
        parse_spec(spec).build()


def _first_bad_step(device, theta, u) -> tuple[int, str]:
    """Independent route to the step of a forward blow-up: every state recorded by the kernel."""
    phys = device.physical(theta)
    K, nb = u.shape[0], u.shape[1]
    Q, P = np.zeros((nb, device.n_dof)), np.zeros((nb, device.n_dof))
    Qr, Pr = np.empty((K, nb, device.n_dof)), np.empty((K, nb, device.n_dof))
    BT = leapfrog.drive_operands(phys.B, u)[0]
    no = np.empty((0, nb, device.n_dof))
    with leapfrog.drive_threads(phys.B):
        leapfrog.forward_inputs(
            device.family, phys.prm, device.dt, device.n_work, BT, readout_matrix(device),
            u, 0, K, Q, P, no, Qr, Pr, None,
        )  # fmt: skip
    bad_p = ~np.isfinite(Pr).reshape(K, -1).all(axis=1)
    bad_q = ~np.isfinite(Qr).reshape(K, -1).all(axis=1)
    i = int(np.argmax(bad_p | bad_q))
    assert bad_p[i] or bad_q[i], "the reference run did not blow up"
    return i + 1, "p" if bad_p[i] else "q"


def test_negative_stiffness_blows_up_loudly_at_the_exact_step():
    dev = parse_spec(_chain(0.1, learnable=["spring"])).build()
    theta = np.array([-4.0, -4.0])  # both wall springs negative: an exponentially growing mode
    u = np.random.default_rng(0).normal(size=(20_000, 2, 1))
    step, what = _first_bad_step(dev, theta, u)
    with pytest.raises(NumericalFault, match=r"forward run at step \d+.*negative-stiffness") as ei:
        physim.simulate(dev, theta, u)
    assert (ei.value.run, ei.value.step, ei.value.quantity) == ("forward", step, what)
    with pytest.raises(NumericalFault) as ei:
        physim.rhel_gradient(dev, theta, u, np.zeros((20_000, 2, 1)))
    assert (ei.value.run, ei.value.step) == ("forward", step)


def test_huge_drive_on_a_duffing_chain_names_the_input_amplitude():
    dev = physim.load_device("duffing-chain-5")
    u = np.full((400, 1, dev.n_inputs), 1e30)
    step, what = _first_bad_step(dev, dev.theta0, u)
    with pytest.raises(NumericalFault, match=r"max \|u\| = 1e\+30") as ei:
        physim.simulate(dev, None, u)
    assert (ei.value.run, ei.value.step, ei.value.quantity) == ("forward", step, what)


def test_beyond_the_limit_at_run_time_names_dt_and_its_limit():
    dev = parse_spec(_chain(0.5, learnable=["spring", "coupling"])).build()
    theta = np.full(4, 100.0)  # ω_max = 10·√(2 + √2) ≈ 18.5: dt·ω_max ≈ 9
    u = np.random.default_rng(0).normal(size=(3000, 1, 1))
    # refused before the run (it used to blow up at a step of it): a θ away from θ0 is checked
    # against the leapfrog's limit, naming the parameter that moved most
    with pytest.raises(
        UnstableStepError,
        match=r"dt·ω_max = 9\.2\d* at the programmed θ, beyond the leapfrog limit 2.*spring",
    ):
        physim.bptt_gradient(dev, theta, u, np.zeros((3000, 1, 1)))


def test_echo_blow_up_names_the_echo_and_its_step():
    # a huge nudge on the echo only: the forward run is finite, echo + and echo − are not
    dev = physim.load_device("duffing-chain-5")
    rng = np.random.default_rng(1)
    u = rng.normal(size=(300, 1, dev.n_inputs))
    target = np.zeros((300, 1, dev.n_outputs))
    with pytest.raises(NumericalFault, match=r"in the echo [+−] run at step \d+ of 300") as ei:
        physim.rhel_gradient(dev, None, u, target, eps=1e150)
    assert ei.value.run in ("echo +", "echo −")
    assert 1 <= ei.value.step <= 300


def test_lc_network_beyond_the_limit_at_run_time():
    dev = physim.load_device("lc-ladder-8")
    theta = dev.theta0.copy()
    theta[dev.slices()["capacitance"]] *= 1e-4  # ω grows 100×: far beyond the limit
    u = np.random.default_rng(2).normal(size=(3000, 1, dev.n_inputs))
    with pytest.raises(UnstableStepError, match=r"beyond the leapfrog limit 2.*capacitance C1"):
        physim.simulate(dev, theta, u)


def test_unstable_hru_step_at_run_time():
    dev = physim.load_device("linhru-scp1")
    theta = dev.theta0.copy()
    theta[dev.slices()["A"]] = 1e4  # ω_i = Δt_i · 100 per step
    u = np.random.default_rng(3).normal(size=(500, 2, dev.n_inputs))
    with pytest.raises(UnstableStepError, match=r"beyond the leapfrog limit 2.*A A\["):
        physim.rhel_gradient(dev, theta, u, np.zeros((500, 2, dev.n_outputs)))


def test_nonlinhru_negative_stiffness():
    dev = physim.load_device("nonlinhru-16")
    theta = dev.theta0.copy()
    theta[dev.slices()["alpha"]] = -50.0  # the harmonic term turns repulsive
    u = np.random.default_rng(4).normal(size=(20_000, 1, dev.n_inputs))
    step, what = _first_bad_step(dev, theta, u)
    with pytest.raises(NumericalFault, match=r"negative-stiffness") as ei:
        physim.simulate(dev, theta, u)
    assert (ei.value.run, ei.value.step, ei.value.quantity) == ("forward", step, what)


def _instrument_run(dev, nonideal, theta=None, n_steps=2000):
    from physim.instrument.hardware import Instrument
    from physim.protocol.engine import run_protocol
    from physim.protocol.specs import TaskSpec, load_protocol
    from physim.protocol.task import build_task

    proto = load_protocol("rhel-centred")
    task = build_task(dev, TaskSpec(n_steps=n_steps, batch=1), proto.loss)
    return task, lambda: run_protocol(Instrument(dev, nonideal), proto, task=task, theta=theta)


def test_instrument_forward_blow_up_is_located_like_simulate():
    dev = physim.load_device("chain-16")
    theta = dev.theta0.copy()
    theta[dev.slices()["spring"]] = -100.0
    task, run = _instrument_run(dev, None, theta)
    step, what = _first_bad_step(dev, theta, task.u)
    with pytest.raises(NumericalFault, match=r"instrument \('chain-16'\)") as ei:
        run()
    assert (ei.value.run, ei.value.step, ei.value.quantity) == ("forward", step, what)


def test_anti_damped_echo_is_named():
    from physim.instrument.specs import parse_nonideal

    dev = physim.load_device("chain-16")
    spec = {"kind": "dissipation", "quality_factor": 1e-3, "compensation": 2.0}
    _, run = _instrument_run(dev, parse_nonideal({"name": "gain", "sources": [spec]}))
    with pytest.raises(NumericalFault, match=r"echo \+ run at step \d+ of 2000.*anti-damped") as ei:
        run()
    assert ei.value.run == "echo +" and 1 <= ei.value.step < 2000


def test_huge_learning_rate_stops_training_naming_the_epoch():
    from physim.protocol.session import run_session
    from physim.protocol.specs import load_protocol

    dev = physim.load_device("two-mass")
    with pytest.raises(
        NumericalFault, match=r"epoch \d+ of in-situ training \(lr = 1e\+06\)"
    ) as ei:
        run_session(dev, load_protocol("rhel-centred-rerun"), epochs=5, lr=1e6)
    assert ei.value.run in ("forward", "echo +", "echo −")


def test_training_check_names_the_step_and_quantity():
    from physim.errors import check_training

    check_training(3, 0.5, {"w": np.ones(3)}, 1e-3)
    with pytest.raises(NumericalFault, match=r"non-finite loss in the training run at step 7"):
        check_training(7, float("nan"), {"w": np.ones(3)}, 1e-3)
    with pytest.raises(NumericalFault, match=r"gradient of b .* at epoch 2.*lr = 1e\+06") as ei:
        check_training(2, 0.5, {"w": np.ones(3), "b": np.array([np.inf])}, 1e6, what="epoch")
    assert (ei.value.run, ei.value.step) == ("training", 2)


def test_a_tiny_nudge_is_refused_not_lost():
    dev = physim.load_device("chain-16")
    u = np.random.default_rng(0).normal(size=(50, 1, dev.n_inputs))
    with pytest.raises(ValueError, match=r"nudge is lost; use eps >="):
        physim.rhel_gradient(dev, None, u, np.zeros((50, 1, dev.n_outputs)), eps=5e-324)


def test_hssm_training_with_a_huge_learning_rate_stops_at_the_step(tmp_path):
    from physim.hssm.config import parse_train_spec
    from physim.hssm.train import train

    spec = parse_train_spec(
        {
            "lr": 1e6,
            "n_steps": 20,
            "eval_every": 10,
            "model": {"n_blocks": 1, "hidden": 8, "ssm_dim": 8},
        }
    )
    # the learned θ crosses the integrator's limit: refused at that training step, before the
    # cores run (it used to blow up inside the forward run)
    with pytest.raises(
        UnstableStepError, match=r"training step \d+ \(lr = 1e\+06\).*beyond the leapfrog limit 2"
    ):
        train(spec, tmp_path, resume=False, progress=False, plots=False)


def test_adjoint_overflow_is_named_with_its_step():
    from physim.bptt import bptt_backward

    dev = physim.load_device("chain-16")
    u = np.random.default_rng(5).normal(size=(400, 1, dev.n_inputs))
    fwd = physim.simulate(dev, None, u, record=True)
    dLdy = np.full((400, 1, dev.n_outputs), 1e307)  # finite, but the adjoint sums overflow
    with pytest.raises(NumericalFault, match=r"in the adjoint run at step \d+ of 400") as ei:
        bptt_backward(dev, None, u, fwd, dLdy)
    assert ei.value.run == "adjoint"
    # independent route: the adjoint kernel one step at a time, checked after every step
    from physim.gradients import error_signal
    from physim.kernels.adjoint import adjoint_inputs
    from physim.simulate import readout_matrix

    phys = dev.physical()
    LQ = np.ascontiguousarray(error_signal(dev, dLdy, 400, 401)[0])
    LP, GW = np.zeros_like(LQ), np.zeros((1, phys.w.shape[0]))
    GB = np.zeros((1, dev.n_inputs, dev.n_dof))
    args = (dev.family, phys.prm, dev.dt, dev.n_work, np.ascontiguousarray(phys.B.T))
    args += (np.ascontiguousarray(phys.B), readout_matrix(dev), u, dLdy, fwd.q, fwd.p)
    for k in range(399, -1, -1):
        adjoint_inputs(*args, k, k + 1, LQ, LP, GW, GB, False, np.zeros((0, 1, dev.n_inputs)))
        if not all(np.isfinite(a).all() for a in (LQ, LP, GW, GB)):
            break
    assert ei.value.step == 400 - k  # echo-order steps taken: 400 − k
