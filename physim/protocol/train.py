"""Training through the instrument: measure a gradient, update θ, program it, repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from physim.device import Device
from physim.instrument.hardware import Instrument
from physim.protocol.engine import OnStep, run_protocol
from physim.protocol.estimate import GradientEstimate, estimate_gradient
from physim.protocol.records import ProtocolResult
from physim.protocol.specs import ProtocolSpec
from physim.protocol.task import Task, build_task

OnEpoch = Callable[[int, ProtocolResult, GradientEstimate], None]


@dataclass(frozen=True)
class TrainingHistory:
    """Loss measured at each epoch (before its update) and θ as written through the DAC."""

    losses: np.ndarray
    thetas: np.ndarray
    n_runs: int
    drive_energy: float


def train_in_situ(
    instrument: Instrument,
    protocol: ProtocolSpec,
    *,
    n_epochs: int,
    lr: float = 1e-2,
    task: Task | None = None,
    theta: np.ndarray | None = None,
    on_epoch: OnEpoch | None = None,
    on_begin: Callable[[int, np.ndarray], None] | None = None,
    on_step: OnStep | None = None,
) -> TrainingHistory:
    """Adam on the measured gradient, with steps relative to each parameter's initial size.

    Device parameters span many decades (farads next to inverse henries), so the update of
    θ_i is ``lr · |θ0_i|`` times the Adam direction (``lr`` absolute where θ0_i = 0); the
    new θ is programmed through the parameter DAC, so a step smaller than an LSB is lost as it
    would be on the chip. ``on_begin(epoch, theta)`` runs before each execution, ``on_step``
    is passed to :func:`~physim.protocol.engine.run_protocol` and ``on_epoch(epoch, result,
    estimate)`` runs after each gradient measurement (logging hooks).
    """
    dev = instrument.device
    if protocol.estimator.kind != "sum":
        raise ValueError(
            f"protocol {protocol.name!r} measures no gradient; train with an "
            "RHEL protocol such as rhel-centred-rerun"
        )
    task = task or build_task(dev, protocol.task, protocol.loss)
    theta = dev.check_theta(theta)
    opt = RelativeAdam(dev, lr)
    losses, thetas = [], []
    n_runs, energy = 0, 0.0
    for epoch in range(n_epochs):
        if on_begin is not None:
            on_begin(epoch, theta)
        res = run_protocol(instrument, protocol, task=task, theta=theta, on_step=on_step)
        est = estimate_gradient(res, dev, protocol.estimator)
        thetas.append(res.theta.copy())
        losses.append(res.loss if res.loss is not None else np.nan)
        n_runs += res.cost.n_runs
        energy += res.cost.drive_energy
        if on_epoch is not None:
            on_epoch(epoch, res, est)
        theta = opt.step(res.theta, est.grad)
    return TrainingHistory(np.asarray(losses), np.asarray(thetas), n_runs, energy)


class RelativeAdam:
    """Adam with steps relative to each parameter's initial size (see :func:`train_in_situ`);
    the one update rule of every θ learner of a device (in situ, and the offline twin)."""

    def __init__(self, device: Device, lr: float):
        self.lr = float(lr)
        self.scale = np.where(device.theta0 != 0, np.abs(device.theta0), 1.0)
        self.m = np.zeros_like(device.theta0)
        self.v = np.zeros_like(device.theta0)
        self.n = 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """θ after one update with the gradient ``grad`` measured at ``theta``."""
        b1, b2, tiny = 0.9, 0.999, 1e-12
        self.n += 1
        g = grad * self.scale  # gradient w.r.t. the relative parameter θ/|θ0|
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g**2
        mh = self.m / (1 - b1**self.n)
        vh = self.v / (1 - b2**self.n)
        return theta - self.lr * self.scale * mh / (
            np.sqrt(vh) + tiny * np.max(np.sqrt(vh)) + 1e-300
        )
