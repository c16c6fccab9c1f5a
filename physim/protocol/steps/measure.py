"""``measure``: one snapshot of the readout now."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.protocol.records import Record
from physim.protocol.steps import STEPS, Step
from physim.simulate import readout
from physim.spec_base import SpecModel


class MeasureStep(SpecModel):
    op: Literal["measure"]
    name: str = Field(min_length=1, description="snapshot record name")


@STEPS.register
class Measure(Step):
    """One snapshot of the readout now."""

    name = "measure"
    spec = MeasureStep

    @classmethod
    def check(cls, st, seq, where):
        if st.name in seq.records:
            raise ValueError(f"{where}: record name {st.name!r} is used twice")
        seq.records.add(st.name)

    @classmethod
    def execute(cls, st, index, run):
        inst, dev = run.instrument, run.device
        y = readout(dev, inst.Q)
        rd = inst.read("readout", st.name, y)
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
                {"signs": run.signs.tolist()},
            )
        ]
