"""The arithmetic of the simulation itself (the instrument's state dtype and integrator
variant, read by :class:`~physim.instrument.hardware.Instrument`). Zero value: float64."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.instrument.sources.base import Source, SpecModel, register_source


class NumericsSpec(SpecModel):
    """Arithmetic of the simulation itself (separates round-off from physics).

    ``float32``: states, parameters and drive are stored in single precision. ``fixed_point``:
    bit-reversible integer leapfrog (Levesque–Verlet style): q and p live on integer grids of
    step ``max|x| · 2^−fraction_bits`` (max over an ideal calibration run of the task).
    """

    kind: Literal["numerics"]
    mode: Literal["float64", "float32", "fixed_point"] = Field(
        "float64", description="arithmetic of the state"
    )
    fraction_bits: int = Field(
        40, ge=8, le=52, description="fixed point: grid steps per largest magnitude, bits"
    )


@register_source
class Numerics(Source):
    kind = "numerics"
    spec_class = NumericsSpec

    @classmethod
    def is_zero(cls, spec: NumericsSpec) -> bool:
        return spec.mode == "float64"

    @classmethod
    def check(cls, spec: NumericsSpec, nonideal) -> None:
        if spec.mode == "fixed_point" and nonideal.get("dissipation") is not None:
            raise ValueError(
                "numerics.mode = 'fixed_point' is a bit-reversible model of the ideal "
                "integrator; remove the dissipation source or use float64/float32"
            )
