"""A protocol step from outside physim: ``probe`` reads the readout now, like ``measure``,
and records the instrument's total energy beside it (registered by entry point)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.protocol.records import Record
from physim.protocol.steps import Step
from physim.simulate import readout
from physim.spec_base import SpecModel


class ProbeStep(SpecModel):
    op: Literal["probe"]
    name: str = Field(min_length=1, description="record name")


class Probe(Step):
    name = "probe"
    spec = ProbeStep

    @classmethod
    def check(cls, st, seq, where):
        if st.name in seq.records:
            raise ValueError(f"{where}: record name {st.name!r} is used twice")
        seq.records.add(st.name)

    @classmethod
    def execute(cls, st, index, run):
        inst, dev = run.instrument, run.device
        rd = inst.read("readout", st.name, readout(dev, inst.Q))
        meta = {"signs": run.signs.tolist(), "probe": True}
        return [
            Record(
                st.name,
                "snapshot",
                index,
                run.run,
                rd.value,
                dev.units.get("y", ""),
                None,
                rd.codes,
                rd.lsb,
                rd.n_saturated,
                meta,
            )
        ]
