"""Gradient estimators from measurement records only, and fidelity against the twins.

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
from physim.gradients import align
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


@dataclass(frozen=True)
class Fidelity:
    """Agreement of an estimate with a reference, overall and per parameter group."""

    cosine: float
    norm_ratio: float
    rel_error: float
    groups: dict[str, dict[str, float]]
    overall: dict[str, float] | None = None

    def as_dict(self) -> dict:
        extra = {k: v for k, v in (self.overall or {}).items() if k in ("size", "sign", "ratio")}
        return {
            "cosine": self.cosine,
            "norm_ratio": self.norm_ratio,
            "rel_error": self.rel_error,
            **extra,
            "groups": self.groups,
        }


def _compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Cosine, norm ratio and relative error; for one parameter also its sign and signed ratio.

    The cosine of two 1-vectors is ±1 whatever their sizes, so a one-parameter group also
    gets ``sign`` (+1 when estimate and reference agree in sign, −1 when not, 0 when either
    is zero) and ``ratio`` = estimate / reference, which is what a reader should look at.
    """
    cos, ratio = align(a, b)
    nb = float(np.linalg.norm(b))
    out = {
        "size": int(np.size(a)),
        "cosine": cos,
        "norm_ratio": ratio,
        "rel_error": float(np.linalg.norm(a - b)) / nb if nb > 0 else float("nan"),
    }
    if np.size(a) == 1:
        x, y = float(np.ravel(a)[0]), float(np.ravel(b)[0])
        out["sign"] = float(np.sign(x) * np.sign(y))
        out["ratio"] = x / y if y != 0 else float("inf") if x != 0 else 1.0
    return out


def describe(d: dict[str, float]) -> str:
    """One line for a :func:`fidelity` comparison: sign and ratio for a single parameter."""
    if d.get("size") == 1:
        sign = {1.0: "same sign", -1.0: "OPPOSITE sign", 0.0: "a zero"}[d["sign"]]
        return f"1 parameter: {sign}, ratio {d['ratio']:.6g} (a cosine of one number is ±1)"
    return (
        f"cosine {d['cosine']:.6f}  norm ratio {d['norm_ratio']:.6f}  "
        f"rel. error {d['rel_error']:.3e}"
    )


def fidelity(estimate: np.ndarray, reference: np.ndarray, device: Device) -> Fidelity:
    """Cosine, norm ratio and relative error of ``estimate`` vs ``reference`` (θ gradients).

    Groups are compared after scaling each to its own norm, so that a group in large units does
    not dominate the overall numbers reported per group. A one-parameter group (or device)
    also carries ``sign`` and ``ratio`` (see :func:`_compare`); :func:`describe` prints those
    instead of its trivial cosine.
    """
    overall = _compare(estimate, reference)
    groups = {n: _compare(estimate[sl], reference[sl]) for n, sl in device.slices().items()}
    return Fidelity(overall["cosine"], overall["norm_ratio"], overall["rel_error"], groups, overall)


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
