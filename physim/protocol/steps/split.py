"""``split``: copy the state into parallel branches with nudge signs (a simulation
idealisation: a chip cannot be copied)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from physim.protocol.steps import STEPS, Step
from physim.spec_base import SpecModel


class SplitStep(SpecModel):
    op: Literal["split"]
    signs: list[Literal[1, -1]] = Field(
        default_factory=lambda: [1, -1], min_length=2, description="nudge sign of each branch"
    )


@STEPS.register
class Split(Step):
    """Copy the state into parallel branches with nudge signs (a simulation idealisation)."""

    name = "split"
    spec = SplitStep

    @classmethod
    def check(cls, st, seq, where):
        if seq.split_done:
            raise ValueError(f"{where}: the state is already split in this run")
        seq.split_done = True

    @classmethod
    def allocate(cls, st, mem):
        mem.branches = len(st.signs)

    @classmethod
    def execute(cls, st, index, run):
        run.instrument.split(len(st.signs))
        run.signs = np.asarray(st.signs, dtype=np.float64)
        return []
