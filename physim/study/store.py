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
        if self.dir.exists() and not self.dir.is_dir():
            raise StudyError(
                f"--out {self.dir} is a file, not a folder; choose a folder for the study"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        sj = self.dir / STUDY_JSON
        if not sj.exists():
            # never overwrite (or with --restart, delete) a file physim did not write
            theirs = [n for n in (JOURNAL, RESULTS_NC, RESULTS_CSV) if (self.dir / n).exists()]
            if theirs:
                raise StudyError(
                    f"{self.dir} holds {', '.join(theirs)} but no {STUDY_JSON}: not a study "
                    "folder physim wrote, and physim does not overwrite files it did not "
                    "write; choose another --out (or move those files away)"
                )
        if sj.exists() and not restart:
            old = read_study_record(self.dir)
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
        self.done: dict[int, dict[str, Any]] = read_journal(self.dir, plan.n_points)
        self._fh = None

    def pending(self) -> list[int]:
        return [i for i in range(self.plan.n_points) if i not in self.done]

    def append(self, result: dict[str, Any]) -> None:
        """Record one finished point durably (flush + fsync) before anything else happens."""
        if self._fh is None:
            _drop_torn_tail(self.dir / JOURNAL)
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


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a kill mid-write) before appending after it,
    so that the next result does not land on the same line."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


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


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _journal_problem(r: Any, n_points: int | None) -> str | None:
    """What is wrong with one parsed journal line (None if it is what physim writes)."""
    if not isinstance(r, dict):
        return f"a JSON {type(r).__name__}, not an object"
    missing = [k for k in ("index", "metrics", "error", "seconds") if k not in r]
    if missing:
        return f"no {', '.join(missing)}"
    i = r["index"]
    if not isinstance(i, int) or isinstance(i, bool):
        return f"index = {i!r} is not an integer"
    if i < 0 or (n_points is not None and i >= n_points):
        bound = f"0..{n_points - 1}" if n_points is not None else ">= 0"
        return f"index = {i} is outside the study's points ({bound})"
    m = r["metrics"]
    if not isinstance(m, dict):
        return f"metrics = {str(m)[:40]!r} is not a table of numbers"
    bad = [k for k, v in m.items() if not _number(v)]
    if bad:
        return f"metric {bad[0]} = {str(m[bad[0]])[:40]!r} is not a number"
    if r["error"] is not None and not isinstance(r["error"], str):
        return f"error = {str(r['error'])[:40]!r} is neither null nor a message"
    if not _number(r["seconds"]):
        return f"seconds = {str(r['seconds'])[:40]!r} is not a number"
    return None


def read_journal(out: str | Path, n_points: int | None = None) -> dict[int, dict[str, Any]]:
    """Finished points of a study folder (a torn last line from a kill is ignored).

    Every other line must be what physim writes; one that is not (hand-edited, truncated in
    the middle, an index outside the study's ``n_points``) raises :class:`StudyError` naming
    the file, the line and the fix.
    """
    path = Path(out) / JOURNAL
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise StudyError(
            f"{path} is not text physim wrote; delete it to rerun every point, or rerun with "
            "--restart"
        ) from None
    last = max((k for k, line in enumerate(lines) if line.strip()), default=-1)
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            why = _journal_problem(r, n_points)
        except (json.JSONDecodeError, RecursionError):
            if k == last and k == len(lines) - 1:
                continue  # the line being written when the process was killed (no newline)
            why = "not JSON"
        if why is not None:
            raise StudyError(
                f"{path} line {k + 1} is not a point result physim wrote ({why}); delete that "
                "line to rerun the point, or rerun the study with --restart"
            )
        done[r["index"]] = r
    return done


def read_study_record(out: str | Path) -> dict[str, Any]:
    """``DIR/study.json`` as physim wrote it (a JSON object with the study), or StudyError."""
    sj = Path(out) / STUDY_JSON
    if not sj.exists():
        raise FileNotFoundError(f"{out} is not a study folder: no {STUDY_JSON}")
    try:
        rec = json.loads(sj.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        why = " ".join(str(err).split())[:80]
        rec, problem = None, f"not JSON: {why}"
    else:
        problem = None
    if problem is None and not isinstance(rec, dict):
        problem = f"a JSON {type(rec).__name__}, not an object"
    if problem is None and not isinstance(rec.get("study"), dict):
        problem = "no 'study' table"
    if problem is not None:
        raise StudyError(
            f"{sj} is not the study record physim wrote ({problem}); rerun the study with "
            "--restart (or another --out) to write it again"
        )
    return rec


def load_spec_of(out: str | Path) -> StudySpec:
    rec = read_study_record(out)
    try:
        return study_from_json(json.dumps(rec["study"]))
    except StudyError as err:
        raise StudyError(
            f"{Path(out) / STUDY_JSON} holds a study physim cannot read ({err}); rerun the "
            "study with --restart to write it again"
        ) from None


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
