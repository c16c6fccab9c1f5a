"""Joules and seconds of one protocol execution (one gradient update).

:func:`energy_cost` turns what an execution used — the device-side work and friction loss the
instrument measured along every drive (:mod:`physim.instrument.energy`), the values each
converter converted or wrote, the trajectories flipped and the runs prepared — into an
:class:`~physim.protocol.records.EnergyCost` with the per-technology figures of the
non-ideality spec: each ADC's ``fom``, each DAC's ``write_energy``, and the ``energy``
section's flip energy and latency and reset time. A figure that is missing makes its part
unavailable, with the reason, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.instrument.energy import RING_DOWN, ring_down_time
from physim.protocol.records import EnergyCost

#: reduced Planck constant, J·s (CODATA 2018, exact)
HBAR = 1.054571817e-34


@dataclass(frozen=True)
class Usage:
    """The instrument's use counters at one moment (see :meth:`snapshot`)."""

    n_conversions: dict[str, int]
    n_writes: dict[str, int]
    n_flips: int

    @classmethod
    def snapshot(cls, instrument) -> Usage:
        return cls(
            dict(instrument.n_conversions), dict(instrument.n_writes), int(instrument.n_flips)
        )

    def since(self, before: Usage) -> Usage:
        return Usage(
            {k: v - before.n_conversions.get(k, 0) for k, v in self.n_conversions.items()},
            {k: v - before.n_writes.get(k, 0) for k, v in self.n_writes.items()},
            self.n_flips - before.n_flips,
        )


def _converters(instrument, used: Usage, notes: list[str]) -> tuple[float | None, dict]:
    """Energy of every modelled converter that was used; ``None`` when none is modelled."""
    by: dict[str, float] = {}
    unmodelled: list[str] = []
    for kind, counts in (("adc", used.n_conversions), ("dac", used.n_writes)):
        for target, n in counts.items():
            if n == 0:
                continue
            src = instrument.source(kind, target)
            if src is None:
                unmodelled.append(f"{kind} {target}")
                continue
            spec = src.spec
            per_use = spec.fom * 2.0**spec.bits if kind == "adc" else spec.write_energy
            by[f"{kind}_{target}"] = n * per_use
    if unmodelled:
        notes.append(
            f"converters not in the non-ideality spec are not costed: {', '.join(unmodelled)} "
            "(add an adc/dac source with its fom / write_energy)"
        )
    if not by and unmodelled:
        return None, by
    return sum(by.values()), by


def _reset_time(instrument, energy_spec, notes: list[str]) -> float | None:
    """Seconds to reset the device before one run: the preset's figure, else the passive
    ring-down of the slowest lossy mode; ``None`` without either."""
    if energy_spec is not None and energy_spec.reset_time is not None:
        return energy_spec.reset_time
    fraction = energy_spec.ring_down if energy_spec is not None else RING_DOWN
    bath = instrument.bath
    t = ring_down_time(bath.rates, fraction) if bath is not None else None
    if t is None:
        notes.append(
            "reset time unavailable: no loss to ring the device down and no "
            "energy.reset_time in the non-ideality spec"
        )
    return t


def _quantum_note(instrument, work: float, notes: list[str]) -> None:
    """Say so when the drive delivers less than one quantum ħω of the device's lowest mode:
    a classical model does not describe such a device (its numbers are a classical limit)."""
    from physim.instrument.bath import normal_modes

    try:
        omega = normal_modes(instrument.device, instrument.phys)[0]
    except np.linalg.LinAlgError:
        return  # no positive-definite mass matrix: no modes to compare with
    omega = omega[omega > 0]
    if omega.size and work < HBAR * omega.min():
        notes.append(
            f"the drive delivers {work / (HBAR * omega.min()):.2g} quanta ħω of the device's "
            f"lowest mode ({omega.min() / (2 * np.pi):.3g} Hz): a quantum regime this classical "
            "model does not describe — drive harder, or read these numbers as its classical limit"
        )


def energy_cost(
    instrument,
    used: Usage,
    *,
    work: float | None,
    work_returned: float | None,
    dissipated: float | None,
    compensation: float | None,
    n_steps: int,
    n_prepared: int,
    batch: int,
) -> EnergyCost:
    """The joules and seconds of one execution (see :class:`EnergyCost` for each part).

    ``work`` / ``work_returned`` / ``dissipated`` / ``compensation`` are in the device's energy
    unit (``None`` when it has none);
    ``n_steps`` counts the steps driven (each branch's), ``n_prepared`` the runs prepared,
    each for every trajectory of the ``batch``.
    """
    dev = instrument.device
    notes: list[str] = []
    unit = getattr(dev.family_kind, "energy_unit", None)
    if unit != "J" or work is None:
        reason = (
            f"device {dev.name!r} ({dev.family_kind.name}) has no energy unit: its H is "
            "dimensionless, so its drive work and loss have no joule scale"
            if unit is None
            else f"device {dev.name!r} states energies in {unit!r}, not joules"
        )
        notes.append(f"device energies unavailable: {reason}")
        work = work_returned = dissipated = compensation = None
    if work is not None and work > 0:
        _quantum_note(instrument, work, notes)
    converters, by = _converters(instrument, used, notes)
    espec = instrument.spec.energy
    flip = flip_time = 0.0 if used.n_flips == 0 else None
    if used.n_flips:
        if espec is not None and espec.flip_energy is not None:
            flip = used.n_flips * espec.flip_energy
        if espec is not None and espec.flip_latency is not None:
            flip_time = used.n_flips * espec.flip_latency
        if flip is None or flip_time is None:
            notes.append(
                "flip stage unavailable: give energy.flip_energy and energy.flip_latency in "
                "the non-ideality spec"
            )
    seconds = dev.units.get("t") == "s"
    drive_time = n_steps * batch * dev.dt if seconds else None
    if not seconds:
        notes.append(f"drive time unavailable: device {dev.name!r} counts time in steps")
    n_resets = n_prepared * batch
    reset = _reset_time(instrument, espec, notes)
    reset_time = n_resets * reset if reset is not None else None
    parts = (work, compensation, converters, flip)
    total = None if any(x is None for x in parts) else float(sum(parts))
    times = (drive_time, flip_time, reset_time)
    time = None if any(x is None for x in times) else float(sum(times))
    return EnergyCost(
        drive=work,
        drive_returned=work_returned,
        dissipated=dissipated,
        converters=converters,
        flip=flip,
        compensation=compensation,
        total=total,
        time=time,
        drive_time=drive_time,
        flip_time=flip_time,
        reset_time=reset_time,
        by_converter=by,
        n_conversions=used.n_conversions,
        n_writes=used.n_writes,
        n_flips=used.n_flips,
        n_resets=n_resets,
        notes=tuple(notes),
    )
