"""The one protocol interpreter: steps in, measurement records out.

:func:`run_protocol` walks a validated :class:`~physim.protocol.specs.ProtocolSpec` and calls
the instrument's operations (program, prepare, drive, flip, split, kick, read). It never looks
at the device type, and it hands estimators nothing but the records it produced.

The controller's own computation — the loss error ∂L/∂y from the *measured* forward readout, the
nudge β, the integrator gains — happens here, as it would on the lab computer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from physim import memory
from physim.gradients import error_bound, error_signal
from physim.instrument.hardware import Instrument
from physim.protocol.autoeps import resolve_eps
from physim.protocol.checks import check_error_resolution, check_saturation, saturation
from physim.protocol.records import ProtocolCost, ProtocolResult, Record
from physim.protocol.specs import DriveStep, ProtocolSpec
from physim.protocol.task import Task, build_task
from physim.rangecheck import check_drive_range
from physim.rhel import nudge_factor
from physim.simulate import readout

OnStep = Callable[[int, object, list[Record]], None]


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
                stacklevel=3,
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


def check_protocol_memory(protocol: ProtocolSpec, dev, task: Task) -> int:
    """Bytes of the inputs and records a protocol allocates, checked against the budget."""
    nb, m, n_out = task.batch, dev.n_inputs, dev.n_outputs
    total = memory.floats(task.u.shape) + 2 * memory.floats((task.n_steps, nb, n_out))
    branches = 1
    for st in protocol.steps:
        if st.op == "split":
            branches = len(st.signs)
        elif st.op == "prepare":
            branches = 1
        elif st.op == "drive":
            n = st.n_steps or task.n_steps
            total += memory.floats((n, nb, m)) if st.input != "task" else 0
            if st.measure:
                total += 2 * memory.floats((n // st.every, branches, nb, n_out))
    return memory.check(
        total,
        f"protocol {protocol.name!r} on device {dev.name!r} (batch {nb})",
        "lower the task's or the drives' n_steps, raise a measured drive's every, or lower "
        "the batch",
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
    if theta is not None or instrument.theta is None:
        instrument.program(theta if theta is not None else dev.theta0)
    u_task = instrument.write_drive(task.u)
    K, nb = task.n_steps, task.batch
    records: list[Record] = []
    signs = np.ones(1)
    beta: float | None = None
    dLdy: np.ndarray | None = None
    loss_value: float | None = None
    n_runs = n_steps = n_prepared = 0
    energy = 0.0
    run = 0
    sat_before = saturation(instrument)
    range_checked = not check
    for i, st in enumerate(protocol.steps):
        new: list[Record] = []
        if st.op == "prepare":
            instrument.prepare(st.state, nb, temperature=st.temperature, q=st.q, p=st.p)
            signs = np.ones(1)
            dLdy = None
            n_prepared += 1
            run = n_prepared
        elif st.op == "flip":
            instrument.flip()
        elif st.op == "split":
            instrument.split(len(st.signs))
            signs = np.asarray(st.signs, dtype=np.float64)
        elif st.op == "kick":
            e_K = error_signal(dev, dLdy, K, K + 1)[0]
            instrument.kick(e_K, st.sign * signs * beta)
        elif st.op == "measure":
            y = readout(dev, instrument.Q)
            rd = instrument.read("readout", st.name, y)
            new.append(
                Record(
                    st.name,
                    "snapshot",
                    i,
                    run,
                    rd.value,
                    dev.units.get("y", ""),
                    None,
                    rd.codes,
                    rd.lsb,
                    rd.n_saturated,
                    {"signs": signs.tolist()},
                )
            )
        elif st.op == "drive":
            u = _drive_signal(instrument, st, task, u_task)
            reverse = st.direction == "reverse"
            integ = st.integrate
            combine = integ.combine if integ else None
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
            out = instrument.run(
                u,
                reverse=reverse,
                error=dLdy if (reverse and st.nudge) else None,
                kicks=st.sign * signs * beta if (reverse and st.nudge) else None,
                integrate=combine,
                weights=weights,
                gains=gains,
                sample_every=st.every if st.measure else 0,
                readout=dev.readout,
            )
            energy += out.drive_energy
            if not range_checked and st.input == "task" and not reverse:
                check_drive_range(dev, instrument.Q, u)
                range_checked = True
            n_steps += u.shape[0] * instrument.n_branches
            # a physical run is one trajectory driven end to end: lockstep branches each count
            n_runs += instrument.n_branches
            if st.measure:
                rd = instrument.read("readout", st.measure, out.samples)
                new.append(
                    Record(
                        st.measure,
                        "trajectory",
                        i,
                        run,
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
                    dLdy = task.loss.error(y, task.target)
                    if check and loss_value is None:
                        tgt = task.target
                        check_error_resolution((y if tgt.shape == y.shape else y[-1]) - tgt, rd.lsb)
                    if loss_value is None:
                        loss_value = task.loss.value(y, task.target)
                    if beta is None:
                        e_max = error_bound(dev, dLdy)
                        P = instrument.P[0].astype(np.float64)
                        beta = (
                            nudge_factor(protocol.eps, protocol.relative_eps, P, e_max)
                            if e_max > 0
                            else protocol.eps
                        )
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
                rd = instrument.read("accumulator", integ.name, value)
                new.append(
                    Record(
                        integ.name,
                        "accumulator",
                        i,
                        run,
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
        records.extend(new)
        if on_step is not None:
            on_step(i, st, new)
    if check:
        check_saturation(instrument, sat_before)
    sat = {
        "adc_readout": instrument.adc_readout.n_saturated,
        "adc_accumulator": instrument.adc_accumulator.n_saturated,
        "dac_parameters": instrument.dac_parameters.n_saturated,
        "dac_drive": instrument.dac_drive.n_saturated,
    }
    return ProtocolResult(
        protocol=protocol.name,
        records=tuple(records),
        cost=ProtocolCost(n_runs, n_steps, energy),
        theta=instrument.theta.copy(),
        kick=beta,
        loss=loss_value,
        n_saturated=sat,
        eps=float(protocol.eps),
        eps_calibration=calibration.as_dict() if calibration is not None else None,
    )
