"""``prepare``: start a physical run (one branch) from the device's state, zero, a thermal
state or a given state."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from physim.protocol.steps import STEPS, Step
from physim.spec_base import SpecModel


class PrepareStep(SpecModel):
    op: Literal["prepare"]
    state: Literal["device", "zero", "thermal", "given"] = Field(
        "device", description="initial state of the run"
    )
    temperature: float | None = Field(
        None,
        ge=0,
        description="thermal state temperature (default: the bath's), a quantum state where "
        "ħω ≳ k_BT (mode energies (ħω/2)·coth(ħω/2k_BT): see the dissipation source's quantum "
        "field), K",
    )
    q: list[float] | None = Field(None, description="given positions, device position unit")
    p: list[float] | None = Field(None, description="given momenta, device momentum unit")

    @model_validator(mode="after")
    def _given(self) -> PrepareStep:
        if (self.state == "given") != (self.q is not None and self.p is not None):
            raise ValueError("state = 'given' needs both q and p (and only then are they used)")
        return self


@STEPS.register
class Prepare(Step):
    """Start a physical run (one branch) from the device's state, zero, thermal or given."""

    name = "prepare"
    spec = PrepareStep

    @classmethod
    def check(cls, st, seq, where):
        seq.new_run()

    @classmethod
    def allocate(cls, st, mem):
        mem.branches = 1

    @classmethod
    def execute(cls, st, index, run):
        run.instrument.prepare(st.state, run.task.batch, temperature=st.temperature, q=st.q, p=st.p)
        run.signs = np.ones(1)
        run.dLdy = None
        run.n_prepared += 1
        run.run = run.n_prepared
        return []
