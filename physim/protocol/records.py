"""Measurement records: everything an estimator, a log or a plot may see of a protocol run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Record:
    """One measurement, as the controller received it.

    ``kind``: ``trajectory`` (value (n_samples, n_branches, batch, n_outputs) at state indices
    ``index``), ``accumulator`` (value (n_accumulators, n_w + n_B): integrated ∂H½/∂w then
    ∂H½/∂B flattened, times the integrator gain) or ``snapshot`` (value (n_branches, batch,
    n_outputs)). With an ADC, ``codes · lsb == value`` exactly.
    """

    name: str
    kind: Literal["trajectory", "accumulator", "snapshot"]
    step: int
    run: int
    value: np.ndarray
    unit: str
    index: np.ndarray | None = None
    codes: np.ndarray | None = None
    lsb: np.ndarray | None = None
    n_saturated: int = 0
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EnergyCost:
    """Energy (J) and physical time (s) of one protocol execution — one gradient update.

    Built by :func:`physim.protocol.energy.energy_cost`. A part that cannot be known is
    ``None`` with the reason in ``notes`` (a dimensionless device has no joules; a missing
    per-technology figure is not a zero); ``total`` and ``time`` are ``None`` when a part is.

    * ``drive``: work the drive delivers into the device, ∫ (B u)·q̇ dt, summed over each
      drive's trajectories that take energy in; ``drive_returned``: what the others give back
      (an echo returns the forward run's energy to its drive), not credited — a driver that
      is not regenerative dissipates it;
    * ``dissipated``: the device's friction loss during the runs, ∫ q̇ᵀ D q̇ dt (the energy
      left in it at the end of a run is lost at the reset, and is not in this number);
    * ``converters``: Σ over the modelled converters of uses × energy per use (ADC:
      ``fom`` · 2^bits per conversion; DAC: ``write_energy`` per value written), per
      converter in ``by_converter``;
    * ``flip``: flips of a trajectory × ``energy.flip_energy``;
    * ``compensation``: what the loss compensation of the echoes supplies (``dissipation``'s
      ``compensation`` c times the echoes' friction loss; 0 without);
    * ``total`` = drive + compensation + converters + flip (the dissipation is where the drive
      energy goes). The nudge kicks' ε-small energy and the thermal bath's exchange are not
      counted;
    * ``time`` = drive time (steps × batch × δ) + flips × ``flip_latency`` + resets ×
      the reset time, the trajectories of a batch and the branches run one after another.
    """

    drive: float | None
    drive_returned: float | None
    dissipated: float | None
    converters: float | None
    flip: float | None
    compensation: float | None
    total: float | None
    time: float | None
    drive_time: float | None
    flip_time: float | None
    reset_time: float | None
    by_converter: dict[str, float]
    n_conversions: dict[str, int]
    n_writes: dict[str, int]
    n_flips: int
    n_resets: int
    notes: tuple[str, ...] = ()

    #: the unit of each field of :meth:`as_dict`
    UNITS = {
        "drive": "J",
        "drive_returned": "J",
        "dissipated": "J",
        "converters": "J",
        "flip": "J",
        "compensation": "J",
        "total": "J",
        "time": "s",
        "drive_time": "s",
        "flip_time": "s",
        "reset_time": "s",
    }

    def as_dict(self) -> dict:
        """Plain numbers (``None`` where unavailable), counts and notes, for JSON."""
        out = {k: getattr(self, k) for k in self.UNITS}
        out.update(
            by_converter=dict(self.by_converter),
            n_conversions=dict(self.n_conversions),
            n_writes=dict(self.n_writes),
            n_flips=self.n_flips,
            n_resets=self.n_resets,
            units=dict(self.UNITS),
            notes=list(self.notes),
        )
        return out

    def describe(self) -> str:
        """The ``physim run`` block: ``energy per gradient update: … ; time … s``."""

        def j(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3e} J"

        t = "n/a" if self.time is None else f"{self.time:.3e} s"
        comp = f", loss compensation {j(self.compensation)}" if self.compensation else ""
        return (
            f"energy per gradient update: device drive {j(self.drive)}, dissipated "
            f"{j(self.dissipated)}{comp}, converters {j(self.converters)}, flip {j(self.flip)}, "
            f"total {j(self.total)}; time {t}"
        )


@dataclass(frozen=True)
class ProtocolCost:
    """What a protocol execution cost on the hardware."""

    n_runs: int  # trajectories driven end to end (forward, each echo)
    n_steps: int
    drive_energy: float  # Σ ‖u‖² δ over every drive, input-unit² · s
    #: joules and seconds of the execution (``None`` only where none was computed)
    energy: EnergyCost | None = None

    def as_dict(self) -> dict:
        """The counts and ``drive_energy`` (plain numbers); the joules are in ``energy``."""
        return {"n_runs": self.n_runs, "n_steps": self.n_steps, "drive_energy": self.drive_energy}


@dataclass(frozen=True)
class ProtocolResult:
    """Records of one protocol execution plus its bookkeeping (no simulator state)."""

    protocol: str
    records: tuple[Record, ...]
    cost: ProtocolCost
    theta: np.ndarray  # as written through the parameter DAC
    kick: float | None  # the nudge β
    loss: float | None  # loss of the first measured forward run (measured readout)
    n_saturated: dict[str, int]
    eps: float | None = None  # the nudge ε used (the calibrated one for eps = "auto")
    eps_calibration: dict | None = None  # eps = "auto": chosen value, reason, measurements

    def get(self, name: str) -> Record:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(f"no record {name!r}; records are {[r.name for r in self.records]}")
