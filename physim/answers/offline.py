"""In-situ vs offline training of a mismatched chip.

* **offline**: train the *nominal* digital twin by BPTT (float64, lossless, ideal converters),
  then program the learned θ into each chip as built through its parameter DAC;
* **in situ**: train each chip by RHEL on the chip itself
  (:func:`physim.protocol.train.train_in_situ`).

Both routes use the same update rule (:class:`~physim.protocol.train.RelativeAdam`), the same
number of gradient steps and learning rate, and are scored by the same measurement: the loss of
the measured forward run of the protocol on the chip at the final θ.
"""

from __future__ import annotations

import functools

import numpy as np

from physim.bptt import bptt_gradient
from physim.device import Device
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec
from physim.protocol.engine import run_protocol
from physim.protocol.specs import ProtocolSpec, protocol_from_json
from physim.protocol.task import Task, build_task
from physim.protocol.train import RelativeAdam, train_in_situ
from physim.specs import spec_from_json
from physim.study.measures.offline_vs_insitu import OFFLINE_METRICS

__all__ = ["OFFLINE_METRICS", "offline_vs_insitu", "summarise", "train_twin"]


def train_twin(device: Device, task: Task, *, n_epochs: int, lr: float) -> tuple[np.ndarray, float]:
    """θ after ``n_epochs`` BPTT steps on the nominal twin, and the twin's loss there."""
    opt = RelativeAdam(device, lr)
    theta = device.theta0.copy()
    for _ in range(n_epochs):
        g = bptt_gradient(device, theta, task.u, task.target, loss=task.loss)
        theta = opt.step(theta, g.grad)
    final = bptt_gradient(device, theta, task.u, task.target, loss=task.loss)
    return theta, float(final.loss)


@functools.lru_cache(maxsize=16)
def _twin(device_json: str, protocol_json: str, n_epochs: int, lr: float):
    # the offline θ depends on neither chip nor replicate: one training per worker
    device = spec_from_json(device_json).build()
    protocol = protocol_from_json(protocol_json)
    task = build_task(device, protocol.task, protocol.loss)
    theta, loss = train_twin(device, task, n_epochs=n_epochs, lr=lr)
    theta.setflags(write=False)
    return theta, loss


def chip_loss(instrument: Instrument, protocol: ProtocolSpec, task: Task, theta) -> float:
    """The loss measured on the chip at ``theta`` (written through its DAC)."""
    return float(run_protocol(instrument, protocol, task=task, theta=theta).loss)


def offline_vs_insitu(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    *,
    seed: int = 0,
    epochs: int = 60,
    lr: float = 2e-2,
) -> dict[str, float]:
    """Both routes on one chip (``nonideal`` with its seeds is the chip); see module docstring."""
    task = build_task(device, protocol.task, protocol.loss)
    theta_off, loss_twin = _twin(
        device.spec.model_dump_json(), protocol.model_dump_json(), int(epochs), float(lr)
    )
    chip = Instrument(device, nonideal, seed=seed)
    loss0 = chip_loss(chip, protocol, task, device.theta0)
    loss_off = chip_loss(chip, protocol, task, theta_off)
    # the same chip (same fabrication draw), trained on itself; epoch n + 1 measures θ_n
    hist = train_in_situ(
        Instrument(device, nonideal, seed=seed), protocol, n_epochs=epochs + 1, lr=lr, task=task
    )
    loss_in = float(hist.losses[-1])
    return {
        "loss_initial": loss0,
        "loss_offline": loss_off,
        "loss_insitu": loss_in,
        "loss_twin": loss_twin,
        "offline_over_insitu": loss_off / loss_in if loss_in > 0 else float("inf"),
    }


def summarise(ds) -> list[dict]:
    """Median and min–max over replicates of both routes' final loss, per mismatch σ, from a
    finished ``offline_vs_insitu`` study (an ``xarray.Dataset`` with a ``sigma`` dimension)."""
    rows = []
    for s in ds["sigma"].values:
        row = {"sigma": float(s)}
        for k in ("loss_initial", "loss_offline", "loss_insitu", "offline_over_insitu"):
            v = ds[k].sel(sigma=s).values.astype(float)
            v = v[np.isfinite(v)]
            row[k] = [float(np.median(v)), float(np.min(v)), float(np.max(v))] if v.size else None
        rows.append(row)
    return rows


def format_summary(name: str, rows: list[dict]) -> str:
    lines = [
        f"{name}: final loss on the chip, median [min, max] over replicates",
        f"{'sigma':>7}  {'offline (twin BPTT)':<32}{'in situ (RHEL)':<32}offline/in situ",
    ]

    def f(x):
        return f"{x[0]:.3g} [{x[1]:.3g}, {x[2]:.3g}]" if x else "-"

    for r in rows:
        lines.append(
            f"{r['sigma']:7.3g}  {f(r['loss_offline']):<32}{f(r['loss_insitu']):<32}"
            f"{f(r['offline_over_insitu'])}"
        )
    return "\n".join(lines)


def plot_routes(datasets: dict, path) -> str:
    """One panel per study: final loss of both routes vs σ (median, min–max band)."""
    from physim.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4), squeeze=False)
    for ax, (name, ds) in zip(axes[0], datasets.items(), strict=True):
        rows = summarise(ds)
        # σ = 0 sits at the left edge of a log axis: plot it at a tenth of the smallest σ > 0
        pos = [r["sigma"] for r in rows if r["sigma"] > 0]
        x = np.array([r["sigma"] if r["sigma"] > 0 else min(pos) / 10 for r in rows])
        for key, label, color in (
            ("loss_offline", "offline: twin BPTT, θ programmed", "C3"),
            ("loss_insitu", "in situ: RHEL on the chip", "C0"),
        ):
            med = np.array([r[key][0] for r in rows])
            lo = np.array([r[key][1] for r in rows])
            hi = np.array([r[key][2] for r in rows])
            ax.plot(x, med, "o-", color=color, label=label)
            ax.fill_between(x, lo, hi, color=color, alpha=0.2)
        ax.plot(x, [r["loss_initial"][0] for r in rows], "k:", label="untrained chip")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [f"{r['sigma']:g}" for r in rows])
        ax.set_xlabel("element mismatch σ (relative std)")
        ax.set_ylabel("final loss measured on the chip")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
