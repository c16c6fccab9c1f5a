"""Figures of a run log: forward vs echo readouts, integrated ∂H/∂θ, gradient vs ideal twin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physim import logs


def plot_log(path: str | Path, out: str | Path | None = None, run: str | None = None) -> Path:
    """Write a PNG summarising one protocol execution of a log (default: the first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    out = Path(out) if out is not None else path.with_suffix(".png")
    with logs.open_log(path) as f:
        names = logs.runs(f)
        if not names:
            raise ValueError(f"{path}: the log holds no protocol execution")
        run = run or names[0]
        recs = logs.records(f, run)
        traj = {
            n: (g["time"][()], logs.read_value(g), g.attrs["meta"])
            for n, g in recs.items()
            if g.attrs["kind"] == "trajectory"
        }
        accs = {n: logs.read_value(g) for n, g in recs.items() if g.attrs["kind"] == "accumulator"}
        grad = logs.gradient(f, run)
        est = grad["estimate"][()] if grad is not None else None
        ideal = grad["ideal"][()] if grad is not None and "ideal" in grad else None
        train = {n: g["value"][()] for n, g in logs.training(f).items()}
        status = "complete" if f.attrs["complete"] else "INCOMPLETE"
    panels = 1 + bool(accs) + (est is not None) + bool(train)
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.6 * panels), squeeze=False)
    ax = iter(axes[:, 0])
    a = next(ax)
    for name, (t, v, meta) in traj.items():
        direction = json.loads(meta).get("direction", "forward")
        style = "-" if direction == "forward" else "--"
        for o in range(v.shape[-1]):
            a.plot(t, v[:, 0, 0, o], style, lw=1, label=f"{name} out {o} ({direction})")
    a.set_xlabel("time (s)")
    a.set_ylabel("readout")
    a.set_title(f"{path.name} · {run} · {status}")
    if traj:
        a.legend(fontsize=7, ncol=2)
    if accs:
        a = next(ax)
        width = 0.8 / max(1, len(accs))
        for j, (name, v) in enumerate(accs.items()):
            flat = v.reshape(-1, v.shape[-1]).sum(axis=0)
            a.bar(np.arange(flat.size) + j * width, flat, width=width, label=name)
        a.set_ylabel("integrated ∂H/∂w (× gain)")
        a.set_yscale("symlog", linthresh=1e-30)
        a.legend(fontsize=7)
    if est is not None:
        a = next(ax)
        idx = np.arange(est.size)
        a.plot(idx, est, "o", ms=4, label="measured")
        if ideal is not None:
            a.plot(idx, ideal, "x", ms=6, label="ideal twin")
        a.set_yscale(
            "symlog", linthresh=max(1e-300, float(np.min(np.abs(est[est != 0]), initial=1.0)))
        )
        a.set_xlabel("parameter index")
        a.set_ylabel("dL/dθ")
        a.legend(fontsize=7)
    if train:
        a = next(ax)
        for name, v in train.items():
            a.semilogy(v, label=name)
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
