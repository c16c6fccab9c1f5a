"""Figures. matplotlib is an optional dependency (``pip install 'physim[plots]'``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physim.device import Device


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'physim[plots]'") from None
    return plt


def plot_demo(
    path: Path,
    device: Device,
    n_steps: int,
    target: np.ndarray,
    output: int,
    before: dict,
    after: dict,
    losses: list[float],
) -> Path:
    """Forward and echo trajectories before/after training, and the loss per epoch."""
    plt = _pyplot()
    t = device.dt * np.arange(n_steps + 1)
    tu = device.units.get("t", "s")
    qu = device.units.get("q", "")
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), constrained_layout=True)
    for col, (label, rec) in enumerate((("before training", before), ("after training", after))):
        ax = axes[0, col]
        for i in range(device.n_dof):
            ax.plot(t, rec["forward_q"][:, 0, i], lw=1.6, label=f"q{i + 1} forward")
        ax.plot(t[1:], target, "k--", lw=1.2, label="target")
        ax.set_title(f"forward run, {label}")
        ax.set_xlabel(f"time ({tu})")
        ax.set_ylabel(f"position ({qu})")
        ax.legend(fontsize=8, loc="upper right")
        ax = axes[1, col] if col == 0 else None
        if ax is not None:
            # echoes run backwards in time: plot them against the forward time they retrace
            for i in range(device.n_dof):
                ax.plot(
                    t,
                    rec["forward_q"][:, 0, i],
                    color=f"C{i}",
                    lw=3,
                    alpha=0.3,
                    label=f"q{i + 1} forward",
                )
                ax.plot(
                    t[::-1],
                    rec["echo_plus_q"][:, 0, i],
                    color=f"C{i}",
                    lw=1,
                    ls="-",
                    label=f"q{i + 1} echo +ε",
                )
                ax.plot(
                    t[::-1],
                    rec["echo_minus_q"][:, 0, i],
                    color=f"C{i}",
                    lw=1,
                    ls=":",
                    label=f"q{i + 1} echo −ε",
                )
            ax.set_title("before training: the ±ε-nudged echoes retrace the forward run backwards")
            ax.set_xlabel(f"forward time retraced ({tu})")
            ax.set_ylabel(f"position ({qu})")
            ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax = axes[1, 1]
    ax.semilogy(np.arange(len(losses)), losses, "o-", ms=3)
    ax.set_title("in-situ RHEL training")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss")
    ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"physim demo: {device.name}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
