"""The one integrator: agreement with a numpy leapfrog, exact reversal, second order against
the exact propagator (``scipy.linalg.expm``), bounded energy error, and nonlinear trajectories
against ``scipy.integrate.solve_ivp``."""

from __future__ import annotations

import numpy as np
import pytest
from reference.integrators import exact_linear, leapfrog, reference_ode
from reference.models import reference_model
from reference.numerics import loglog_slope

import physim
from physim.specs import load_device, load_spec, parse_spec

CATALOGUE = sorted(physim.catalogue())
LINEAR_DEVICES = ["chain-16", "lc-ladder-8", "linhru-scp1"]

#: same algorithm, independent code: only the order of floating-point operations differs
TRAJ_RTOL = 1e-12
#: issue 2: 1e4 steps forward, flip, replay backwards returns the initial state to 1e-10
REVERSAL_RTOL = 1e-10
#: second order: slope of log(error) vs log(dt) within 2 ± 0.2
ORDER_SLOPE, ORDER_SLOPE_TOL = 2.0, 0.2
#: the order fit is meaningful only where the error is small (phase error ≪ 1 rad)
ASYMPTOTIC_MAX = 0.2
#: solve_ivp reference accuracy: far below the smallest leapfrog error it is compared with
ODE_RTOL = 1e-11
#: no secular drift: the worst energy error of the last tenth of a 1e5-step run may exceed that
#: of the first tenth only by the quasi-periodic beat of the modes (drift would give ~10x)
ENERGY_GROWTH_MAX = 1.5
#: leapfrog's energy error on the two-mass device is O((ω dt)²) ≈ 1e-5; 10x headroom
ENERGY_REL_MAX = 1e-4
#: physim.energy and the numpy Hamiltonian evaluate the same formula
ENERGY_FN_RTOL = 1e-12


def _random_inputs(device, n_steps: int, batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n_steps, batch, device.n_inputs))


def _typical_state(device, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A state of the device's natural scale: its own initial state after a driven warm-up."""
    rng = np.random.default_rng(seed)
    u = _random_inputs(device, 200, batch, seed)
    q0 = device.q0 + 0.1 * rng.normal(size=(batch, device.n_dof)) * np.max(np.abs(device.q0))
    traj = physim.simulate(device, None, u, q0=q0, observe=False)
    return traj.q_final.copy(), traj.p_final.copy()


@pytest.mark.parametrize("name", CATALOGUE)
def test_simulate_matches_numpy_leapfrog(name):
    """physim.simulate equals a plain numpy leapfrog of the spec's Hamiltonian, including the
    drive convention s_k = B u_k for step k and the readout y[k-1] = R q_k."""
    device = load_device(name)
    model = reference_model(device)
    nb = 2
    # long enough to cross the simulator's chunk boundaries on the widest device
    n_steps = 1200 if device.n_dof > 100 else 300
    u = _random_inputs(device, n_steps, nb, seed=1)
    q0, p0 = _typical_state(device, nb, seed=2)
    traj = physim.simulate(device, None, u, q0=q0, p0=p0, record=True)
    qs, ps = leapfrog(model, q0, p0, u @ model.B.T, device.dt)
    assert np.max(np.abs(traj.q - qs)) <= TRAJ_RTOL * np.max(np.abs(qs))
    assert np.max(np.abs(traj.p - ps)) <= TRAJ_RTOL * np.max(np.abs(ps))
    y_ref = qs[1:] @ model.R.T
    assert np.max(np.abs(traj.y - y_ref)) <= TRAJ_RTOL * np.max(np.abs(y_ref))
    np.testing.assert_array_equal(traj.q_final, traj.q[-1])
    np.testing.assert_array_equal(traj.p_final, traj.p[-1])


@pytest.mark.parametrize("name", ["chain-16", "nonlinhru-16"])
def test_recording_batching_and_restarts_do_not_change_the_run(name):
    """Recording on/off, batching and splitting a run in two give bit-identical final states."""
    device = load_device(name)
    u = _random_inputs(device, 700, 3, seed=3)
    full = physim.simulate(device, None, u, record=True)
    bare = physim.simulate(device, None, u, observe=False)
    assert bare.y is None and bare.q is None
    np.testing.assert_array_equal(bare.q_final, full.q_final)
    np.testing.assert_array_equal(bare.p_final, full.p_final)
    for b in range(3):
        one = physim.simulate(device, None, u[:, b : b + 1])
        np.testing.assert_array_equal(one.q_final[0], full.q_final[b])
        np.testing.assert_array_equal(one.y[:, 0], full.y[:, b])
    first = physim.simulate(device, None, u[:300])
    second = physim.simulate(device, None, u[300:], q0=first.q_final, p0=first.p_final)
    np.testing.assert_array_equal(second.q_final, full.q_final)
    np.testing.assert_array_equal(second.p_final, full.p_final)


@pytest.mark.parametrize("name", LINEAR_DEVICES)
def test_reversal_returns_initial_state(name):
    """1e4 steps forward, flip the momenta, replay the inputs backwards: back to the start."""
    device = load_device(name)
    nb = 1 if device.n_dof > 100 else 2
    n_steps = 10_000
    q0, p0 = _typical_state(device, nb, seed=4)
    u = _random_inputs(device, n_steps, nb, seed=5)
    fwd = physim.simulate(device, None, u, q0=q0, p0=p0, observe=False)
    back = physim.simulate(device, None, u[::-1], q0=fwd.q_final, p0=-fwd.p_final, observe=False)
    err_q = np.max(np.abs(back.q_final - q0)) / np.max(np.abs(q0))
    err_p = np.max(np.abs(-back.p_final - p0)) / np.max(np.abs(p0))
    assert err_q <= REVERSAL_RTOL, f"positions return to {err_q:.2e} relative"
    assert err_p <= REVERSAL_RTOL, f"momenta return to {err_p:.2e} relative"


@pytest.mark.parametrize("name", LINEAR_DEVICES)
def test_rhel_echoes_return_to_initial_state(name):
    """The echo integrator is the same reversible leapfrog. For a quadratic Hamiltonian the echo
    is affine in its kicks, so the mean of the +β and −β echoes is the un-nudged (ε = 0) echo:
    after 1e4 steps it must land on the initial state with flipped momenta."""
    device = load_device(name)
    nb = 1 if device.n_dof > 100 else 2
    n_steps = 10_000
    q0, p0 = _typical_state(device, nb, seed=4)
    u = _random_inputs(device, n_steps, nb, seed=5)
    y = physim.simulate(device, None, u, q0=q0, p0=p0).y
    target = y + np.random.default_rng(6).normal(size=y.shape) * np.std(y)
    r = physim.rhel_gradient(device, None, u, target, q0=q0, p0=p0)
    q_echo = 0.5 * (r.echo_q[0] + r.echo_q[1])
    p_echo = 0.5 * (r.echo_p[0] + r.echo_p[1])
    err_q = np.max(np.abs(q_echo - q0)) / np.max(np.abs(q0))
    err_p = np.max(np.abs(-p_echo - p0)) / np.max(np.abs(p0))
    assert err_q <= REVERSAL_RTOL, f"echo positions return to {err_q:.2e} relative"
    assert err_p <= REVERSAL_RTOL, f"echo momenta return to {err_p:.2e} relative"


def _with_dt(name: str, dt: float):
    data = load_spec(name).model_dump()
    data["dt"] = dt
    return parse_spec(data).build()


#: coarsest step of the order fit, as a fraction of the catalogue step. LinHRU's δ = 1 puts its
#: fastest modes at ωδ ≈ 0.9, outside the asymptotic regime, so its fit starts at δ/4
ORDER_COARSEST = {"chain-16": 1.0, "two-mass": 1.0, "lc-ladder-8": 1.0, "linhru-scp1": 0.25}


@pytest.mark.parametrize("name", sorted(ORDER_COARSEST))
def test_leapfrog_is_second_order_against_expm(name):
    """Undriven linear device over a fixed time: error vs the exact propagator ∝ dt²."""
    base = load_device(name)
    model = reference_model(base)
    Minv, K, _ = model.linear()
    rng = np.random.default_rng(6)
    q0, p0 = _typical_state(base, 1, seed=7)
    q0, p0 = q0[0], p0[0] + 0.3 * rng.normal(size=base.n_dof) * np.max(np.abs(p0))
    t_end = 200 * base.dt
    dts = base.dt * ORDER_COARSEST[name] * np.array([1.0, 0.5, 0.25, 0.125])
    errors = []
    for dt in dts:
        device = _with_dt(name, float(dt))
        n_steps = int(round(t_end / dt))
        u = np.zeros((n_steps, 1, device.n_inputs))
        traj = physim.simulate(device, None, u, q0=q0, p0=p0, observe=False)
        q_ex, p_ex = exact_linear(Minv, K, q0, p0, n_steps * dt)
        errors.append(
            max(
                np.max(np.abs(traj.q_final[0] - q_ex)) / np.max(np.abs(q_ex)),
                np.max(np.abs(traj.p_final[0] - p_ex)) / np.max(np.abs(p_ex)),
            )
        )
    slope = loglog_slope(dts, errors)
    assert max(errors) <= ASYMPTOTIC_MAX, f"errors {errors} not in the asymptotic regime"
    assert abs(slope - ORDER_SLOPE) <= ORDER_SLOPE_TOL, f"slope {slope:.3f}, errors {errors}"


def test_energy_error_stays_bounded_two_mass():
    """1e5 steps of the two-mass device: |H − H0|/H0 oscillates but does not grow."""
    device = load_device("two-mass")
    model = reference_model(device)
    n_steps = 100_000
    q0 = np.where(device.q0 != 0, device.q0, 0.3)  # both modes excited whatever the catalogue
    traj = physim.simulate(device, None, None, n_steps=n_steps, q0=q0, record=True)
    H = model.H(traj.q[:, 0], traj.p[:, 0], np.zeros(device.n_dof))
    rel = np.abs(H - H[0]) / H[0]
    tenth = n_steps // 10
    first, last = rel[:tenth].max(), rel[-tenth:].max()
    assert rel.max() <= ENERGY_REL_MAX, f"energy error {rel.max():.2e}"
    assert last <= ENERGY_GROWTH_MAX * first, f"first tenth {first:.3e}, last tenth {last:.3e}"


@pytest.mark.parametrize("name", CATALOGUE)
def test_energy_function_matches_reference_hamiltonian(name):
    device = load_device(name)
    model = reference_model(device)
    u = _random_inputs(device, 50, 2, seed=8)
    q0, p0 = _typical_state(device, 2, seed=9)
    traj = physim.simulate(device, None, u, q0=q0, p0=p0, record=True)
    H = physim.energy(device, None, traj, u)
    S = u @ model.B.T
    S = np.concatenate([S, S[-1:]])  # documented: the last state reuses the last drive
    H_ref = model.H(traj.q, traj.p, S)
    assert np.max(np.abs(H - H_ref)) <= ENERGY_FN_RTOL * np.max(np.abs(H_ref))


@pytest.mark.parametrize("name", ["duffing-chain-5", "josephson-4"])
def test_nonlinear_trajectory_against_solve_ivp(name):
    """Undriven nonlinear device from a non-zero state: leapfrog error vs solve_ivp ∝ dt²."""
    base = load_device(name)
    model = reference_model(base)
    rng = np.random.default_rng(10)
    if base.spec.kind == "lc_network":
        # about one radian of Josephson phase on every island: well inside the nonlinearity
        q_scale = min(e.phi0 for e in base.spec.elements if e.type == "josephson") / (2 * np.pi)
    else:
        q_scale = 2.0  # Duffing term β x⁴/4 is ~20 % of the spring energy at x ≈ 2
    q0 = q_scale * rng.normal(size=base.n_dof)
    p0 = np.zeros(base.n_dof)
    t_end = 200 * base.dt
    q_ref, p_ref = reference_ode(model, q0, p0, t_end, rtol=ODE_RTOL, q_scale=q_scale, p_scale=1.0)
    p_scale = np.max(np.abs(p_ref))
    q_ref, p_ref = reference_ode(
        model, q0, p0, t_end, rtol=ODE_RTOL, q_scale=q_scale, p_scale=p_scale
    )
    dts = base.dt * np.array([1.0, 0.5, 0.25])
    errors = []
    for dt in dts:
        device = _with_dt(name, float(dt))
        n_steps = int(round(t_end / dt))
        u = np.zeros((n_steps, 1, device.n_inputs))
        traj = physim.simulate(device, None, u, q0=q0, p0=p0, observe=False)
        errors.append(
            max(
                np.max(np.abs(traj.q_final[0] - q_ref)) / np.max(np.abs(q_ref)),
                np.max(np.abs(traj.p_final[0] - p_ref)) / p_scale,
            )
        )
    slope = loglog_slope(dts, errors)
    assert max(errors) <= ASYMPTOTIC_MAX, f"errors {errors} not in the asymptotic regime"
    assert min(errors) > 1e3 * ODE_RTOL, f"leapfrog errors {errors} too close to the reference's"
    assert abs(slope - ORDER_SLOPE) <= ORDER_SLOPE_TOL, f"slope {slope:.3f}, errors {errors}"


#: chunk boundaries that split drive blocks (none a multiple of BLOCK or BLAS_BLOCK), and a
#: length that ends in a partial block
SPLITS = (0, 37, 300, 301, 517)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["linhru-scp1", "chain-16"])
def test_drive_blocks_do_not_depend_on_the_chunking(name, dtype):
    """The drive is formed in whole blocks aligned to absolute steps (BLAS products for
    linhru-scp1's 256 × 64 B, numba sums for chain-16): a run cut into chunks that split the
    blocks gives bit for bit the states of one uncut run and of the drive from
    :func:`physim.simulate.drive`; the echo's states do too, and its gradient sums differ only
    by round-off of their grouping. float32 inputs take float32 products on the BLAS route
    (:func:`physim.kernels.leapfrog.drive_operands`) and the same guarantees."""
    from physim.kernels import leapfrog as lf
    from physim.simulate import drive, readout_matrix

    device = load_device(name)
    phys = device.physical(None)
    nb, K, n = 2, SPLITS[-1], device.n_dof
    u = _random_inputs(device, K, nb, seed=5).astype(dtype)
    BT, B = lf.drive_operands(phys.B, u)
    R = readout_matrix(device)
    no = np.empty((0, nb, n))
    blas = name == "linhru-scp1"
    assert (B.size >= lf.DRIVE_BLAS) == blas
    assert BT.dtype == (dtype if blas else np.float64)
    args = (device.family, phys.prm, device.dt, device.n_work)

    def forward(bounds):
        Q, P, Qrec = np.zeros((nb, n)), np.zeros((nb, n)), np.empty((K, nb, n))
        with lf.drive_threads(B):
            for k0, k1 in bounds:
                lf.forward_inputs(*args, BT, R, u, k0, k1, Q, P, no, Qrec[k0:k1], no, None)
        return Q, P, Qrec

    whole = forward([(0, K)])
    cut = forward(list(zip(SPLITS[:-1], SPLITS[1:], strict=True)))
    for a, b in zip(whole, cut, strict=True):
        assert np.array_equal(a, b)
    S = drive(u, phys.B, 0, K)
    for k0, k1 in zip(SPLITS[:-1], SPLITS[1:], strict=True):
        assert np.array_equal(drive(u, phys.B, k0, k1), S[k0:k1])
    # that drive fed to the kernel as its inputs with B = I (each entry one exact product)
    Q, P, Qrec = np.zeros((nb, n)), np.zeros((nb, n)), np.empty((K, nb, n))
    eye = np.eye(n)
    with lf.drive_threads(eye):
        lf.forward_inputs(*args, eye, R, S, 0, K, Q, P, no, Qrec, no, None)
    assert np.array_equal(Qrec, whole[2])

    G = np.random.default_rng(6).normal(size=(K, nb, device.n_outputs))
    kicks, weights = np.array([1e-3, -1e-3]), np.array([1.0, -1.0])
    ng = lf.batch_groups(nb, B.size)

    def echo(bounds):
        QE = np.ascontiguousarray(np.stack([whole[0]] * 2))
        PE = np.ascontiguousarray(np.stack([-whole[1]] * 2))
        GW, GB = np.zeros((nb, phys.w.shape[0])), np.zeros((ng,) + BT.shape)
        GU = np.zeros((K, nb, device.n_inputs), dtype)
        with lf.drive_threads(B):
            for k0, k1 in reversed(bounds):
                lf.echo_inputs(
                    *args, BT, B, R, u, G, k0, k1, QE, PE, kicks, weights, 1.0,
                    GW, True, GB, True, GU[k0:k1], None, np.zeros((0, 1, 1, 1)),
                )  # fmt: skip
        return QE, PE, GW, GB, GU

    e_whole = echo([(0, K)])
    e_cut = echo(list(zip(SPLITS[:-1], SPLITS[1:], strict=True)))
    for a, b in zip(e_whole[:2], e_cut[:2], strict=True):
        assert np.array_equal(a, b)
    # float32 products: a partial block's rows round in float32, ~1e-7 relative per product,
    # over a few blocks and n terms well below 1e-5
    rtol = TRAJ_RTOL if BT.dtype == np.float64 else 1e-5
    for a, b in zip(e_whole[2:], e_cut[2:], strict=True):
        assert np.max(np.abs(a - b)) <= rtol * np.max(np.abs(a))
