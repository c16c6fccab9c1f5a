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
from physim.simulate import drive
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
    S = drive(u, phys.B, 0, K)
    leapfrog.forward_chunk(device.family, phys.prm, device.dt, device.n_work, Q, P, S, Qr, Pr)
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
    step, _ = _first_bad_step(dev, theta, u)
    with pytest.raises(
        NumericalFault, match=r"beyond the leapfrog limit 2.*keep dt < 0\.108"
    ) as ei:
        physim.bptt_gradient(dev, theta, u, np.zeros((3000, 1, 1)))
    assert (ei.value.run, ei.value.step) == ("forward", step)


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
