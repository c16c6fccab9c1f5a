"""Dissipation and thermal noise: a linear loss (finite Q) with its Langevin bath at T.

Hooks: ``built`` (the O-step matrices of :mod:`physim.instrument.bath` for the chip's element
values); the drive chunks run the Langevin splitting with this source's own noise stream
(:meth:`~physim.instrument.hardware.Instrument.run`), and a thermal ``prepare`` draws from the
Gibbs state at its temperature. Zero value: no loss and T = 0.

Quantum bath: where a mode's ħω is not small against k_BT (a 5 GHz mode at 20 mK has
ħω/k_BT ≈ 12), the noise and the thermal state carry the quantum mean energy per normal mode,
E(ω, T) = (ħω/2)·coth(ħω/2k_BT), zero point included, instead of k_BT — a Markovian
(semiclassical) approximation; see :mod:`physim.instrument.bath` and the ``quantum`` field.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from physim.instrument.sources.base import (
    InfFloat,
    Level,
    NonNeg,
    Seed,
    Source,
    SpecModel,
    register_source,
)

BOLTZMANN = 1.380649e-23  # J/K
#: smallest quality factor: Q = 0.5 is critical damping, and below 1e-3 a mode loses its
#: energy within 1/6000 of a period — a resistor, not a resonator (and exp(−ωh/Q) underflows)
Q_MIN = 1e-3
#: 'auto' switches the quantum bath on above this max ħω/k_BT. Below it the classical bath
#: understates a mode's energy by at most x²/12 ≈ 8e-4 (relative), which an equipartition
#: measurement resolves at one standard error only from ~1.4e6 independent samples of that
#: mode's energy (an exponential variable: relative error 1/√n); 4.2 K devices (x ≈ 0.06 at
#: 5 GHz) and room temperature stay on the classical arithmetic, bit for bit
QUANTUM_THRESHOLD = 0.1


class DissipationSpec(SpecModel):
    """Linear loss with thermal (Johnson–Nyquist / Langevin) noise at temperature T.

    Friction acts on velocities: dp = −D M⁻¹ p dt + √(2 k_B T) D^½ dW, with M the kinetic mass
    matrix (T = ½ pᵀM⁻¹p; capacitances for LC networks). Give either ``quality_factor`` (per
    normal mode of the device linearised at q = 0, modes sorted by ascending frequency; energy
    decays as exp(−ω t / Q)) or ``damping_rate`` γ per degree of freedom (D = diag(γ_i M_ii);
    for an LC node this is a shunt conductance G = γ C to ground).

    ``quantum`` chooses the fluctuation spectrum: classical (k_B T per mode) or the Markovian
    quantum bath ((ħω/2)·coth(ħω/2k_BT) per normal mode; see :mod:`physim.instrument.bath`).
    """

    # Q = inf is a valid (lossless) mode; JSON must carry it as Infinity to round-trip
    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=False
    )

    kind: Literal["dissipation"]
    quality_factor: InfFloat | list[InfFloat] | None = Field(
        None,
        description=f"quality factor Q = ω/γ per mode (1), Q >= {Q_MIN:g}; inf = a lossless mode; "
        "a scalar applies to every mode",
    )
    damping_rate: float | list[float] | None = Field(
        None, description="damping rate γ per degree of freedom, 1/s (1/step for HRUs)"
    )
    temperature: NonNeg = Field(0.0, description="bath temperature T, K")
    boltzmann: float = Field(
        BOLTZMANN,
        gt=0,
        description="k_B, J/K; set 1 for dimensionless devices so that T is an energy",
    )
    compensation: float = Field(
        0.0,
        ge=0,
        le=2,
        description="loss compensation during the echo (1): a gain stage makes the echo's net "
        "damping (1 − c)·D; c = 1 makes the echo lossless, c = 2 runs it anti-damped",
    )
    quantum: Literal["auto", "on", "off"] = Field(
        "auto",
        description="quantum or classical fluctuation spectrum of the bath and of a thermal "
        "preparation; 'off' gives every mode k_B T (classical); 'on' gives normal mode i the "
        "quantum mean energy "
        "(ħω_i/2)·coth(ħω_i/2k_BT), zero point included (also at T = 0), and needs a device in "
        "SI units (energy in J) and the loss as quality_factor; 'auto' is 'on' when the device "
        f"is in SI units, T > 0 and max ħω/k_BT > {QUANTUM_THRESHOLD:g}, "
        "else 'off' — bit for bit the classical bath",
    )
    seed: Seed = Field(0, description="seed of the thermal-noise stream")

    @model_validator(mode="after")
    def _one_of(self) -> DissipationSpec:
        if (self.quality_factor is None) == (self.damping_rate is None):
            raise ValueError(
                "give exactly one of quality_factor (per mode) or damping_rate (per dof), "
                f"got quality_factor={self.quality_factor!r}, damping_rate={self.damping_rate!r}"
            )
        vals = self.quality_factor if self.quality_factor is not None else self.damping_rate
        vals = vals if isinstance(vals, list) else [vals]
        name = "quality_factor" if self.quality_factor is not None else "damping_rate"
        for v in vals:
            if name == "quality_factor" and not v >= Q_MIN:
                raise ValueError(
                    f"{name} must be >= {Q_MIN:g} (a mode damped within a fraction of its period "
                    f"is no oscillator; use 'inf' for a lossless mode), got {v}"
                )
            if name == "damping_rate" and not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        if self.quantum == "on" and self.damping_rate is not None:
            raise ValueError(
                "quantum = 'on' needs the loss per normal mode (quality_factor): a damping_rate "
                "per dof couples modes of different quantum energy, which no white noise "
                "reproduces; give quality_factor, or quantum = 'off' for the classical bath"
            )
        return self


#: the second knob of a dissipation source: its bath temperature (thermal noise)
TEMPERATURE = Level("temperature", "K", +1, 1e-4, 1e12)


@register_source
class Dissipation(Source):
    kind = "dissipation"
    spec_class = DissipationSpec
    streams = {"": 2}
    levels = {"": Level("quality_factor", "Q (1)", -1, 1.0, 1e8)}
    spice = frozenset({""})  # resistors realising the loss conductance matrix, with their noise

    def __init__(self, spec: DissipationSpec, instrument):
        super().__init__(spec, instrument)
        dev = instrument.device
        unit = getattr(dev.family_kind, "energy_unit", None)
        if spec.temperature > 0 and unit != "J" and spec.boltzmann == BOLTZMANN:
            # k_B in J/K on a device whose H has no joule scale: the noise would be ~1e-21
            # of its signals, silently nothing
            raise ValueError(
                f"dissipation.temperature = {spec.temperature:g} K on device {dev.name!r}, whose "
                "energy has no joule scale (a dimensionless HRU): the thermal noise needs one; "
                "set dissipation.boltzmann = k_B / E_unit, E_unit the joules of one unit of the "
                "device's energy (e.g. ½·C·V_fs² of a mode read at full scale V_fs), or 1 to "
                "give the temperature as an energy in the device's own unit"
            )
        self.rng = np.random.default_rng(spec.seed)
        self.bath = None

    @classmethod
    def is_zero(cls, spec: DissipationSpec) -> bool:
        if spec.temperature != 0.0:
            return False
        if spec.quality_factor is not None:
            vals = (
                spec.quality_factor
                if isinstance(spec.quality_factor, list)
                else [spec.quality_factor]
            )
            return all(math.isinf(v) for v in vals)
        vals = spec.damping_rate if isinstance(spec.damping_rate, list) else [spec.damping_rate]
        return all(v == 0.0 for v in vals)

    @classmethod
    def extra_levels(cls, spec: DissipationSpec) -> list[Level]:
        return [TEMPERATURE] if spec.temperature > 0 else []

    def built(self, phys) -> None:
        from physim.instrument.bath import build_bath

        self.bath = build_bath(self.instrument.device, phys, self.spec)

    def spice_values(self) -> dict:
        # the loss as the conductance matrix D of resistors, with its thermal noise
        from physim.instrument.bath import friction_matrix

        inst = self.instrument
        if self.bath is not None and self.bath.mode_energy is not None:
            # a resistor's trnoise is white at 4kT/R: it cannot carry E(ω, T) per mode
            raise ValueError(
                f"the SPICE export realises the classical Johnson noise of the loss only; this "
                f"bath is quantum (max ħω/k_BT = {self.bath.quantum_ratio:.3g}, noise "
                "(ħω/2)·coth(ħω/2k_BT) per mode); set quantum = 'off' on the dissipation source "
                "to export the classical bath, or temperature = 0"
            )
        D = friction_matrix(inst.device, inst.phys, self.spec)
        return {"D": D, "kT": inst.kT, "noise_seed": self.spec.seed}

    @property
    def lossy(self) -> bool:
        return self.bath is not None and not self.bath.lossless
