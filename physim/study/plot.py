"""``physim sweep plot``: one axis → mean ± std band over replicates (geometric mean and a
× / ÷ geometric-std band for a measure's ``log_metrics``); two → heatmap with a contour at a
threshold; more → facets of heatmaps over the extra axes; sampled → scatter."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np

from physim.study.measures import MEASURES
from physim.study.store import RESULTS_NC


def plot_defaults(measure: str) -> tuple[str, dict[str, float]]:
    """(default metric, metric → threshold) of a measure kind, from the measure registry."""
    kind = MEASURES.get(measure)
    return kind.plot_metric, dict(kind.thresholds)


# a cosine near 1 is read as its distance from 1 on a log scale (0.99 vs 0.9999 matters);
# distances below this are drawn at it (round-off of a perfect gradient)
COSINE_FLOOR = 1e-16
#: characters per line of a y label (a variable's long name is a sentence)
YLABEL_WIDTH = 45


def _label(da) -> str:
    name = da.attrs.get("long_name", da.name)
    u = da.attrs.get("units", "")
    return f"{name} ({u})" if u and u != "1" else str(name)


def _short(ds, dim) -> str:
    u = ds[dim].attrs.get("units", "")
    ln = ds[dim].attrs.get("long_name", dim).removesuffix("(1)").strip()
    name = dim if ln in ("", dim) else f"{dim}: {ln}"
    return f"{name} ({u})" if u and u != "1" else name


def _transform(da):
    """(values to draw, flipped?): 1 − cosine for cosine metrics (drawn on a log axis)."""
    if str(da.name).startswith("cosine"):
        out = (1.0 - da).clip(min=COSINE_FLOOR)
        out.attrs.update(da.attrs, long_name="1 − " + da.attrs.get("long_name", da.name))
        return out, True
    return da, False


def _scale(ax, ds, dim, which: str) -> None:
    if ds[dim].attrs.get("scale") == "log":
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")


def _edges(values, log: bool) -> np.ndarray:
    """Cell edges around each coordinate: midpoints, in log space along a log axis."""
    v = np.log10(values) if log else np.asarray(values, dtype=float)
    if v.size == 1:
        e = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        mid = (v[1:] + v[:-1]) / 2
        e = np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
    return 10**e if log else e


def _contour(ax, ds, xd, yd, z, level) -> None:
    """The contour ``z = level``, interpolated in log coordinates along log-scaled axes."""
    import contourpy

    logx, logy = (ds[d].attrs.get("scale") == "log" for d in (xd, yd))
    x = np.log10(ds[xd].values) if logx else ds[xd].values.astype(float)
    y = np.log10(ds[yd].values) if logy else ds[yd].values.astype(float)
    zz = np.log10(z) if ax.get_label() == "logz" else z
    lv = np.log10(level) if ax.get_label() == "logz" else level
    for seg in contourpy.contour_generator(x, y, np.ma.masked_invalid(zz)).lines(lv):
        sx = 10 ** seg[:, 0] if logx else seg[:, 0]
        sy = 10 ** seg[:, 1] if logy else seg[:, 1]
        ax.plot(sx, sy, "k-", lw=1.5)


def _heatmap(ax, ds, mean, xd, yd, vmin, vmax, threshold, cmap, norm=None):
    z = mean.transpose(yd, xd).values
    xe, ye = (_edges(ds[d].values, ds[d].attrs.get("scale") == "log") for d in (xd, yd))
    m = ax.pcolormesh(
        xe,
        ye,
        z,
        shading="flat",
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        norm=norm,
    )
    if threshold is not None and min(z.shape) >= 2 and np.nanmin(z) < threshold < np.nanmax(z):
        _contour(ax, ds, xd, yd, z, threshold)
    _scale(ax, ds, xd, "x")
    _scale(ax, ds, yd, "y")
    ax.set_xlabel(_short(ds, xd))
    ax.set_ylabel(_short(ds, yd))
    return m


def plot_study(
    out_dir: str | Path,
    *,
    metric: str | None = None,
    threshold: float | None = None,
    out: str | Path | None = None,
) -> Path:
    """Plot ``metric`` of a finished study folder; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    path = Path(out_dir) / RESULTS_NC
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist yet; finish the study with physim sweep run"
        )
    ds = xr.open_dataset(path, engine="h5netcdf").load()
    measure = ds.attrs.get("measure", "gradient")
    default, thresholds = plot_defaults(measure)
    kind = MEASURES.get(measure)
    metric = metric or default
    # only numbers can be drawn: `error` (the failure messages) is listed by sweep status
    numeric = [v for v in ds.data_vars if ds[v].dtype.kind in "fiub"]
    if metric not in numeric:
        hint = (
            "; the failure messages are listed by physim sweep status DIR"
            if metric == "error"
            else ""
        )
        raise KeyError(
            f"no numeric metric {metric!r} in {path}; choose one of {', '.join(numeric)}{hint}"
        )
    if threshold is None:
        threshold = thresholds.get(metric)
    raw = ds[metric]
    da, flipped = _transform(raw)
    # a log axis for 1 − cosine, and for the metrics the measure draws on one (ratios over decades)
    logy = flipped or metric in kind.log_metrics
    if flipped and threshold is not None:
        threshold = 1.0 - threshold
    # a metric on a log axis is averaged on it: geometric mean, band × / ÷ one geometric std
    geometric = logy and not flipped
    if geometric:
        logs = np.log10(da)
        mean, spread = 10 ** logs.mean("replicate"), 10 ** logs.std("replicate")
        lower, upper = mean / spread, mean * spread
    else:
        mean, std = da.mean("replicate"), da.std("replicate")
        lower, upper = mean - std, mean + std
    avg = "geometric mean" if geometric else "mean"
    nrep = ds.sizes["replicate"]
    dims = [d for d in da.dims if d != "replicate"]
    title = f"{ds.attrs.get('title', 'study')}\n{_label(da)}"
    u = da.attrs.get("units", "")
    # the variable's long name, not its raw name (`loss_ratio`)
    ylabel = f"{'1 − ' if flipped else ''}{raw.attrs.get('long_name', metric)}" + (
        f" ({u})" if u and u != "1" else ""
    )
    ylabel = textwrap.fill(ylabel, YLABEL_WIDTH)
    if int(ds.failed.sum()):
        title += f" ({int(ds.failed.sum())} failed points left blank)"
    if dims == ["point"]:
        axes_names = [c for c in ds.coords if ds[c].dims == ("point",) and c != "point"]
        fig, axs = plt.subplots(
            1,
            len(axes_names),
            figsize=(4.5 * len(axes_names), 3.8),
            squeeze=False,
            layout="constrained",
        )
        for ax, c in zip(axs[0], axes_names, strict=True):
            for r in range(nrep):
                ax.plot(
                    ds[c].values,
                    da.isel(replicate=r).values,
                    "o",
                    ms=4,
                    alpha=0.7,
                    label=f"chip {r}" if nrep > 1 else None,
                )
            _scale(ax, ds, c, "x")
            ax.set_xlabel(_short(ds, c))
            ax.set_ylabel(ylabel)
            if logy:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        if nrep > 1:
            axs[0][0].legend(fontsize=8)
    elif len(dims) <= 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        if dims:
            x = ds[dims[0]].values
            ax.plot(x, mean.values, "o-", label=f"{avg} over {nrep} chips")
            if nrep > 1:
                lo, hi = lower.values, upper.values
                # a band past what a value can be says nothing
                if not flipped and metric in kind.bounds:
                    low, high = kind.bounds[metric]
                    lo, hi = np.maximum(lo, low), np.minimum(hi, high)
                band = "× / ÷ 1 geometric std" if geometric else "± 1 std"
                ax.fill_between(x, lo, hi, alpha=0.3, label=band)
            _scale(ax, ds, dims[0], "x")
            ax.set_xlabel(_short(ds, dims[0]))
        else:
            m = mean.values.ravel()
            yerr = [m - lower.values.ravel(), upper.values.ravel() - m]
            ax.errorbar([0], m, yerr=yerr, fmt="o")
        if threshold is not None:
            # the note reads on the metric itself (a good gradient above cosine = 0.99), then
            # where the line sits on a flipped axis
            note = kind.threshold_notes.get(metric, "threshold at")
            shown = f"{note} {metric} = {1.0 - threshold if flipped else threshold:g}"
            shown += f" (1 − {metric} = {threshold:g})" if flipped else ""
            ax.axhline(threshold, color="k", ls=":", lw=1, label=shown)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    else:
        xd, yd, rest = dims[0], dims[1], dims[2:]
        combos = list(itertools.product(*(range(ds.sizes[d]) for d in rest))) or [()]
        ncol = min(4, len(combos))
        nrow = -(-len(combos) // ncol)
        fig, axs = plt.subplots(
            nrow,
            ncol,
            figsize=(4.2 * ncol + 1.5, 3.6 * nrow + 0.6),
            squeeze=False,
            layout="constrained",
        )
        vmin, vmax = float(np.nanmin(mean.values)), float(np.nanmax(mean.values))
        norm = None
        if logy:
            from matplotlib.colors import LogNorm

            norm, vmin, vmax = LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10)), None, None
        cmap = "viridis_r" if flipped else "viridis"
        m = None
        for k, idx in enumerate(combos):
            ax = axs[k // ncol][k % ncol]
            sel = mean.isel(dict(zip(rest, idx, strict=True)))
            ax.set_label("logz" if logy else "")
            m = _heatmap(ax, ds, sel, xd, yd, vmin, vmax, threshold, cmap, norm)
            if rest:
                ax.set_title(
                    ", ".join(
                        f"{d} = {ds[d].values[i]:g} {ds[d].attrs.get('units', '')}".replace(
                            " 1", ""
                        )
                        for d, i in zip(rest, idx, strict=True)
                    ),
                    fontsize=9,
                )
        for k in range(len(combos), nrow * ncol):
            axs[k // ncol][k % ncol].set_visible(False)
        cb = fig.colorbar(m, ax=axs, shrink=0.9)
        cb.set_label(f"{'1 − ' if flipped else ''}{metric}, {avg} of {nrep} chips")
        if threshold is not None:
            cb.ax.axhline(threshold, color="k", lw=1)
            title += f"\nblack line: contour at {'1 − ' if flipped else ''}{metric} = {threshold:g}"
    fig.suptitle("\n".join(textwrap.fill(t, 80) for t in title.split("\n")), fontsize=10)
    target = Path(out) if out is not None else Path(out_dir) / f"{metric}.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
