"""Leapfrog stability from the normal modes of a device's quadratic part.

For H = ½ pᵀ T p + ½ qᵀ V q the drift–kick–drift leapfrog with step δ is stable iff
δ ω_max < 2, where ω_max² is the largest eigenvalue of T V (T = ∂²H/∂p², V = ∂²H/∂q²). A
device is linearised at q = 0, p = 0, s = 0 with its family's Hessian–vector product kernels
(``hvp_T``, ``hvp_V`` of ``device.family_kind.kernels``), so every family is covered by one
formula; a LinHRU's per-mode steps Δt_i enter through T and V (ω_i = Δt_i √A_i in units of the
global step δ).

This module depends on :mod:`physim.device` only: the families call :func:`check_stability` when
they build a device, and it reaches the kernels through the device, not through the
integrators' dispatch (which sits above the families).
"""

from __future__ import annotations

import warnings

import numpy as np

from physim.device import Device, Physical

#: the leapfrog's stability limit on δ ω_max (a property of the integrator, not a tolerance)
STABILITY_LIMIT = 2.0
#: above this fraction of the limit the step is stable but the phase error is large
#: (tan of the numerical phase grows without bound at the limit): warn
WARN_FRACTION = 0.9


class UnstableStepError(ValueError):
    """The integrator step exceeds the leapfrog's stability limit for this device."""


class StabilityWarning(UserWarning):
    """The integrator step is within 10 % of the leapfrog's stability limit."""


def _kernels(device: Device):
    kind = device.family_kind
    if kind is None:
        raise ValueError(
            f"device {device.name!r} (family id {device.family}) carries no family kind: build "
            "devices from a registered family's spec (physim.families.FAMILIES)"
        )
    return kind.kernels


def hessian(device: Device, phys: Physical, which: str) -> np.ndarray:
    """∂²T/∂p² (``which = "T"``) or ∂²V/∂q² (``"V"``) at q = p = s = 0, dense (n, n)."""
    n = device.n_dof
    work = np.empty(device.n_work)
    out = np.empty(n)
    zero = np.zeros(n)
    H = np.empty((n, n))
    hk = _kernels(device)
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        if which == "T":
            hk.hvp_T(zero, phys.prm, e, work, out)
        else:
            hk.hvp_V(zero, zero, phys.prm, e, work, out)
        H[:, j] = out
    return 0.5 * (H + H.T)


def _diagonal(device: Device, phys: Physical, which: str) -> np.ndarray:
    n = device.n_dof
    work = np.empty(device.n_work)
    out = np.empty(n)
    zero = np.zeros(n)
    ones = np.ones(n)
    hk = _kernels(device)
    if which == "T":
        hk.hvp_T(zero, phys.prm, ones, work, out)
    else:
        hk.hvp_V(zero, zero, phys.prm, ones, work, out)
    return out


def mode_frequencies(device: Device, phys: Physical) -> np.ndarray:
    """ω² of the linearised device, one per mode, ascending (negative: an unstable mode)."""
    if device.family_kind is not None and device.family_kind.diagonal_hessian:
        return np.sort(_diagonal(device, phys, "T") * _diagonal(device, phys, "V"))
    T = hessian(device, phys, "T")
    V = hessian(device, phys, "V")
    lam, U = np.linalg.eigh(T)
    S = (U * np.sqrt(np.maximum(lam, 0.0))) @ U.T  # T^½
    return np.linalg.eigvalsh(S @ V @ S)


def stability_ratio(device: Device, phys: Physical) -> tuple[float, float]:
    """(δ ω_max, ω_max) of the linearisation; the leapfrog is stable while the first is < 2."""
    if device.n_dof == 0:
        return 0.0, 0.0
    w2 = mode_frequencies(device, phys)
    w_max = float(np.sqrt(max(float(w2[-1]), 0.0)))
    return device.dt * w_max, w_max


def check_stability(device: Device, phys: Physical | None = None) -> float:
    """Raise :class:`UnstableStepError` beyond the limit, warn above 90 % of it; return δ ω_max."""
    phys = phys or device.physical(device.theta0)
    r, w = stability_ratio(device, phys)
    if not np.isfinite(r):
        raise UnstableStepError(
            f"device {device.name!r}: its linearised frequencies are not finite (ω_max = {w}); "
            "check that every element value is finite"
        )
    unit = device.units.get("t", "s")
    if r >= STABILITY_LIMIT:
        raise UnstableStepError(
            f"device {device.name!r}: dt·ω_max must be < 2 for the leapfrog to be stable, got "
            f"{r:.4g} (dt = {device.dt:g} {unit}, ω_max = {w:.4g} rad/{unit} at θ0); use dt < "
            f"{STABILITY_LIMIT / w:.4g} {unit} or soften the stiffest element"
        )
    if r > WARN_FRACTION * STABILITY_LIMIT:
        warnings.warn(
            f"device {device.name!r}: dt·ω_max = {r:.4g} is within 10 % of the leapfrog limit 2; "
            f"the fastest mode's phase error is large — use dt < "
            f"{WARN_FRACTION * STABILITY_LIMIT / w:.4g} {unit} for accuracy",
            StabilityWarning,
            stacklevel=3,
        )
    return r


def fault_cause(
    device: Device, phys: Physical, run: str, u: np.ndarray | None = None, *, lossy: bool = False
) -> str:
    """The likeliest cause of a blow-up in ``run``, with the fix (for :class:`NumericalFault`)."""
    try:
        r, w = stability_ratio(device, phys)
        w2_min = float(mode_frequencies(device, phys)[0]) if device.n_dof else 0.0
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        r, w, w2_min = float("nan"), float("nan"), 0.0
    if np.isfinite(r) and r >= STABILITY_LIMIT:
        return (
            f"dt·ω_max = {r:.4g} is beyond the leapfrog limit 2 at this θ; keep dt < "
            f"{STABILITY_LIMIT / w:.4g} (or lower the learning rate if training stiffened it)"
        )
    if w2_min < 0:
        return (
            f"a negative-stiffness mode (ω² = {w2_min:.3g}) grows exponentially; make the "
            "stiffness positive-definite"
        )
    if run.startswith("echo"):
        why = (
            "the echo amplifies what the forward run damped (anti-damped echo: lower the loss "
            "compensation or the flip gain)"
            if lossy
            else "the echo diverges from the time-reversed forward run"
        )
        return f"the forward run stayed finite: {why}, or the nudge eps is too large"
    amp = ""
    if u is not None and u.size:
        amp = f" (max |u| = {max(float(np.max(u)), -float(np.min(u))):.3g})"
    return (
        f"dt·ω_max = {r:.3g} is within the limit 2, so the drive{amp} or a nonlinear element "
        "pushed the state out of range; lower the input amplitude or the input weights"
    )


def check_programmed_stability(device: Device, phys: Physical, theta: np.ndarray) -> None:
    """The build-time ω·dt check at the θ actually programmed (as built: mismatch and drift
    applied), for a θ that moved since the build: training, a programmed θ, the DAC.

    Raises :class:`UnstableStepError` naming the parameter that moved most from θ0, so that
    a learned or programmed θ that crosses ω·dt = 2 stops before it runs (a leapfrog past
    its limit grows by orders of magnitude per step and reads 1e80 long before inf).
    """
    try:
        r, w = stability_ratio(device, phys)
    except np.linalg.LinAlgError:  # no linearisation here: the run's own finiteness checks
        return
    if np.isfinite(r) and r < STABILITY_LIMIT:
        return
    unit = device.units.get("t", "s")
    moved = ""
    th0 = device.theta0
    if theta.size and theta.shape == th0.shape:
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.abs(np.log(np.abs(theta) / np.abs(th0)))
        change[~np.isfinite(change)] = -1.0
        i = int(np.argmax(change))
        if change[i] > 0:
            group, k = device.locate_param(i)
            g = next(x for x in device.groups if x.name == group)
            label = g.labels[k] if k < len(g.labels) else f"{group}[{k}]"
            moved = (
                f"; the parameter that moved most is {group} {label} = {theta[i]:.4g} {g.unit} "
                f"({theta[i] / th0[i]:.3g}x its θ0 {th0[i]:.4g})"
            )
    raise UnstableStepError(
        f"device {device.name!r}: dt·ω_max = {r:.4g} at the programmed θ, beyond the leapfrog "
        f"limit 2 (ω_max = {w:.4g} rad/{unit}, dt = {device.dt:g} {unit}){moved}; lower the "
        "learning rate, bound that parameter, or use a smaller dt"
    )
