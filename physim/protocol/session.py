"""A protocol session: build the instrument, run (or train), compare, and log with provenance.

This is what ``physim run`` does and what ``physim replay`` re-does from a log. The log
records, for every protocol execution, the θ requested and every measurement record; the
provenance (device, non-ideality and protocol specs as JSON, instrument seed) is enough to
rebuild the instrument and reproduce the log bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physim import logs
from physim.device import Device
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec, nonideal_from_json
from physim.protocol.autoeps import resolve_eps
from physim.protocol.engine import run_protocol
from physim.protocol.estimate import (
    Fidelity,
    as_built_gradient,
    estimate_gradient,
    fidelity,
    ideal_gradient,
)
from physim.protocol.records import ProtocolResult
from physim.protocol.specs import ProtocolSpec, protocol_from_json
from physim.protocol.task import build_task
from physim.protocol.train import train_in_situ
from physim.specs import spec_from_json


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
) -> SessionResult:
    """One protocol execution (``epochs`` = 0) or in-situ training, optionally logged."""
    nonideal = nonideal or NonidealSpec()
    inst = Instrument(device, nonideal, seed=seed)
    task = build_task(device, protocol.task, protocol.loss)
    # eps = "auto": calibrate before the log opens so the choice and its reason are provenance
    _, calibration = resolve_eps(inst, protocol, task, device.theta0)
    extra = {"eps_auto": json.dumps(calibration.as_dict())} if calibration is not None else None
    writer = (
        logs.LogWriter(log, provenance=make_provenance(device, nonideal, protocol, seed, extra))
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
            g = writer.f.require_group(f"observables/{_run_name(state['exec'])}")
            g.attrs["theta_requested"] = json.dumps(np.asarray(theta).tolist())

    est = ideal = fid = losses = built = fid_built = None
    try:
        if epochs <= 0:
            begin(device.theta0)
            res = run_protocol(inst, protocol, task=task, theta=device.theta0, on_step=on_step)
            results.append(res)
            if protocol.estimator.kind == "sum":
                est = estimate_gradient(res, device, protocol.estimator).grad
                if compare:
                    ideal = ideal_gradient(device, res.theta, task)
                    fid = fidelity(est, ideal, device)
                    built = as_built_gradient(inst, res.theta, task)
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
                results.append(res)
                if writer is not None:
                    writer.write_gradient(_run_name(epoch), estimate.grad, None)
                    writer.append("loss", epoch, float(epoch), res.loss, "loss")

            hist = train_in_situ(
                inst,
                protocol,
                n_epochs=epochs,
                lr=lr,
                task=task,
                on_epoch=on_epoch,
                on_begin=on_begin,
                on_step=on_step,
            )
            losses = hist.losses
    except BaseException:
        if writer is not None:
            writer.close(complete=False)
        raise
    if writer is not None:
        writer.close(complete=True)
    return SessionResult(tuple(results), est, ideal, fid, losses, built, fid_built)


@dataclass(frozen=True)
class ReplayReport:
    n_runs: int
    n_records: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def replay(path: str | Path) -> ReplayReport:
    """Re-run a logged session from its provenance and compare every record bit for bit."""
    with logs.open_log(path) as f:
        prov = logs.provenance(f)
        missing = [k for k in ("device", "nonideal", "protocol", "seed") if k not in prov]
        if missing:
            raise ValueError(
                f"{path}: no {', '.join(missing)} in the provenance; only logs "
                "written by `physim run` can be replayed"
            )
        device = spec_from_json(prov["device"]).build()
        nonideal = nonideal_from_json(prov["nonideal"])
        protocol = protocol_from_json(prov["protocol"])
        seed = json.loads(prov["seed"])
        stored = []
        for run in logs.runs(f):
            g = f[f"observables/{run}"]
            theta = np.asarray(json.loads(g.attrs["theta_requested"]))
            recs = {name: logs.read_value(r) for name, r in logs.records(f, run).items()}
            stored.append((run, theta, recs))
    inst = Instrument(device, nonideal, seed=seed)
    task = build_task(device, protocol.task, protocol.loss)
    mismatches: list[str] = []
    n_rec = 0
    for run, theta, recs in stored:
        res = run_protocol(inst, protocol, task=task, theta=theta)
        for r in res.records:
            if r.name not in recs:
                continue  # the logged run stopped before this step
            n_rec += 1
            logged = recs[r.name]
            value = r.value if r.index is not None else r.value[None]
            if logged.shape != value.shape or not np.array_equal(logged, value):
                mismatches.append(f"{run}/{r.name}")
    return ReplayReport(len(stored), n_rec, mismatches)
