"""The results of a study on disk; the client process is the only writer.

``DIR/study.json``     the expanded study (spec, axes, fingerprint, physim version)
``DIR/journal.jsonl``  one JSON line per finished point, flushed and fsync'd as it arrives, so
                       a SIGKILL loses at most the points in flight; rerunning resumes from it
``DIR/results.nc``     on completion: netCDF4/HDF5 (h5netcdf) with the axes and ``replicate``
                       as dimensions, coordinates, ``units`` and ``long_name`` on everything
``DIR/results.csv``    the same as a flat table
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from physim._version import __version__
from physim.study.expand import Plan
from physim.study.measures import metric_info
from physim.study.spec import StudyError, StudySpec, study_from_json

STUDY_JSON, JOURNAL, RESULTS_NC, RESULTS_CSV = (
    "study.json",
    "journal.jsonl",
    "results.nc",
    "results.csv",
)


class StudyStore:
    """A study folder: prepare (or resume), append point results, write the final tables."""

    def __init__(self, out: str | Path, plan: Plan, *, restart: bool = False):
        self.dir = Path(out)
        self.plan = plan
        self.dir.mkdir(parents=True, exist_ok=True)
        sj = self.dir / STUDY_JSON
        if sj.exists() and not restart:
            old = json.loads(sj.read_text())
            if old.get("fingerprint") != plan.fingerprint:
                raise StudyError(
                    f"{self.dir} holds a different study ({old.get('name')!r}, fingerprint "
                    f"{str(old.get('fingerprint'))[:12]}); rerun with --restart to discard its "
                    "results or choose another --out"
                )
        if restart:
            for name in (STUDY_JSON, JOURNAL, RESULTS_NC, RESULTS_CSV):
                (self.dir / name).unlink(missing_ok=True)
        if not sj.exists():
            tmp = sj.with_suffix(".tmp")
            tmp.write_text(json.dumps(study_record(plan), indent=1, default=str))
            os.replace(tmp, sj)
        self.done: dict[int, dict[str, Any]] = read_journal(self.dir)
        self._fh = None

    def pending(self) -> list[int]:
        return [i for i in range(self.plan.n_points) if i not in self.done]

    def append(self, result: dict[str, Any]) -> None:
        """Record one finished point durably (flush + fsync) before anything else happens."""
        if self._fh is None:
            self._fh = open(self.dir / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115
        self._fh.write(json.dumps(result) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done[int(result["index"])] = result

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def complete(self) -> bool:
        return len(self.done) == self.plan.n_points

    def finish(self):
        """Write results.nc and results.csv from the journal; returns the Dataset."""
        self.close()
        ds = to_dataset(self.plan, self.done)
        tmp = self.dir / (RESULTS_NC + ".tmp")
        ds.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        os.replace(tmp, self.dir / RESULTS_NC)
        write_csv(self.plan, self.done, self.dir / RESULTS_CSV)
        return ds


def study_record(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.spec.name,
        "physim_version": __version__,
        "fingerprint": plan.fingerprint,
        "n_points": plan.n_points,
        "axes": [
            {"dim": a.dim, "path": a.path, "units": a.units, "values": a.values} for a in plan.axes
        ],
        "study": json.loads(plan.spec.model_dump_json()),
        "base": plan.payloads[0] if plan.payloads else None,
    }


def read_journal(out: str | Path) -> dict[int, dict[str, Any]]:
    """Finished points of a study folder (a torn last line from a kill is ignored)."""
    path = Path(out) / JOURNAL
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the process was killed
            done[int(r["index"])] = r
    return done


def load_spec_of(out: str | Path) -> StudySpec:
    sj = Path(out) / STUDY_JSON
    if not sj.exists():
        raise FileNotFoundError(f"{out} is not a study folder: no {STUDY_JSON}")
    return study_from_json(json.dumps(json.loads(sj.read_text())["study"]))


def _metric_names(plan: Plan, done: dict[int, dict]) -> dict[str, tuple[str, str]]:
    info = metric_info(plan.spec.measure.kind, plan.n_groups)
    extra = sorted({k for r in done.values() for k in r["metrics"]} - set(info))
    return {**info, **{k: ("1", k) for k in extra}}


def to_dataset(plan: Plan, done: dict[int, dict[str, Any]]):
    """An ``xarray.Dataset``: dims = axes (or ``point``) + ``replicate``; NaN where missing."""
    import xarray as xr

    R = plan.spec.replicates
    if plan.grid:
        dims = [a.dim for a in plan.axes] + ["replicate"]
        shape = [len(a.values) for a in plan.axes] + [R]
        coords: dict[str, Any] = {a.dim: (a.dim, np.asarray(a.values)) for a in plan.axes}
    else:
        dims = ["point", "replicate"]
        shape = [len(plan.combos), R]
        coords = {"point": ("point", np.arange(len(plan.combos)))}
        for k, a in enumerate(plan.axes):
            coords[a.dim] = ("point", np.asarray([c[k] for c in plan.combos]))
    coords["replicate"] = ("replicate", np.arange(R))
    names = _metric_names(plan, done)
    data = {m: np.full(plan.n_points, np.nan) for m in names}
    failed = np.zeros(plan.n_points, dtype=np.int8)
    error = np.full(plan.n_points, "", dtype=object)
    seconds = np.full(plan.n_points, np.nan)
    for i, r in done.items():
        for m, v in r["metrics"].items():
            data[m][i] = v
        if r["error"]:
            failed[i] = 1
            error[i] = r["error"]
        seconds[i] = r["seconds"]
    dv = {}
    for m, (u, ln) in names.items():
        dv[m] = (dims, data[m].reshape(shape), {"units": u, "long_name": ln})
    dv["failed"] = (dims, failed.reshape(shape), {"units": "1", "long_name": "1 = point failed"})
    dv["error"] = (dims, error.reshape(shape).astype(str), {"long_name": "failure message"})
    dv["seconds"] = (dims, seconds.reshape(shape), {"units": "s", "long_name": "compute time"})
    ds = xr.Dataset(dv, coords=coords)
    for a in plan.axes:
        ds[a.dim].attrs.update(
            units=a.units,
            long_name=a.long_name,
            path=a.path,
            scale="log" if a.log_scale else "linear",
        )
    ds["replicate"].attrs.update(units="1", long_name="simulated chip (replicate)")
    if not plan.grid:
        ds["point"].attrs.update(units="1", long_name="sample point")
    ds.attrs.update(
        title=f"physim study {plan.spec.name}",
        physim_version=__version__,
        study=plan.spec.model_dump_json(),
        fingerprint=plan.fingerprint,
        measure=plan.spec.measure.kind,
        n_failed=int(failed.sum()),
        n_done=len(done),
        Conventions="CF-1.8",
    )
    return ds


def write_csv(plan: Plan, done: dict[int, dict[str, Any]], path: Path) -> None:
    names = list(_metric_names(plan, done))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["point", *[a.dim for a in plan.axes], "replicate", *names, "error", "seconds"])
        for i in sorted(done):
            r, c = done[i], plan.coords(i)
            w.writerow(
                [i, *[c[a.dim] for a in plan.axes], c["replicate"]]
                + [repr(float(r["metrics"].get(m, float("nan")))) for m in names]
                + [r["error"] or "", f"{r['seconds']:.4f}"]
            )
    os.replace(tmp, path)
