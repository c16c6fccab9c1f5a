"""The budget report: run parts (c), (a), (b) in that order, then a table, a figure and JSON.

The best ε is found first, so that attribution and tolerances are measured where the designer
would operate the chip (or at ``eps`` when given).
"""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from physim.answers.budget import (
    PointWarnings,
    attribution,
    eps_curve,
    gradient_criterion,
    make_runner,
    overall,
    tolerances,
    train_criterion,
)
from physim.device import Device
from physim.instrument.specs import NonidealSpec
from physim.plots import pyplot
from physim.protocol.specs import ProtocolSpec
from physim.warnings import warn


def run_budget(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    *,
    target: float = 0.99,
    replicates: int = 3,
    seed: int = 0,
    eps: float | None = None,
    executor: Executor | None = None,
    train: dict | None = None,
    max_replicates: int | None = None,
) -> dict:
    """The whole budget as one JSON-ready dict: ``best_eps``, ``eps_curve``, ``eps_used``,
    ``attribution``, ``tolerances`` (per source: level, unit, interval) and ``verdicts`` (the
    chip as specified against each criterion).

    ``train`` (``{"factor", "epochs", "lr"}``) adds the tolerances in learning terms,
    ``tolerances_train``: the level at which in-situ training through the chip ends above
    ``factor`` × the ideal chip's final loss.
    """
    warned = PointWarnings()
    run = make_runner(executor, warned)
    curve = eps_curve(device, protocol, nonideal, replicates=replicates, seed=seed, run=run)
    used = float(eps) if eps is not None else curve["best_eps"]
    at = protocol.model_copy(update={"eps": used})
    grad = gradient_criterion(target)
    kw = dict(replicates=replicates, seed=seed, run=run)
    if max_replicates is not None:
        kw_tol = {**kw, "max_replicates": max_replicates}
    else:
        kw_tol = kw
    attr = attribution(device, at, nonideal, **kw)
    everything = next(r for r in attr if r["config"] == "all")
    verdicts = [
        overall(device, at, nonideal, grad, values=everything["cosine_per_replicate"], **kw)
    ]
    out = {
        "device": device.name,
        "protocol": protocol.name,
        "nonideal": nonideal.name,
        "target": target,
        "replicates": replicates,
        "best_eps": curve["best_eps"],
        "eps_used": used,
        "eps_curve": curve,
        "attribution": attr,
        "tolerances": tolerances(device, at, nonideal, criterion=grad, **kw_tol),
        "verdicts": verdicts,
        "energy_per_update": everything["energy"],
    }
    if train is not None:
        crit = train_criterion(**train)
        out["train"] = {**train, "criterion": crit.describe()}
        out["tolerances_train"] = tolerances(device, at, nonideal, criterion=crit, **kw_tol)
        verdicts.append(overall(device, at, nonideal, crit, **kw))
    out["warnings"] = warned.summary()
    if warned.n_warned:
        # one line for the whole budget: its ε scan and level probes go past the chip on
        # purpose, so most of its points warn (raise eps, saturated converter, ...)
        common = max(warned.messages, key=warned.messages.get)
        warn(
            f"{warned.n_warned} of {warned.n_points} budget points warned "
            f"({len(warned.messages)} distinct messages; the most common, "
            f"{warned.messages[common]}×: {common})",
            "the ε scan and the level probes go past the chip on purpose, so these are "
            "expected there",
            "read the verdict and the tolerances; every message is under warnings in --json",
        )
    return out


def _fmt_level(t: dict) -> str:
    if t["level"] is None:
        return t.get("note") or "-"
    if t.get("interval") is None:
        return f"{t['level']:.4g}"
    lo, hi = t["interval"]
    flag = "" if t.get("pinned", True) else " (not pinned)"
    return f"{t['level']:.4g} [{lo:.3g}, {hi:.3g}]{flag}"


def _tolerance_lines(tols: list[dict], head: str) -> list[str]:
    lines = ["", head]
    lines.append(
        f"{'source':<24}{'preset':>12}  {'tolerated level [90 % interval]':<42} chips verdict"
    )
    for t in tols:
        verdict = "BREAKS the target" if t["limiting"] else "ok"
        if t["level"] is None:
            verdict = "-" if "fails" in (t.get("note") or "") else "not limiting"
        preset = t.get("preset")
        pre = f"{preset:12.4g}" if preset is not None else f"{'-':>12}"
        n = t.get("replicates", "")
        lines.append(f"{t['source']:<24}{pre}  {_fmt_level(t):<42} {n:>5} {verdict}  ({t['unit']})")
        if t["level"] is not None and t.get("note"):
            lines.append(f"{'':<24}  note: {t['note']}")
    return lines


def format_budget(rep: dict) -> str:
    """The terminal table."""
    lines = [
        f"budget {rep['device']} · {rep['protocol']} · {rep['nonideal']}: target θ-scaled cosine "
        f"{rep['target']} vs the as-built twin, {rep['replicates']} replicate chip(s) or more",
        *(v["line"] for v in rep.get("verdicts", [])),
        f"best eps {rep['best_eps']:.3g} (error {rep['eps_curve']['best_rel_error']:.3g}); "
        f"measured at eps {rep['eps_used']:.3g}",
        "",
        "(a) attribution: θ-scaled relative gradient error vs the as-built twin",
        f"{'source':<24}{'alone':>12}{'all but':>12}   cosine alone",
    ]
    rows = {(r["config"], r["source"]): r for r in rep["attribution"]}
    for (c, s), r in rows.items():
        if c != "alone":
            continue
        but = rows.get(("all_but", s))
        but_s = f"{but['rel_error']:12.3e}" if but else f"{'-':>12}"
        lines.append(f"{s:<24}{r['rel_error']:12.3e}{but_s}   {r['cosine']:.6f}")
    a = rows[("all", "all")]
    lines.append(f"{'all':<24}{a['rel_error']:12.3e}{'':>12}   {a['cosine']:.6f}")
    groups = list(a["groups"])
    lines += ["", "    per parameter group (relative error, source alone)"]
    lines.append(f"{'source':<24}" + "".join(f"{g[:18]:>20}" for g in groups))
    for (c, s), r in rows.items():
        if c in ("alone", "all"):
            lines.append(f"{s:<24}" + "".join(f"{r['groups'][g]:20.3e}" for g in groups))
    lines += _tolerance_lines(
        rep["tolerances"],
        f"(b) tolerance of each source alone, gradient: θ-scaled cosine >= {rep['target']}",
    )
    if "tolerances_train" in rep:
        lines += _tolerance_lines(
            rep["tolerances_train"],
            f"(b') tolerance in learning terms: {rep['train']['criterion']}",
        )
    if rep.get("energy_per_update"):
        lines += ["", *format_energy(rep["energy_per_update"])]
    return "\n".join(lines)


def _margin(t: dict, level: float) -> float:
    """How far the preset is inside the tolerated ``level`` (> 1: within)."""
    if t["unit"] == "bits":  # as a ratio of LSBs
        return 2.0 ** (t["preset"] - level)
    if t.get("worse", 1) > 0:  # a larger level is worse (σ, jitter, T)
        return level / t["preset"]
    return t["preset"] / level  # a smaller level is worse (Q)


def format_energy(energy: dict) -> list[str]:
    """The budget's energy lines: the chip as specified, per gradient update."""

    def val(name: str) -> str:
        e = energy[name]
        return "n/a" if e["value"] is None else f"{e['value']:.3e} {e['unit']}"

    return [
        "(d) energy per gradient update, chip as specified (mean over replicate chips)",
        f"    device drive {val('energy_drive')}, dissipated {val('energy_dissipated')}, "
        f"converters {val('energy_converters')}, flip {val('energy_flip')}",
        f"    total {val('energy_total')}; time {val('time_update')}",
    ]


def plot_budget(rep: dict, path: str | Path) -> Path:
    """Three panels, in the order of their letters: (a) attribution bars, (b) tolerated level
    over the preset (a source with no level is drawn at the axis edge: ▲ within out to the
    search bound, ▼ failing even there), (c) error vs ε. Legends sit below the panels."""
    plt = pyplot()
    path = Path(path)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    below = {"fontsize": 8, "loc": "upper center", "bbox_to_anchor": (0.5, -0.32)}
    alone = [r for r in rep["attribution"] if r["config"] == "alone"]
    but = {r["source"]: r for r in rep["attribution"] if r["config"] == "all_but"}
    x = np.arange(len(alone))
    ax = axes[0]
    ax.bar(x - 0.2, [max(r["rel_error"], 1e-16) for r in alone], 0.4, label="alone")
    ax.bar(
        x + 0.2,
        [max(but[r["source"]]["rel_error"], 1e-16) if r["source"] in but else 0 for r in alone],
        0.4,
        label="all but this one",
    )
    allr = next(r for r in rep["attribution"] if r["config"] == "all")
    ax.axhline(allr["rel_error"], color="k", ls="--", lw=1, label="all sources")
    ax.set_yscale("log")
    ax.set_xticks(x, [r["source"] for r in alone], rotation=30, ha="right")
    ax.set_ylabel("relative gradient error vs as-built twin")
    ax.set_title("(a) attribution")
    ax.legend(**below)
    c = rep["eps_curve"]
    ax = axes[2]
    ax.errorbar(c["eps"], c["rel_error"], yerr=c["rel_error_std"], marker="o", ms=3)
    ax.axvline(rep["best_eps"], color="C3", ls="--", label=f"best eps {rep['best_eps']:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nudge eps" + (" (relative)" if c["relative_eps"] else ""))
    ax.set_ylabel("relative gradient error, all sources")
    ax.set_title("(c) error vs eps")
    ax.legend(**below)
    ax = axes[1]
    sets = [("gradient", rep["tolerances"], "o", 0.0)]
    if "tolerances_train" in rep:
        sets.append(("in-situ training", rep["tolerances_train"], "s", 0.15))
    names: list[str] = []
    edge: set[str] = set()
    for label, tols, marker, dx in sets:
        first = True
        for t in tols:
            if not t.get("preset"):
                continue
            if t["source"] not in names:
                names.append(t["source"])
            i = names.index(t["source"])
            if t["level"] is None:  # no level found inside the search bracket: say which way
                within = "meets the criterion" in (t.get("note") or "")
                ax.plot(
                    [i + dx],
                    [0.96 if within else 0.04],
                    "^" if within else "v",
                    color="C2" if within else "C3",
                    mfc="white" if marker == "s" else None,
                    ms=9,
                    transform=ax.get_xaxis_transform(),
                    label=None,
                )
                edge.add(
                    "within out to the search bound (▲)"
                    if within
                    else "fails even at the bound (▼)"
                )
                continue
            lo_l, hi_l = t.get("interval") or t["spread"]
            m, lo, hi = (_margin(t, x) for x in (t["level"], lo_l, hi_l))
            lo, hi = min(lo, hi), max(lo, hi)
            ax.errorbar(
                [i + dx],
                [m],
                yerr=[[max(m - lo, 0.0)], [max(hi - m, 0.0)]],
                fmt=marker,
                color="C3" if m < 1 else "C2",
                mfc="white" if marker == "s" else None,
                label=f"{label} (90 % interval)" if first else None,
            )
            first = False
    ax.axhline(1.0, color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(
        "margin: preset vs tolerated level\n(bits as LSB ratio; above 1 = within)", fontsize=9
    )
    title = f"(b) tolerance: θ-scaled cosine >= {rep['target']}"
    if "train" in rep:
        title += f"; training loss <= {rep['train']['factor']:g}x ideal"
    ax.set_title(title, fontsize=10)
    for what in sorted(edge):  # the edge markers' meaning, in the legend
        ax.plot(
            [], [], "^" if "▲" in what else "v", color="C2" if "▲" in what else "C3", label=what
        )
    if names:
        ax.legend(**below)
    fig.suptitle(f"{rep['device']} · {rep['protocol']} · {rep['nonideal']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
