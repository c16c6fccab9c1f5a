"""``drive``: apply an input forward in time or replayed in reverse, with the readouts it
carries (``measure``: trajectory readout; ``integrate``: integrating readout of ∂H½/∂θ) and the
nudge of an echo (``nudge``: kick ±β·e_k after each step)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from physim import memory
from physim.gradients import error_bound
from physim.protocol.records import Record
from physim.protocol.steps import STEPS, Step
from physim.rangecheck import check_drive_range
from physim.rhel import nudge_factor
from physim.spec_base import SpecModel

if TYPE_CHECKING:
    from physim.instrument.hardware import Instrument
    from physim.protocol.task import Task


class IntegrateSpec(SpecModel):
    """Integrating readout: one accumulator of ∂H½/∂θ per parameter, read once at the end.

    ``gain`` sets the integrator's output gain so that it reads in gradient units:
    ``centred`` −δ·s/(2β), ``one_sided`` −δ·s/β (s = ``sign`` × the branch's sign), ``unit`` 1.
    ``combine = "differential"`` integrates Σ_branches sign·∂H½/∂θ in one accumulator.
    """

    name: str = Field(min_length=1, description="record name")
    gain: Literal["centred", "one_sided", "unit"] = Field("centred", description="output gain")
    sign: Literal[1, -1] = Field(1, description="extra sign of the gain")
    combine: Literal["branches", "differential"] = Field(
        "branches", description="one accumulator per branch, or one differential accumulator"
    )


class DriveStep(SpecModel):
    op: Literal["drive"]
    direction: Literal["forward", "reverse"] = Field("forward", description="time direction")
    input: Literal["task", "zero", "impulse", "step"] = Field("task", description="drive signal")
    amplitude: float = Field(1.0, description="impulse/step amplitude, input units")
    channel: int = Field(0, ge=0, description="input channel of an impulse or step")
    n_steps: int | None = Field(
        None, ge=1, description="length of a non-task drive, steps (default: the task's)"
    )
    nudge: bool = Field(False, description="kick ±β·e_k after each echo step (reverse only)")
    sign: Literal[1, -1] = Field(1, description="sign of the nudge (times the branch's sign)")
    measure: str | None = Field(None, description="trajectory readout record name")
    every: int = Field(1, ge=1, description="trajectory readout sampling, steps")
    integrate: IntegrateSpec | None = Field(None, description="integrating readout")


def _drive_signal(inst: Instrument, st: DriveStep, task: Task, u_task: np.ndarray) -> np.ndarray:
    if st.input == "task":
        return u_task
    dev = inst.device
    n = st.n_steps or task.n_steps
    u = np.zeros((n, task.batch, dev.n_inputs))
    if st.input in ("impulse", "step"):
        if dev.n_inputs == 0:
            warnings.warn(
                f"device {dev.name!r} has no input channels: the {st.input} drive runs undriven "
                "and records the free response from the prepared state",
                stacklevel=4,
            )
            return u
        if st.channel >= dev.n_inputs:
            raise ValueError(
                f"drive input = {st.input!r} on channel {st.channel}, but device {dev.name!r} "
                f"has {dev.n_inputs} input channel(s); pick a channel from 0 to "
                f"{dev.n_inputs - 1} or another protocol"
            )
        if st.input == "impulse":
            u[0, :, st.channel] = st.amplitude
        else:
            u[:, :, st.channel] = st.amplitude
    return inst.write_drive(u)


def _integrator_gain(kind: str, sign: float, dt: float, beta: float) -> float:
    if kind == "unit":
        return 1.0
    denom = 2.0 if kind == "centred" else 1.0
    return -dt * sign / (denom * beta)


@STEPS.register
class Drive(Step):
    """Apply an input forward or replayed in reverse, with optional readouts and nudges."""

    name = "drive"
    spec = DriveStep

    @classmethod
    def check(cls, st, seq, where):
        if st.input == "task" and st.n_steps is not None:
            raise ValueError(f"{where}: n_steps is the task's for input = 'task'; remove it")
        if st.direction == "reverse":
            if not seq.flipped:
                raise ValueError(
                    f"{where}: echo (reverse drive) without a preceding flip; replaying the "
                    "drive backwards only retraces the forward run after the momenta are "
                    "reversed — add {op = 'flip'} before it"
                )
            if not seq.forward_done:
                raise ValueError(
                    f"{where}: a reverse drive replays a forward drive of the task, but "
                    "there is none earlier in this run"
                )
            if st.input != "task":
                raise ValueError(f"{where}: a reverse drive replays the task; set input = 'task'")
        if st.nudge:
            if st.direction != "reverse":
                raise ValueError(
                    f"{where}: nudge = true is only meaningful in an echo (direction = 'reverse')"
                )
            if not seq.measured_forward:
                raise ValueError(
                    f"{where}: nudging needs the error signal of a measured forward drive "
                    "(measure = '...', every = 1) earlier in this run"
                )
            if seq.kick_sign is not None and seq.kick_sign != st.sign:
                raise ValueError(
                    f"{where}: the echo is nudged with sign {st.sign} but was kicked with "
                    f"sign {seq.kick_sign}; one echo has one nudge sign — make them equal"
                )
        if st.integrate is not None:
            if st.integrate.combine == "differential" and not seq.split_done:
                raise ValueError(
                    f"{where}: a differential integrator combines parallel branches; add "
                    "{op = 'split'} before it or use combine = 'branches'"
                )
            if st.integrate.name in seq.accumulators | seq.records:
                raise ValueError(f"{where}: record name {st.integrate.name!r} is used twice")
            seq.accumulators.add(st.integrate.name)
        if st.measure is not None:
            if st.measure in seq.records | seq.accumulators:
                raise ValueError(f"{where}: record name {st.measure!r} is used twice")
            seq.records.add(st.measure)
        if st.direction == "forward" and st.input == "task":
            if seq.flipped:
                raise ValueError(
                    f"{where}: a forward task drive after a flip runs the device backwards "
                    "in time; prepare a new run first"
                )
            seq.forward_done = True
            if st.measure is not None and st.every == 1:
                seq.measured_forward = True

    @classmethod
    def allocate(cls, st, mem):
        task = mem.task
        n = st.n_steps or task.n_steps
        nb = task.batch
        mem.total += memory.floats((n, nb, mem.n_inputs)) if st.input != "task" else 0
        if st.measure:
            mem.total += 2 * memory.floats((n // st.every, mem.branches, nb, mem.n_outputs))

    @classmethod
    def execute(cls, st, index, run):
        from physim.protocol.checks import check_error_resolution  # checks imports the specs

        inst, dev, task = run.instrument, run.device, run.task
        u = _drive_signal(inst, st, task, run.u_task)
        reverse = st.direction == "reverse"
        integ = st.integrate
        combine = integ.combine if integ else None
        signs, beta = run.signs, run.beta
        gains = weights = None
        deferred = False
        if integ is not None:
            if integ.gain != "unit" and beta is None:
                deferred = True  # β is known only once this forward run has been measured
            elif combine == "differential":
                weights = signs
                gains = np.array([_integrator_gain(integ.gain, integ.sign, dev.dt, beta)])
            else:
                gains = np.array(
                    [
                        _integrator_gain(integ.gain, integ.sign * s, dev.dt, beta or 1.0)
                        for s in signs
                    ]
                )
        out = inst.run(
            u,
            reverse=reverse,
            error=run.dLdy if (reverse and st.nudge) else None,
            kicks=st.sign * signs * beta if (reverse and st.nudge) else None,
            integrate=combine,
            weights=weights,
            gains=gains,
            sample_every=st.every if st.measure else 0,
            readout=dev.readout,
        )
        run.energy += out.drive_energy
        if out.work is not None:
            # a trajectory whose drive takes energy back (an echo returns the forward run's)
            # is not credited: a driver that is not regenerative dissipates it
            run.work = (run.work or 0.0) + float(np.maximum(out.work, 0.0).sum())
            run.work_returned = (run.work_returned or 0.0) + float(np.maximum(-out.work, 0.0).sum())
            run.dissipated = (run.dissipated or 0.0) + out.dissipated
            # an echo's gain stage cancels c times the loss: it supplies c · the friction loss
            c = inst.diss.compensation if (reverse and inst.lossy) else 0.0
            run.compensation = (run.compensation or 0.0) + c * out.dissipated
        if not run.range_checked and st.input == "task" and not reverse:
            check_drive_range(dev, inst.Q, u)
            run.range_checked = True
        run.n_steps += u.shape[0] * inst.n_branches
        # a physical run is one trajectory driven end to end: lockstep branches each count
        run.n_runs += inst.n_branches
        new: list[Record] = []
        if st.measure:
            rd = inst.read("readout", st.measure, out.samples)
            new.append(
                Record(
                    st.measure,
                    "trajectory",
                    index,
                    run.run,
                    rd.value,
                    dev.units.get("y", ""),
                    out.sample_index,
                    rd.codes,
                    rd.lsb,
                    rd.n_saturated,
                    {
                        "direction": st.direction,
                        "input": st.input,
                        "every": st.every,
                        "signs": signs.tolist(),
                        "dt": dev.dt,
                    },
                )
            )
            if st.input == "task" and not reverse and st.every == 1:
                y = rd.value[:, 0]
                if run.loss_value is None:
                    # one pass for both, as the twin forms them (physim.rhel.rhel_gradient)
                    run.loss_value, run.dLdy = task.loss.value_and_error(y, task.target)
                    if run.check and rd.lsb is not None:  # (no ADC: no LSB to compare with)
                        tgt = task.target
                        check_error_resolution((y if tgt.shape == y.shape else y[-1]) - tgt, rd.lsb)
                else:
                    run.dLdy = task.loss.error(y, task.target)
                if run.beta is None:
                    e_max = error_bound(dev, run.dLdy)
                    P = inst.P[0].astype(np.float64)
                    eps = run.protocol.eps
                    run.beta = (
                        nudge_factor(eps, run.protocol.relative_eps, P, e_max) if e_max > 0 else eps
                    )
                    beta = run.beta
        if integ is not None:
            acc_w, acc_B = out.acc_w, out.acc_B
            if deferred:
                g = np.array(
                    [
                        _integrator_gain(integ.gain, integ.sign * s, dev.dt, beta)
                        for s in (signs if combine != "differential" else [1.0])
                    ]
                )
                acc_w = acc_w * g[:, None]
                acc_B = acc_B * g[:, None, None]
                gains = g
            value = np.concatenate([acc_w, acc_B.reshape(acc_w.shape[0], -1)], axis=1)
            rd = inst.read("accumulator", integ.name, value)
            new.append(
                Record(
                    integ.name,
                    "accumulator",
                    index,
                    run.run,
                    rd.value,
                    "dL/dw",
                    None,
                    rd.codes,
                    rd.lsb,
                    rd.n_saturated,
                    {
                        "gain": integ.gain,
                        "gains": np.asarray(gains).tolist(),
                        "combine": combine,
                        "signs": signs.tolist(),
                        "kick": beta,
                        "n_w": int(acc_w.shape[1]),
                        "B_shape": list(acc_B.shape[1:]),
                        "direction": st.direction,
                    },
                )
            )
        return new
