"""Imperfect momentum reversal (hook ``flip``). Zero value: every error and jitter 0."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from physim.instrument.sources.base import Level, NonNeg, Seed, Source, SpecModel, register_source

#: the knob the budget turns: the first nonzero of these fields (unit), else gain_std
_FLIP_FIELDS = (("timing_error", "s"), ("timing_std", "s"), ("gain_error", "1"), ("gain_std", "1"))


class FlipErrorSpec(SpecModel):
    """Imperfect momentum reversal: p ← −(1 + g) p, applied τ late (τ < 0: early).

    The timing error lets the device evolve freely for τ before the flip.
    """

    kind: Literal["flip_error"]
    gain_error: float = Field(0.0, gt=-1, description="systematic relative flip gain error g (1)")
    gain_std: NonNeg = Field(0.0, description="per-flip random gain error std (1)")
    timing_error: float = Field(0.0, description="systematic flip delay τ, s")
    timing_std: NonNeg = Field(0.0, description="per-flip timing jitter std, s")
    seed: Seed = Field(0, description="seed of the flip-error stream")


@register_source
class FlipError(Source):
    kind = "flip_error"
    spec_class = FlipErrorSpec
    streams = {"": 4}

    def __init__(self, spec: FlipErrorSpec, instrument):
        super().__init__(spec, instrument)
        self.rng = np.random.default_rng(spec.seed)

    @classmethod
    def is_zero(cls, spec: FlipErrorSpec) -> bool:
        return all(getattr(spec, f) == 0.0 for f, _ in _FLIP_FIELDS)

    @classmethod
    def level_of(cls, spec: FlipErrorSpec) -> Level:
        for name, unit in _FLIP_FIELDS:
            if getattr(spec, name) != 0.0:
                return Level(name, unit, +1, 1e-15 if unit == "s" else 1e-9, 1.0)
        return Level("gain_std", "1", +1, 1e-9, 1.0)

    def flip(self) -> float:
        spec, inst = self.spec, self.instrument
        tau = spec.timing_error + (spec.timing_std * self.rng.standard_normal())
        gain = spec.gain_error + (spec.gain_std * self.rng.standard_normal())
        if tau != 0.0:
            # the flip comes τ late: one free leapfrog step of length τ (undriven)
            for t in range(inst.n_branches):
                inst._free_step(inst.Q[t], inst.P[t], tau)
        return 1.0 + gain
