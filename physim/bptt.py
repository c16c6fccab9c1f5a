"""The BPTT digital twin: exact discrete adjoint of the same leapfrog (reference, not hardware).

Stores the whole forward trajectory (memory grows with n_steps) and back-propagates through
every step with the Hessian–vector products of :mod:`physim.kernels.adjoint`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from physim.device import Device
from physim.gradients import GradientResult, drive_gradient_to_inputs, error_signal
from physim.kernels.adjoint import adjoint_chunk
from physim.losses import Loss, MSELoss
from physim.simulate import Trajectory, as_inputs, chunk_bounds, drive, simulate


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
    value = loss.value(traj.y, target)
    res = bptt_backward(device, theta, u, traj, loss.error(traj.y, target), input_grad=input_grad)
    return replace(res, loss=value)


def bptt_backward(
    device: Device,
    theta: np.ndarray | None,
    u: np.ndarray,
    forward: Trajectory,
    dLdy: np.ndarray,
    *,
    input_grad: bool = False,
) -> GradientResult:
    """Back-propagate an external error ∂L/∂y through a recorded forward run (loss is NaN)."""
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
    g_B = np.zeros_like(phys.B)
    grad_u = np.zeros_like(u) if input_grad else None
    for k0, k1 in reversed(chunk_bounds(K, nb * device.n_dof)):
        S = drive(u, phys.B, k0, k1)
        E = error_signal(device, dLdy, k0, k1)
        GS = np.empty((k1 - k0, nb, device.n_dof))
        adjoint_chunk(
            device.family,
            phys.prm,
            device.dt,
            device.n_work,
            forward.q[k0:k1],
            forward.p[k0:k1],
            S,
            E,
            LQ,
            LP,
            GW,
            GS,
        )
        drive_gradient_to_inputs(GS, u[k0:k1], phys.B, g_B, grad_u, k0)
    g_w = GW.sum(axis=0)
    grad = device.pullback(theta, g_w, g_B)
    return GradientResult("bptt", float("nan"), grad, g_w, g_B, grad_u)


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
    return loss.value(traj.y, loss.check_target(target, traj.y.shape))
