"""Readout amplifier noise (hook ``read``, trajectory and snapshot readouts).

The first stage of the readout chain adds its input-referred noise to every measured readout
sample, before the readout ADC digitises it (``order`` 50: analog sources act before the
converters). The noise is white, one-sided density S (readout unit/√Hz) over the readout
bandwidth Δf, so each sample gets an independent Gaussian of std σ = S·√Δf.

Two ways to state S:

* ``density``: S in the device's readout unit per √Hz (Wb/√Hz for an LC network's node
  flux, m/√Hz for an oscillator network's position, 1/√(1/step) for an HRU). Any device.
* ``noise_temperature`` T_N with the ``impedance`` R_s the measured node presents to the
  amplifier and the signal ``frequency`` f: the amplifier's input-referred voltage noise is
  the Johnson noise of R_s at T_N, e_n = √(4 k_B T_N R_s) V/√Hz (that is the definition of a
  noise temperature: k_B·T_N·Δf of noise power into a matched load). A tone at f of node
  voltage V has node flux Φ = V/(2πf), so S = e_n/(2πf) Wb/√Hz. Only for a readout in Wb (an
  LC network's node flux); other units are refused with the fix (give ``density``). The flux
  equivalence holds at f: state the frequency of the modes the readout carries.

Bandwidth: Δf defaults to the Nyquist bandwidth of the integration step, 1/(2·dt); then
samples taken every step are independent (the draws are exact), and samples taken every k-th
step carry the aliased noise of the whole band (variance S²·Δf, still independent). A chain
with no anti-alias filter may state a wider ``bandwidth`` (more aliased noise per sample). A
narrower one is refused: band-limited noise is correlated between steps, which independent
draws would turn into a density understated by 2·Δf·dt; the chip responds to the density near
its own modes, which the default bandwidth gives exactly.

The accumulator readouts (analog integrators of ∂H/∂θ on the chip) do not pass through this
amplifier: their input noise is their ADC's ``noise_lsb``. The measured forward trajectory
does, and through it the error signal of the echo runs.

Zero value: ``density = 0`` and ``noise_temperature = 0``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from physim.instrument.sources.base import Level, NonNeg, Seed, Source, SpecModel, register_source
from physim.instrument.sources.dissipation import BOLTZMANN

#: the unit of a readout that a noise temperature can be referred to (node flux)
FLUX_UNIT = "Wb"
#: relative slack on the bandwidth ≥ 1/(2·dt) rule: a bandwidth written as 1/(2·dt) in decimal
#: may round below it by an ulp or two
_BANDWIDTH_SLACK = 1e-9


class AmplifierSpec(SpecModel):
    """Readout amplifier: input-referred white noise on every trajectory and snapshot sample.

    Give ``density`` (readout unit/√Hz) or ``noise_temperature`` (K, with ``impedance`` and
    ``frequency``; LC networks only), not both; per-sample std = density × √bandwidth.
    """

    kind: Literal["amplifier"]
    density: NonNeg = Field(
        0.0,
        description="input-referred noise density S (one-sided; Wb/√Hz for an LC network, "
        "m/√Hz for an oscillator network), readout unit/√Hz",
    )
    noise_temperature: NonNeg = Field(
        0.0,
        description="noise temperature T_N (e_n = √(4 k_B T_N R_s), S = e_n/(2π f); readout "
        "in Wb only), K",
    )
    impedance: float | None = Field(
        None, gt=0, description="source resistance R_s the node presents to the amplifier, Ω"
    )
    frequency: float | None = Field(
        None, gt=0, description="signal frequency f at which node voltage = 2π f × node flux, Hz"
    )
    bandwidth: float | None = Field(
        None,
        gt=0,
        description="noise bandwidth Δf (default and least: 1/(2·dt); 1/step for HRUs), Hz",
    )
    seed: Seed = Field(0, description="seed of the amplifier-noise stream")

    @model_validator(mode="after")
    def _one_way(self) -> AmplifierSpec:
        if self.density > 0 and self.noise_temperature > 0:
            raise ValueError(
                f"give density ({self.density:g}) or noise_temperature "
                f"({self.noise_temperature:g} K), not both; one of them must be 0"
            )
        if self.noise_temperature > 0:
            missing = [f for f in ("impedance", "frequency") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    f"noise_temperature = {self.noise_temperature:g} K needs "
                    f"{' and '.join(missing)} to refer it to the node flux (e.g. impedance = "
                    "50.0 for a matched 50 Ω line, frequency = the readout mode's frequency in "
                    "Hz), or give density in the readout unit/√Hz instead"
                )
        return self


def flux_density(noise_temperature: float, impedance: float, frequency: float) -> float:
    """Flux-equivalent noise density S = √(4 k_B T_N R_s)/(2π f), Wb/√Hz."""
    return math.sqrt(4.0 * BOLTZMANN * noise_temperature * impedance) / (2.0 * math.pi * frequency)


#: the budget's knob: the density, in the readout's own unit, so the bounds span Wb/√Hz
#: (~1e-21 for a superconducting node) to 1/√step (an HRU)
_DENSITY = Level("density", "readout unit/√Hz", +1, 1e-40, 1e10)


@register_source
class Amplifier(Source):
    kind = "amplifier"
    spec_class = AmplifierSpec
    streams = {"": 7}
    levels = {"": _DENSITY}
    order = 50  # an analog source: before the readout ADC

    def __init__(self, spec: AmplifierSpec, instrument):
        super().__init__(spec, instrument)
        self.rng = np.random.default_rng(spec.seed)
        dev = instrument.device
        unit = dev.units.get("y", "")
        nyquist = 1.0 / (2.0 * dev.dt)
        tunit = dev.units.get("t", "s")
        fu = "Hz" if tunit == "s" else f"1/{tunit}"
        root = fu if tunit == "s" else f"({fu})"
        if spec.bandwidth is not None and spec.bandwidth < nyquist * (1.0 - _BANDWIDTH_SLACK):
            raise ValueError(
                f"amplifier.bandwidth = {spec.bandwidth:g} {fu} is below the step's Nyquist "
                f"bandwidth 1/(2·dt) = {nyquist:g} {fu} of device {dev.name!r}: band-limited "
                "noise is correlated between steps, which this source does not model; omit "
                "bandwidth (white over 1/(2·dt): the density near the chip's modes is exact)"
            )
        if spec.noise_temperature > 0 and unit != FLUX_UNIT:
            raise ValueError(
                f"amplifier.noise_temperature = {spec.noise_temperature:g} K cannot be referred "
                f"to device {dev.name!r}'s readout, which is in {unit or 'no unit'!r}, not node "
                f"flux in {FLUX_UNIT}; give amplifier.density in {unit or '1'}/√{root} instead"
            )
        #: the noise bandwidth Δf in the device's inverse time unit
        self.bandwidth = spec.bandwidth if spec.bandwidth is not None else nyquist
        #: the input-referred density S in the readout unit/√(time unit⁻¹)
        self.density = (
            flux_density(spec.noise_temperature, spec.impedance, spec.frequency)
            if spec.noise_temperature > 0
            else spec.density
        )
        #: per-sample noise std σ = S·√Δf, readout unit
        self.std = self.density * math.sqrt(self.bandwidth)

    @classmethod
    def is_zero(cls, spec: AmplifierSpec) -> bool:
        return spec.density == 0.0 and spec.noise_temperature == 0.0

    @classmethod
    def level_of(cls, spec: AmplifierSpec) -> Level:
        if spec.noise_temperature > 0:
            return Level("noise_temperature", "K", +1, 1e-6, 1e9)
        return _DENSITY

    def read(self, target, name, reading):
        if target != "readout":
            return reading
        x = reading.value
        noisy = x + self.std * self.rng.standard_normal(x.shape)
        return replace(reading, value=noisy)
