"""In-situ vs offline training of a mismatched chip: the table and figure of finished
``offline_vs_insitu`` studies (``physim routes``). The measure itself, both routes on one chip,
is :mod:`physim.study.offline`.
"""

from __future__ import annotations

import numpy as np

from physim.study.measures.offline_vs_insitu import OFFLINE_METRICS
from physim.study.offline import offline_vs_insitu

__all__ = ["OFFLINE_METRICS", "format_summary", "offline_vs_insitu", "plot_routes", "summarise"]


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
