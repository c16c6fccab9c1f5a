"""Digital-to-analog converters on the programmed parameters (hook ``program``) and on the
drive and nudges (hook ``drive``). Always acting when present; an absent DAC is ideal."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.instrument.sources.base import Level, NonNeg, Source, SpecModel, register_source

#: default energy of one DAC write, J: charging a ~1 pF capacitive DAC array through 1 V (C·V²,
#: an estimate for a static trim/programming DAC); a preset states its own
WRITE_ENERGY_DEFAULT = 1e-12


class DACSpec(SpecModel):
    """Digital-to-analog converter on programmed parameters or on the drive (and nudges).

    Uniform mid-tread quantiser with 2^bits codes over [−full_scale, full_scale]; values
    outside saturate (counted). Without ``full_scale`` the range of each parameter group (or
    input channel) is the smallest power of two above ``headroom`` times its largest magnitude
    at the first programming. Each value written costs ``write_energy`` joules (parameters:
    every entry of θ at each programming; drive: every input sample of every run).
    """

    kind: Literal["dac"]
    target: Literal["parameters", "drive"] = Field(description="what the DAC writes")
    bits: int = Field(ge=1, le=48, description="resolution, bits")
    full_scale: float | None = Field(
        None, gt=0, description="half range, in the unit of the target (θ or input unit)"
    )
    headroom: float = Field(2.0, ge=1, description="auto range = headroom × largest value (1)")
    write_energy: NonNeg = Field(
        WRITE_ENERGY_DEFAULT, description="energy of writing one value (one code), J"
    )


_BITS = Level("bits", "bits", -1, 2, 40, integer=True)


@register_source
class DACSource(Source):
    kind = "dac"
    spec_class = DACSpec
    targets = ("parameters", "drive")
    levels = {"parameters": _BITS, "drive": _BITS}
    spice = frozenset({"parameters"})  # the programmed (quantised) element values
    order = 90

    def __init__(self, spec: DACSpec, instrument):
        super().__init__(spec, instrument)
        from physim.instrument.converters import DAC

        self.converter = DAC(spec)

    def program(self, theta, groups):
        return self.converter.write(theta, groups) if self.spec.target == "parameters" else theta

    def drive(self, u):
        return self.converter.write(u) if self.spec.target == "drive" else u
