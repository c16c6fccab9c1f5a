"""Training through the instrument: measure a gradient, update θ, program it, repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from physim.device import Device
from physim.errors import NumericalFault, check_training
from physim.fidelity import step_units
from physim.instrument.hardware import Instrument
from physim.optim import AdamState, adam_update
from physim.protocol.engine import OnStep, run_protocol
from physim.protocol.estimate import GradientEstimate, estimate_gradient
from physim.protocol.records import ProtocolResult
from physim.protocol.specs import ProtocolSpec
from physim.protocol.task import Task, build_task

OnEpoch = Callable[[int, ProtocolResult, GradientEstimate], None]
#: Adam's denominator floor, relative to the largest sqrt(v̂): far below any useful step
ADAM_EPS_RELATIVE = 1e-12


@dataclass(frozen=True)
class TrainingHistory:
    """Loss measured at each epoch (before its update) and θ as written through the DAC."""

    losses: np.ndarray
    thetas: np.ndarray
    n_runs: int
    drive_energy: float


def check_training_options(n_epochs: int, lr: float) -> None:
    """Epochs are a non-negative integer and the learning rate a positive finite number."""
    if isinstance(n_epochs, bool) or int(n_epochs) != n_epochs or n_epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {n_epochs!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}; try 1e-2")


def train_in_situ(
    instrument: Instrument,
    protocol: ProtocolSpec,
    *,
    n_epochs: int,
    lr: float = 1e-2,
    task: Task | None = None,
    theta: np.ndarray | None = None,
    scale: Literal["relative", "absolute"] | np.ndarray = "relative",
    measure_final: bool = False,
    on_epoch: OnEpoch | None = None,
    on_begin: Callable[[int, np.ndarray], None] | None = None,
    on_step: OnStep | None = None,
) -> TrainingHistory:
    """Adam (:func:`physim.optim.adam_update`) on the measured gradient, θ programmed through
    the parameter DAC after every update (a step smaller than an LSB is lost as on the chip).

    ``scale`` sets each parameter's step unit: ``"relative"`` (default) steps θ_i by ``lr ·
    |θ0_i|`` times the Adam direction (``lr`` absolute where θ0_i = 0), because device
    parameters span many decades (farads next to inverse henries); ``"absolute"`` steps every
    θ_i by ``lr`` in its own unit (the demo); an array gives the unit per parameter. With
    ``measure_final`` one more execution measures the trained θ (epoch ``n_epochs``, no
    update), so ``losses`` ends with the final loss. ``on_begin(epoch, theta)`` runs before
    each execution, ``on_step`` is passed to :func:`~physim.protocol.engine.run_protocol` and
    ``on_epoch(epoch, result, estimate)`` runs after each gradient measurement (logging hooks).
    """
    check_training_options(n_epochs, lr)
    dev = instrument.device
    if protocol.estimator.kind != "sum":
        raise ValueError(
            f"protocol {protocol.name!r} measures no gradient; train with an "
            "RHEL protocol such as rhel-centred-rerun"
        )
    task = task or build_task(dev, protocol.task, protocol.loss)
    theta = dev.check_theta(theta)
    opt = RelativeAdam(dev, lr, scale)
    losses, thetas = [], []
    n_runs, energy = 0, 0.0
    for epoch in range(n_epochs + int(measure_final)):
        if on_begin is not None:
            on_begin(epoch, theta)
        # plausibility warnings once, on the first execution (they would repeat every epoch)
        first = epoch == 0
        try:
            res = run_protocol(
                instrument, protocol, task=task, theta=theta, on_step=on_step, check=first
            )
        except NumericalFault as fault:
            raise fault.during(f"epoch {epoch + 1} of in-situ training (lr = {lr:g})") from None
        # res.eps: the ε used (the calibrated number when the protocol says eps = "auto")
        est = estimate_gradient(res, dev, protocol.estimator, eps=res.eps, check=first)
        # before logging: a non-finite epoch is never recorded as a result
        check_training(epoch + 1, res.loss, {"θ": est.grad}, lr, what="epoch")
        thetas.append(res.theta.copy())
        losses.append(res.loss if res.loss is not None else np.nan)
        n_runs += res.cost.n_runs
        energy += res.cost.drive_energy
        if on_epoch is not None:
            on_epoch(epoch, res, est)
        if epoch == n_epochs:
            break  # the final measurement: no update
        theta = opt.step(res.theta, est.grad)
        check_training(epoch + 1, 0.0, {"updated θ": theta}, lr, what="epoch")
    return TrainingHistory(np.asarray(losses), np.asarray(thetas), n_runs, energy)


class RelativeAdam:
    """The one update rule of every θ learner of a device (in situ, and the offline twin):
    Adam (:func:`physim.optim.adam_update`) on z = θ / unit, the parameter in its own step unit.

    ``scale``: ``"relative"`` steps θ_i by ``lr · s_i`` times the Adam direction, s_i the step
    unit of :func:`physim.fidelity.step_units` (|θ0_i|; the rms of its group's nonzero nominal
    values where θ0_i = 0; 1 for a group that is all 0), because device parameters span many decades (farads next to
    inverse henries); ``"absolute"`` steps every θ_i by ``lr`` in its own unit; an array gives
    the unit per parameter.
    """

    def __init__(self, device: Device, lr: float, scale: str | np.ndarray = "relative"):
        theta0 = device.theta0
        if isinstance(scale, str):
            if scale not in ("relative", "absolute"):
                raise ValueError(f"scale must be 'relative', 'absolute' or an array, got {scale!r}")
            # the step units of the unit-free fidelity (physim.fidelity): |θ0|, the group's
            # rms where θ0 = 0, so a coupling at 0 F does not step by lr farads
            unit = step_units(device) if scale == "relative" else np.ones_like(theta0)
        else:
            unit = np.asarray(scale, dtype=np.float64)
            if unit.shape != theta0.shape or not np.all(np.isfinite(unit) & (unit > 0)):
                raise ValueError(
                    f"scale must hold {theta0.size} positive finite step units, got shape "
                    f"{unit.shape}"
                )
        self.lr = float(lr)
        self.unit = unit
        self.state = AdamState.zeros({"z": theta0})

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """θ after one update with the gradient ``grad`` measured at ``theta``."""
        z = {"z": theta / self.unit}
        adam_update(
            z,
            {"z": grad * self.unit},
            self.state,
            lr=self.lr,
            eps=ADAM_EPS_RELATIVE,
            eps_relative=True,
        )
        return z["z"] * self.unit
