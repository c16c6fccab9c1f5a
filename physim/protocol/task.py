"""The data a protocol runs on: inputs ``u``, a loss and its target."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim import memory
from physim.device import Device
from physim.losses import FinalLoss, Loss, MSELoss
from physim.protocol.specs import TaskSpec
from physim.simulate import as_inputs, simulate


@dataclass(frozen=True)
class Task:
    """Inputs (n_steps, batch, n_inputs), loss, and target (shape the loss expects)."""

    u: np.ndarray
    target: np.ndarray
    loss: Loss

    @property
    def n_steps(self) -> int:
        return int(self.u.shape[0])

    @property
    def batch(self) -> int:
        return int(self.u.shape[1])


def smooth_inputs(
    n_steps: int, batch: int, n_inputs: int, std: float, smoothing: int, rng: np.random.Generator
) -> np.ndarray:
    """White noise averaged over ``smoothing`` steps, scaled to rms ``std``."""
    white = rng.standard_normal((n_steps + smoothing - 1, batch, n_inputs))
    c = np.cumsum(white, axis=0)
    c = np.concatenate([np.zeros((1, batch, n_inputs)), c], axis=0)
    u = (c[smoothing:] - c[:-smoothing]) / smoothing
    rms = float(np.sqrt(np.mean(u**2))) if u.size else 1.0
    return np.ascontiguousarray(u * (std / rms if rms > 0 else 1.0))


def build_task(device: Device, spec: TaskSpec, loss_name: str = "mse") -> Task:
    """Materialise a task spec for a device (deterministic in ``spec.seed``)."""
    loss: Loss = FinalLoss() if loss_name == "final" else MSELoss()
    sin = getattr(device.spec, "task", None) if spec.kind == "device" else None
    n = sin.n_steps(device.dt) if sin is not None else spec.n_steps
    # inputs with their smoothing temporaries (three copies), the target and a readout
    memory.check(
        3 * memory.floats((n + spec.smoothing, spec.batch, device.n_inputs))
        + 2 * memory.floats((n, spec.batch, device.n_outputs)),
        f"the task of {n} steps × batch {spec.batch} on device {device.name!r}",
        "lower the task's n_steps (or --steps) or batch",
    )
    if spec.kind == "device":
        sin = getattr(device.spec, "task", None)
        if sin is None:
            raise ValueError(
                f"task.kind = 'device' but device {device.name!r} has no built-in [task]; use "
                "kind = 'teacher'"
            )
        n_steps, tgt = sin.target(device.dt)
        u = as_inputs(
            device,
            None if device.n_inputs == 0 else np.zeros((n_steps, spec.batch, device.n_inputs)),
            n_steps,
            spec.batch,
        )
        y = np.zeros((n_steps, spec.batch, device.n_outputs))
        y[:, :, sin.output] = tgt[:, None]
        return Task(u, y if loss_name == "mse" else y[-1], loss)
    rng = np.random.default_rng(spec.seed)
    u = smooth_inputs(
        spec.n_steps, spec.batch, device.n_inputs, spec.input_std, spec.smoothing, rng
    )
    theta_t = device.theta0 * (1.0 + spec.teacher_spread * rng.standard_normal(device.n_params))
    y = simulate(device, theta_t, u, n_steps=spec.n_steps, batch=spec.batch).y
    return Task(u, y if loss_name == "mse" else np.ascontiguousarray(y[-1]), loss)
