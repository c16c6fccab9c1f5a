"""``physim demo``: in-situ RHEL training of the two-mass device to follow its target.

Each epoch is one RHEL measurement on the simulated device (a forward run, a momentum flip and
the ±ε echoes) followed by an Adam update of the spring constants. The demo records the forward
and echo trajectories before and after training for the figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from physim import jsonio
from physim.device import Device
from physim.gradients import error_bound, error_signal
from physim.kernels.leapfrog import forward_chunk
from physim.logs import LogWriter
from physim.losses import MSELoss
from physim.optim import AdamState, adam_update
from physim.protocol.session import make_provenance
from physim.rhel import nudge_factor, rhel_gradient
from physim.simulate import as_inputs, drive, simulate
from physim.specs import load_device

_EMPTY3 = np.zeros((0, 1, 1))
#: Adam's denominator floor; far below the demo's gradient scale (~1e-3)
ADAM_EPS = 1e-12


def record_echoes(
    device: Device, theta: np.ndarray, u: np.ndarray, eps: float, target: np.ndarray
) -> dict:
    """Forward run and both nudged echoes with every state recorded (for plotting).

    Uses the shared integrator one step at a time, so the recorded echoes are the very
    trajectories :func:`physim.rhel_gradient` integrates over.
    """
    loss = MSELoss()
    fwd = simulate(device, theta, u, record=True)
    dLdy = loss.error(fwd.y, target)
    phys = device.physical(theta)
    K = u.shape[0]
    beta = nudge_factor(eps, True, fwd.p_final, error_bound(device, dLdy) or 1.0)
    echoes = {}
    for sign in (+1.0, -1.0):
        q = fwd.q_final.copy()
        p = -fwd.p_final + sign * beta * error_signal(device, dLdy, K, K + 1)[0]
        qs = np.empty((K + 1,) + q.shape)
        qs[0] = q
        for j in range(1, K + 1):
            k = K - j
            S = drive(u, phys.B, k, k + 1)
            forward_chunk(
                device.family, phys.prm, device.dt, device.n_work, q, p, S, _EMPTY3, _EMPTY3
            )
            p += sign * beta * error_signal(device, dLdy, k, k + 1)[0]
            qs[j] = q
        echoes[sign] = qs
    return {
        "forward_q": fwd.q,
        "y": fwd.y,
        "echo_plus_q": echoes[1.0],
        "echo_minus_q": echoes[-1.0],
        "kick": beta,
    }


def _log_echoes(log: LogWriter, when: str, rec: dict, unit: str) -> None:
    for key in ("forward_q", "echo_plus_q", "echo_minus_q"):
        log.write_array(f"{key}_{when}", rec[key], unit=unit)


@dataclass
class DemoResult:
    device: str
    losses: list[float] = field(default_factory=list)
    theta_initial: np.ndarray | None = None
    theta_final: np.ndarray | None = None
    png: Path | None = None
    metrics: Path | None = None
    log: Path | None = None


def run_demo(
    device_name: str = "two-mass",
    *,
    epochs: int = 100,
    lr: float = 0.02,
    eps: float = 1e-3,
    out: Path = Path("physim-out"),
    plot: bool = True,
    progress: bool = True,
) -> DemoResult:
    """Train ``device_name`` in situ by RHEL on its built-in task; write metrics and a figure."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    device = load_device(device_name)
    task = getattr(device.spec, "task", None)
    if task is None:
        raise ValueError(
            f"device {device.name!r} has no [task] table; the demo needs a target to follow"
        )
    n_steps, tgt = task.target(device.dt)
    if not 0 <= task.output < device.n_outputs:
        raise ValueError(
            f"task.output = {task.output} but the device has {device.n_outputs} outputs"
        )
    u = as_inputs(
        device,
        None if device.n_inputs == 0 else np.zeros((n_steps, 1, device.n_inputs)),
        n_steps,
        1,
    )
    base = simulate(device, None, u).y
    target = base.copy()
    target[:, 0, task.output] = tgt

    theta = device.theta0.copy()
    params = {"theta": theta}
    opt = AdamState.zeros(params)
    res = DemoResult(device=device.name, theta_initial=theta.copy(), log=out / "demo.h5")
    out.mkdir(parents=True, exist_ok=True)
    settings = {"epochs": epochs, "lr": lr, "eps": eps, "optimizer": "adam"}
    prov = make_provenance(device, extra={"demo": json.dumps(settings)})
    qunit = device.units.get("q", "")
    # appended epoch by epoch: an interrupted demo leaves every finished epoch readable
    with LogWriter(res.log, provenance=prov) as log:
        log.write_array("target", tgt, unit=device.units.get("y", ""))
        before = record_echoes(device, theta, u, eps, target)
        _log_echoes(log, "before", before, qunit)
        bar = tqdm(
            range(1, epochs + 1),
            desc=f"RHEL training {device.name}",
            unit="epoch",
            disable=not progress,
        )
        every = max(1, epochs // 10)
        for epoch in bar:
            g = rhel_gradient(device, theta, u, target, eps=eps)
            res.losses.append(g.loss)
            log.append("loss", epoch - 1, float(epoch - 1), g.loss)
            log.append("theta", epoch - 1, float(epoch - 1), theta)
            log.append("gradient", epoch - 1, float(epoch - 1), g.grad)
            adam_update(params, {"theta": g.grad}, opt, lr=lr, eps=ADAM_EPS)
            theta = params["theta"]
            bar.set_postfix(loss=f"{g.loss:.3e}")
            if progress and (epoch % every == 0 or epoch == 1):
                bar.write(f"epoch {epoch:4d}  loss {g.loss:.4e}")
        res.losses.append(MSELoss().value(simulate(device, theta, u).y, target))
        log.append("loss", epochs, float(epochs), res.losses[-1])
        log.append("theta", epochs, float(epochs), theta)
        res.theta_final = theta
        after = record_echoes(device, theta, u, eps, target)
        _log_echoes(log, "after", after, qunit)
    names = [f"{g.name}[{i}]" for g in device.groups for i in range(g.size)]
    summary = {
        "device": device.name,
        "epochs": epochs,
        "lr": lr,
        "eps": eps,
        "loss_initial": res.losses[0],
        "loss_final": res.losses[-1],
        "loss_per_epoch": res.losses,
        "theta_initial": dict(zip(names, res.theta_initial.tolist(), strict=True)),
        "theta_final": dict(zip(names, theta.tolist(), strict=True)),
    }
    res.metrics = out / "demo_metrics.json"
    res.metrics.write_text(jsonio.dumps(summary, indent=2))
    if plot:
        from physim.plots import plot_demo

        res.png = plot_demo(
            out / "demo.png", device, u.shape[0], tgt, task.output, before, after, res.losses
        )
    return res
