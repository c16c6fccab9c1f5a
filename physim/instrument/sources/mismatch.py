"""Device-to-device spread, drawn once when the chip is built (hook ``physics``).

Zero value: no spread of either the element values or the input matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from physim.instrument.sources.base import Level, NonNeg, Seed, Source, SpecModel, register_source


class MismatchSpec(SpecModel):
    """Device-to-device spread: each element value is multiplied by (1 + relative_dtod · ξ).

    Drawn once when the instrument is built (the chip is made once) and frozen thereafter.
    """

    kind: Literal["mismatch"]
    relative_dtod: NonNeg = Field(
        0.0, description="relative std of every Hamiltonian element value (1)"
    )
    input_dtod: NonNeg = Field(0.0, description="relative std of every input-matrix entry (1)")
    seed: Seed = Field(0, description="seed of the fabrication draw")


@register_source
class Mismatch(Source):
    kind = "mismatch"
    spec_class = MismatchSpec
    streams = {"": 1}
    levels = {"": Level("relative_dtod", "relative std (1)", +1, 1e-6, 0.2)}
    spice = frozenset({""})  # the instance's element values and source gains
    order = 10

    def __init__(self, spec: MismatchSpec, instrument):
        super().__init__(spec, instrument)
        device = instrument.device
        # the fabrication draw: element factors first, then input-matrix factors
        rng = np.random.default_rng(spec.seed)
        self.w_factor = 1.0 + spec.relative_dtod * rng.standard_normal(device.w_base.shape)
        self.B_factor = 1.0 + spec.input_dtod * rng.standard_normal(device.B_base.shape)

    @classmethod
    def is_zero(cls, spec: MismatchSpec) -> bool:
        return spec.relative_dtod == 0.0 and spec.input_dtod == 0.0

    def physics(self, w, B):
        w_new = w * self.w_factor if np.any(self.w_factor != 1.0) else None
        B_new = B * self.B_factor if np.any(self.B_factor != 1.0) else None
        return w_new, B_new
