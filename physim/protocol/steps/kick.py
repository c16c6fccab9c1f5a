"""``kick``: one momentum kick ±β·e_K by the error at the final forward state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from physim.gradients import error_signal
from physim.protocol.steps import STEPS, Step
from physim.spec_base import SpecModel


class KickStep(SpecModel):
    op: Literal["kick"]
    sign: Literal[1, -1] = Field(1, description="sign of the kick (times the branch's sign)")


@STEPS.register
class Kick(Step):
    """One momentum kick ±β·e_K by the error at the final forward state."""

    name = "kick"
    spec = KickStep

    @classmethod
    def check(cls, st, seq, where):
        if not seq.measured_forward:
            raise ValueError(
                f"{where}: a kick needs the error signal, which comes from a measured "
                "forward drive of the task earlier in the same run (drive with measure = "
                "'...' and every = 1)"
            )
        if not seq.flipped:
            raise ValueError(
                f"{where}: kick without a preceding flip; the nudge belongs to the echo, "
                "which starts from the flipped final state — add {op = 'flip'} before it"
            )
        seq.kick_sign = st.sign

    @classmethod
    def execute(cls, st, index, run):
        K = run.task.n_steps
        e_K = error_signal(run.device, run.dLdy, K, K + 1)[0]
        run.instrument.kick(e_K, st.sign * run.signs * run.beta)
        return []
