"""``flip``: reverse the momenta."""

from __future__ import annotations

from typing import Literal

from physim.protocol.steps import STEPS, Step
from physim.spec_base import SpecModel


class FlipStep(SpecModel):
    op: Literal["flip"]


@STEPS.register
class Flip(Step):
    """Reverse the momenta."""

    name = "flip"
    spec = FlipStep

    @classmethod
    def check(cls, st, seq, where):
        seq.flipped = not seq.flipped

    @classmethod
    def execute(cls, st, index, run):
        run.instrument.flip()
        return []
