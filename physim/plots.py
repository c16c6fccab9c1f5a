"""Figures a reader understands without the code; matplotlib is optional (``physim[plots]``).

Shared conventions (also used by :mod:`physim.tools.logplot` and :mod:`physim.hssm.plots`):
a title naming device, protocol, non-ideality and algorithm; units on every axis; parameters
named (and grouped) on the x axis; linear or log axes chosen from the data; a gradient whose
cosine to the ideal twin is below :data:`COSINE_FLAG` flagged in the figure and the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from physim import logs
from physim.fidelity import GROUP_SHARE, judge

#: a measured gradient whose cosine to the ideal twin is below this is flagged as wrong: at
#: 0.9 a descent step still points within 26° of the true one, below it learning degrades
COSINE_FLAG = 0.9
#: use a log axis when the nonzero |values| span more than this many decades
LOG_DECADES = 3.0


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'physim[plots]'") from None
    return plt


def title_for(prov: dict[str, str], algorithm: str = "RHEL (in situ)") -> str:
    """``device · protocol · non-ideality · algorithm`` from a log's provenance."""

    def name(key: str, default: str) -> str:
        return json.loads(prov[key]).get("name", default) if key in prov else default

    return (
        f"device {name('device', '?')} · protocol {name('protocol', '?')} · "
        f"non-ideality {name('nonideal', 'ideal')} · {algorithm}"
    )


def decades(v: np.ndarray) -> float:
    a = np.abs(np.asarray(v, dtype=np.float64))
    a = a[np.isfinite(a) & (a > 0)]
    return float(np.log10(a.max() / a.min())) if a.size else 0.0


def group_spans(groups: list[str]) -> list[tuple[str, int, int]]:
    """Consecutive runs of equal group labels as (label, start, stop)."""
    out: list[tuple[str, int, int]] = []
    for i, g in enumerate(groups):
        if out and out[-1][0] == g:
            out[-1] = (g, out[-1][1], i + 1)
        else:
            out.append((g, i, i + 1))
    return out


def name_axis(ax, names: list[str], groups: list[str], max_labels: int = 40) -> None:
    """Parameter names on x (thinned when many), group labels and separators above."""
    n = len(names)
    step = max(1, -(-n // max_labels))
    ax.set_xticks(np.arange(0, n, step))
    ax.set_xticklabels([names[i] for i in range(0, n, step)], rotation=60, ha="right", fontsize=7)
    for g, a, b in group_spans(groups):
        if a > 0:
            ax.axvline(a - 0.5, color="0.6", lw=0.8)
        ax.text(
            (a + b - 1) / 2,
            1.01,
            g,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="0.3",
        )
    ax.set_xlim(-0.6, n - 0.4)


def bars_side_by_side(ax, series: dict[str, np.ndarray], unit: str) -> str:
    """Bars of several vectors next to each other per index; linear or log |value| axis."""
    allv = np.concatenate([np.ravel(v) for v in series.values()])
    logy = decades(allv) > LOG_DECADES
    k = len(series)
    width = 0.8 / max(1, k)
    for j, (label, v) in enumerate(series.items()):
        x = np.arange(v.size) - 0.4 + (j + 0.5) * width
        if logy:
            neg = v < 0
            ax.bar(x[~neg], np.abs(v[~neg]), width, color=f"C{j}", label=label)
            zero = v == 0
            if np.any(zero):
                # an exact 0 has no bar on a log axis: mark it at the bottom instead of losing it
                ax.plot(
                    x[zero],
                    np.full(int(zero.sum()), 0.03),
                    "x",
                    color=f"C{j}",
                    ms=7,
                    mew=2,
                    transform=ax.get_xaxis_transform(),
                    label=f"{label}: exactly 0 (×)",
                )
            ax.bar(
                x[neg],
                np.abs(v[neg]),
                width,
                color="white",
                edgecolor=f"C{j}",
                hatch="///",
                label=f"{label} (negative)" if np.any(neg) else None,
            )
        else:
            ax.bar(x, v, width, color=f"C{j}", label=label)
    unit = readable_unit(unit)
    if logy:
        ax.set_yscale("log")
        ax.set_ylabel(f"|value| ({unit})")
        return "log |value| (hatched bars are negative)"
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(f"value ({unit})")
    return "linear"


def readable_unit(unit: str) -> str:
    """A log's ``<loss unit>/parameter_unit`` (the unit differs per parameter) as an axis
    label says it: ``Wb^2 / unit of each parameter``; the x labels carry each unit."""
    for placeholder, what in (("parameter_unit", "parameter"), ("channel_unit", "channel")):
        if unit.endswith("/" + placeholder):
            return f"{unit.removesuffix('/' + placeholder)} / unit of each {what}"
    return unit


def flag_gradient(
    ax,
    measured: np.ndarray,
    ideal: np.ndarray,
    groups: list[str],
    report: Callable[[str], None],
    step_unit: np.ndarray | None = None,
) -> float:
    """Overall θ-scaled cosine (:mod:`physim.fidelity`; raw when ``step_unit`` is None, a log
    written before step units were stored); a cosine below :data:`COSINE_FLAG`, overall or in
    a group carrying at least :data:`~physim.fidelity.GROUP_SHARE` of the ideal's θ-scaled
    norm, is written on the figure in red and passed to ``report`` (the terminal)."""
    s = np.ones_like(ideal) if step_unit is None else np.asarray(step_unit, dtype=np.float64)
    spans = {}
    for g, a, b in group_spans(groups):
        spans[g if g not in spans else f"{g} [{a}:{b}]"] = slice(a, b)
    f = judge(measured, ideal, s, spans)
    c = f.cosine
    bad = []
    if not c >= COSINE_FLAG:
        bad.append(f"overall cosine {c:.3f}")
    for g, d in f.groups.items():
        if d["share"] < GROUP_SHARE:
            continue  # too small a part of the step to judge the gradient by
        if d["size"] == 1:  # a one-parameter "cosine" is ±1: compare the sign and ratio instead
            if not d["sign"] > 0:
                bad.append(f"{g}: sign differs (ratio {d['ratio']:.3g})")
            continue
        if not d["cosine"] >= COSINE_FLAG:
            bad.append(f"{g}: cosine {d['cosine']:.3f}")
    if bad:
        msg = f"WRONG GRADIENT (cosine < {COSINE_FLAG}): " + "; ".join(bad)
        # right of the axes, below where the legends sit: inside, it hid the bars it judges
        ax.text(
            1.01,
            0.02,
            f"WRONG GRADIENT (cosine < {COSINE_FLAG}):\n" + "\n".join(bad),
            transform=ax.transAxes,
            ha="left",
            va="bottom",
            color="red",
            fontsize=8,
            bbox=dict(facecolor="white", edgecolor="red", alpha=0.9),
        )
        report(msg)
    return c


def integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_loss(ax, loss: dict, unit: str, label: str = "training loss (measured)") -> None:
    v = loss["value"]
    ax.plot(loss["step"], v, "o-", ms=3, label=label)
    if np.all(v > 0) and decades(v) > 1:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"MSE loss ({unit})")
    integer_epochs(ax)
    ax.grid(True, which="both", alpha=0.3)


def plot_demo(path: Path, log_path: Path) -> Path:
    """The demo figure from its (ordinary run) log: forward readout and full states before
    and after training against the target, the ±ε echoes retracing the forward run, the
    loss per epoch."""
    plt = pyplot()
    with logs.open_log(log_path) as f:
        prov = logs.provenance(f)
        device = json.loads(prov["device"])
        runs = logs.runs(f)
        recs = {w: logs.records(f, runs[i]) for w, i in (("before", 0), ("after", -1))}
        fwd = {
            w: (r["forward"]["time"][()], logs.read_value(r["forward"])) for w, r in recs.items()
        }
        echo = (recs["before"]["echo"]["time"][()], logs.read_value(recs["before"]["echo"]))
        arrays = {k: d[()] for k, d in logs.arrays(f).items()}
        qunit = logs.arrays(f)["forward_q_before"].attrs.get("unit", "m")
        tunit = recs["before"]["forward"]["time"].attrs.get("unit", "s")
        yunit = recs["before"]["forward"]["value"].attrs.get("unit", "m")
        loss = logs.series(f, "loss")
        lunit = logs.training(f)["loss"]["value"].attrs.get("unit", "1")
        theta = logs.series(f, "theta")
        tg = logs.training(f)["theta"]
        names = [x.decode() if isinstance(x, bytes) else x for x in tg["parameter"][()]]
        punits = [x.decode() if isinstance(x, bytes) else x for x in tg["parameter_unit"][()]]
    dt = float(device["dt"])
    task = device.get("task") or {}
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    for col, when in enumerate(("before", "after")):
        ax = axes[0, col]
        q = arrays[f"forward_q_{when}"]
        t_state = dt * np.arange(q.shape[0])
        read = device.get("readout")
        read = (
            [int(r) for r in read]
            if isinstance(read, list) and read and not isinstance(read[0], list)
            else []
        )
        for i in range(q.shape[-1]):
            if i not in read:
                ax.plot(
                    t_state,
                    q[:, 0, i],
                    lw=1.0,
                    color=f"C{i}",
                    label=f"dof {i + 1} position (not read out)",
                )
        t, y = fwd[when]
        who = f"dof {read[0] + 1}" if read else "output 0"
        ax.plot(t, y[:, 0, 0, 0], color="C3", lw=2.0, label=f"readout ({who}), measured")
        if task:
            tt = t[t > 0]
            tgt = task.get("offset", 0.0) + task["amplitude"] * np.sin(
                2 * np.pi * task["frequency"] * tt
            )
            ax.plot(tt, tgt, "k--", lw=1.2, label="target")
        k = 0 if when == "before" else len(loss["value"]) - 1
        ax.set_title(
            f"forward run {when} training (epoch {int(loss['step'][k])}, loss "
            f"{loss['value'][k]:.3g} {lunit})",
            fontsize=10,
        )
        ax.set_xlabel(f"time ({tunit})")
        ax.set_ylabel(f"position ({qunit})")
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, alpha=0.3)
    ax = axes[1, 0]
    t, y = fwd["before"]
    ax.plot(t, y[:, 0, 0, 0], color="0.6", lw=4, alpha=0.5, label="forward readout")
    et, ev = echo
    for b, (lab, ls) in enumerate((("echo +ε", "-"), ("echo −ε", ":"))):
        # echo records are indexed by the forward state they retrace (time runs backwards)
        ax.plot(et, ev[:, b, 0, 0], ls=ls, lw=1.2, color=f"C{b}", label=lab)
    ax.set_title(
        "before training: the ±ε-nudged echoes retrace the forward run backwards", fontsize=10
    )
    ax.set_xlabel(f"forward time retraced ({tunit})")
    ax.set_ylabel(f"readout position ({yunit})")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, alpha=0.3)
    ax = axes[1, 1]
    plot_loss(ax, loss, lunit)
    ax.set_title(
        f"in-situ RHEL training: loss {loss['value'][0]:.3g} → {loss['value'][-1]:.3g} {lunit}",
        fontsize=10,
    )
    th = ax.twinx()
    for i, n in enumerate(names):
        th.plot(
            theta["step"],
            theta["value"][:, i],
            lw=0.8,
            ls="--",
            color=f"C{i + 2}",
            label=f"θ {n} ({punits[i]})",
        )
    th.set_ylabel(f"parameter θ ({', '.join(sorted(set(punits)))})")
    th.legend(fontsize=7, loc="center right")
    fig.suptitle("physim demo · " + title_for(prov), fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
