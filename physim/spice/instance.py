"""The device behind a netlist: inputs, the as-built instance and physim's own trajectory.

Everything here goes through physim's instrument (:class:`physim.instrument.hardware.Instrument`):
the mismatch of an instance is the instrument's own fabrication draw, its loss the bath's
conductance matrix (each source's ``spice_values``), and the reference trajectory the instrument's integrator probed at every
node.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from physim.families.lc import CapacitorSpec, InductorSpec, LCNetworkSpec
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec
from physim.protocol.specs import TaskSpec
from physim.protocol.task import build_task
from physim.seeding import replicate_chip
from physim.spice.netlist import BuiltValues, Netlist, unsupported_sources, write_netlist


def lc_spec(spec: object) -> LCNetworkSpec:
    if not isinstance(spec, LCNetworkSpec):
        kind = getattr(spec, "kind", type(spec).__name__)
        raise ValueError(
            f"SPICE export needs an lc_network device, got kind = {kind!r}; pick an LC device "
            "such as lc-ladder-8 or josephson-4"
        )
    return spec


def replicate_nonideal(
    nonideal: NonidealSpec, replicate: int | None, seed: int = 0
) -> NonidealSpec:
    """The chip ``replicate`` of ``seed`` under a non-ideality spec (``None``: the seeds as
    written): every source re-seeded by :func:`physim.seeding.replicate_chip`, so replicate R
    of seed S is the chip of replicate R in a study or budget of seed S."""
    if replicate is None:
        return nonideal
    if replicate < 0:
        raise ValueError(f"--replicate must be >= 0, got {replicate}")
    if seed < 0:
        raise ValueError(f"--chip-seed must be >= 0, got {seed}")
    return replicate_chip(nonideal, replicate, seed)[0]


def device_inputs(
    spec: LCNetworkSpec, n_steps: int | None = None, amplitude: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Inputs (n_steps, n_inputs) from the device's task: its own [task] when it has one (run
    length from its duration), else the protocol's default teacher task (smooth inputs of rms
    ``amplitude``, 200 steps unless ``n_steps``)."""
    device = spec.build()
    if spec.task is not None and n_steps is None:
        task = build_task(device, TaskSpec(kind="device"))
        return amplitude * task.u[:, 0, :]
    task = build_task(
        device, TaskSpec(n_steps=n_steps or 200, input_std=amplitude, seed=seed), "mse"
    )
    return np.ascontiguousarray(task.u[:, 0, :])


def instrument(spec: LCNetworkSpec, nonideal: NonidealSpec | None, dt: float) -> Instrument:
    """The instrument of ``spec`` built at step ``dt`` (same chip at every dt: the mismatch
    draw depends only on its seed and the element count)."""
    dev = spec.model_copy(update={"dt": dt}).build() if dt != spec.dt else spec.build()
    inst = Instrument(dev, nonideal)
    inst.program(None)
    return inst


def built_values(spec: LCNetworkSpec, inst: Instrument, label: str) -> BuiltValues:
    """Element values and source gains of the instrument as built and programmed."""
    dev, phys = inst.device, inst.phys
    w = phys.w
    caps = [e for e in spec.elements if isinstance(e, CapacitorSpec)]
    lins = [e for e in spec.elements if isinstance(e, InductorSpec)]
    coss = [e for e in spec.elements if e.type == "josephson"]
    values: dict[str, float] = {}
    for i, e in enumerate(caps):
        values[e.name] = float(w[i])
    for i, e in enumerate(lins):
        values[e.name] = 1.0 / float(w[len(caps) + i])
    for i, e in enumerate(coss):
        values[e.name] = float(w[len(caps) + len(lins) + i])
    index = {n: i for i, n in enumerate(spec.nodes)}
    nominal = dev.B_base
    gains = []
    for s in spec.sources:
        b0 = nominal[index[s.node], s.input]
        gains.append(s.gain * float(phys.B[index[s.node], s.input] / b0) if b0 else s.gain)
    # what the sources realise in the netlist beyond element values (the loss resistors)
    extra: dict = {"D": None, "kT": 0.0, "noise_seed": 0}
    for src in inst.sources:
        extra.update(src.spice_values())
    return BuiltValues(values, tuple(gains), label=label, **extra)


@dataclass(frozen=True)
class Probe:
    """physim's trajectory at the states after each step: node fluxes and node voltages."""

    flux: np.ndarray  # (n_steps, n_nodes), Wb
    voltage: np.ndarray  # (n_steps, n_nodes), V
    dt: float


def probe(inst: Instrument, u: np.ndarray) -> Probe:
    """Run the instrument from the device's initial state under ``u`` (n_steps, n_inputs)."""
    inst.prepare("device", 1)
    q, p = inst.record(inst.write_drive(np.ascontiguousarray(u[:, None, :])))
    Cinv = inst.phys.prm[3]
    return Probe(flux=q[:, 0], voltage=p[:, 0] @ Cinv.T, dt=inst.device.dt)


def export_device(
    spec: LCNetworkSpec,
    u: np.ndarray | None = None,
    *,
    nonideal: NonidealSpec | None = None,
    replicate: int | None = None,
    chip_seed: int = 0,
    data_file: str = "physim-spice.dat",
    steps_per_dt: int | None = None,
    knot_offset: float = 0.5,
    reltol: float | None = None,
) -> tuple[Netlist, Probe]:
    """Export ``spec`` (as built under ``nonideal`` when given) driven by ``u``.

    The flux scale and ngspice's absolute tolerances come from physim's own run at dt with
    ``u`` as its per-step input, which is returned too; ``knot_offset`` places the PWL knots
    (see :func:`physim.spice.netlist.pwl_knots`).
    """
    spec = lc_spec(spec)
    u = device_inputs(spec) if u is None else np.asarray(u, dtype=np.float64)
    label = ""
    if nonideal is not None and nonideal.sources:
        nonideal = replicate_nonideal(nonideal, replicate, chip_seed)
        skipped = unsupported_sources(nonideal)
        if skipped:
            warnings.warn(
                f"non-ideality sources {', '.join(skipped)} exist only in physim's instrument "
                "and are not in the netlist; the netlist has the mismatch, parameter DAC and "
                "dissipation of the instance",
                stacklevel=2,
            )
        label = f"nonideal {nonideal.name!r}" + (
            f", replicate {replicate} of seed {chip_seed}" if replicate is not None else ""
        )
    inst = instrument(spec, nonideal, spec.dt)
    n_in = inst.device.n_inputs
    if u.ndim != 2 or u.shape[1] != n_in or u.shape[0] < 1:
        raise ValueError(
            f"the input of {spec.name!r} must have shape (n_steps >= 1, {n_in}), got {u.shape}; "
            "give one column per input channel"
        )
    bad = np.argwhere(~np.isfinite(u))
    if bad.size:
        k, j = (int(x) for x in bad[0])
        raise ValueError(
            f"the input of {spec.name!r} must be finite (a netlist's PWL source cannot drive "
            f"nan or inf), got u[{k}, {j}] = {u[k, j]} ({len(bad)} non-finite entries); fix the "
            "input file or --amplitude"
        )
    built = built_values(spec, inst, label)
    ref = probe(inst, u)
    phi_peak = float(np.max(np.abs(ref.flux), initial=0.0))
    sigma = 10.0 ** round(np.log10(phi_peak)) if phi_peak > 0 else 1.0
    v_peak = float(np.max(np.abs(ref.voltage), initial=0.0)) or 1.0
    drive = np.abs(u @ inst.phys.B.T) if u.size else np.zeros(1)
    i_peak = float(np.max(drive, initial=0.0))
    for e in spec.elements:
        if isinstance(e, InductorSpec):
            i_peak = max(i_peak, phi_peak / built.values[e.name])
        elif e.type == "josephson":
            i_peak = max(i_peak, 2 * np.pi * built.values[e.name] / e.phi0)
    C = inst.phys.prm[3]
    q_peak = v_peak / float(np.max(np.abs(C))) if np.any(C) else 1.0
    kw = {} if steps_per_dt is None else {"steps_per_dt": steps_per_dt}
    if reltol is not None:
        kw["reltol"] = reltol
    net = write_netlist(
        spec,
        u,
        built=built,
        flux_scale=sigma,
        v_peak=v_peak,
        i_peak=i_peak or 1.0,
        q_peak=q_peak,
        data_file=data_file,
        knot_offset=knot_offset,
        **kw,
    )
    return net, ref
