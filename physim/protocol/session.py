"""A protocol session: build the instrument, run (or train), compare, and log with provenance.

This is what ``physim run`` does and what ``physim replay`` (:mod:`physim.tools.replay`)
re-does from a log. The log
records, for every protocol execution, the θ requested and every measurement record; the
provenance (device, non-ideality and protocol specs as JSON, instrument seed) is enough to
rebuild the instrument and reproduce the log bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physim import logs
from physim.device import Device
from physim.fidelity import Fidelity, fidelity
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec
from physim.protocol.autoeps import resolve_eps
from physim.protocol.engine import run_protocol
from physim.protocol.estimate import as_built_gradient, estimate_gradient, ideal_gradient
from physim.protocol.records import ProtocolResult
from physim.protocol.specs import ProtocolSpec
from physim.protocol.task import build_task
from physim.protocol.train import check_training_options, train_in_situ


def make_provenance(
    device: Device,
    nonideal: NonidealSpec | None = None,
    protocol: ProtocolSpec | None = None,
    seed: int | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Provenance strings for :class:`physim.logs.LogWriter` (every spec as JSON)."""
    prov = {"device": device.spec.model_dump_json()}
    if nonideal is not None:
        prov["nonideal"] = nonideal.model_dump_json()
    if protocol is not None:
        prov["protocol"] = protocol.model_dump_json()
    if seed is not None:
        prov["seed"] = json.dumps(int(seed))
    prov.update(extra or {})
    return prov


@dataclass(frozen=True)
class SessionResult:
    """What a session measured; ``fidelity`` is vs the nominal twin, ``fidelity_as_built`` vs
    the twin of the chip as built (``as_built`` its gradient)."""

    results: tuple[ProtocolResult, ...]
    estimate: np.ndarray | None
    ideal: np.ndarray | None
    fidelity: Fidelity | None
    losses: np.ndarray | None
    as_built: np.ndarray | None = None
    fidelity_as_built: Fidelity | None = None


def _run_name(i: int) -> str:
    return f"exec-{i:04d}"


def run_session(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec | None = None,
    *,
    seed: int = 0,
    log: str | Path | None = None,
    epochs: int = 0,
    lr: float = 1e-2,
    compare: bool = True,
    force: bool = False,
    extra_provenance: dict[str, str] | None = None,
    scale: str | np.ndarray = "relative",
    measure_final: bool = False,
    progress: bool | Callable[[int, float], None] = False,
    finish: Callable[[logs.LogWriter, list[ProtocolResult]], None] | None = None,
) -> SessionResult:
    """One protocol execution (``epochs`` = 0) or in-situ training, optionally logged.

    An existing ``log`` is refused unless ``force`` (see :mod:`physim.logsafe`). ``scale`` and
    ``measure_final`` go to :func:`~physim.protocol.train.train_in_situ`; ``progress`` is either
    ``True`` (a bar over the epochs on stderr, from the second epoch on, so that its ETA leaves
    out the first epoch's kernel compilation) or a function ``progress(epoch, loss)`` called after
    every measured epoch; ``finish(writer, results)`` may add arrays to the log before it is
    closed."""
    check_training_options(epochs, lr)
    nonideal = nonideal or NonidealSpec()
    inst = Instrument(device, nonideal, seed=seed)
    task = build_task(device, protocol.task, protocol.loss)
    # eps = "auto": calibrate before the log opens so the choice and its reason are provenance
    _, calibration = resolve_eps(inst, protocol, task, device.theta0)
    extra = dict(extra_provenance or {})
    if calibration is not None:
        extra["eps_auto"] = json.dumps(calibration.as_dict())
    writer = (
        logs.LogWriter(
            log,
            provenance=make_provenance(device, nonideal, protocol, seed, extra),
            device=device,
            force=force,
        )
        if log is not None
        else None
    )
    results: list[ProtocolResult] = []
    state = {"exec": 0}

    def on_step(i, step, records):
        if writer is not None:
            for r in records:
                writer.write_record(_run_name(state["exec"]), r, device.dt)
            writer.step_done()

    def begin(theta):
        if writer is not None:
            writer.write_theta_requested(_run_name(state["exec"]), theta)

    est = ideal = fid = losses = built = fid_built = None
    try:
        if epochs <= 0:
            begin(device.theta0)
            res = run_protocol(inst, protocol, task=task, theta=device.theta0, on_step=on_step)
            results.append(res)
            if writer is not None and res.cost.energy is not None:
                writer.write_energy(_run_name(0), res.cost.energy)
            if protocol.estimator.kind == "sum":
                est = estimate_gradient(
                    res, device, protocol.estimator, eps=res.eps, check=True
                ).grad
                if compare:
                    # both twins at the θ that was asked for, not the θ the parameter DAC
                    # wrote: the DAC's rounding is an error of the instrument like any other
                    # (at the written θ a 2-bit DAC would read "cosine 1.000000")
                    ideal = ideal_gradient(device, device.theta0, task)
                    fid = fidelity(est, ideal, device)
                    built = as_built_gradient(inst, device.theta0, task)
                    fid_built = fidelity(est, built, device)
                if writer is not None:
                    report = None
                    if fid is not None:
                        report = {**fid.as_dict(), "fidelity_as_built": fid_built.as_dict()}
                    writer.write_gradient(_run_name(0), est, ideal, report, as_built=built)
        else:

            def on_begin(epoch, theta):
                state["exec"] = epoch
                begin(theta)

            def on_epoch(epoch, res, estimate):
                if epoch == 0 and progress is True:
                    from physim.feedback import progress as bar

                    state["bar"] = bar(epochs, "in-situ training", unit="epoch", initial=1)
                elif "bar" in state:
                    state["bar"].update(1)
                if "bar" in state and res.loss is not None:
                    state["bar"].set_postfix(loss=f"{res.loss:.4g}", refresh=False)
                results.append(res)
                if callable(progress):
                    progress(epoch, res.loss)
                if writer is not None:
                    writer.write_gradient(_run_name(epoch), estimate.grad, None)
                    if res.cost.energy is not None:
                        writer.write_energy(_run_name(epoch), res.cost.energy)
                    writer.append("loss", epoch, float(epoch), res.loss, logs.loss_unit(device))
                    units = logs.parameter_units(device)
                    theta_unit = logs.shared_unit(units, "parameter_unit")
                    writer.append("theta", epoch, float(epoch), res.theta, theta_unit)
                    writer.append(
                        "gradient",
                        epoch,
                        float(epoch),
                        estimate.grad,
                        logs.per_entry_unit(logs.loss_unit(device), units, "parameter_unit"),
                    )

            hist = train_in_situ(
                inst,
                protocol,
                n_epochs=epochs,
                lr=lr,
                task=task,
                scale=scale,
                measure_final=measure_final,
                on_epoch=on_epoch,
                on_begin=on_begin,
                on_step=on_step,
            )
            losses = hist.losses
            if "bar" in state:
                state["bar"].close()
    except BaseException:
        if writer is not None:
            writer.close(complete=False)
        raise
    if writer is not None:
        try:
            if finish is not None:
                finish(writer, results)
        except BaseException:
            writer.close(complete=False)
            raise
        writer.close(complete=True)
    return SessionResult(tuple(results), est, ideal, fid, losses, built, fid_built)
