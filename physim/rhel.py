"""Recurrent Hamiltonian Echo Learning: gradients from a forward run and two nudged echoes.

1. Forward run from the initial state, keeping only the final state and the readout.
2. Flip the momenta; kick ``p ← p ± β e_K``.
3. Echo: replay the drive in reverse; after the step that lands on state k, kick ``± β e_k``.
   Along each step accumulate ∂H½/∂θ at the half-step Hamiltonian
   H½ = ½(H[q½, p_before] + H[q½, p_after]) and record ∂H½/∂s (drive gradient).
4. dL/dθ = −δ (G₊ − G₋) / (2β),   dL/ds_k = −δ (U₊ − U₋)(k) / (2β).

The two echoes run in lockstep. For quadratic Hamiltonians the centred difference is exact at
any β; otherwise its bias is O(β²). ``eps`` is relative by default: β = eps · rms(p_K) / max|e|,
so the largest kick is ``eps`` times the typical momentum of the final state.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from physim import memory
from physim.device import Device, Physical, io_array
from physim.errors import NumericalFault, all_finite, first_bad, locate
from physim.gradients import GradientResult, error_bound, error_signal, input_grad_array
from physim.kernels.leapfrog import batch_groups, drive_operands, drive_threads, echo_inputs
from physim.losses import Loss, MSELoss
from physim.simulate import (
    KERNEL_ELEMENTS,
    Trajectory,
    as_inputs,
    chunk_bounds,
    parallel_schedule,
    readout_matrix,
    simulate,
)
from physim.spec_base import EPS_MIN

#: default relative nudges: quadratic H is exact at any ε, so a large nudge keeps the echo
#: difference far above round-off; otherwise the O(ε²) bias needs a small one
EPS_QUADRATIC = 1e-2
EPS_NONLINEAR = 1e-6


def default_eps(device: Device) -> float:
    """The relative nudge to use when none is given (see EPS_QUADRATIC)."""
    return EPS_QUADRATIC if device.quadratic else EPS_NONLINEAR


_NO_RECORD = np.zeros((0, 1, 1, 1))


def nudge_factor(eps: float, relative: bool, p_final: np.ndarray, e_max: float) -> float:
    """Absolute nudge β from ``eps`` (see module docstring)."""
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps}")
    p_rms = float(np.sqrt(np.mean(p_final**2))) if p_final.size else 0.0
    p_ref = p_rms if p_rms > 0 else 1.0
    beta = float(eps) if not relative else float(eps) * p_ref / e_max
    # the largest kick β·max|e| must move a momentum of the final state's size by >= one ulp
    if not beta * e_max >= EPS_MIN * p_ref:
        raise ValueError(
            f"eps = {eps:g} gives a largest kick β·max|e| = {beta * e_max:.3g}, below one "
            f"rounding step of the final momenta (rms {p_ref:.3g}): the nudge is lost; use eps >= "
            f"{EPS_MIN * p_ref / e_max if not relative else EPS_MIN:.3g}"
        )
    return beta


def rhel_gradient(
    device: Device,
    theta: np.ndarray | None,
    u: np.ndarray | None,
    target: np.ndarray,
    *,
    loss: Loss | None = None,
    eps: float = 1e-6,
    relative_eps: bool = True,
    input_grad: bool = False,
    n_steps: int | None = None,
    batch: int | None = None,
    q0: np.ndarray | None = None,
    p0: np.ndarray | None = None,
) -> GradientResult:
    """Loss gradient by centred RHEL (ideal instrument; states integrated in float64).

    Parameters
    ----------
    device, theta
        Device and learnable vector (``device.theta0`` when ``None``).
    u
        Inputs (n_steps, batch, n_inputs), or ``None`` for an undriven device with ``n_steps``.
    target
        Loss target: (n_steps, batch, n_outputs) for MSE, (batch, n_outputs) for final-time.
    loss
        :class:`~physim.losses.MSELoss` (default) or :class:`~physim.losses.FinalLoss`.
    eps
        Nudge strength; relative to the final momenta unless ``relative_eps=False``.
    input_grad
        Also return dL/du for every step (memory grows with n_steps, like the input itself).
    """
    loss = loss or MSELoss()
    theta = device.check_theta(theta)
    u = as_inputs(device, u, n_steps, batch)
    fwd = simulate(device, theta, u, q0=q0, p0=p0)
    target = loss.check_target(target, fwd.y.shape)
    # the readout is not needed once the error is formed: reuse its memory for ∂L/∂y
    value, dLdy = loss.value_and_error(fwd.y, target, out=fwd.y)
    check_loss(device, value, fwd.y.shape[0])
    res = rhel_echo(
        device, theta, u, fwd, dLdy, eps=eps, relative_eps=relative_eps, input_grad=input_grad
    )
    return replace(res, loss=value)


def rhel_echo(
    device: Device,
    theta: np.ndarray | None,
    u: np.ndarray,
    forward: Trajectory,
    dLdy: np.ndarray,
    *,
    eps: float = 1e-6,
    relative_eps: bool = True,
    input_grad: bool = False,
    grad_u_into: np.ndarray | None = None,
) -> GradientResult:
    """The echo half of RHEL, given the forward run and an external error ∂L/∂y.

    This is the entry point for chaining (a block of a deep model receives ∂L/∂y from the
    layers above it). ``u`` must be the validated input of the forward run and ``dLdy`` have the
    shape of ``forward.y``. The returned ``loss`` is NaN: the caller owns the loss. With
    ``input_grad``, ``grad_u_into`` (u's shape) has ∂L/∂u added to it in place of a fresh
    array (a chained model sums it with its other input gradients without a temporary); it is
    undefined after a NumericalFault.
    """
    theta = device.check_theta(theta)
    K, nb = u.shape[0], u.shape[1]
    if dLdy.shape != (K, nb, device.n_outputs):
        raise ValueError(f"dLdy must have shape {(K, nb, device.n_outputs)}, got {dLdy.shape}")
    state = (nb, device.n_dof)
    if forward.q_final.shape != state or forward.p_final.shape != state:
        raise ValueError(
            f"the forward run's final state has shape {forward.q_final.shape}, but the inputs u "
            f"{u.shape} need {state}: pass the Trajectory of simulate(device, theta, u)"
        )
    if forward.y is not None and forward.y.shape[0] != K:
        raise ValueError(
            f"the forward run has {forward.y.shape[0]} steps but u has {K}: pass the Trajectory "
            "of simulate(device, theta, u)"
        )
    phys = device.physical(theta)
    Q, P = forward.q_final, forward.p_final
    g_w = np.zeros(phys.w.shape[0])
    g_B = np.zeros_like(phys.B)
    need_drive = input_grad or any(g.target == "B" for g in device.groups)
    if input_grad and grad_u_into is None:
        memory.check(
            memory.floats(u.shape),
            f"the input gradient of {K} steps × batch {nb}",
            "pass input_grad=False or use fewer steps",
        )
    grad_u = input_grad_array(u, input_grad, grad_u_into)
    e_max = error_bound(device, dLdy)
    if not np.isfinite(e_max):
        raise NumericalFault(
            "forward",
            None,
            "error signal ∂L/∂y",
            "the forward readout or the loss overflowed; check the target and the input amplitude",
            where=f"device {device.name!r}",
        )
    if e_max == 0.0:
        grad = device.pullback(theta, g_w, g_B)
        return GradientResult("rhel", float("nan"), grad, g_w, g_B, grad_u, kick=0.0)
    beta = nudge_factor(eps, relative_eps, P, e_max)

    e_K = error_signal(device, dLdy, K, K + 1)[0]
    QE = np.ascontiguousarray(np.stack([Q, Q]))
    PE = np.ascontiguousarray(np.stack([-P + beta * e_K, -P - beta * e_K]))
    kicks = np.array([beta, -beta])
    weights = np.array([1.0, -1.0])
    GW = np.zeros((nb, g_w.shape[0]))
    scale = -device.dt / (2.0 * beta)
    n, m = phys.B.shape
    ng = batch_groups(nb, m * n)
    GB = np.zeros((ng, m, n) if need_drive else (ng, 0, 0))  # (∂L/∂B)ᵀ per batch group
    GU = grad_u if input_grad else np.zeros((0, nb, m))
    R = readout_matrix(device)
    G = io_array(dLdy)  # (float32 errors and inputs are read as they are)
    U = io_array(u)
    BT, B = drive_operands(phys.B, U)

    def run_echo(k0, k1, QE, PE, GW, GB, input_grad, GU) -> None:
        echo_inputs(
            device.family,
            phys.prm,
            device.dt,
            device.n_work,
            BT,
            B,
            R,
            U,
            G,
            k0,
            k1,
            QE,
            PE,
            kicks,
            weights,
            scale,
            GW,
            need_drive,
            GB,
            input_grad,
            GU,
            None,
            _NO_RECORD,
        )

    with parallel_schedule(ng), drive_threads(phys.B):
        for k0, k1 in reversed(chunk_bounds(K, 2 * nb * device.n_dof, KERNEL_ELEMENTS)):
            # the first chunk (k1 = K) starts from zero ∂L/∂B sums: a broadcast zero, no copy
            gb0 = GB.copy() if k1 < K else np.broadcast_to(0.0, GB.shape)
            start = (QE.copy(), PE.copy(), GW.copy(), gb0)
            run_echo(k0, k1, QE, PE, GW, GB, input_grad, GU[k0:k1] if input_grad else GU)
            if not all_finite(QE, PE, GW, GB):
                raise echo_fault(device, phys, run_echo, K, k0, k1, start)
    if need_drive:
        g_B = np.ascontiguousarray(GB.sum(axis=0).T)
    g_w = scale * GW.sum(axis=0)
    grad = device.pullback(theta, g_w, g_B)
    return GradientResult(
        "rhel", float("nan"), grad, g_w, g_B, grad_u, kick=beta, echo_q=QE, echo_p=PE
    )


def check_loss(device: Device, value: float, n_steps: int) -> None:
    """Raise :class:`NumericalFault` when the forward run's loss is not finite."""
    if not np.isfinite(value):
        raise NumericalFault(
            "forward",
            None,
            "loss",
            f"the loss is {value} although the forward states stayed finite: the readout "
            "overflowed its square; check the target's scale and the input amplitude",
            n_steps=n_steps,
            where=f"device {device.name!r}",
        )


#: the echo branches in the order the drivers stack them (kicks +β, −β)
ECHO_RUNS = ("echo +", "echo −")


def echo_fault(
    device: Device, phys: Physical, run_echo, K: int, k0: int, k1: int, start, *, lossy=False
) -> NumericalFault:
    """The error for an echo chunk k1−1 … k0 that ended non-finite; ``start`` = (Q, P, GW, GB)."""
    from physim.stability import fault_cause

    Q, P, GW, GB = (a.copy() for a in start)
    no_gu = np.zeros((0, Q.shape[1], phys.B.shape[1]))

    def bad():
        for t, run in enumerate(ECHO_RUNS[: Q.shape[0]]):
            what = first_bad((("p", P[t]), ("q", Q[t])))
            if what is not None:
                return run, what
        if not all_finite(GW, GB):
            return "echo ±", "accumulated ∂H/∂θ"
        return None

    def restore(snap) -> None:
        Q[:], P[:], GW[:], GB[:] = snap

    k, (run, what) = locate(
        lambda a, b: run_echo(a, b, Q, P, GW, GB, False, no_gu),
        bad,
        lambda: (Q.copy(), P.copy(), GW.copy(), GB.copy()),
        restore,
        k0,
        k1,
        reverse=True,
    )
    return NumericalFault(
        run,
        K - k,
        what,
        fault_cause(device, phys, run, lossy=lossy),
        n_steps=K,
        where=f"device {device.name!r}",
    )
