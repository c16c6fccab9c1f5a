"""Plots of an HSSM training log (matplotlib imported lazily, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physim.logs import read_training


def _title(log: dict) -> str:
    cfg = json.loads(log["attrs"].get("train_config", "{}"))
    model = cfg.get("model", {})
    return (
        f"HSSM {model.get('model', '?')} ({model.get('n_blocks', '?')} blocks, H = "
        f"{model.get('hidden', '?')}, P = {model.get('ssm_dim', '?')}) on {cfg.get('data', '?')}"
        f" · trained by {str(cfg.get('algo', '?')).upper()} · ideal digital cores"
        f"{' · float32 activations' if model.get('precision') == 'float32' else ''}"
        f"{'' if log['attrs'].get('complete') else ' · INCOMPLETE log'}"
    )


def plot_training(log_path: str | Path, png_path: str | Path, metrics: dict | None = None) -> Path:
    """Training loss, gradient norm, and train / validation / test metric against the step,
    with the chance (or predict-the-mean) baseline; works on an incomplete log too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    log = read_training(log_path)
    metric = log["attrs"].get("metric", "metric")
    metrics = metrics or {}
    tr, gn = log.get("loss"), log.get("grad_norm")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.0))
    if tr is not None and tr["step"].size:
        axes[0].plot(tr["step"], tr["value"], lw=0.8, label="train (batch)")
        if "val_loss" in log:
            axes[0].plot(
                log["val_loss"]["step"], log["val_loss"]["value"], "o-", ms=3, label="validation"
            )
        axes[0].set_yscale("log" if np.all(tr["value"] > 0) else "linear")
        axes[0].legend(fontsize=8)
    axes[0].set(xlabel="training step", ylabel="loss (1)", title="loss")
    if gn is not None and gn["step"].size:
        axes[1].plot(gn["step"], np.maximum(gn["value"], 1e-300), lw=0.8)
        axes[1].set_yscale("log")
    axes[1].set(
        xlabel="training step", ylabel="gradient norm before clipping (1)", title="gradient norm"
    )
    a = axes[2]
    if metric in log and log[metric]["step"].size:
        a.plot(log[metric]["step"], log[metric]["value"], lw=0.5, alpha=0.5, label="train (batch)")
    if f"val_{metric}" in log:
        v = log[f"val_{metric}"]
        a.plot(v["step"], v["value"], "o-", ms=3, label="validation")
    if f"test_{metric}" in metrics:
        a.axhline(
            metrics[f"test_{metric}"],
            color="C3",
            lw=1.2,
            label=f"test (best step {metrics.get('best_step', '?')}): "
            f"{metrics[f'test_{metric}']:.3g}",
        )
    if "baseline" in metrics:
        what = "chance (majority class)" if metric == "accuracy" else "predict the mean"
        a.axhline(
            metrics["baseline"],
            color="k",
            ls="--",
            lw=1,
            label=f"{what}: {metrics['baseline']:.3g}",
        )
    # an error spans decades as it falls; an accuracy lives in [0, 1]
    a.set(
        xlabel="training step",
        ylabel=f"{metric} (1)",
        title=metric,
        yscale="log" if metric == "mse" else "linear",
    )
    a.legend(fontsize=8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(_title(log), fontsize=10)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
