"""HDF5 logs in the H5MD 1.1 layout — the one module that knows HDF5 paths, for every writer.

Every log physim writes (``physim run``, the demo, ``physim train``, study points) has::

    /                           attrs: kind (run | training | study), complete (0 until the
                                writer closes), n_steps_done
    /h5md                       version = [1, 1]; creator/{name, version}; author/{name}
    /parameters/physim          provenance: JSON of every spec (device, non-ideality, protocol,
                                training config, ...), the physim version (string datasets)
    /observables/<run>/<NNN>-<record>/{step, time, value}
                                one group per protocol execution and record, in step order
    /observables/<run>/gradient/{estimate, ideal}  (dimension ``parameter``)
    /observables/training/<series>/{step, time, value}   appended as training goes
    /observables/<array>/{...}  free-form arrays (e.g. full state trajectories)

Conventions that make every group open in ``xarray.open_dataset(path, engine="h5netcdf",
group=...)`` and ``xarray.open_datatree``:

* every axis is a named dimension (an HDF5 dimension scale: ``step``, ``branch``, ``batch``,
  ``output``, ``dof``, ``accumulator``, ``channel``, ``parameter``, ...) whose coordinate holds
  the index or, for parameters and integrator channels, the names; ``parameter_group`` and
  ``parameter_unit`` (``channel_group``, ``channel_unit``) sit beside them;
* ``unit`` (H5MD) and ``units`` (CF) on every variable — the loss in the readout unit squared;
  a gradient whose parameters share one unit has the real unit (``m^2/(N/m)``); where the unit
  differs per parameter it reads ``<loss unit>/parameter_unit`` (CF has no per-entry unit:
  each entry's own is in ``parameter_unit``);
* ADC readings whose converter has one LSB for every channel are stored as integer codes with a
  *scalar* CF ``scale_factor`` (value = codes × scale_factor, exact); with per-channel ranges the
  value is stored as float64 (exactly codes × lsb) beside an ``lsb`` variable per channel.

Datasets are chunked (64 KiB–1 MiB along time) with gzip + shuffle, which h5dump and HDFView read
without plugins (libver v110). The file is flushed after every record and every appended sample,
so a killed writer leaves a readable file whose ``complete`` attribute is 0; readers open it
read-only without HDF5 file locking, so a log still being written can be read.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from physim._version import __version__
from physim.logsafe import LogError, WriterLock, check_readable, check_writable

H5MD_VERSION = np.array([1, 1], dtype=np.int32)
#: bytes per chunk: inside H5MD's recommended 64 KiB–1 MiB
CHUNK_BYTES = 1 << 19
#: gzip level 1: most of the size gain for a fraction of level-6 time (logs are write-heavy)
GZIP_LEVEL = 1
#: rows per chunk of an appended series (one row per epoch / training step)
SERIES_CHUNK_ROWS = 1024

H5MD = "h5md"
PROV = "parameters/physim"
OBS = "observables"
TRAIN = "observables/training"
KINDS = ("run", "training", "study")
_STR = h5py.string_dtype()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+\-=]", "_", name)


# --------------------------------------------------------------------------- named axes
@dataclass(frozen=True)
class Axis:
    """A named dimension: its labels (coordinate values) and extra per-label coordinates."""

    name: str
    labels: Sequence[str] | None = None
    size: int | None = None
    extra: dict[str, Sequence[str]] = field(default_factory=dict)

    def n(self) -> int:
        return len(self.labels) if self.labels is not None else int(self.size or 0)


def parameter_axis(device) -> Axis:
    """θ's axis for a device: one label per entry, named by group (``k12``, ``spring[0]``)."""
    names, groups, units = [], [], []
    for g in device.groups:
        for i in range(g.size):
            if g.labels and i < len(g.labels):
                lab = g.labels[i]
                names.append(lab if lab.startswith(g.name) else f"{g.name}:{lab}")
            else:
                names.append(f"{g.name}[{i}]")
            groups.append(g.name)
            units.append(g.unit or "1")
    return Axis("parameter", names, extra={"parameter_group": groups, "parameter_unit": units})


def channel_axis(device, n_w: int, B_shape: Sequence[int]) -> Axis:
    """The integrator channels of an accumulator record: the n_w elements of w, then B."""
    wl = tuple(getattr(device, "w_labels", ()) or ())
    names = [wl[i] if i < len(wl) else f"w[{i}]" for i in range(n_w)]
    rows, cols = (list(B_shape) + [1, 1])[:2]
    names += [f"B[{i},{j}]" for i in range(rows) for j in range(cols)]
    group = ["(not learnable)"] * len(names)
    unit = ["1"] * len(names)
    for g in device.groups:
        off = 0 if g.target == "w" else n_w
        for k in np.asarray(g.index, dtype=np.int64):
            if off + k < len(names):
                group[off + k] = g.name
                unit[off + k] = g.unit or "1"
    return Axis("channel", names, extra={"channel_group": group, "channel_unit": unit})


def per_entry_unit(numerator: str, units: Sequence[str], placeholder: str) -> str:
    """The CF ``units`` of an array whose entries carry ``units`` (``<numerator>/<unit>``):
    the real unit when every entry shares one (``m^2/(N/m)``), else ``<numerator>/<placeholder>``
    (CF has no per-entry unit; the entries' own units sit beside them in ``placeholder``)."""
    distinct = set(units)
    if len(distinct) != 1:
        return f"{numerator}/{placeholder}"
    (u,) = distinct
    if u in ("", "1"):
        return numerator
    return f"{numerator}/({u})" if "/" in u or " " in u else f"{numerator}/{u}"


def shared_unit(units: Sequence[str], placeholder: str) -> str:
    """The one unit of ``units`` when they agree, else ``placeholder`` (see :func:`per_entry_unit`)."""
    distinct = set(units)
    return distinct.pop() if len(distinct) == 1 else placeholder


def parameter_units(device) -> list[str]:
    """Each θ entry's unit, in θ order."""
    return [g.unit or "1" for g in device.groups for _ in range(g.size)]


def loss_unit(device) -> str:
    """The MSE loss's unit: the readout unit squared (``1`` for dimensionless readouts)."""
    y = device.units.get("y", "1") if device is not None else "1"
    return "1" if y in ("", "1") else f"{y}^2"


def _scale(group: h5py.Group, axis: Axis, dimid: list[int]) -> h5py.Dataset:
    """The dimension scale of ``axis`` in ``group`` (created once per group)."""
    if axis.name in group:
        d = group[axis.name]
        if d.shape[0] != axis.n():
            raise LogError(
                f"dimension {axis.name!r} in {group.name} has {d.shape[0]} entries, "
                f"a new variable needs {axis.n()}"
            )
        return d
    if axis.labels is not None:
        d = group.create_dataset(
            axis.name, data=np.array(list(axis.labels), dtype=object), dtype=_STR
        )
    else:
        d = group.create_dataset(axis.name, data=np.arange(axis.n(), dtype=np.int64))
    d.make_scale(axis.name)
    d.attrs["_Netcdf4Dimid"] = np.int32(dimid[0])
    dimid[0] += 1
    for key, vals in axis.extra.items():
        e = group.create_dataset(key, data=np.array(list(vals), dtype=object), dtype=_STR)
        e.dims[0].attach_scale(d)
    return d


def _attach(group: h5py.Group, d: h5py.Dataset, axes: Sequence[Axis], dimid: list[int]) -> None:
    for i, ax in enumerate(axes):
        d.dims[i].attach_scale(_scale(group, ax, dimid))


def _units(d: h5py.Dataset, unit: str, long_name: str | None = None) -> None:
    unit = unit or "1"
    d.attrs["unit"] = unit
    d.attrs["units"] = unit
    if long_name:
        d.attrs["long_name"] = long_name


# --------------------------------------------------------------------------- big datasets
def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    if not shape or 0 in shape:
        return None
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize or itemsize
    n = max(1, min(shape[0], CHUNK_BYTES // row))
    return (n, *shape[1:])


def _filtered_chunk(block: np.ndarray) -> bytes:
    """The bytes HDF5's shuffle + deflate pipeline stores for one full chunk."""
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1, block.dtype.itemsize)
    return zlib.compress(np.ascontiguousarray(raw.T).tobytes(), GZIP_LEVEL)


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """A chunked gzip + shuffle dataset; large arrays are compressed chunk by chunk in a thread
    pool (zlib releases the GIL) and written with direct chunk writes — the stored bytes are
    exactly what HDF5's own filters would produce, so any reader decodes them."""
    data = np.asarray(data)
    if data.ndim == 0 or data.size < 16:
        return group.create_dataset(name, data=data)
    chunks = _chunks(data.shape, data.dtype.itemsize)
    d = group.create_dataset(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        compression="gzip",
        compression_opts=GZIP_LEVEL,
        shuffle=True,
    )
    n_chunks = -(-data.shape[0] // chunks[0])
    if n_chunks < 4 or data.dtype.byteorder not in ("=", "|", "<"):
        d[...] = data
        return d
    n_full = data.shape[0] // chunks[0]
    blocks = [data[i * chunks[0] : (i + 1) * chunks[0]] for i in range(n_full)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for i, payload in enumerate(pool.map(_filtered_chunk, blocks)):
            d.id.write_direct_chunk((i * chunks[0],) + (0,) * (data.ndim - 1), payload)
    if n_full * chunks[0] < data.shape[0]:
        d[n_full * chunks[0] :] = data[n_full * chunks[0] :]  # partial last chunk via HDF5
    return d


def _code_dtype(codes: np.ndarray):
    peak = np.max(np.abs(codes), initial=0)
    return np.int16 if peak < 2**15 else np.int32 if peak < 2**31 else np.int64


#: record value axes by record kind (time-major, after ``step``)
_RECORD_AXES = {
    "trajectory": ("branch", "batch", "output"),
    "snapshot": ("branch", "batch", "output"),
    "accumulator": ("accumulator", "channel"),
}


# --------------------------------------------------------------------------- the writer
class LogWriter:
    """Append-as-you-go writer of one log file (one writer per file, lock taken first).

    Parameters
    ----------
    path
        The log file. It is refused when it is a directory, an existing non-HDF5 file, an
        existing log without ``force``, or held by another writer (see :mod:`physim.logsafe`).
    provenance
        Strings stored under ``/parameters/physim`` (spec JSON).
    kind
        ``run`` (a protocol session, also the demo), ``training`` (HSSM) or ``study``.
    device
        When given, θ / gradient arrays get the device's parameter names, groups and units.
    force
        Overwrite an existing HDF5 file at ``path``.

    Notes
    -----
    Use as a context manager; leaving the block normally marks the log complete.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        provenance: dict[str, str] | None = None,
        author: str = "physim",
        kind: str = "run",
        device=None,
        force: bool = False,
        resume_upto: int | None = None,
    ):
        if kind not in KINDS:
            raise ValueError(f"log kind must be one of {KINDS}, got {kind!r}")
        self.path = Path(path)
        self.device = device
        self.params = parameter_axis(device) if device is not None else None
        self._dimid = [0]
        self._lock = WriterLock(self.path).acquire()  # lock first, then check, then create
        kept = None
        try:
            if resume_upto is not None and self.path.exists():
                kept = _kept_series(self.path, resume_upto)
            else:
                check_writable(self.path, force=force)
            # a resumed log is rebuilt in a temporary file that replaces the old one only once
            # it holds the kept history: a kill at any moment leaves one readable log
            target = self.path.with_name(self.path.name + ".tmp") if kept else self.path
            # v110 keeps logs readable by the h5dump of Debian's hdf5-tools (HDF5 1.10)
            self.f = h5py.File(target, "w", libver=("earliest", "v110"), locking=False)
        except BaseException:
            self._lock.release()
            raise
        self.f.attrs["kind"] = kind
        self.f.attrs["complete"] = np.int8(0)  # plain integer: portable to every HDF5 reader
        self.f.attrs["n_steps_done"] = 0
        h = self.f.create_group(H5MD)
        h.attrs["version"] = H5MD_VERSION
        c = h.create_group("creator")
        c.attrs["name"] = "physim"
        c.attrs["version"] = __version__
        h.create_group("author").attrs["name"] = author
        self.f.create_group(OBS)
        prov = self.f.create_group(PROV)
        prov.create_dataset("physim_version", data=__version__)
        for key, text in (provenance or {}).items():
            prov.create_dataset(_safe(key), data=text)
        self.f.flush()
        if kept:
            for name, (rows, meta) in kept.items():
                for st, t, v in zip(rows["step"], rows["time"], rows["value"], strict=True):
                    self.append(name, int(st), float(t), v, meta["unit"], flush=False, **meta["kw"])
            self.f.flush()
            os.replace(target, self.path)  # the open handle keeps writing into the same inode

    # ------------------------------------------------------------------ records
    def write_theta_requested(self, run: str, theta: np.ndarray) -> None:
        """Store the θ protocol execution ``run`` requested (what ``physim replay`` re-runs)."""
        g = self.f.require_group(f"{OBS}/{_safe(run)}")
        g.attrs["theta_requested"] = json.dumps(np.asarray(theta).tolist())

    def write_record(self, run: str, record, dt: float) -> None:
        """Store one measurement record of protocol execution ``run``."""
        g = self.f.require_group(f"{OBS}/{_safe(run)}").create_group(
            f"{record.step:03d}-{_safe(record.name)}"
        )
        g.attrs["name"] = record.name
        g.attrs["kind"] = record.kind
        g.attrs["protocol_step"] = record.step
        g.attrs["physical_run"] = record.run
        g.attrs["n_saturated"] = record.n_saturated
        g.attrs["meta"] = json.dumps(record.meta)
        timed = record.index is not None
        step = np.asarray(record.index if timed else [0], dtype=np.int64)
        sd = _dataset(g, "step", step)
        sd.make_scale("step")
        sd.attrs["_Netcdf4Dimid"] = np.int32(self._dimid[0])
        self._dimid[0] += 1
        td = _dataset(g, "time", step * dt)
        _units(td, self.device.units.get("t", "s") if self.device is not None else "s", "time")
        td.dims[0].attach_scale(sd)
        value = record.value if timed else record.value[None]
        names = _RECORD_AXES[record.kind]
        axes = [Axis(n, size=value.shape[i + 1]) for i, n in enumerate(names)]
        unit = record.unit
        if record.kind == "accumulator" and self.device is not None:
            axes[-1] = channel_axis(
                self.device, int(record.meta.get("n_w", 0)), record.meta.get("B_shape", [0, 0])
            )
            unit = per_entry_unit(
                loss_unit(self.device), axes[-1].extra["channel_unit"], "channel_unit"
            )
        lsb = None if record.lsb is None else np.broadcast_to(record.lsb, value.shape[-1:])
        if record.codes is not None and np.all(lsb == lsb[0]):
            codes = record.codes if timed else record.codes[None]
            d = _dataset(g, "value", codes.astype(_code_dtype(codes)))
            d.attrs["scale_factor"] = np.float64(lsb[0])  # CF: a scalar per variable
        else:
            d = _dataset(g, "value", value)
            if lsb is not None:
                ld = g.create_dataset("lsb", data=np.asarray(lsb, dtype=np.float64))
                _units(ld, unit, "ADC step per channel (value / lsb are the integer codes)")
                ld.dims[0].attach_scale(_scale(g, axes[-1], self._dimid))
        _units(d, unit, f"{record.kind} record {record.name}")
        d.dims[0].attach_scale(sd)
        for i, ax in enumerate(axes):
            d.dims[i + 1].attach_scale(_scale(g, ax, self._dimid))

    def write_gradient(
        self,
        run: str,
        estimate: np.ndarray,
        ideal: np.ndarray | None,
        report: dict | None = None,
        *,
        as_built: np.ndarray | None = None,
    ) -> None:
        """The measured gradient of one execution beside the ideal (and as-built) twin's."""
        g = self.f.require_group(f"{OBS}/{_safe(run)}").create_group("gradient")
        ax = self.params or Axis("parameter", size=len(estimate))
        unit = (
            per_entry_unit(loss_unit(self.device), parameter_units(self.device), "parameter_unit")
            if self.device is not None
            else "1"
        )
        for name, arr, what in (
            ("estimate", estimate, "gradient measured on the instrument"),
            ("ideal", ideal, "gradient of the ideal digital twin"),
            ("as_built", as_built, "gradient of the as-built (mismatched) twin"),
        ):
            if arr is None:
                continue
            d = g.create_dataset(name, data=np.asarray(arr, dtype=np.float64))
            _units(d, unit, what)
            _attach(g, d, [ax], self._dimid)
        if self.device is not None:
            # the step units of the unit-free (θ-scaled) fidelity, so a reader of the log can
            # judge the gradient as physim did (physim.fidelity)
            from physim.fidelity import step_units

            d = g.create_dataset("step_unit", data=step_units(self.device))
            _units(
                d,
                shared_unit(parameter_units(self.device), "parameter_unit"),
                "step unit s of each parameter: the fidelity compares s * gradient",
            )
            _attach(g, d, [ax], self._dimid)
        for k, v in (report or {}).items():
            g.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
        self.f.flush()

    def write_energy(self, run: str, energy) -> None:
        """Joules and seconds of protocol execution ``run`` (an
        :class:`~physim.protocol.records.EnergyCost`): one scalar per known part with its
        ``unit``; a part that is unavailable has no dataset, and the reasons are the group's
        ``notes`` attribute (JSON), beside the counts (``n_conversions``, ``n_writes``, …)."""
        g = self.f.require_group(f"{OBS}/{_safe(run)}").create_group("energy")
        for name, unit in energy.UNITS.items():
            value = getattr(energy, name)
            if value is not None:
                d = g.create_dataset(name, data=np.float64(value))
                _units(d, unit, f"{name.replace('_', ' ')} of one protocol execution")
        for name, value in energy.by_converter.items():
            d = g.create_dataset(f"converter_{_safe(name)}", data=np.float64(value))
            _units(d, "J", f"energy of converter {name} in one protocol execution")
        g.attrs["n_conversions"] = json.dumps(energy.n_conversions)
        g.attrs["n_writes"] = json.dumps(energy.n_writes)
        g.attrs["n_flips"] = int(energy.n_flips)
        g.attrs["n_resets"] = int(energy.n_resets)
        g.attrs["notes"] = json.dumps(list(energy.notes))
        self.f.flush()

    def write_array(
        self, path: str, data: np.ndarray, unit: str = "", *, dims: Sequence[str] | None = None
    ) -> None:
        """A free-form time-major array under ``observables/<path>/value`` with named dims."""
        data = np.asarray(data)
        g = self.f.require_group(OBS).create_group(_safe(path))
        d = _dataset(g, "value", data)
        _units(d, unit)
        default = {1: ("step",), 2: ("step", "dof"), 3: ("step", "batch", "dof")}
        names = list(dims or default.get(data.ndim, [f"axis{i}" for i in range(data.ndim)]))
        if len(names) != data.ndim:
            raise ValueError(f"dims must name all {data.ndim} axes of {path!r}, got {names}")
        axes = [
            self.params if (n == "parameter" and self.params is not None) else Axis(n, size=s)
            for n, s in zip(names, data.shape, strict=True)
        ]
        _attach(g, d, axes, self._dimid)
        self.f.flush()

    def step_done(self) -> None:
        """Mark one more protocol step complete and flush it to disk."""
        self.f.attrs["n_steps_done"] = int(self.f.attrs["n_steps_done"]) + 1
        self.f.flush()

    # ------------------------------------------------------------------ appended series
    def append(
        self,
        name: str,
        step: int,
        time: float,
        value: float | np.ndarray,
        unit: str = "",
        *,
        time_unit: str = "epoch",
        axes: Sequence[Axis] | None = None,
        flush: bool = True,
    ) -> None:
        """Append one sample to ``observables/training/<name>`` (resizable, flushed).

        A vector value of θ's length gets the ``parameter`` axis of the writer's device unless
        ``axes`` names its trailing dimensions.
        """
        value = np.asarray(value, dtype=np.float64)
        grp = self.f.require_group(TRAIN)
        key = _safe(name)
        if key not in grp:
            g = grp.create_group(key)
            sd = g.create_dataset(
                "step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(SERIES_CHUNK_ROWS,)
            )
            sd.make_scale("step")
            sd.attrs["_Netcdf4Dimid"] = np.int32(self._dimid[0])
            self._dimid[0] += 1
            td = g.create_dataset(
                "time",
                shape=(0,),
                maxshape=(None,),
                dtype=np.float64,
                chunks=(SERIES_CHUNK_ROWS,),
            )
            _units(td, time_unit, "time")
            td.dims[0].attach_scale(sd)
            rows = max(1, min(SERIES_CHUNK_ROWS, CHUNK_BYTES // max(8, value.nbytes)))
            # no compression filter on appended series: a filtered chunk changes size and moves
            # on every append, and HDF5 reuses the freed space, so a kill mid-flush could leave
            # old metadata pointing at overwritten bytes; fixed-size chunks are rewritten in
            # place and a kill at any moment leaves every flushed row readable
            d = g.create_dataset(
                "value",
                shape=(0, *value.shape),
                maxshape=(None, *value.shape),
                dtype=np.float64,
                chunks=(rows, *value.shape),
            )
            _units(d, unit, name)
            d.dims[0].attach_scale(sd)
            if axes is None and value.ndim == 1 and self.params and value.size == self.params.n():
                axes = [self.params]
            if axes is None:
                axes = [Axis(f"{key}_axis{i}", size=s) for i, s in enumerate(value.shape)]
            for i, ax in enumerate(axes):
                d.dims[i + 1].attach_scale(_scale(g, ax, self._dimid))
        g = grp[key]
        n = g["step"].shape[0]
        for k, x in (("step", step), ("time", time), ("value", value)):
            g[k].resize(n + 1, axis=0)
            g[k][n] = x
        if flush:
            self.f.flush()

    def flush(self) -> None:
        self.f.flush()

    # ------------------------------------------------------------------ lifetime
    def close(self, complete: bool = True) -> None:
        if getattr(self, "f", None) is not None and self.f.id.valid:
            self.f.attrs["complete"] = np.int8(bool(complete))
            self.f.close()
        self._lock.release()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


# --------------------------------------------------------------------------- readers
@contextmanager
def open_log(path: str | Path):
    """Read a physim log — also one still being written or left by a killed writer.

    Raises :class:`~physim.logsafe.LogError` (one line) on a directory, an empty, truncated or
    non-HDF5 file, or an HDF5 file physim did not write.
    """
    path = check_readable(path)
    try:
        try:
            f = h5py.File(path, "r", locking=False)
        except OSError:
            # already open in this process with other access settings (e.g. by xarray)
            f = h5py.File(path, "r")
    except OSError as err:
        why = str(err).split("(")[0].strip().rstrip(",") or type(err).__name__
        raise LogError(
            f"{path} cannot be read as HDF5 ({why}): the file is truncated or damaged"
        ) from None
    try:
        if H5MD not in f or "creator" not in f[H5MD] or OBS not in f:
            raise LogError(
                f"{path} is an HDF5 file but not a physim log (no /h5md/creator or /observables)"
            )
        yield f
    finally:
        f.close()


def kind(f: h5py.File) -> str:
    """``run``, ``training`` or ``study`` (logs older than this attribute are runs)."""
    k = f.attrs.get("kind", "run")
    return k.decode() if isinstance(k, bytes) else str(k)


def provenance(f: h5py.File) -> dict[str, str]:
    """The provenance strings of an open log."""
    if PROV not in f:
        return {}
    g = f[PROV]
    return {k: g[k][()].decode() if isinstance(g[k][()], bytes) else str(g[k][()]) for k in g}


def read_value(g: h5py.Group) -> np.ndarray:
    """A record's value as the controller saw it (codes × scale_factor when digitised)."""
    d = g["value"]
    if "scale_factor" in d.attrs:
        return d[()].astype(np.int64) * np.float64(d.attrs["scale_factor"])
    return d[()]


def runs(f: h5py.File) -> list[str]:
    """Protocol executions stored in the log, in order."""
    return sorted(k for k in f[OBS] if isinstance(f[OBS][k], h5py.Group) and "exec-" in k)


def records(f: h5py.File, run: str) -> dict[str, h5py.Group]:
    """Record groups of one execution, keyed by record name, in step order."""
    g = f[f"{OBS}/{run}"]
    return {
        g[k].attrs["name"]: g[k]
        for k in sorted(g)
        if isinstance(g[k], h5py.Group) and "name" in g[k].attrs
    }


def theta_requested(f: h5py.File, run: str) -> np.ndarray | None:
    """The θ execution ``run`` requested (``None`` when the log does not say)."""
    g = f[f"{OBS}/{run}"]
    if "theta_requested" not in g.attrs:
        return None
    return np.asarray(json.loads(g.attrs["theta_requested"]))


def gradient(f: h5py.File, run: str) -> h5py.Group | None:
    key = f"{OBS}/{run}/gradient"
    return f[key] if key in f else None


def energy(f: h5py.File, run: str) -> dict[str, tuple[float, str]] | None:
    """The joules and seconds written by :meth:`LogWriter.write_energy` for ``run``:
    name → (value, unit) of every part that was available; ``None`` without an energy group."""
    g = f[OBS].get(_safe(run))
    if g is None or "energy" not in g:
        return None
    e = g["energy"]
    return {k: (float(e[k][()]), str(e[k].attrs["unit"])) for k in e}


def arrays(f: h5py.File) -> dict[str, h5py.Dataset]:
    """Free-form arrays (``write_array``), keyed by name."""
    out = {}
    for k, g in f[OBS].items():
        if isinstance(g, h5py.Group) and "value" in g and "exec-" not in k:
            out[k] = g["value"]
        elif isinstance(g, h5py.Dataset):  # logs written before named dimensions
            out[k] = g
    return out


def training(f: h5py.File) -> dict[str, h5py.Group]:
    """Appended series (``observables/training/<name>``), keyed by name."""
    return dict(f[TRAIN].items()) if TRAIN in f else {}


def series(f: h5py.File, name: str, upto: int | None = None) -> dict[str, np.ndarray]:
    """One series as arrays ``step``, ``time``, ``value`` (rows with step <= ``upto``)."""
    g = f[f"{TRAIN}/{_safe(name)}"]
    n = min(g["step"].shape[0], g["time"].shape[0], g["value"].shape[0])  # a torn append
    out = {k: _readable_prefix(g[k], n) for k in ("step", "time", "value")}
    n = min(len(v) for v in out.values())
    out = {k: v[:n] for k, v in out.items()}
    if upto is not None:
        keep = out["step"] <= upto
        out = {k: v[keep] for k, v in out.items()}
    return out


def _readable_prefix(d: h5py.Dataset, n: int) -> np.ndarray:
    """The first ``n`` rows of ``d``, or the rows before the first chunk a killed writer left
    unreadable (logs written by older versions compressed their series)."""
    try:
        return d[:n]
    except OSError:
        rows = d.chunks[0] if d.chunks else n
        parts = []
        for a in range(0, n, rows):
            try:
                parts.append(d[a : min(n, a + rows)])
            except OSError:
                break
        return np.concatenate(parts) if parts else np.zeros((0, *d.shape[1:]), d.dtype)


def _kept_series(path: Path, upto: int) -> dict | None:
    """Series rows with step <= ``upto`` of the log being resumed, with what re-creates them."""
    try:
        with open_log(path) as f:
            out = {}
            for name, g in training(f).items():
                d = g["value"]
                axes = []
                for i in range(1, d.ndim):
                    sc = d.dims[i][0] if len(d.dims[i]) else None
                    labels = None
                    if sc is not None and sc.dtype.kind == "O":
                        labels = [x.decode() if isinstance(x, bytes) else str(x) for x in sc[()]]
                    ax_name = (
                        sc.name.rsplit("/", 1)[-1] if sc is not None else f"{name}_axis{i - 1}"
                    )
                    axes.append(Axis(ax_name, labels, size=d.shape[i]))
                kw = {"time_unit": str(g["time"].attrs.get("unit", "1")), "axes": axes or None}
                out[name] = (
                    series(f, name, upto),
                    {"unit": str(d.attrs.get("unit", "1")), "kw": kw},
                )
            return out
    except LogError as err:
        import warnings

        warnings.warn(f"{err}; the resumed log starts at step {upto}", stacklevel=3)
        return None


def status(f: h5py.File) -> str:
    return "complete" if int(f.attrs.get("complete", 0)) else "INCOMPLETE"


def read_training(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Every appended series of a log as ``{name: {"step", "time", "value"}}`` plus the root
    attributes and provenance under ``"attrs"`` (readable while the log is being written)."""
    with open_log(path) as f:
        out: dict[str, dict] = {name: series(f, name) for name in training(f)}
        out["attrs"] = {**provenance(f), "kind": kind(f), "complete": int(f.attrs["complete"])}
        for name, g in training(f).items():
            d = g["value"]
            out[name]["unit"] = str(d.attrs.get("unit", "1"))
            if d.ndim == 2 and len(d.dims[1]):
                lab = d.dims[1][0][()]
                out[name]["labels"] = [x.decode() if isinstance(x, bytes) else str(x) for x in lab]
    return out
