"""Analog-to-digital converters on the readouts (hook ``read``), one per target.

Always acting when present (a converter has no zero value); an absent ADC is ideal.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.instrument.sources.base import Level, NonNeg, Seed, Source, SpecModel, register_source

#: default Walden figure of merit, J per conversion step: the upper end of the 1-5 fJ of published
#: SAR ADCs below ~100 MS/s (B. Murmann, "ADC Performance Survey 1997-2024", Stanford,
#: github.com/bmurmann/ADC-survey); GS/s converters sit at ~10-50 fJ — a preset states its own
FOM_DEFAULT = 5e-15


class ADCSpec(SpecModel):
    """Analog-to-digital converter on every measurement of a kind of readout.

    ``readout``: trajectory readouts (positions, fluxes); ``accumulator``: the integrating
    readout of ∂H/∂θ. Additive Gaussian noise of ``noise_lsb`` LSB and, with ``dither``, uniform
    ±½ LSB dither are added before rounding. Codes outside ±(2^(bits−1) − 1) saturate (counted).
    Without ``full_scale`` each channel's range is the smallest power of two above ``headroom``
    times its largest magnitude at the first measurement of that record (a calibration shot),
    then fixed. Each value converted costs ``fom`` · 2^bits joules (the Walden figure of
    merit with the resolution as ENOB: an optimistic cost when noise lowers the ENOB).
    """

    kind: Literal["adc"]
    target: Literal["readout", "accumulator"] = Field(description="which records it digitises")
    bits: int = Field(ge=2, le=48, description="resolution, bits")
    full_scale: float | None = Field(
        None, gt=0, description="half range, in the measured quantity's unit"
    )
    headroom: float = Field(1.25, ge=1, description="auto range = headroom × largest value (1)")
    noise_lsb: NonNeg = Field(0.0, description="additive input noise std, LSB")
    dither: bool = Field(False, description="add uniform ±½ LSB dither before rounding")
    seed: Seed = Field(0, description="seed of the noise and dither stream")
    fom: NonNeg = Field(
        FOM_DEFAULT,
        description="Walden figure of merit: energy per conversion = fom · 2^bits, J per "
        "conversion step",
    )


_BITS = Level("bits", "bits", -1, 2, 40, integer=True)


@register_source
class ADCSource(Source):
    kind = "adc"
    spec_class = ADCSpec
    targets = ("readout", "accumulator")
    streams = {"readout": 5, "accumulator": 6}
    levels = {"readout": _BITS, "accumulator": _BITS}
    order = 90  # after every analog source on the signal path

    def __init__(self, spec: ADCSpec, instrument):
        super().__init__(spec, instrument)
        from physim.instrument.converters import ADC

        self.converter = ADC(spec)

    def read(self, target, name, reading):
        if target != self.spec.target:
            return reading
        return self.converter.read(name, reading.value)
