"""The BPTT digital twin: exact discrete adjoint of the same leapfrog (reference, not hardware).

Stores the whole forward trajectory (memory grows with n_steps) and back-propagates through
every step with the Hessian–vector products of :mod:`physim.kernels.adjoint`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from physim.device import Device, io_array
from physim.errors import NumericalFault, all_finite, first_bad, locate
from physim.gradients import GradientResult, error_signal, input_grad_array
from physim.kernels.adjoint import adjoint_inputs
from physim.kernels.leapfrog import batch_groups, drive_operands, drive_threads
from physim.losses import Loss, MSELoss
from physim.rhel import check_loss
from physim.simulate import (
    KERNEL_ELEMENTS,
    Trajectory,
    as_inputs,
    chunk_bounds,
    parallel_schedule,
    readout_matrix,
    simulate,
)


def bptt_gradient(
    device: Device,
    theta: np.ndarray | None,
    u: np.ndarray | None,
    target: np.ndarray,
    *,
    loss: Loss | None = None,
    input_grad: bool = False,
    n_steps: int | None = None,
    batch: int | None = None,
    q0: np.ndarray | None = None,
    p0: np.ndarray | None = None,
) -> GradientResult:
    """Loss gradient by backpropagation through time; arguments as :func:`physim.rhel_gradient`."""
    loss = loss or MSELoss()
    theta = device.check_theta(theta)
    u = as_inputs(device, u, n_steps, batch)
    traj = simulate(device, theta, u, q0=q0, p0=p0, record=True)
    target = loss.check_target(target, traj.y.shape)
    value, dLdy = loss.value_and_error(traj.y, target, out=traj.y)
    check_loss(device, value, traj.y.shape[0])
    res = bptt_backward(device, theta, u, traj, dLdy, input_grad=input_grad)
    return replace(res, loss=value)


def bptt_backward(
    device: Device,
    theta: np.ndarray | None,
    u: np.ndarray,
    forward: Trajectory,
    dLdy: np.ndarray,
    *,
    input_grad: bool = False,
    grad_u_into: np.ndarray | None = None,
) -> GradientResult:
    """Back-propagate an external error ∂L/∂y through a recorded forward run (loss is NaN);
    ``grad_u_into`` as in :func:`physim.rhel.rhel_echo`."""
    theta = device.check_theta(theta)
    if forward.q is None:
        raise ValueError("BPTT needs the recorded forward trajectory: simulate(..., record=True)")
    K, nb = u.shape[0], u.shape[1]
    if dLdy.shape != (K, nb, device.n_outputs):
        raise ValueError(f"dLdy must have shape {(K, nb, device.n_outputs)}, got {dLdy.shape}")
    phys = device.physical(theta)
    LQ = np.ascontiguousarray(error_signal(device, dLdy, K, K + 1)[0])
    LP = np.zeros_like(LQ)
    GW = np.zeros((nb, phys.w.shape[0]))
    grad_u = input_grad_array(u, input_grad, grad_u_into)
    n, m = phys.B.shape
    ng = batch_groups(nb, m * n)
    GB = np.zeros((ng, m, n))  # (∂L/∂B)ᵀ per batch group
    GU = grad_u if input_grad else np.zeros((0, nb, m))
    R = readout_matrix(device)
    G = io_array(dLdy)  # (float32 errors and inputs are read as they are)
    U = io_array(u)
    BT, B = drive_operands(phys.B, U)
    Qs = np.ascontiguousarray(forward.q)
    Ps = np.ascontiguousarray(forward.p)

    def run_adjoint(k0, k1, LQ, LP, GW, GB, input_grad, GU) -> None:
        adjoint_inputs(
            device.family,
            phys.prm,
            device.dt,
            device.n_work,
            BT,
            B,
            R,
            U,
            G,
            Qs,
            Ps,
            k0,
            k1,
            LQ,
            LP,
            GW,
            GB,
            input_grad,
            GU,
        )

    with parallel_schedule(ng), drive_threads(phys.B):
        for k0, k1 in reversed(chunk_bounds(K, nb * device.n_dof, KERNEL_ELEMENTS)):
            # the first chunk (k1 = K) starts from zero ∂L/∂B sums: a broadcast zero, no copy
            gb0 = GB.copy() if k1 < K else np.broadcast_to(0.0, GB.shape)
            start = (LQ.copy(), LP.copy(), GW.copy(), gb0)
            run_adjoint(k0, k1, LQ, LP, GW, GB, input_grad, GU[k0:k1] if input_grad else GU)
            if not all_finite(LQ, LP, GW, GB):
                raise _adjoint_fault(device, run_adjoint, K, k0, k1, start, nb, m)
    g_B = np.ascontiguousarray(GB.sum(axis=0).T)
    g_w = GW.sum(axis=0)
    grad = device.pullback(theta, g_w, g_B)
    return GradientResult("bptt", float("nan"), grad, g_w, g_B, grad_u)


def _adjoint_fault(device, run_adjoint, K, k0, k1, start, nb, m) -> NumericalFault:
    LQ, LP, GW, GB = (a.copy() for a in start)
    no_gu = np.zeros((0, nb, m))

    def restore(snap) -> None:
        LQ[:], LP[:], GW[:], GB[:] = snap

    k, what = locate(
        lambda a, b: run_adjoint(a, b, LQ, LP, GW, GB, False, no_gu),
        lambda: first_bad((("adjoint λ_p", LP), ("adjoint λ_q", LQ), ("∂L/∂θ", GW), ("∂L/∂B", GB))),
        lambda: (LQ.copy(), LP.copy(), GW.copy(), GB.copy()),
        restore,
        k0,
        k1,
        reverse=True,
    )
    return NumericalFault(
        "adjoint",
        K - k,
        what,
        "the forward run stayed finite but its sensitivity overflowed (a chaotic or "
        "exponentially growing device over a long sequence); shorten the sequence or lower dt",
        n_steps=K,
        where=f"device {device.name!r}",
    )


def loss_value(
    device: Device,
    theta: np.ndarray | None,
    u: np.ndarray | None,
    target: np.ndarray,
    *,
    loss: Loss | None = None,
    n_steps: int | None = None,
    batch: int | None = None,
    q0: np.ndarray | None = None,
    p0: np.ndarray | None = None,
) -> float:
    """The simulated loss alone (for finite differences and evaluation)."""
    loss = loss or MSELoss()
    traj = simulate(device, theta, u, n_steps=n_steps, batch=batch, q0=q0, p0=p0)
    value = loss.value(traj.y, loss.check_target(target, traj.y.shape))
    check_loss(device, value, traj.y.shape[0])
    return value
