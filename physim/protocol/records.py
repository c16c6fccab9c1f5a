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
class ProtocolCost:
    """What a protocol execution cost on the hardware."""

    n_runs: int  # trajectories driven end to end (forward, each echo)
    n_steps: int
    drive_energy: float  # Σ ‖u‖² δ over every drive, input-unit² · s

    def as_dict(self) -> dict:
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
