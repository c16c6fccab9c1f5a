"""The quantum bath: per-mode equipartition at E(ω, T) = (ħω/2)·coth(ħω/2k_BT), the zero-point
limit, and the classical bath unchanged bit for bit where ħω ≪ k_BT."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import physim
from physim.instrument.bath import (
    HBAR,
    QUANTUM_THRESHOLD,
    mode_energy,
    normal_modes,
    quantum_on,
)
from physim.instrument.hardware import Instrument
from physim.instrument.specs import BOLTZMANN, NonidealError, load_nonideal, parse_nonideal
from physim.specs import parse_spec

#: a 3-node superconducting LC network: modes at 2.14, 3.89 and 6.23 GHz, so at 20 mK
#: ħω/k_BT = 5.1, 9.3 and 15.0; δ = 1 ps puts ω_max δ at 0.039
CRYO_LC = {
    "kind": "lc_network",
    "name": "cryo-lc-3",
    "dt": 1e-12,
    "nodes": ["a", "b", "c"],
    "elements": [
        {"type": "capacitor", "name": "Ca", "a": "a", "C": 1.0e-13},
        {"type": "capacitor", "name": "Cb", "a": "b", "C": 1.0e-13},
        {"type": "capacitor", "name": "Cc", "a": "c", "C": 1.0e-13},
        {"type": "capacitor", "name": "Cab", "a": "a", "b": "b", "C": 1e-14},
        {"type": "capacitor", "name": "Cbc", "a": "b", "b": "c", "C": 1e-14},
        {"type": "inductor", "name": "La", "a": "a", "L": 5.0e-8},
        {"type": "inductor", "name": "Lb", "a": "b", "L": 1.4e-8},
        {"type": "inductor", "name": "Lc", "a": "c", "L": 6.0e-9},
    ],
    "sources": [{"node": "a", "input": 0, "gain": 1e-9}],
    "readout": ["b"],
}
T_CRYO = 0.02  # K
#: trajectories per statistical test: the mean of n samples of b² (b ~ N(0, E)) has standard
#: error √(2/n)·E, so Z_BOUND standard errors are 11 % at n = 4000 — far below the factors 2.6
#: to 7.5 by which the quantum energies exceed k_BT here
N_TRAJ = 4000
#: standard errors allowed: 12 comparisons per test file at 5σ fail by chance with p < 1e-5
Z_BOUND = 5.0
#: strong loss, so that the test is short: the slowest mode's energy relaxes at ω/Q, in 149
#: steps. The model's stationary state does not depend on Q (per-mode friction commutes with
#: the stiffness), so a strong loss tests the same equipartition as a weak one
Q_FAST = 2.0
N_RELAX = 1600  # 10.8 energy relaxation times of the slowest mode: e^{-10.8} = 2e-5 left


def _cryo_device():
    return parse_spec(CRYO_LC).build()


def _inst(device, seed=0, **diss):
    src = {"kind": "dissipation", "seed": 7, **diss}
    return Instrument(device, parse_nonideal({"sources": [src]}), seed=seed)


def _mode_coordinates(device, inst) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ω, a, b): mode amplitudes of positions and momenta, q = L⁻ᵀ U a, p = L U b."""
    omega, U, L = normal_modes(device, inst.phys)
    a = inst.Q[0] @ L @ U  # a = Uᵀ Lᵀ q
    b = np.linalg.solve(L, inst.P[0].T).T @ U  # b = Uᵀ L⁻¹ p
    return omega, a, b


def _assert_mode_variances(omega, a, b, E, dt=None):
    """⟨b_i²⟩ = E_i and ω_i²⟨a_i²⟩ = E_i (1 − (ω_i δ)²/4) within Z_BOUND standard errors.

    The position factor is the drift–kick–drift leapfrog's: the stationary covariance of the
    exact-O splitting O·(ABA)·O on a harmonic mode (discrete Lyapunov equation) has the exact
    momentum variance and ω²⟨q²⟩ = E (1 − (ωδ)²/4); a sample straight from the thermal state
    (``dt`` None) has no such factor.
    """
    n = a.shape[0]
    bound = Z_BOUND * math.sqrt(2.0 / n)
    kin = np.mean(b**2, axis=0) / E
    shadow = 1.0 if dt is None else 1.0 - (omega * dt) ** 2 / 4
    pot = omega**2 * np.mean(a**2, axis=0) / (E * shadow)
    assert np.all(np.abs(kin - 1) < bound), (kin, bound)
    assert np.all(np.abs(pot - 1) < bound), (pot, bound)


def test_mode_energy_limits_against_their_series():
    kT = BOLTZMANN * 1.0
    w = np.array([1e-3, 1e-2, 0.1, 1.0, 10.0, 40.0, 800.0]) * kT / HBAR  # x = ħω/k_BT
    x = HBAR * w / kT
    E = mode_energy(w, kT)
    small = x < 0.05  # coth series: E/kT = 1 + x²/12 − x⁴/720, next term < 1e-11 here
    assert np.allclose(E[small] / kT, 1 + x[small] ** 2 / 12 - x[small] ** 4 / 720, rtol=1e-12)
    large = x > 20  # E/(ħω/2) = 1 + 2e^{−x} + 2e^{−2x} …: < 1e-8 above x = 20
    assert np.allclose(E[large] / (HBAR * w[large] / 2), 1 + 2 * np.exp(-x[large]), rtol=1e-15)
    assert mode_energy(np.array([0.0]), kT)[0] == kT  # the ω → 0 limit
    assert np.array_equal(mode_energy(w, 0.0), HBAR * w / 2)  # the zero point at T = 0


def test_the_superconducting_preset_gets_the_quantum_bath():
    device = physim.load_device("jj-array-4")
    inst = Instrument(device, load_nonideal("superconducting-20mk"))
    inst.program(None)
    bath = inst.bath
    assert bath.mode_energy is not None
    # jj-array-4's plasma modes at 4.65-5.37 GHz, 20 mK: ħω/k_BT = 11.2-12.9
    assert 12 < bath.quantum_ratio < 14
    omega = normal_modes(device, inst.phys)[0]
    assert np.array_equal(bath.mode_energy, mode_energy(omega, BOLTZMANN * 0.02))
    assert np.all(bath.mode_energy / bath.kT > 5)  # the classical bath understates them 5.6-6.4×


def test_quantum_equipartition_per_mode_at_20_mK():
    device = _cryo_device()
    inst = _inst(device, quality_factor=Q_FAST, temperature=T_CRYO)
    inst.program(None)
    kT = BOLTZMANN * T_CRYO
    assert inst.bath.mode_energy is not None
    inst.prepare("zero", N_TRAJ)
    inst.run(np.zeros((N_RELAX, N_TRAJ, 1)))
    omega, a, b = _mode_coordinates(device, inst)
    x = HBAR * omega / kT
    assert np.all((x > 5) & (x < 15.5)), x
    E = 0.5 * HBAR * omega / np.tanh(0.5 * x)  # the formula, written out again
    _assert_mode_variances(omega, a, b, E, device.dt)


def test_quantum_thermal_preparation_per_mode_at_20_mK():
    device = _cryo_device()
    inst = _inst(device, quality_factor=1e4, temperature=T_CRYO)
    inst.program(None)
    inst.prepare("thermal", N_TRAJ)
    omega, a, b = _mode_coordinates(device, inst)
    kT = BOLTZMANN * T_CRYO
    E = 0.5 * HBAR * omega / np.tanh(0.5 * HBAR * omega / kT)
    _assert_mode_variances(omega, a, b, E)
    # and without a bath: a thermal preparation at 20 mK is quantum too ('auto')
    bare = Instrument(device, None, seed=3)
    bare.program(None)
    bare.prepare("thermal", N_TRAJ, temperature=T_CRYO)
    _assert_mode_variances(*_mode_coordinates(device, bare), E)


def test_zero_point_limit_at_zero_temperature():
    device = _cryo_device()
    inst = _inst(device, quality_factor=Q_FAST, temperature=0.0, quantum="on")
    inst.program(None)
    inst.prepare("zero", N_TRAJ)
    inst.run(np.zeros((N_RELAX, N_TRAJ, 1)))
    omega, a, b = _mode_coordinates(device, inst)
    _assert_mode_variances(omega, a, b, HBAR * omega / 2, device.dt)
    # 'auto' at T = 0 is the classical T = 0 bath: loss without noise, the state stays at rest
    quiet = _inst(device, quality_factor=Q_FAST, temperature=0.0)
    quiet.program(None)
    quiet.prepare("zero", 2)
    quiet.run(np.zeros((50, 2, 1)))
    assert not np.any(quiet.Q) and not np.any(quiet.P)


@pytest.mark.parametrize(
    ("name", "temperature"),
    [("lc-ladder-8", 300.0), ("jj-array-4", 4.2), ("cmos-lc-4", 300.0)],
)
def test_classical_limit_is_unchanged_bit_for_bit(name, temperature):
    device = physim.load_device(name)
    runs = {}
    for quantum in ("auto", "off"):
        inst = _inst(device, seed=5, quality_factor=50.0, temperature=temperature, quantum=quantum)
        inst.program(None)
        assert inst.bath.mode_energy is None  # ħω/k_BT below the threshold: classical
        inst.prepare("thermal", 8)
        q0, p0 = inst.Q.copy(), inst.P.copy()
        inst.run(np.zeros((200, 8, device.n_inputs)))
        runs[quantum] = (inst.bath.A, inst.bath.N, q0, p0, inst.Q, inst.P)
    for x, y in zip(runs["auto"], runs["off"], strict=True):
        assert np.array_equal(x, y)


def test_auto_switches_at_the_stated_threshold():
    device = _cryo_device()
    phys = device.physical()
    w_max = normal_modes(device, phys)[0].max()
    kT_at = HBAR * w_max / QUANTUM_THRESHOLD  # the temperature where max ħω/k_BT = threshold
    assert quantum_on(device, phys, kT_at / 1.01, "auto")
    assert not quantum_on(device, phys, kT_at * 1.01, "auto")
    assert quantum_on(device, phys, kT_at * 1.01, "on")
    assert not quantum_on(device, phys, kT_at / 1.01, "off")
    assert not quantum_on(device, phys, 0.0, "auto")


def test_quantum_bath_needs_a_device_in_joules():
    device = physim.load_device("linhru-scp1")
    src = {"quality_factor": 10.0, "temperature": 1.0, "boltzmann": 1.0}
    # 'auto' on a dimensionless device: no ħ, the classical bath
    assert not quantum_on(device, device.physical(), 1.0, "auto")
    with pytest.raises(ValueError, match=r"quantum = 'on' needs ħ in the device's units"):
        _inst(device, quantum="on", **src).program(None)


def test_quantum_bath_refuses_a_per_dof_damping_rate():
    with pytest.raises(NonidealError, match=r"quantum = 'on' needs the loss per normal mode"):
        parse_nonideal({"sources": [{"kind": "dissipation", "damping_rate": 1e8, "quantum": "on"}]})
    device = _cryo_device()
    inst = _inst(device, damping_rate=1e8, temperature=T_CRYO)  # 'auto' switches on
    with pytest.raises(ValueError, match=r"the quantum bath .* needs the loss per normal mode"):
        inst.program(None)
    classical = _inst(device, damping_rate=1e8, temperature=T_CRYO, quantum="off")
    classical.program(None)
    assert classical.bath.mode_energy is None


def test_spice_export_refuses_the_quantum_bath():
    device = _cryo_device()
    inst = _inst(device, quality_factor=1e4, temperature=T_CRYO)
    inst.program(None)
    with pytest.raises(ValueError, match=r"classical Johnson noise .* quantum = 'off'"):
        inst.source("dissipation").spice_values()


def test_run_says_the_bath_is_quantum(capsys):
    from physim.cli import main

    args = ["run", "jj-array-4", "rhel-centred", "--nonideal", "superconducting-20mk"]
    assert main([*args, "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "bath: quantum at 0.02 K (max ħω/k_BT = 12.9): mode energies 5.58–6.47 × k_BT" in out
    assert main([*args, "--steps", "50", "--json"]) == 0
    bath = json.loads(capsys.readouterr().out)["bath"]
    assert bath["spectrum"] == "quantum" and 12 < bath["max_hbar_omega_over_kT"] < 14
    assert (
        main(["run", "lc-ladder-8", "rhel-centred", "--nonideal", "pcb-c0g", "--steps", "50"]) == 0
    )
    assert "bath:" not in capsys.readouterr().out  # 300 K: the classical bath, no line


def _stationary_covariance(device, inst):
    """Stationary covariance of (q, p) under the instrument's splitting O·(drift–kick–drift)·O
    on the linearised device, from the discrete Lyapunov equation (no sampling): an
    independent check of the O-step matrices A, N as built."""
    from scipy.linalg import solve_discrete_lyapunov

    from physim.instrument.bath import mass_and_stiffness

    n, dt = device.n_dof, device.dt
    M, K = mass_and_stiffness(device, inst.phys)
    Minv, eye, zero = np.linalg.inv(M), np.eye(n), np.zeros((n, n))
    drift = np.block([[eye, 0.5 * dt * Minv], [zero, eye]])
    kick = np.block([[eye, zero], [-dt * K, eye]])
    o_map = np.block([[eye, zero], [zero, inst.bath.A]])
    o_noise = np.vstack([zero, inst.bath.N])
    F = o_map @ drift @ kick @ drift @ o_map
    first = o_map @ drift @ kick @ drift @ o_noise  # the first O step's noise, carried on
    S = first @ first.T + o_noise @ o_noise.T
    return solve_discrete_lyapunov(F, S)


@pytest.mark.parametrize("case", ["cryo-lc-3 at 20 mK", "jj-array-4 preset"])
def test_o_step_matrices_hold_the_quantum_energies_exactly(case):
    if case == "jj-array-4 preset":
        device = physim.load_device("jj-array-4")
        inst = Instrument(device, load_nonideal("superconducting-20mk"))
    else:
        device = _cryo_device()
        inst = _inst(device, quality_factor=[3.0, 40.0, 1e3], temperature=T_CRYO)
    inst.program(None)
    n = device.n_dof
    C = _stationary_covariance(device, inst)
    omega, U, L = normal_modes(device, inst.phys)
    to_a = L @ U  # a = (L U)ᵀ q
    to_b = np.linalg.solve(L, np.eye(n)).T @ U  # b = (L⁻ᵀ U)ᵀ p
    Caa = to_a.T @ C[:n, :n] @ to_a
    Cbb = to_b.T @ C[n:, n:] @ to_b
    E = inst.bath.mode_energy
    #: the discrete Lyapunov equation's condition is ~1/(1 − e^{−2gh}) ≈ 1/(2 g_min h) for the
    #: least damped mode (5e6 at the preset's Q = 3e5): allow 100 ulp of float64 times that
    g_min_h = 0.5 * device.dt * inst.bath.rates.min()
    rtol = 100 * np.finfo(float).eps / (2 * g_min_h)
    assert np.allclose(np.diag(Cbb), E, rtol=rtol, atol=0)
    shadow = 1 - (omega * device.dt) ** 2 / 4  # drift–kick–drift's factor (see above)
    assert np.allclose(omega**2 * np.diag(Caa), E * shadow, rtol=rtol, atol=0)
    # the modes are uncorrelated with each other
    off = Cbb - np.diag(np.diag(Cbb))
    assert np.max(np.abs(off)) < rtol * E.max()
