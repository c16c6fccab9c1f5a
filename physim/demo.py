"""``physim demo``: in-situ RHEL training of the two-mass device to follow its target.

The demo is an ordinary protocol session (:func:`physim.protocol.session.run_session`): the
catalogue protocol ``rhel-centred-traced`` (a forward run, a momentum flip and the ±ε echoes,
with the echo trajectories read out) runs on the ideal instrument through the protocol engine,
and the engine's in-situ training (:func:`physim.protocol.train.train_in_situ`, the shared Adam
of :mod:`physim.optim`) updates the spring constants after every measurement. Its log is an
ordinary run log (every tool reads it); the full forward states before and after training are
added for the figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from physim import jsonio, logs
from physim.instrument.specs import NonidealSpec
from physim.logsafe import check_writable
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol
from physim.simulate import simulate
from physim.specs import load_device

#: the catalogue protocol the demo runs: centred RHEL with the echoes read out for the figure
DEMO_PROTOCOL = "rhel-centred-traced"
#: echo readout every 10 steps (0.1 s, 100 samples per 10 s period) is smooth in the figure and
#: 10x fewer recorded states than every step; the forward run is read every step for the loss
ECHO_SAMPLE_EVERY = 10


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
    force: bool = False,
) -> DemoResult:
    """Train ``device_name`` in situ by RHEL on its built-in task; write a log, metrics and a
    figure into ``out`` (existing outputs are refused unless ``force``)."""
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
    if not 0 <= task.output < device.n_outputs:
        raise ValueError(
            f"task.output = {task.output} but the device has {device.n_outputs} outputs"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise logs.LogError(f"--out {out} is a file; the demo writes into a folder")
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(device=device.name, log=out / "demo.h5")
    paths = [res.log, out / "demo_metrics.json"] + ([out / "demo.png"] if plot else [])
    for p in paths:  # refuse before anything is written
        if p.suffix == ".h5":
            check_writable(p, force=force)
        elif p.exists() and not force:
            raise logs.LogError(f"{p} exists; pass --force to overwrite it, or another --out")
    proto = load_protocol(DEMO_PROTOCOL)
    steps = [
        st.model_copy(update={"every": ECHO_SAMPLE_EVERY})
        if st.op == "drive" and st.direction == "reverse" and st.measure
        else st
        for st in proto.steps
    ]
    proto = proto.model_copy(
        update={
            "eps": eps,
            "steps": steps,
            "task": proto.task.model_copy(update={"kind": "device", "batch": 1}),
        }
    )
    settings = {"epochs": epochs, "lr": lr, "eps": eps, "optimizer": "adam", "scale": "absolute"}
    # the bar counts the updates (epochs); the measurement after the last one is not an epoch
    bar = tqdm(
        total=epochs, desc=f"RHEL training {device.name}", unit="epoch", disable=not progress
    )
    every = max(1, epochs // 10)

    def on_epoch(epoch: int, loss: float) -> None:
        if epoch < epochs:
            bar.update(1)
        bar.set_postfix(loss=f"{loss:.3e}")
        if not progress:
            return
        if epoch == epochs:  # the measurement after the last update
            bar.write(f"trained     loss {loss:.4e}")
        elif (epoch + 1) % every == 0 or epoch == 0:
            bar.write(f"epoch {epoch + 1:4d}  loss {loss:.4e}")

    n_steps, _ = task.target(device.dt)
    u = np.zeros((n_steps, 1, device.n_inputs))

    def add_states(writer: logs.LogWriter, results) -> None:
        # full forward states (both masses) before and after training, through the simulator
        for when, r in (("before", results[0]), ("after", results[-1])):
            q = simulate(device, r.theta, u, record=True).q
            writer.write_array(
                f"forward_q_{when}",
                q,
                unit=device.units.get("q", "m"),
                dims=("state", "batch", "dof"),
            )

    try:
        sess = run_session(
            device,
            proto,
            NonidealSpec(name="ideal"),
            log=res.log,
            epochs=epochs,
            lr=lr,
            scale="absolute",
            measure_final=True,
            progress=on_epoch,
            finish=add_states,
            force=force,
            extra_provenance={"demo": json.dumps(settings)},
        )
    finally:
        bar.close()
    res.losses = [float(x) for x in sess.losses]
    res.theta_initial, res.theta_final = sess.results[0].theta, sess.results[-1].theta
    names = logs.parameter_axis(device).labels
    summary = {
        "device": device.name,
        "protocol": DEMO_PROTOCOL,
        "epochs": epochs,
        "lr": lr,
        "eps": eps,
        "loss_unit": logs.loss_unit(device),
        "loss_initial": res.losses[0],
        "loss_final": res.losses[-1],
        "loss_per_epoch": res.losses,
        "theta_initial": dict(zip(names, res.theta_initial.tolist(), strict=True)),
        "theta_final": dict(zip(names, res.theta_final.tolist(), strict=True)),
    }
    res.metrics = out / "demo_metrics.json"
    res.metrics.write_text(jsonio.dumps(summary, indent=2))
    if plot:
        from physim.plots import plot_demo

        res.png = plot_demo(out / "demo.png", res.log)
    return res
