"""Plots of an HSSM training log (matplotlib imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physim.hssm.trainlog import read_log


def plot_training(log_path: str | Path, png_path: str | Path) -> Path:
    """Training loss, gradient norm and validation metric against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(log_path)
    tr, ev = log["train"], log["eval"]
    metric = str(log["attrs"].get("metric", "metric"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(tr["step"], tr["loss"], lw=0.8)
    axes[0].set(xlabel="step", ylabel="training loss", yscale="log")
    axes[1].plot(tr["step"], np.maximum(tr["grad_norm"], 1e-300), lw=0.8)
    axes[1].set(xlabel="step", ylabel="gradient norm (before clipping)", yscale="log")
    axes[2].plot(tr["step"], tr["metric"], lw=0.5, alpha=0.5, label="train (batch)")
    axes[2].plot(ev["step"], ev["val_metric"], "o-", ms=3, label="validation")
    # an error spans decades as it falls; an accuracy lives in [0, 1]
    axes[2].set(xlabel="step", ylabel=metric, yscale="log" if metric == "mse" else "linear")
    axes[2].legend()
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
