"""``eps = "auto"``: calibrate the nudge on the instrument from a few short measurements.

The controller measures the gradient twice at each ε of a coarse log grid and models the error
of one measurement as

    err²(ε) = a/ε² + c·ε² + d·ε⁴

* a/ε² — the noise floor (thermal noise, ADC input noise, dither) and the converter's LSB in
  gradient units: the nudged echoes differ by ∝ ε, so a fixed noise or step costs ∝ 1/ε;
* c·ε² — the converter range: an accumulator read per echo holds ∝ ε² terms that grow the
  auto-ranged LSB at large ε (what makes even a linear device prefer a finite ε);
* d·ε⁴ — the centred estimator's nonlinear bias b·ε².

a and c are fitted (non-negative) to the measured random error (half the squared difference of
the two repeats) plus the quantisation error ‖LSB‖²/12 of every accumulator reading; d = ‖b‖²
from the first significant change of the mean gradient between neighbouring grid points going
up in ε. The chosen ε minimises the model on the grid's span. Nothing here reads the simulator:
only measurement records, as the lab computer would.

Every error is of the θ-scaled gradient (:mod:`physim.fidelity`), so the chosen ε is the same
whatever units the device is written in: a raw SI norm would be the norm of whichever group
has the smallest unit.

Each grid point runs on a copy of the instrument, so that its converters range themselves for
that ε (as a controller re-ranges per setting) and the instrument the protocol then runs on
starts as it was; the calibration's physical runs are counted in ``n_runs``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from physim.fidelity import step_units
from physim.instrument.hardware import Instrument
from physim.protocol.specs import ProtocolSpec
from physim.protocol.task import Task

#: a change of the mean gradient is taken as nonlinear bias when it exceeds this many
#: standard deviations of the random error of the two means (a 3σ-style significance)
BIAS_SIGNIFICANCE = 3.0
#: points of the fine grid on which the fitted model is minimised, per decade
FINE_PER_DECADE = 50


@dataclass(frozen=True)
class EpsCalibration:
    """The chosen ε, why, and the measurements behind it (all errors relative to ‖g‖)."""

    eps: float
    reason: str
    grid: tuple[float, ...]
    random_error: tuple[float, ...]  # per grid point: noise + LSB error of one measurement
    bias_coefficient: float  # ‖b‖ / ‖g‖ in the bias b·ε²
    n_runs: int

    def as_dict(self) -> dict:
        return {
            "eps": self.eps,
            "reason": self.reason,
            "grid": list(self.grid),
            "random_error": list(self.random_error),
            "bias_coefficient": self.bias_coefficient,
            "n_runs": self.n_runs,
        }


def _measure(inst: Instrument, protocol: ProtocolSpec, task: Task, theta):
    # imported here: the engine imports this module to resolve eps = "auto"
    from physim.protocol.engine import run_protocol
    from physim.protocol.estimate import estimate_gradient

    res = run_protocol(inst, protocol, task=task, theta=theta)
    est = estimate_gradient(res, inst.device, protocol.estimator)
    s = step_units(inst.device)
    # quantisation error of every accumulator reading, pulled back to θ like the estimate
    q2 = 0.0
    n_w = inst.device.w_base.shape[0]
    for name in protocol.estimator.records:
        rec = res.get(name)
        if rec.lsb is None:
            continue
        lsb = np.broadcast_to(np.asarray(rec.lsb, dtype=float), rec.value.shape)
        for row in lsb.reshape(-1, lsb.shape[-1]):
            g = inst.device.pullback(
                res.theta, row[:n_w], row[n_w:].reshape(inst.device.B_base.shape)
            )
            q2 += float(np.sum((s * g) ** 2)) / 12.0
    return s * est.grad, q2, res.cost.n_runs


def _fit_floor(eps: np.ndarray, r2: np.ndarray) -> tuple[float, float]:
    """Non-negative (a, c) of r² ≈ a/ε² + c·ε², in relative least squares."""
    ok = r2 > 0
    if not np.any(ok):
        return 0.0, 0.0
    e, y = eps[ok], r2[ok]
    M = np.stack([1.0 / e**2, e**2], axis=1) / y[:, None]
    sol, *_ = np.linalg.lstsq(M, np.ones_like(y), rcond=None)
    if np.all(sol >= 0):
        return float(sol[0]), float(sol[1])
    # one term only: the better of the two single-term fits
    best, cost = (0.0, 0.0), np.inf
    for j in (0, 1):
        col = M[:, j]
        coef = max(float(col @ np.ones_like(y)) / float(col @ col), 0.0)
        c = float(np.sum((col * coef - 1.0) ** 2))
        if c < cost:
            best, cost = ((coef, 0.0) if j == 0 else (0.0, coef)), c
    return best


def calibrate_eps(
    instrument: Instrument, protocol: ProtocolSpec, task: Task, theta=None
) -> EpsCalibration:
    """Choose ε for ``protocol`` on ``instrument`` (see module docstring)."""
    spec = protocol.auto_eps
    grid = np.logspace(np.log10(spec.lo), np.log10(spec.hi), spec.n_eps)
    means, r2, n_runs = [], [], 0
    for e in grid:
        inst = copy.deepcopy(instrument)
        p = protocol.model_copy(update={"eps": float(e)})
        gs, q2s = [], []
        for _ in range(spec.repeats):
            g, q2, n = _measure(inst, p, task, theta)
            gs.append(g)
            q2s.append(q2)
            n_runs += n
        gs = np.asarray(gs)
        m = gs.mean(axis=0)
        var = float(np.sum(gs.var(axis=0, ddof=1))) if spec.repeats > 1 else 0.0
        means.append(m)
        r2.append(var + float(np.mean(q2s)))
    means = np.asarray(means)
    r2 = np.asarray(r2)
    scale = float(np.median([np.linalg.norm(m) for m in means])) or 1.0
    r2_rel = r2 / scale**2
    a, c = _fit_floor(grid, r2_rel)
    # the nonlinear bias: the first significant change of the mean going up in ε
    d, where = 0.0, None
    for i in range(len(grid) - 1):
        diff = float(np.linalg.norm(means[i + 1] - means[i])) / scale
        noise = float(np.sqrt((r2_rel[i] + r2_rel[i + 1]) / spec.repeats))
        if diff > BIAS_SIGNIFICANCE * noise:
            d = (diff / (grid[i + 1] ** 2 - grid[i] ** 2)) ** 2
            where = grid[i + 1]
            break
    fine = np.logspace(
        np.log10(spec.lo),
        np.log10(spec.hi),
        int(FINE_PER_DECADE * np.log10(spec.hi / spec.lo)) + 1,
    )
    model = a / fine**2 + c * fine**2 + d * fine**4
    k = int(np.argmin(model))
    eps = float(fine[k])
    parts = [f"noise + LSB floor {np.sqrt(a):.2g}/eps" if a > 0 else "no noise floor measured"]
    if c > 0:
        parts.append(f"converter range growth {np.sqrt(c):.2g}*eps")
    if d > 0:
        parts.append(f"nonlinear bias {np.sqrt(d):.2g}*eps^2 (first seen at eps {where:.2g})")
    else:
        parts.append("no nonlinear bias above the noise")
    edge = " (at the edge of the calibration range)" if k in (0, len(fine) - 1) else ""
    reason = (
        f"eps = {eps:.3g}{edge} minimises the modelled relative error {np.sqrt(model[k]):.2g}: "
        + "; ".join(parts)
        + f" (fitted on {spec.n_eps} eps x {spec.repeats} repeats, {n_runs} physical runs)"
    )
    return EpsCalibration(
        eps,
        reason,
        tuple(grid.tolist()),
        tuple(np.sqrt(r2_rel).tolist()),
        float(np.sqrt(d)),
        n_runs,
    )


def resolve_eps(
    instrument: Instrument, protocol: ProtocolSpec, task: Task, theta=None
) -> tuple[ProtocolSpec, EpsCalibration | None]:
    """``protocol`` with a numeric ε: itself when ε is a number, else calibrated once per
    instrument and protocol (kept in ``instrument.eps_calibrations``)."""
    if protocol.eps != "auto":
        return protocol, None
    key = protocol.model_dump_json()
    cache = instrument.eps_calibrations
    if key not in cache:
        cache[key] = calibrate_eps(instrument, protocol, task, theta)
    cal = cache[key]
    return protocol.model_copy(update={"eps": cal.eps}), cal
