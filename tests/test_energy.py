"""Energy and time per gradient update: the device side against an independent integration,
the instrument side against a hand count, and the fields in every output."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import physim
from physim import logs
from physim.instrument import hardware
from physim.instrument.energy import RING_DOWN, ring_down_time
from physim.instrument.hardware import Instrument
from physim.instrument.specs import load_nonideal, parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol
from physim.protocol.task import build_task
from physim.spec_base import with_updates
from physim.specs import parse_spec

# a lossy linear 3-mass network with two inputs, written out by hand below for the reference
MASSES = np.array([1.0, 2.0, 0.5])
STIFFNESS = np.array([[1.5, -0.5, 0.0], [-0.5, 1.3, -0.8], [0.0, -0.8, 2.8]])
B_INPUT = np.array([[1.0, 0.0], [0.0, 0.0], [0.5, -0.7]])
GAMMA = np.array([0.05, 0.1, 0.02])  # per-dof damping rates, 1/s: D = diag(γ m)
DT = 0.01
N_STEPS = 1000


def _network():
    return parse_spec(
        {
            "kind": "oscillator_network",
            "name": "energy-3",
            "dt": DT,
            "masses": MASSES.tolist(),
            "springs": [{"node": 0, "k": 1.0}, {"node": 2, "k": 2.0}],
            "couplings": [{"nodes": [0, 1], "k": 0.5}, {"nodes": [1, 2], "k": 0.8}],
            "n_inputs": 2,
            "input_weights": B_INPUT.tolist(),
            "readout": [1],
            "learnable": ["spring"],
        }
    ).build()


#: leapfrog's energy error is O((ω_max δ)²) relative and bounded in time (a shadow
#: Hamiltonian), and the per-step loss Δqᵀ D Δq / δ is the mean velocity's, O((ω_max δ)²) too
TOL = (
    float(np.sqrt(np.linalg.eigvalsh(STIFFNESS / np.sqrt(np.outer(MASSES, MASSES))).max()) * DT)
    ** 2
)


def _drive() -> np.ndarray:
    """(n_steps, batch 2, 2 inputs): two different drives, so that a mix-up of trajectories
    shows."""
    t = np.arange(N_STEPS) * DT
    u = np.stack([np.sin(0.7 * t) + 0.3 * np.sin(1.9 * t), 0.5 * np.cos(1.3 * t)], axis=1)
    return np.ascontiguousarray(np.stack([u, 0.3 * u[:, ::-1]], axis=1))


def _reference(q, v, u):
    """solve_ivp of M q̈ = −K q − D q̇ + B u with u held over each step, integrating the
    drive power (B u)·q̇ and the friction power q̇ᵀ D q̇ alongside: (work, loss, q, v)."""
    D = np.diag(GAMMA * MASSES)

    def rhs(t, y, s):
        q, v = y[:3], y[3:6]
        return np.concatenate([v, (-STIFFNESS @ q - D @ v + s) / MASSES, [s @ v, v @ D @ v]])

    y = np.concatenate([q, v, [0.0, 0.0]])
    for k in range(u.shape[0]):
        sol = solve_ivp(
            rhs, (0.0, DT), y, args=(B_INPUT @ u[k],), method="DOP853", rtol=1e-12, atol=1e-15
        )
        y = sol.y[:, -1]
    return y[6], y[7], y[:3], y[3:6]


def _energy(q, p):
    return 0.5 * p @ (p / MASSES) + 0.5 * q @ STIFFNESS @ q


def _lossy(device):
    spec = {"kind": "dissipation", "damping_rate": GAMMA.tolist(), "temperature": 0.0}
    return Instrument(device, parse_nonideal({"sources": [spec]}))


@pytest.mark.parametrize("chunk", [None, 3 * 7])
def test_drive_work_and_loss_match_an_independent_integration(monkeypatch, chunk):
    if chunk is not None:  # 7 steps per chunk: every chunk boundary of both kernels is crossed
        monkeypatch.setattr(hardware, "CHUNK_ELEMENTS", chunk)
    device = _network()
    u = _drive()
    refs = [_reference(np.zeros(3), np.zeros(3), u[:, b]) for b in range(2)]
    for integrate in (None, "branches"):  # the forward kernel, and the echo kernel walked forward
        inst = _lossy(device)
        inst.program(None)
        inst.prepare("zero", 2)
        out = inst.run(u, integrate=integrate)
        assert np.allclose(out.work, [r[0] for r in refs], rtol=TOL, atol=0)
        assert out.dissipated == pytest.approx(sum(r[1] for r in refs), rel=TOL)
        for b, r in enumerate(refs):
            assert np.allclose(inst.Q[0, b], r[2], rtol=0, atol=TOL * np.abs(r[2]).max())
    # the echo: flip, two lockstep branches in one differential accumulator, the input
    # replayed backwards
    inst.flip()
    inst.split(2)
    q0, v0 = inst.Q[0].copy(), inst.P[0] / MASSES
    out = inst.run(u, reverse=True, integrate="differential", weights=np.array([1.0, -1.0]))
    echo = [_reference(q0[b], v0[b], u[::-1, b]) for b in range(2)]
    assert all(r[0] < 0 for r in echo)  # the echo gives the forward run's energy back
    assert np.allclose(out.work, [r[0] for r in echo] * 2, rtol=TOL, atol=0)  # branch-major
    assert out.dissipated == pytest.approx(2 * sum(r[1] for r in echo), rel=TOL)


def test_energy_balance_of_the_instrument():
    """H(end) − H(start) = drive work − dissipated energy, on the instrument's own numbers."""
    device = _network()
    inst = _lossy(device)
    inst.program(None)
    q0, p0 = np.array([0.3, -0.2, 0.1]), np.array([0.0, 0.4, -0.1])
    inst.prepare("given", 1, q=q0, p=p0)
    out = inst.run(_drive()[:, :1])
    change = _energy(inst.Q[0, 0], inst.P[0, 0]) - _energy(q0, p0)
    assert change == pytest.approx(out.work[0] - out.dissipated, abs=TOL * out.work[0])


HAND = {
    "fom_readout": 3e-15,
    "fom_accumulator": 7e-15,
    "write": 2e-12,
    "flip_energy": 1e-12,
    "flip_latency": 1e-6,
    "reset": 1e-3,
}


def _hand_nonideal(energy: dict | None = None):
    return parse_nonideal(
        {
            "name": "hand",
            "sources": [
                {"kind": "adc", "target": "readout", "bits": 8, "fom": HAND["fom_readout"]},
                {
                    "kind": "adc",
                    "target": "accumulator",
                    "bits": 12,
                    "fom": HAND["fom_accumulator"],
                },
                {"kind": "dac", "target": "parameters", "bits": 10, "write_energy": HAND["write"]},
            ],
            "energy": energy
            if energy is not None
            else {
                "flip_energy": HAND["flip_energy"],
                "flip_latency": HAND["flip_latency"],
                "reset_time": HAND["reset"],
            },
        }
    )


def test_converter_flip_and_time_of_a_hand_counted_protocol():
    device = physim.load_device("lc-ladder-8")
    protocol = load_protocol("rhel-centred")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=40, batch=3))
    task = build_task(device, protocol.task, protocol.loss)
    K, nb = task.n_steps, task.batch
    res = run_protocol(Instrument(device, _hand_nonideal()), protocol, task=task)
    e = res.cost.energy
    # prepare · forward (measured every step) · flip · split ± · kick · echo (one differential
    # accumulator of every element value and input weight, read once)
    n_readout = K * nb * device.n_outputs
    n_accumulator = device.w_base.size + device.B_base.size
    assert e.n_conversions == {"readout": n_readout, "accumulator": n_accumulator}
    assert e.n_writes["parameters"] == device.n_params
    assert e.n_flips == nb  # flipped once, before the split
    assert e.n_resets == nb
    expected = {
        "adc_readout": n_readout * HAND["fom_readout"] * 2**8,
        "adc_accumulator": n_accumulator * HAND["fom_accumulator"] * 2**12,
        "dac_parameters": device.n_params * HAND["write"],
    }
    assert e.by_converter == pytest.approx(expected, rel=1e-12)
    assert e.converters == pytest.approx(sum(expected.values()), rel=1e-12)
    assert e.flip == pytest.approx(nb * HAND["flip_energy"], rel=1e-12)
    assert e.total == pytest.approx(e.drive + e.converters + e.flip, rel=1e-12)
    # one forward run and two lockstep echoes, each trajectory of the batch after the other
    drive_time = 3 * K * nb * device.dt
    assert e.drive_time == pytest.approx(drive_time, rel=1e-12)
    assert e.time == pytest.approx(
        drive_time + nb * HAND["flip_latency"] + nb * HAND["reset"], rel=1e-12
    )
    assert e.drive > 0 and e.drive_returned > 0 and e.dissipated == 0.0  # no loss modelled
    assert any("dac drive" in n for n in e.notes)  # the drive's DAC is not in the spec


def test_missing_figures_are_unavailable_not_zero():
    device = physim.load_device("lc-ladder-8")
    protocol = load_protocol("rhel-centred")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=20))
    e = run_protocol(Instrument(device, _hand_nonideal({})), protocol).cost.energy
    assert e.flip is None and e.flip_time is None and e.total is None and e.time is None
    assert any("energy.flip_energy" in n for n in e.notes)
    assert any("reset time unavailable" in n for n in e.notes)  # no loss, no reset_time
    ideal = run_protocol(Instrument(device), protocol).cost.energy
    assert ideal.converters is None  # no converter modelled: not costed, not 0 J
    assert ideal.drive is not None and ideal.drive > 0


def test_passive_reset_rings_down_the_slowest_lossy_mode():
    device = physim.load_device("lc-ladder-8")
    nonideal = load_nonideal("pcb-c0g")
    protocol = load_protocol("rhel-centred")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=20))
    inst = Instrument(device, nonideal)
    e = run_protocol(inst, protocol).cost.energy
    per_reset = ring_down_time(inst.bath.rates, RING_DOWN)
    # mode energy decays as exp(−ω t / Q): 60 dB takes ln(1e6) Q / ω_min
    from physim.instrument.bath import normal_modes

    omega = normal_modes(device, inst.phys)[0]
    assert per_reset == pytest.approx(math.log(1e6) * 100.0 / omega.min(), rel=1e-6)
    assert e.reset_time == pytest.approx(e.n_resets * per_reset, rel=1e-12)
    assert e.dissipated > 0 and e.total is not None


def test_hru_energies_are_unavailable_with_the_reason():
    device = physim.load_device("linhru-scp1")
    protocol = load_protocol("rhel-centred")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=10, batch=1))
    inst = Instrument(device, _hand_nonideal())
    assert not inst.account_energy
    e = run_protocol(inst, protocol).cost.energy
    assert e.drive is None and e.dissipated is None and e.total is None
    assert e.drive_time is None and e.time is None  # time counts in steps
    assert any("no energy unit" in n and "dimensionless" in n for n in e.notes)
    assert e.converters is not None and e.converters > 0  # the converters are still costed


def test_energy_appears_in_run_json_log_and_study_metrics(tmp_path, capsys):
    from physim.cli import main
    from physim.protocol.session import run_session
    from physim.study.measures.gradient import Gradient, gradient_metrics
    from physim.study.measures.train import TRAIN_METRICS, _sum_of

    log = tmp_path / "run.h5"
    args = ["run", "lc-ladder-8", "rhel-centred", "--nonideal", "pcb-c0g", "--steps", "30"]
    assert main([*args, "--json", "--log", str(log)]) == 0
    out = json.loads(capsys.readouterr().out)
    e = out["energy_per_update"]
    assert e["units"]["total"] == "J" and e["units"]["time"] == "s"
    assert e["total"] > 0 and e["time"] > 0 and e["flip"] > 0
    with h5py.File(log) as f:
        logged = logs.energy(f, logs.runs(f)[0])
    assert logged["total"] == (pytest.approx(e["total"], rel=1e-12), "J")
    assert logged["time"] == (pytest.approx(e["time"], rel=1e-12), "s")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "energy per gradient update: device drive " in text and " J; time " in text
    table = Gradient.metrics(())
    assert table["energy_total"][0] == "J" and table["time_update"][0] == "s"
    assert TRAIN_METRICS["energy_training"][0] == "J" and TRAIN_METRICS["time_training"][0] == "s"
    protocol = load_protocol("rhel-centred")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=30))
    device, nonideal = physim.load_device("lc-ladder-8"), load_nonideal("pcb-c0g")
    m = gradient_metrics(device, protocol, nonideal, 0, None)
    assert m["energy_total"] == pytest.approx(e["total"], rel=1e-12)
    assert m["time_update"] == pytest.approx(e["time"], rel=1e-12)
    trained = run_session(device, protocol, nonideal, epochs=2, lr=1e-3)
    totals = [r.cost.energy.total for r in trained.results]
    assert len(totals) >= 2 and _sum_of(trained.results, "total") == pytest.approx(sum(totals))


def test_an_rlc_node_delivers_and_dissipates_joules_as_a_circuit_does():
    """One node in circuit terms, C dV/dt = I − V/R − Φ/L with Φ' = V: the drive work ∫ I V dt
    and the resistor's ∫ V²/R dt in joules (a per-dof damping rate γ is a shunt R = 1/(γ C))."""
    C, L, gain, gamma, dt = 1e-9, 1e-6, 1e-3, 2e6, 2e-9  # ~5 MHz, Q ≈ 16
    device = parse_spec(
        {
            "kind": "lc_network",
            "name": "rlc-1",
            "dt": dt,
            "nodes": ["n1"],
            "elements": [
                {"type": "capacitor", "name": "C1", "a": "n1", "C": C},
                {"type": "inductor", "name": "L1", "a": "n1", "L": L},
            ],
            "sources": [{"node": "n1", "gain": gain}],
            "readout": ["n1"],
        }
    ).build()
    spec = {"kind": "dissipation", "damping_rate": gamma, "temperature": 0.0}
    inst = Instrument(device, parse_nonideal({"sources": [spec]}))
    inst.program(None)
    inst.prepare("zero", 1)
    t = np.arange(400) * dt
    u = np.sin(2 * np.pi * 4e6 * t)[:, None, None]
    out = inst.run(u)
    R = 1.0 / (gamma * C)

    def rhs(_, y, current):
        phi, V = y[0], y[1]
        return [V, (current - V / R - phi / L) / C, current * V, V * V / R]

    y = np.zeros(4)
    for k in range(u.shape[0]):
        y = solve_ivp(
            rhs, (0.0, dt), y, args=(gain * u[k, 0, 0],), method="DOP853", rtol=1e-12, atol=1e-30
        ).y[:, -1]
    #: (ω δ)² with ω = 1/√(LC): the leapfrog's relative energy error and the mean-velocity loss
    tol = (dt / np.sqrt(L * C)) ** 2
    assert out.work[0] == pytest.approx(y[2], rel=tol)
    assert out.dissipated == pytest.approx(y[3], rel=tol)


def test_budget_reports_the_energy_of_the_chip_as_specified():
    from physim.answers.budget import energy_per_update
    from physim.answers.report import format_energy
    from physim.seeding import replicate_chip
    from physim.study.measures.gradient import gradient_metrics

    device = physim.load_device("lc-ladder-8")
    nonideal = load_nonideal("pcb-c0g")
    protocol = load_protocol("rhel-centred-rerun")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=30))
    e = energy_per_update(device, protocol, nonideal, replicates=1)
    chip, seed = replicate_chip(nonideal, 0, 0)
    m = gradient_metrics(device, protocol, chip, seed, None)
    assert e["energy_total"] == {
        "value": pytest.approx(m["energy_total"], rel=1e-12),
        "unit": "J",
        "long_name": e["energy_total"]["long_name"],
    }
    assert e["time_update"]["unit"] == "s" and e["time_update"]["value"] > 0
    text = "\n".join(format_energy(e))
    assert "(d) energy per gradient update" in text and " J; time " in text


def test_loss_compensation_supplies_c_times_the_echo_loss():
    """With c = 1 the echo is lossless: H changes by the drive work alone, so the gain stage
    supplied exactly the friction loss it measured; the engine books c × the echoes' loss."""
    device = _network()
    spec = {
        "kind": "dissipation",
        "damping_rate": GAMMA.tolist(),
        "temperature": 0.0,
        "compensation": 1.0,
    }
    inst = Instrument(device, parse_nonideal({"sources": [spec]}))
    inst.program(None)
    inst.prepare("zero", 1)
    u = _drive()[:, :1]
    inst.run(u)
    inst.flip()
    q0, p0 = inst.Q[0, 0].copy(), inst.P[0, 0].copy()
    echo = inst.run(u, reverse=True)
    change = _energy(inst.Q[0, 0], inst.P[0, 0]) - _energy(q0, p0)
    assert echo.dissipated > 0
    assert change == pytest.approx(echo.work[0], abs=TOL * abs(echo.work[0]))

    ladder = physim.load_device("lc-ladder-8")
    c = 0.5
    lossy = {"kind": "dissipation", "quality_factor": 30.0, "temperature": 0.0, "compensation": c}
    nonideal = parse_nonideal({"sources": [lossy]})
    protocol = load_protocol("rhel-one-sided")  # forward, flip, one +ε echo
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=50))
    task = build_task(ladder, protocol.task, protocol.loss)
    e = run_protocol(Instrument(ladder, nonideal), protocol, task=task).cost.energy
    forward = Instrument(ladder, nonideal)
    forward.program(None)
    forward.prepare("device", task.batch)
    loss_forward = forward.run(forward.write_drive(task.u)).dissipated
    assert e.compensation == pytest.approx(c * (e.dissipated - loss_forward), rel=1e-9)


#: second order over dt, dt/2, dt/4 (measured slopes 2.00 on both): a wrong work or loss
#: formula, or trajectories that are not the circuit's, leave an error that does not fall as dt²
SPICE_ORDER_TOL = 0.1
#: physim's error at the catalogue dt (measured 5e-4 work, 1.3e-3 loss at Q = 30)
SPICE_MAX_REL_ERR = 1e-2


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")
def test_lc_ladder_energy_converges_to_ngspice_at_second_order():
    """lc-ladder-8 with a Q = 30 loss, exported to ngspice (its resistor network, the PWL input
    of physim's spice-check): ngspice's ∫ I·V dt and ∫ vᵀ D v dt on its own fine time grid vs
    the instrument's drive work and friction loss at dt, dt/2, dt/4."""
    from physim.instrument.bath import friction_matrix
    from physim.specs import load_spec
    from physim.spice.check import REFINEMENTS, run_ngspice
    from physim.spice.instance import device_inputs, export_device, instrument, lc_spec
    from physim.spice.netlist import pwl_knots

    spec = lc_spec(load_spec("lc-ladder-8"))
    lossy = {"kind": "dissipation", "quality_factor": 30.0, "temperature": 0.0}
    nonideal = parse_nonideal({"sources": [lossy]})
    u = device_inputs(spec, n_steps=300)
    net, _ = export_device(spec, u, nonideal=nonideal, knot_offset=0.0)
    run = run_ngspice(net)
    t, V = run.time, run.values[:, : len(net.nodes)]
    t_knots, u_knots = pwl_knots(u, spec.dt, 0.0)
    ref = instrument(spec, nonideal, spec.dt)
    current = np.stack([np.interp(t, t_knots, c) for c in u_knots.T], 1) @ ref.phys.B.T
    D = friction_matrix(ref.device, ref.phys, ref.diss)
    work = np.trapezoid(np.einsum("ti,ti->t", current, V), t)
    loss = np.trapezoid(np.einsum("ti,ij,tj->t", V, D, V), t)
    errors = []
    for m in REFINEMENTS:
        h = spec.dt / m
        t_sub = (np.arange(u.shape[0] * m) + 0.5) * h
        u_sub = np.stack([np.interp(t_sub, t_knots, c) for c in u_knots.T], 1)
        inst = instrument(spec, nonideal, h)
        inst.prepare("device", 1)
        out = inst.run(inst.write_drive(np.ascontiguousarray(u_sub[:, None, :])))
        errors.append((abs(out.work[0] / work - 1), abs(out.dissipated / loss - 1)))
    errors = np.array(errors)
    order = -np.polyfit(np.log(REFINEMENTS), np.log(errors), 1)[0]
    assert np.all(np.abs(order - 2.0) < SPICE_ORDER_TOL), (order, errors)
    assert np.all(errors[0] < SPICE_MAX_REL_ERR), errors


def test_a_sub_quantum_drive_is_said_to_be_outside_the_classical_model():
    protocol = load_protocol("rhel-centred")
    protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=50))
    jj = run_protocol(Instrument(physim.load_device("jj-array-4")), protocol).cost.energy
    hbar_omega = 1.054571817e-34 * 2 * np.pi * 4.6e9  # its lowest mode is ~4.6 GHz
    assert jj.drive < hbar_omega and any("quanta ħω" in n for n in jj.notes)
    ladder = run_protocol(Instrument(physim.load_device("lc-ladder-8")), protocol).cost.energy
    assert not any("quanta" in n for n in ladder.notes)  # 1e-12 J at MHz: ~1e15 quanta
