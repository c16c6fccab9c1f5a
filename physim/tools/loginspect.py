"""``physim inspect``: a human-readable summary of any physim log (run, training, study).

Reads through :mod:`physim.logs` only (no HDF5 paths here); works on a log still being written
or left incomplete by a killed writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physim import logs


def _span(v: np.ndarray) -> str:
    return f", {v[0]:.4g} → {v[-1]:.4g}" if v.ndim == 1 and v.size else ""


def summary(path: str | Path) -> str:
    """Status, provenance, protocol executions and records, appended series of a log."""
    lines = []
    with logs.open_log(path) as f:
        version = ".".join(str(int(v)) for v in f[logs.H5MD].attrs["version"])
        creator = f[logs.H5MD]["creator"].attrs.get("version", "?")
        kind = logs.kind(f)
        lines.append(
            f"{path}: {kind} log, H5MD {version}, physim {creator}, {logs.status(f)} "
            f"({int(f.attrs.get('n_steps_done', 0))} protocol steps written)"
        )
        prov = logs.provenance(f)
        for key in ("device", "nonideal", "protocol", "train_config", "study"):
            if key in prov:
                spec = json.loads(prov[key])
                name = spec.get("name") or spec.get("data") or "?"
                lines.append(f"  {key}: {name}")
        for key in ("seed", "demo"):
            if key in prov:
                lines.append(f"  {key}: {prov[key][:70]}")
        names = logs.runs(f)
        #: executions listed in full; a training session's others are counted
        shown = names if len(names) <= 3 else [names[0], names[-1]]
        if len(names) > 3:
            lines.append(
                f"  {len(names)} protocol executions ({names[0]} … {names[-1]}); first and last:"
            )
        for run in shown:
            lines.append(f"  run {run}:")
            for name, g in logs.records(f, run).items():
                d = g["value"]
                adc = ""
                if "scale_factor" in d.attrs:
                    adc = f", ADC codes ({d.dtype}, scale_factor {float(d.attrs['scale_factor']):.3g})"
                elif "lsb" in g:
                    adc = ", ADC codes (per-channel lsb)"
                sat = int(g.attrs["n_saturated"])
                lines.append(
                    f"    [{g.attrs['protocol_step']}] {name}: {g.attrs['kind']} "
                    f"{d.shape} {d.attrs.get('unit', '')}{adc}"
                    f"{f', {sat} saturated' if sat else ''}"
                )
            gr = logs.gradient(f, run)
            if gr is not None and "cosine" in gr.attrs:
                # logs since the unit-free fidelity say which metric; older ones hold the raw
                kind = "θ-scaled " if gr.attrs.get("metric") == "theta_scaled" else "raw SI "
                lines.append(
                    f"    gradient vs ideal twin: {kind}cosine {gr.attrs['cosine']:.6f}, "
                    f"norm ratio {gr.attrs['norm_ratio']:.6f}, rel. error "
                    f"{gr.attrs['rel_error']:.3e}"
                )
        for name, d in logs.arrays(f).items():
            lines.append(f"  array {name}: {d.shape} {d.attrs.get('unit', '')}")
        for name in logs.training(f):
            s = logs.series(f, name)
            unit = logs.training(f)[name]["value"].attrs.get("unit", "")
            lines.append(
                f"  training/{name}: {s['step'].size} samples (step {int(s['step'][0])}"
                f"–{int(s['step'][-1])}) {unit}{_span(s['value'])}"
                if s["step"].size
                else f"  training/{name}: no samples yet"
            )
    return "\n".join(lines)
