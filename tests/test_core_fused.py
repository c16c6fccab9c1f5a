"""The fused echo kernels and the streaming reductions against the plain kernels and numpy.

The echo steps its trajectories two at a time through ``echo_T2`` / ``echo_V2`` (issue 12):
each trajectory's force must be exactly the one of ``grad_T`` / ``grad_V`` (so the echo states
do not depend on the pairing), and the accumulations must equal the combinations of
``acc_dT_dw``, ``acc_dV_dw`` and ``dV_ds`` to round-off.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import physim
from physim.kernels import dispatch as hk
from physim.kernels import reduce
from physim.kernels.leapfrog import echo_inputs
from physim.losses import MSELoss
from physim.simulate import drive
from physim.specs import load_device

CATALOGUE = sorted(physim.catalogue())
#: the fused accumulation adds the same terms as the plain kernels, grouped differently:
#: round-off of a few additions, relative to the largest term
ACC_RTOL = 1e-13
#: separate echoes against one lockstep echo: the ± differences cancel ~1e3 of the summed
#: magnitude (kicks 1e-3 of the momenta), so round-off 1e-16 of the terms is ~1e-13 of GW
PAIR_RTOL = 1e-10
#: weights of the two trajectories (not ±1, to catch a swapped or dropped weight)
C0, C1 = 0.7, -0.3
#: a family id no registered family has: the generated dispatch raises for it
UNKNOWN_FAMILY = 99


def _states(device, seed: int = 0):
    """Two (q, p) pairs and a drive at the device's own scale, from a short driven run."""
    rng = np.random.default_rng(seed)
    n_in = device.n_inputs
    u = rng.normal(size=(60, 2, n_in)) if n_in else None
    traj = physim.simulate(device, None, u, n_steps=60, batch=2, record=True)
    phys = device.physical(device.theta0)
    s = drive(u, phys.B, 59, 60)[0, 0] if n_in else np.zeros(device.n_dof)
    q0, q1 = traj.q[-1, 0].copy(), traj.q[-1, 1].copy()
    p0, p1 = traj.p[-1, 0].copy(), traj.p[-1, 1].copy()
    if not (np.any(q0 != q1) or np.any(p0 != p1)):  # undriven: the batch runs coincide
        q1, p1 = q0 + 0.1 * np.abs(q0).max(), p0 - 0.1 * np.abs(p0).max()
    return phys.prm, np.ascontiguousarray(s), q0, q1, p0, p1


def _acc(fn, fam, x, prm, work, nw, *s):
    out = np.zeros(nw)
    fn(fam, x, *s, prm, work, 1.0, out)
    return out


def _check_fused(device, fam_call):
    prm, s, q0, q1, p0, p1 = _states(device)
    fam, n, nw = device.family, device.n_dof, prm[0].shape[0]
    work = np.empty(device.n_work)
    g0, g1, gw = np.empty(n), np.empty(n), np.zeros(nw)
    hk.echo_T2(fam_call, p0, p1, prm, work, C0, C1, gw, g0, g1)
    ref0, ref1 = np.empty(n), np.empty(n)
    hk.grad_T(fam, p0, prm, work, ref0)
    hk.grad_T(fam, p1, prm, work, ref1)
    assert np.array_equal(g0, ref0) and np.array_equal(g1, ref1)
    t0, t1 = (_acc(hk.acc_dT_dw, fam, p, prm, work, nw) for p in (p0, p1))
    scale = np.maximum(np.abs(C0 * t0) + np.abs(C1 * t1), 1e-300)
    assert np.all(np.abs(gw - (C0 * t0 + C1 * t1)) <= ACC_RTOL * scale.max())

    gw, ds = np.zeros(nw), np.zeros(n)
    hk.echo_V2(fam_call, q0, q1, s, prm, work, C0, C1, gw, g0, g1, True, ds)
    hk.grad_V(fam, q0, s, prm, work, ref0)
    hk.grad_V(fam, q1, s, prm, work, ref1)
    assert np.array_equal(g0, ref0) and np.array_equal(g1, ref1)
    v0, v1 = (_acc(hk.acc_dV_dw, fam, q, prm, work, nw, s) for q in (q0, q1))
    scale = np.abs(C0 * v0) + np.abs(C1 * v1)
    assert np.all(np.abs(gw - (C0 * v0 + C1 * v1)) <= ACC_RTOL * scale.max())
    d0, d1 = np.empty(n), np.empty(n)
    hk.dV_ds(fam, q0, s, prm, work, d0)
    hk.dV_ds(fam, q1, s, prm, work, d1)
    assert np.array_equal(ds, C0 * d0 + C1 * d1)


@pytest.mark.parametrize("name", CATALOGUE)
def test_fused_echo_kernels_equal_the_plain_kernels(name):
    device = load_device(name)
    _check_fused(device, device.family)


def test_dispatch_refuses_a_family_id_without_kernels():
    """No silent fallback to another family's physics. (That a family without fused kernels
    gets the composition of its plain ones is checked, with the same assertions, on a family
    registered from outside physim: ``tests/test_families_plugin.py``.)"""
    device = load_device("nonlinhru-16")
    prm, s, q0, q1, p0, p1 = _states(device)
    n, nw = device.n_dof, prm[0].shape[0]
    work = np.empty(device.n_work)
    g0, g1, gw, ds = np.empty(n), np.empty(n), np.zeros(nw), np.zeros(n)
    unknown = "no kernels for this device family id"
    with pytest.raises(ValueError, match=unknown):
        hk.echo_T2(UNKNOWN_FAMILY, p0, p1, prm, work, C0, C1, gw, g0, g1)
    with pytest.raises(ValueError, match=unknown):
        hk.echo_V2(UNKNOWN_FAMILY, q0, q1, s, prm, work, C0, C1, gw, g0, g1, True, ds)
    with pytest.raises(ValueError, match=unknown):
        hk.grad_V(UNKNOWN_FAMILY, q0, s, prm, work, g0)
    with pytest.raises(ValueError, match=unknown):
        hk.kinetic(UNKNOWN_FAMILY, p0, prm, work)
    assert np.all(gw == 0) and np.all(ds == 0)  # nothing was accumulated before the refusal


def _echo(device, phys, Q, P, S, E, kicks, weights, GW, DS):
    """The echo through the drive ``S`` (nk, nb, n) with the kicks ``kicks[t] · E[k]`` after
    step k > 0: the echo kernel fed ``S`` as its inputs with B = I (each drive entry one exact
    product), the identity readout and ∂L/∂y[k − 1] = E[k]; ∂V/∂s of each step goes to ``DS``
    as the input gradient Bᵀ ∂V/∂s = ∂V/∂s (scale 1), exact as well."""
    nk, nb, n = S.shape
    eye = np.eye(n)
    G = np.ascontiguousarray(np.concatenate([E[1:], np.zeros((1, nb, n))]))
    no_gb, no_q = np.zeros((1, 0, 0)), np.zeros((0, 1, 1, 1))
    echo_inputs(
        device.family, phys.prm, device.dt, device.n_work, eye, eye, np.zeros((0, n)), S, G,
        0, nk, Q, P, kicks, weights, 1.0, GW, False, no_gb, True, DS, None, no_q,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["duffing-chain-5", "lc-ladder-8", "nonlinhru-16"])
def test_pairing_of_echo_trajectories_leaves_each_state_unchanged(name):
    """Three trajectories (a pair and one paired with itself at weight 0) give bit for bit the
    states of three separate one-trajectory echoes, and their weighted gradient sum."""
    device = load_device(name)
    rng = np.random.default_rng(2)
    nb, nk, n = 2, 50, device.n_dof
    u = rng.normal(size=(nk, nb, device.n_inputs))
    phys = device.physical(None)
    fwd = physim.simulate(device, None, u)
    S = drive(u, phys.B, 0, nk)
    E = rng.normal(size=(nk, nb, n)) * np.abs(fwd.p_final).max() * 1e-3
    kicks, weights = np.array([1e-3, -1e-3, 2e-3]), np.array([1.0, -1.0, 0.5])
    Q = np.ascontiguousarray(np.stack([fwd.q_final] * 3))
    P = np.ascontiguousarray(np.stack([-fwd.p_final] * 3))
    nw = phys.w.shape[0]
    GW, DS = np.zeros((nb, nw)), np.zeros((nk, nb, n))
    args = (device, phys)
    _echo(*args, Q, P, S, E, kicks, weights, GW, DS)
    GW1, DS1 = np.zeros((nb, nw)), np.zeros((nk, nb, n))
    for t in range(3):
        Qt, Pt = np.ascontiguousarray(np.stack([fwd.q_final])), np.stack([-fwd.p_final])
        gw, ds = np.zeros((nb, nw)), np.zeros((nk, nb, n))
        _echo(*args, Qt, Pt, S, E, kicks[t : t + 1], weights[t : t + 1], gw, ds)
        assert np.array_equal(Qt[0], Q[t]) and np.array_equal(Pt[0], P[t])
        GW1 += gw
        DS1 += ds
    assert np.max(np.abs(GW - GW1)) <= PAIR_RTOL * np.max(np.abs(GW1))
    assert np.max(np.abs(DS - DS1)) <= PAIR_RTOL * np.max(np.abs(DS1))


@pytest.mark.parametrize("size", [7, 1000, reduce.PARALLEL_MIN + 13])
def test_mse_error_matches_numpy_and_does_not_depend_on_threads(size):
    rng = np.random.default_rng(size)
    y, t = rng.normal(size=(size, 1, 1)), rng.normal(size=(size, 1, 1))
    ref = float(np.mean((y - t) ** 2))
    old = numba.get_num_threads()
    try:
        results = []
        for threads in (1, old):
            numba.set_num_threads(threads)
            results.append(MSELoss().value_and_error(y, t))
    finally:
        numba.set_num_threads(old)
    (v1, e1), (v2, e2) = results
    assert v1 == v2 and np.array_equal(e1, e2)
    # 2/N (y − t) exactly as numpy forms it; the sum to round-off of N additions
    assert np.array_equal(e1, (y - t) * (2.0 / size))
    assert abs(v1 - ref) <= 1e-12 * ref


def test_mse_target_must_be_finite():
    y = np.zeros((reduce.PARALLEL_MIN + 5, 1, 1))
    for bad in (np.inf, -np.inf, np.nan):
        target = np.zeros_like(y)
        target[-1, 0, 0] = bad
        with pytest.raises(ValueError, match="MSE target contains non-finite values"):
            MSELoss().check_target(target, y.shape)


@pytest.mark.parametrize("size", [1, 999, reduce.PARALLEL_MIN + 3])
def test_max_abs_is_exact_and_propagates_nan(size):
    x = np.random.default_rng(4).normal(size=size)
    x[size // 2] = -7.5
    assert reduce.max_abs(x) == np.max(np.abs(x))
    x[-1] = np.nan
    assert np.isnan(reduce.max_abs(x))
    assert reduce.max_abs(np.zeros(0)) == 0.0
