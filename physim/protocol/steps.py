"""Protocol steps as registered kinds: each brings its spec (``op``) and its behaviour.

A step kind is a :class:`Step` subclass registered in :data:`STEPS` under its ``op``; it
declares

* ``spec``: the pydantic model of the step (``op: Literal[name]``); the ``steps`` union of
  :class:`~physim.protocol.specs.ProtocolSpec` and the list of valid ops are built from the
  registry;
* :meth:`Step.check`: where in a sequence the step may stand (sequence validation, before
  anything runs), reading and updating a :class:`SequenceState`;
* :meth:`Step.allocate`: the arrays it allocates (the protocol's memory check);
* :meth:`Step.execute`: what it does to the instrument, given the engine's :class:`RunState`,
  and the records it measured.

:func:`physim.protocol.engine.run_protocol` stays the one interpreter: it owns the loop and the
run state and calls these hooks in order. The built-in steps are ``prepare``, ``drive``,
``flip``, ``split``, ``kick`` and ``measure`` (documented in :mod:`physim.protocol.specs`); a
package adds one through the ``physim.steps`` entry-point group (see :mod:`physim.registry`)::

    [project.entry-points."physim.steps"]
    wait = "my_package.steps:Wait"
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from physim import memory
from physim.gradients import error_bound, error_signal
from physim.protocol.records import Record
from physim.rangecheck import check_drive_range
from physim.registry import Registry, RegistryError
from physim.rhel import nudge_factor
from physim.simulate import readout
from physim.spec_base import SpecModel

if TYPE_CHECKING:
    from physim.instrument.hardware import Instrument
    from physim.protocol.task import Task


@dataclass
class SequenceState:
    """What sequence validation knows at a step (reset by each ``prepare``)."""

    flipped: bool = False
    forward_done: bool = False
    measured_forward: bool = False
    split_done: bool = False
    kick_sign: int | None = None
    accumulators: set[str] = field(default_factory=set)
    records: set[str] = field(default_factory=set)

    def new_run(self) -> None:
        self.flipped = self.forward_done = self.measured_forward = self.split_done = False
        self.kick_sign = None


@dataclass
class MemoryTally:
    """Floats a protocol allocates, step by step (see ``check_protocol_memory``)."""

    task: Task
    n_inputs: int
    n_outputs: int
    total: int = 0
    branches: int = 1


@dataclass
class RunState:
    """The engine's state while it interprets one protocol (the controller's memory)."""

    instrument: Instrument
    protocol: Any
    task: Task
    u_task: np.ndarray
    check: bool
    signs: np.ndarray = field(default_factory=lambda: np.ones(1))
    beta: float | None = None
    dLdy: np.ndarray | None = None
    loss_value: float | None = None
    n_runs: int = 0
    n_steps: int = 0
    n_prepared: int = 0
    energy: float = 0.0
    run: int = 0
    range_checked: bool = False

    @property
    def device(self):
        return self.instrument.device


class Step:
    """A registered protocol step kind (subclass, set ``name`` and ``spec``, register)."""

    #: the step's ``op``
    name: ClassVar[str]
    #: its pydantic model; ``op: Literal[name]``
    spec: ClassVar[type[SpecModel]]

    @classmethod
    def check(cls, st, seq: SequenceState, where: str) -> None:
        """Raise ValueError (naming ``where``) if ``st`` cannot run here; update ``seq``."""

    @classmethod
    def allocate(cls, st, mem: MemoryTally) -> None:
        """Add to ``mem.total`` the floats ``st`` allocates."""

    @classmethod
    def execute(cls, st, index: int, run: RunState) -> list[Record]:
        """Act on ``run.instrument``; return the records measured by this step."""
        raise NotImplementedError(f"protocol step {cls.name!r} has no execute()")


class StepRegistry(Registry[type[Step]]):
    """:class:`~physim.registry.Registry` of protocol steps; checks each kind's spec."""

    def validate(self, kind_cls: type[Step]) -> None:
        where = f"protocol step {kind_cls.__module__}.{kind_cls.__qualname__}"
        if not (isinstance(kind_cls, type) and issubclass(kind_cls, Step)):
            raise RegistryError(f"{where} must subclass physim.protocol.steps.Step")
        fields = getattr(getattr(kind_cls, "spec", None), "model_fields", None)
        if fields is None or "op" not in fields:
            raise RegistryError(f"{where}: spec must be a pydantic model with an `op` field")
        if get_args(fields["op"].annotation) != (kind_cls.name,):
            raise RegistryError(
                f"{where}: its spec's field op must be Literal[{kind_cls.name!r}], got "
                f"{fields['op'].annotation!r}"
            )
        if kind_cls.execute.__func__ is Step.execute.__func__:
            raise RegistryError(f"{where}: define execute(st, index, run)")


#: every protocol step: the built-ins below, then the ``physim.steps`` entry points
STEPS: StepRegistry = StepRegistry("protocol step", "physim.steps")


# ---------------------------------------------------------------------------------- prepare
class PrepareStep(SpecModel):
    op: Literal["prepare"]
    state: Literal["device", "zero", "thermal", "given"] = Field(
        "device", description="initial state of the run"
    )
    temperature: float | None = Field(
        None, ge=0, description="thermal state temperature, K (default: the bath's)"
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


# ---------------------------------------------------------------------------------- drive
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
        if not run.range_checked and st.input == "task" and not reverse:
            check_drive_range(dev, inst.Q, u)
            run.range_checked = True
        run.n_steps += u.shape[0] * inst.n_branches
        # a physical run is one trajectory driven end to end: lockstep branches each count
        run.n_runs += inst.n_branches
        new: list[Record] = []
        if st.measure:
            rd = inst.adc_readout.read(st.measure, out.samples)
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
                run.dLdy = task.loss.error(y, task.target)
                if run.check and run.loss_value is None:
                    tgt = task.target
                    check_error_resolution((y if tgt.shape == y.shape else y[-1]) - tgt, rd.lsb)
                if run.loss_value is None:
                    run.loss_value = task.loss.value(y, task.target)
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
            rd = inst.adc_accumulator.read(integ.name, value)
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


# ---------------------------------------------------------------------------------- flip
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


# ---------------------------------------------------------------------------------- split
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


# ---------------------------------------------------------------------------------- kick
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


# ---------------------------------------------------------------------------------- measure
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
        rd = inst.adc_readout.read(st.name, y)
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
