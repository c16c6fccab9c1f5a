"""The budget report: run parts (c), (a), (b) in that order, then a table, a figure and JSON.

The best ε is found first, so that attribution and tolerances are measured where the designer
would operate the chip (or at ``eps`` when given).
"""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from physim.answers.budget import (
    attribution,
    energy_per_update,
    eps_curve,
    make_runner,
    tolerances,
)
from physim.device import Device
from physim.instrument.specs import NonidealSpec
from physim.plots import pyplot
from physim.protocol.specs import ProtocolSpec


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
) -> dict:
    """The whole budget as one JSON-ready dict: ``best_eps``, ``eps_curve``, ``eps_used``,
    ``attribution`` and ``tolerances`` (per source: level, unit, spread)."""
    run = make_runner(executor)
    curve = eps_curve(device, protocol, nonideal, replicates=replicates, seed=seed, run=run)
    used = float(eps) if eps is not None else curve["best_eps"]
    at = protocol.model_copy(update={"eps": used})
    return {
        "device": device.name,
        "protocol": protocol.name,
        "nonideal": nonideal.name,
        "target": target,
        "replicates": replicates,
        "best_eps": curve["best_eps"],
        "eps_used": used,
        "eps_curve": curve,
        "attribution": attribution(device, at, nonideal, replicates=replicates, seed=seed, run=run),
        "tolerances": tolerances(
            device, at, nonideal, target=target, replicates=replicates, seed=seed, run=run
        ),
        "energy_per_update": energy_per_update(
            device, at, nonideal, replicates=replicates, seed=seed, run=run
        ),
    }


def _fmt_level(t: dict) -> str:
    if t["level"] is None:
        return t.get("note") or "-"
    lo, hi = t["spread"]
    return f"{t['level']:.4g} [{lo:.3g}, {hi:.3g}]"


def format_budget(rep: dict) -> str:
    """The terminal table."""
    lines = [
        f"budget {rep['device']} · {rep['protocol']} · {rep['nonideal']}: target cosine "
        f"{rep['target']} vs the as-built twin, {rep['replicates']} replicate chip(s)",
        f"best eps {rep['best_eps']:.3g} (error {rep['eps_curve']['best_rel_error']:.3g}); "
        f"measured at eps {rep['eps_used']:.3g}",
        "",
        "(a) attribution: relative gradient error vs the as-built twin",
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
    lines += ["", f"(b) tolerance of each source alone (cosine >= {rep['target']})"]
    lines.append(f"{'source':<24}{'preset':>12}  {'tolerated level [spread]':<46} verdict")
    for t in rep["tolerances"]:
        verdict = "BREAKS the target" if t["limiting"] else "ok"
        if t["level"] is None:
            verdict = "-" if "fails" in (t.get("note") or "") else "not limiting"
        preset = t.get("preset")
        pre = f"{preset:12.4g}" if preset is not None else f"{'-':>12}"
        lines.append(f"{t['source']:<24}{pre}  {_fmt_level(t):<46} {verdict}  ({t['unit']})")
    if rep.get("energy_per_update"):
        lines += ["", *format_energy(rep["energy_per_update"])]
    return "\n".join(lines)


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
    """Three panels: attribution bars, error vs ε, tolerated level over the preset."""
    plt = pyplot()
    path = Path(path)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
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
    ax.legend(fontsize=8)
    c = rep["eps_curve"]
    ax = axes[1]
    ax.errorbar(c["eps"], c["rel_error"], yerr=c["rel_error_std"], marker="o", ms=3)
    ax.axvline(rep["best_eps"], color="C3", ls="--", label=f"best eps {rep['best_eps']:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nudge eps" + (" (relative)" if c["relative_eps"] else ""))
    ax.set_ylabel("relative gradient error, all sources")
    ax.set_title("(c) error vs eps")
    ax.legend(fontsize=8)
    ax = axes[2]
    tol = [t for t in rep["tolerances"] if t["level"] is not None and t.get("preset")]
    for i, t in enumerate(tol):
        # margin > 1: the preset is better than what the target needs
        worse_up = t["unit"] not in ("bits", "Q (1)")
        if t["unit"] == "bits":
            m = 2.0 ** (t["preset"] - t["level"])
            lo, hi = (2.0 ** (t["preset"] - s) for s in t["spread"][::-1])
        elif worse_up:
            m = t["level"] / t["preset"]
            lo, hi = t["spread"][0] / t["preset"], t["spread"][1] / t["preset"]
        else:
            m = t["preset"] / t["level"]
            lo, hi = t["preset"] / t["spread"][1], t["preset"] / t["spread"][0]
        ax.errorbar(
            [i],
            [m],
            yerr=[[max(m - lo, 0.0)], [max(hi - m, 0.0)]],
            fmt="o",
            color="C3" if m < 1 else "C2",
        )
    ax.axhline(1.0, color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(tol)), [t["source"] for t in tol], rotation=30, ha="right")
    ax.set_ylabel(
        "margin: preset vs tolerated level\n(bits as LSB ratio; above 1 = within)", fontsize=9
    )
    ax.set_title(f"(b) tolerance at cosine {rep['target']}")
    fig.suptitle(f"{rep['device']} · {rep['protocol']} · {rep['nonideal']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
