"""``physim replay``: re-run a logged protocol session from its provenance, compare bit for bit.

The log records, for every protocol execution, the θ requested and every measurement record;
the provenance (device, non-ideality and protocol specs as JSON, instrument seed) is enough to
rebuild the instrument (:func:`physim.protocol.session.run_session` wrote it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physim import logs
from physim.instrument.hardware import Instrument
from physim.instrument.specs import nonideal_from_json
from physim.protocol.engine import run_protocol
from physim.protocol.specs import protocol_from_json
from physim.protocol.task import build_task
from physim.specs import spec_from_json


@dataclass(frozen=True)
class ReplayReport:
    n_runs: int
    n_records: int
    mismatches: list[str]
    #: what could not be re-run and why (empty when everything stored was re-run)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _stored_records(f, run: str) -> dict[str, np.ndarray]:
    """Records of one execution that were written completely (a killed writer may leave the
    last one without its value)."""
    out = {}
    for name, r in logs.records(f, run).items():
        try:
            out[name] = logs.read_value(r)
        except (KeyError, OSError):
            continue
    return out


def replay(path: str | Path) -> ReplayReport:
    """Re-run a logged session from its provenance and compare every record bit for bit.

    Works on incomplete logs (the stored records are re-run, the missing ones are said to be
    missing). A training log of an HSSM holds no protocol session: nothing is re-run and the
    report's ``note`` says how to reproduce it instead.
    """
    with logs.open_log(path) as f:
        prov = logs.provenance(f)
        if logs.kind(f) == "training":
            return ReplayReport(
                0,
                0,
                [],
                f"{path} is an HSSM training log: replay re-runs protocol sessions only; "
                "reproduce it with `physim train --config <its train_config JSON> --no-resume "
                "--out NEWDIR` (training is bit-identical for a given config and seed)",
            )
        missing = [k for k in ("device", "nonideal", "protocol", "seed") if k not in prov]
        if missing:
            raise logs.LogError(
                f"{path}: no {', '.join(missing)} in the provenance, so it cannot be re-run; "
                "only logs written by `physim run` or `physim demo` can be replayed"
            )
        device = spec_from_json(prov["device"]).build()
        nonideal = nonideal_from_json(prov["nonideal"])
        protocol = protocol_from_json(prov["protocol"])
        seed = json.loads(prov["seed"])
        complete = logs.status(f) == "complete"
        stored = []
        for run in logs.runs(f):
            theta = logs.theta_requested(f, run)
            if theta is None:
                continue
            stored.append((run, theta, _stored_records(f, run)))
    inst = Instrument(device, nonideal, seed=seed)
    task = build_task(device, protocol.task, protocol.loss)
    mismatches: list[str] = []
    n_rec = n_missing = 0
    last = stored[-1][0] if stored else None
    for run, theta, recs in stored:
        res = run_protocol(inst, protocol, task=task, theta=theta, check=False)
        for r in res.records:
            if r.name not in recs:
                if complete or run != last:
                    # a complete log (or an execution before the last) has every record: one
                    # without its value was deleted or damaged, not cut short by a kill
                    mismatches.append(f"{run}/{r.name} (missing from the log)")
                    continue
                n_missing += 1  # the logged run stopped before this step
                continue
            n_rec += 1
            logged = recs[r.name]
            value = r.value if r.index is not None else r.value[None]
            if logged.shape != value.shape or not np.array_equal(logged, value):
                mismatches.append(f"{run}/{r.name}")
    note = ""
    if not complete or n_missing:
        note = (
            f"the log is incomplete: {n_missing} record(s) of the re-run were never written "
            "and were not compared"
        )
    return ReplayReport(len(stored), n_rec, mismatches, note)
