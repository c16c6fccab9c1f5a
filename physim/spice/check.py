"""ngspice as an independent check of physim's circuit dynamics.

:func:`spice_check` exports a device, runs ngspice in batch mode on it at tight tolerances
(trapezoidal rule, internal step ≤ dt/64, see :mod:`physim.spice.netlist`), and compares the
node voltages V = C⁻¹Q and node fluxes Φ of physim's instrument at dt, dt/2 and dt/4 with the
ngspice trajectory at the device's sample times t_k = k·dt. The input is the piecewise-linear
signal through the task's u_k at t = k·dt (knots on step boundaries, so that no step of any
refinement straddles a kink; each run samples it at its own half steps). The error of one
quantity is

    max_{k, n} |x_physim − x_ngspice| / max_{k, n} |x_ngspice|

(relative to the quantity's peak, so a node passing through zero does not blow it up); the
measured order is the least-squares slope of log error against log dt (the leapfrog is of
order 2, so the error should fall ≈ 4× per halving).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from physim.families.lc import LCNetworkSpec
from physim.instrument.specs import NonidealSpec
from physim.spice.instance import (
    device_inputs,
    export_device,
    instrument,
    lc_spec,
    probe,
    replicate_nonideal,
)
from physim.spice.netlist import REF_RELTOL, REF_STEPS_PER_DT, Netlist, pwl_knots

NGSPICE_INSTALL = "apt-get install -y ngspice"
#: ngspice runs of the small test circuits take well under a second; a hung run is an error
NGSPICE_TIMEOUT = 600.0
#: the dt refinements physim is run at
REFINEMENTS = (1, 2, 4)


def ngspice_path() -> str:
    """The ngspice executable, or an error naming the install line."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise FileNotFoundError(
            f"ngspice is not installed (needed by spice-check); install it with: {NGSPICE_INSTALL}"
        )
    return exe


@dataclass(frozen=True)
class SpiceRun:
    """ngspice's output: time (n_points,) and the columns of the netlist, (n_points, n_cols)."""

    time: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    log: str


def run_ngspice(net: Netlist, workdir: str | Path | None = None) -> SpiceRun:
    """Run ``ngspice -b`` on the netlist in ``workdir`` (a temporary folder when ``None``)."""
    exe = ngspice_path()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        cir = where / "physim.cir"
        cir.write_text(net.text)
        proc = subprocess.run(
            [exe, "-b", cir.name],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=NGSPICE_TIMEOUT,
            check=False,
        )
        log = proc.stdout + proc.stderr
        data = where / net.data_file
        if proc.returncode != 0 or not data.exists():
            tail = " | ".join(log.strip().splitlines()[-6:])
            raise RuntimeError(
                f"ngspice failed on the exported netlist (exit {proc.returncode}): {tail}; "
                f"rerun with --keep DIR to inspect {cir.name}"
            )
        table = np.loadtxt(data, skiprows=1, ndmin=2)
    if table.shape[1] != 1 + len(net.columns):
        raise RuntimeError(
            f"ngspice wrote {table.shape[1]} columns, expected time + {len(net.columns)}"
        )
    order = np.argsort(table[:, 0], kind="stable")
    t = table[order, 0]
    keep = np.concatenate([[True], np.diff(t) > 0])  # breakpoints can repeat a time point
    return SpiceRun(t[keep], table[order][keep, 1:], net.columns, log)


@dataclass(frozen=True)
class Agreement:
    """Errors of physim vs ngspice at each refinement (dt/m for m in ``refinements``)."""

    device: str
    dt: float
    n_steps: int
    refinements: tuple[int, ...]
    voltage_err: tuple[float, ...]
    flux_err: tuple[float, ...]
    #: largest |2πΦ_b/Φ₀| over the Josephson branches in the reference run (0: none), rad
    max_phase: float = 0.0
    #: the reference's own error: ngspice vs ngspice at half its step and a tenth of its reltol
    ref_err: float | None = None

    @property
    def max_rel_err(self) -> tuple[float, ...]:
        return tuple(max(a, b) for a, b in zip(self.voltage_err, self.flux_err, strict=True))

    def order(self, which: str = "max") -> float:
        err = {"voltage": self.voltage_err, "flux": self.flux_err, "max": self.max_rel_err}[which]
        x = np.log(self.dt / np.asarray(self.refinements, dtype=np.float64))
        y = np.log(np.maximum(np.asarray(err), 1e-300))
        return float(np.polyfit(x, y, 1)[0])

    def as_dict(self) -> dict:
        return {
            "device": self.device,
            "dt": self.dt,
            "n_steps": self.n_steps,
            "dts": [self.dt / m for m in self.refinements],
            "voltage_rel_err": list(self.voltage_err),
            "flux_rel_err": list(self.flux_err),
            "voltage_order": self.order("voltage"),
            "flux_order": self.order("flux"),
            "max_junction_phase_rad": self.max_phase,
            "reference_rel_err": self.ref_err,
            "max_rel_err": self.max_rel_err[0],
            "order": self.order("max"),
        }


def _sampled(run: SpiceRun, t_k: np.ndarray) -> np.ndarray:
    """ngspice's columns at the device's sample times (cubic spline through its points)."""
    if run.time[0] > t_k[0] or run.time[-1] < t_k[-1] * (1 - 1e-12):
        raise RuntimeError(
            f"ngspice's output covers t = {run.time[0]:.3g}..{run.time[-1]:.3g} s, not the "
            f"device's samples {t_k[0]:.3g}..{t_k[-1]:.3g} s"
        )
    return CubicSpline(run.time, run.values, axis=0)(t_k)


def _rel_err(x: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(x - ref))) / scale if scale > 0 else float(np.max(np.abs(x)))


def reference(net: Netlist, run: SpiceRun) -> tuple[np.ndarray, np.ndarray]:
    """ngspice's node voltages (V) and fluxes (Wb) at t_k = k·dt, each (n_steps, n_nodes)."""
    n = len(net.nodes)
    ref = _sampled(run, net.dt * np.arange(1, net.n_steps + 1))
    return ref[:, :n], ref[:, n:] * net.flux_scale


def physim_errors(
    spec: LCNetworkSpec,
    nonideal: NonidealSpec | None,
    u: np.ndarray,
    v_ref: np.ndarray,
    phi_ref: np.ndarray,
) -> tuple[list[float], list[float]]:
    """Voltage and flux errors of physim's instrument at dt/m (m in REFINEMENTS) against a
    reference, driven by the PWL through u_k at t = k·dt sampled at each run's half steps."""
    t_knots, u_knots = pwl_knots(u, spec.dt, 0.0)
    K = u.shape[0]
    verr, ferr = [], []
    for m in REFINEMENTS:
        h = spec.dt / m
        t_sub = (np.arange(K * m) + 0.5) * h
        u_sub = np.stack([np.interp(t_sub, t_knots, u_knots[:, k]) for k in range(u.shape[1])], 1)
        pr = probe(instrument(spec, nonideal, h), u_sub.reshape(K * m, u.shape[1]))
        verr.append(_rel_err(pr.voltage[m - 1 :: m], v_ref))
        ferr.append(_rel_err(pr.flux[m - 1 :: m], phi_ref))
    return verr, ferr


def spice_check(
    spec: LCNetworkSpec,
    *,
    nonideal: NonidealSpec | None = None,
    replicate: int | None = None,
    chip_seed: int = 0,
    u: np.ndarray | None = None,
    n_steps: int | None = None,
    amplitude: float = 1.0,
    seed: int = 0,
    keep: str | Path | None = None,
    ref_check: bool = False,
) -> Agreement:
    """Compare physim at dt, dt/2, dt/4 with ngspice on the same device, input and instance."""
    spec = lc_spec(spec)
    if nonideal is not None:
        nonideal = replicate_nonideal(nonideal, replicate, chip_seed)
        diss = nonideal.get("dissipation")
        if diss is not None and diss.temperature > 0:
            raise ValueError(
                f"spice-check compares deterministic trajectories, but the dissipation source has "
                f"temperature = {diss.temperature} K (two noise generators never agree); set "
                "temperature = 0 for the check, or use export-spice for a noisy netlist"
            )
    if u is None:
        u = device_inputs(spec, n_steps, amplitude, seed)
    net, _ = export_device(spec, u, nonideal=nonideal, knot_offset=0.0)
    v_ref, phi_ref = reference(net, run_ngspice(net, keep))
    ref_err = None
    if ref_check:
        fine, _ = export_device(
            spec,
            u,
            nonideal=nonideal,
            knot_offset=0.0,
            steps_per_dt=2 * REF_STEPS_PER_DT,
            reltol=0.1 * REF_RELTOL,
        )
        v2, phi2 = reference(fine, run_ngspice(fine))
        ref_err = max(_rel_err(v_ref, v2), _rel_err(phi_ref, phi2))
    verr, ferr = physim_errors(spec, nonideal, u, v_ref, phi_ref)
    return Agreement(
        max_phase=junction_phase(spec, phi_ref),
        ref_err=ref_err,
        device=spec.name,
        dt=spec.dt,
        n_steps=u.shape[0],
        refinements=REFINEMENTS,
        voltage_err=tuple(verr),
        flux_err=tuple(ferr),
    )


def junction_phase(spec: LCNetworkSpec, flux: np.ndarray) -> float:
    """Largest |2πΦ_b/Φ₀| over the Josephson branches of ``flux`` (n_steps, n_nodes), rad."""
    index = {n: i for i, n in enumerate(spec.nodes)}
    peak = 0.0
    for e in spec.elements:
        if e.type != "josephson":
            continue
        fa = flux[:, index[e.a]] if e.a in index else 0.0
        fb = flux[:, index[e.b]] if e.b in index else 0.0
        peak = max(peak, float(np.max(np.abs(2 * np.pi * (fa - fb) / e.phi0))))
    return peak


def format_agreement(a: Agreement) -> str:
    lines = [f"{a.device}: physim vs ngspice over {a.n_steps} steps of dt = {a.dt:.4g} s"]
    lines.append(f"  {'dt (s)':>12} {'voltage max rel err':>20} {'flux max rel err':>18}")
    for m, ve, fe in zip(a.refinements, a.voltage_err, a.flux_err, strict=True):
        lines.append(f"  {a.dt / m:>12.4g} {ve:>20.3e} {fe:>18.3e}")
    lines.append(
        f"  measured order: voltage {a.order('voltage'):.2f}, flux {a.order('flux'):.2f} "
        "(leapfrog: 2)"
    )
    if a.ref_err is not None:
        lines.append(f"  reference's own error (ngspice at half step, reltol/10): {a.ref_err:.2e}")
    if a.max_phase:
        lines.append(f"  largest Josephson phase |2π Φ_b/Φ₀| = {a.max_phase:.3g} rad")
    return "\n".join(lines)
