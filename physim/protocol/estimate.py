"""Gradient estimators from measurement records only, and the twins they are judged against
(the judgement itself, unit-free, is :mod:`physim.fidelity`).

Two references keep measurement error and model error apart: the *ideal* (nominal) twin is the
device the designer specified; the *as-built* twin is the chip actually made (mismatch and drift
applied, as :meth:`~physim.instrument.hardware.Instrument.as_built` exposes them). A measured
gradient that matches the as-built twin but not the nominal one is exact for the real chip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.bptt import bptt_gradient
from physim.device import Device
from physim.instrument.hardware import Instrument
from physim.protocol.checks import check_gradient_resolution
from physim.protocol.records import ProtocolCost, ProtocolResult
from physim.protocol.specs import EstimatorSpec
from physim.protocol.task import Task


@dataclass(frozen=True)
class GradientEstimate:
    """A measured gradient w.r.t. θ (and w, B) with what it cost to measure."""

    grad: np.ndarray
    grad_w: np.ndarray
    grad_B: np.ndarray
    cost: ProtocolCost
    loss: float | None


def estimate_gradient(
    result: ProtocolResult,
    device: Device,
    estimator: EstimatorSpec,
    *,
    eps: float | None = None,
    check: bool = False,
) -> GradientEstimate:
    """dL/dθ from the records of a protocol run.

    With ``check`` a :class:`~physim.warnings.PhysimWarning` says when the summed readings sit
    near one accumulator LSB (the ε it suggests is relative to ``eps``, the protocol's nudge).

    Each named accumulator was read with its integrator gain (−δ s/(2β) or −δ s/β), so the
    gradient w.r.t. the element values w and the input matrix B is the sum of the readings over
    records and accumulators; it is pulled back to θ through the programming map at the θ
    that was written.
    """
    if estimator.kind != "sum":
        raise ValueError(
            f"protocol {result.protocol!r} has no gradient estimator (kind = "
            f"{estimator.kind!r}); it is a measurement-only protocol"
        )
    total = None
    for name in estimator.records:
        rec = result.get(name)
        if rec.kind != "accumulator":
            raise ValueError(f"record {name!r} is a {rec.kind}, not an integrating readout")
        part = rec.value.sum(axis=0) if rec.value.shape[0] > 1 else rec.value[0]
        total = part if total is None else total + part
    if check:
        check_gradient_resolution(result, device, estimator, eps)
    n_w = device.w_base.shape[0]
    g_w = np.ascontiguousarray(total[:n_w])
    g_B = np.ascontiguousarray(total[n_w:].reshape(device.B_base.shape))
    grad = device.pullback(result.theta, g_w, g_B)
    return GradientEstimate(grad, g_w, g_B, result.cost, result.loss)


def ideal_gradient(device: Device, theta: np.ndarray, task: Task) -> np.ndarray:
    """The ideal twin: BPTT through the nominal, lossless, float64 device at ``theta``."""
    return bptt_gradient(device, theta, task.u, task.target, loss=task.loss).grad


def as_built_gradient(instrument: Instrument, theta: np.ndarray, task: Task) -> np.ndarray:
    """The as-built twin: BPTT through the chip as made (mismatch and drift applied; lossless,
    float64, ideal converters) at ``theta``, pulled back to θ as the instrument's integrating
    readout is (:func:`estimate_gradient`)."""
    twin = instrument.as_built(theta)
    ref = bptt_gradient(twin, None, task.u, task.target, loss=task.loss)
    return instrument.device.pullback(theta, ref.grad_w, ref.grad_B)
