"""The one protocol interpreter: steps in, measurement records out.

:func:`run_protocol` walks a validated :class:`~physim.protocol.specs.ProtocolSpec`, keeps the
run's state (:class:`~physim.protocol.steps.RunState`) and hands each step to the behaviour its
registered kind declares (:data:`~physim.protocol.steps.STEPS`: ``execute`` calls the
instrument's operations — program, prepare, drive, flip, split, kick, read). It never looks at
the device type, and it hands estimators nothing but the records it produced.

The controller's own computation — the loss error ∂L/∂y from the *measured* forward readout, the
nudge β, the integrator gains — happens here, as it would on the lab computer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from physim import memory
from physim.instrument.hardware import Instrument
from physim.protocol.autoeps import resolve_eps
from physim.protocol.checks import check_saturation, saturation
from physim.protocol.energy import Usage, energy_cost
from physim.protocol.records import ProtocolCost, ProtocolResult, Record
from physim.protocol.specs import ProtocolSpec
from physim.protocol.steps import STEPS, MemoryTally, RunState
from physim.protocol.task import Task, build_task
from physim.stability import check_programmed_stability
from physim.warnings import warn

OnStep = Callable[[int, object, list[Record]], None]


def check_protocol_memory(protocol: ProtocolSpec, dev, task: Task) -> int:
    """Bytes of the inputs and records a protocol allocates, checked against the budget."""
    nb, m, n_out = task.batch, dev.n_inputs, dev.n_outputs
    mem = MemoryTally(task, m, n_out)
    mem.total = memory.floats(task.u.shape) + 2 * memory.floats((task.n_steps, nb, n_out))
    for st in protocol.steps:
        STEPS.get(st.op).allocate(st, mem)
    total = mem.total
    return memory.check(
        total,
        f"protocol {protocol.name!r} on device {dev.name!r} (batch {nb})",
        "lower the task's or the drives' n_steps, raise a measured drive's every, or lower "
        "the batch",
    )


def check_anti_damped(instrument: Instrument, run: RunState) -> None:
    """Warn when the echo ran with a loss compensation above 1: its net damping (1 − c)·D is
    negative, so the echo grows what the forward run damped and the gradient is amplified
    (by orders of magnitude over long sequences) — possible on a chip, but rarely meant."""
    c = instrument.diss.compensation if (instrument.diss is not None and instrument.lossy) else 0
    if c > 1 and run.compensation is not None:
        warn(
            f"dissipation.compensation = {c:g} ran the echo anti-damped (net damping "
            f"(1 − c)·D = {1 - c:g}·D < 0)",
            "the echo amplifies what the forward run damped, and the measured gradient grows "
            "with it, possibly by orders of magnitude",
            "use compensation <= 1 (1 makes the echo lossless) unless the anti-damped echo "
            "is what you study",
            stacklevel=3,
        )


def run_protocol(
    instrument: Instrument,
    protocol: ProtocolSpec,
    *,
    task: Task | None = None,
    theta: np.ndarray | None = None,
    on_step: OnStep | None = None,
    check: bool = True,
) -> ProtocolResult:
    """Run ``protocol`` on ``instrument`` and return its records.

    Parameters
    ----------
    instrument
        The simulated instrument (its state and noise streams advance).
    protocol
        A validated protocol spec.
    task
        Inputs, loss and target; built from ``protocol.task`` when ``None``.
    theta
        Parameters to program first (through the parameter DAC); the instrument's current
        ones (or ``device.theta0``) when ``None``.
    on_step
        Called as ``on_step(index, step, records)`` after each completed step (logging).
    check
        Warn (:class:`~physim.warnings.PhysimWarning`) when a junction is driven far past 2π,
        the loss error is below one readout LSB or an ADC saturates (see
        :mod:`physim.protocol.checks`); training checks its first execution only.
    """
    dev = instrument.device
    task = task or build_task(dev, protocol.task, protocol.loss)
    if task.u.ndim != 3 or task.u.shape[2] != dev.n_inputs:
        raise ValueError(
            f"task inputs must have shape (n_steps, batch, {dev.n_inputs}), got {task.u.shape}"
        )
    check_protocol_memory(protocol, dev, task)
    protocol, calibration = resolve_eps(instrument, protocol, task, theta)
    used = Usage.snapshot(instrument)  # after the ε calibration: this execution's use only
    if theta is not None or instrument.theta is None:
        written = instrument.program(theta if theta is not None else dev.theta0)
        # the build checked ω·dt at θ0; a θ that moved (training, a programmed θ, the DAC,
        # the mismatch of this chip) is checked where it is written
        check_programmed_stability(dev, instrument.phys, written)
    u_task = instrument.write_drive(task.u)
    run = RunState(instrument, protocol, task, u_task, check, range_checked=not check)
    records: list[Record] = []
    sat_before = saturation(instrument)
    for i, st in enumerate(protocol.steps):
        new = STEPS.get(st.op).execute(st, i, run)
        records.extend(new)
        if on_step is not None:
            on_step(i, st, new)
    if check:
        check_saturation(instrument, sat_before)
        check_anti_damped(instrument, run)
    sat = {
        "adc_readout": instrument.adc_readout.n_saturated,
        "adc_accumulator": instrument.adc_accumulator.n_saturated,
        "dac_parameters": instrument.dac_parameters.n_saturated,
        "dac_drive": instrument.dac_drive.n_saturated,
    }
    energy = energy_cost(
        instrument,
        Usage.snapshot(instrument).since(used),
        work=run.work if instrument.account_energy else None,
        work_returned=run.work_returned if instrument.account_energy else None,
        dissipated=run.dissipated if instrument.account_energy else None,
        compensation=run.compensation if instrument.account_energy else None,
        n_steps=run.n_steps,
        n_prepared=run.n_prepared,
        batch=task.batch,
    )
    return ProtocolResult(
        protocol=protocol.name,
        records=tuple(records),
        cost=ProtocolCost(run.n_runs, run.n_steps, run.energy, energy),
        theta=instrument.theta.copy(),
        kick=run.beta,
        loss=run.loss_value,
        n_saturated=sat,
        eps=float(protocol.eps),
        eps_calibration=calibration.as_dict() if calibration is not None else None,
    )
