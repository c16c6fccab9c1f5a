"""HDF5 run logs in the H5MD 1.1 layout — the one module that knows HDF5 paths.

Layout of a log::

    /h5md                       version = [1, 1]; creator/{name, version}; author/{name}
    /parameters/physim          provenance: JSON of the device, non-ideality and protocol specs,
                                the instrument seed, the physim version (string datasets)
    /observables/<run>/<NNN>-<record>/{step, time, value}
                                one group per protocol execution and record, in step order;
                                ``value`` is time-major; ADC readings are stored as integer
                                codes with a ``scale_factor`` attribute (value = codes × factor)
    /observables/<run>/gradient/{estimate, ideal}, attrs cosine, norm_ratio, rel_error
    /observables/training/<name>/{step, time, value}  appended every epoch
    /                           attrs: complete (False until the writer closes), n_steps_done

Datasets are chunked (64 KiB–1 MiB along time) with gzip + shuffle, which h5dump and HDFView
read without plugins. Every completed protocol step is flushed, so a run killed mid-protocol
leaves a file whose completed steps are readable and whose ``complete`` attribute is False.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

import physim

H5MD_VERSION = np.array([1, 1], dtype=np.int32)
#: bytes per chunk: inside H5MD's recommended 64 KiB–1 MiB
CHUNK_BYTES = 1 << 19
#: gzip level 1: most of the size gain for a fraction of level-6 time (logs are write-heavy)
GZIP_LEVEL = 1

_OBS = "observables"
_PROV = "parameters/physim"
_TRAIN = "observables/training"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+\-=]", "_", name)


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


def _dataset(group: h5py.Group, name: str, data: np.ndarray, **kw) -> h5py.Dataset:
    """A chunked gzip + shuffle dataset; large arrays are compressed chunk by chunk in a thread
    pool (zlib releases the GIL) and written with direct chunk writes — the stored bytes are
    exactly what HDF5's own filters would produce, so any reader decodes them."""
    data = np.asarray(data)
    if data.ndim == 0 or data.size < 16:
        return group.create_dataset(name, data=data, **kw)
    chunks = _chunks(data.shape, data.dtype.itemsize)
    d = group.create_dataset(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        compression="gzip",
        compression_opts=GZIP_LEVEL,
        shuffle=True,
        **kw,
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


class LogWriter:
    """Append-as-you-go writer of one log file (one writer per file).

    Use as a context manager; leaving the block normally marks the log complete.
    """

    def __init__(
        self, path: str | Path, *, provenance: dict[str, str] | None = None, author: str = "physim"
    ):
        self.path = Path(path)
        # v110 keeps logs readable by the h5dump of Debian's hdf5-tools (HDF5 1.10)
        self.f = h5py.File(self.path, "w", libver=("earliest", "v110"))
        self.f.attrs["complete"] = np.int8(0)  # plain integer: portable to every HDF5 reader
        self.f.attrs["n_steps_done"] = 0
        h = self.f.create_group("h5md")
        h.attrs["version"] = H5MD_VERSION
        c = h.create_group("creator")
        c.attrs["name"] = "physim"
        c.attrs["version"] = physim.__version__
        h.create_group("author").attrs["name"] = author
        self.f.create_group(_OBS)
        prov = self.f.create_group(_PROV)
        prov.create_dataset("physim_version", data=physim.__version__)
        for key, text in (provenance or {}).items():
            prov.create_dataset(key, data=text)
        self.f.flush()

    # ------------------------------------------------------------------ records
    def write_record(self, run: str, record, dt: float) -> None:
        """Store one measurement record of protocol execution ``run``."""
        g = self.f.require_group(f"{_OBS}/{_safe(run)}").create_group(
            f"{record.step:03d}-{_safe(record.name)}"
        )
        g.attrs["name"] = record.name
        g.attrs["kind"] = record.kind
        g.attrs["protocol_step"] = record.step
        g.attrs["physical_run"] = record.run
        g.attrs["n_saturated"] = record.n_saturated
        g.attrs["meta"] = json.dumps(record.meta)
        if record.index is not None:
            step = np.asarray(record.index, dtype=np.int64)
        else:
            step = np.asarray([0], dtype=np.int64)
        _dataset(g, "step", step)
        _dataset(g, "time", step * dt).attrs["unit"] = "s"
        if record.codes is not None:
            codes = record.codes
            small = np.int16 if np.max(np.abs(codes), initial=0) < 2**15 else np.int32
            if np.max(np.abs(codes), initial=0) >= 2**31:
                small = np.int64
            value = codes.astype(small) if record.index is not None else codes[None].astype(small)
            d = _dataset(g, "value", value)
            d.attrs["scale_factor"] = np.asarray(record.lsb, dtype=np.float64)
        else:
            value = record.value if record.index is not None else record.value[None]
            d = _dataset(g, "value", value)
        d.attrs["unit"] = record.unit

    def write_gradient(
        self,
        run: str,
        estimate: np.ndarray,
        ideal: np.ndarray | None,
        report: dict | None = None,
        as_built: np.ndarray | None = None,
    ) -> None:
        g = self.f.require_group(f"{_OBS}/{_safe(run)}").create_group("gradient")
        g.create_dataset("estimate", data=estimate)
        if ideal is not None:
            g.create_dataset("ideal", data=ideal)
        if as_built is not None:  # the twin of the chip as built (mismatch, drift applied)
            g.create_dataset("as_built", data=as_built)
        for k, v in (report or {}).items():
            g.attrs[k] = json.dumps(v) if isinstance(v, dict) else v
        self.f.flush()

    def write_array(self, path: str, data: np.ndarray, unit: str = "") -> None:
        """A free-form time-major array (e.g. a full state trajectory) under observables."""
        d = _dataset(self.f.require_group(_OBS), _safe(path), np.asarray(data))
        d.attrs["unit"] = unit
        self.f.flush()

    def step_done(self) -> None:
        """Mark one more protocol step complete and flush it to disk."""
        self.f.attrs["n_steps_done"] = int(self.f.attrs["n_steps_done"]) + 1
        self.f.flush()

    # ------------------------------------------------------------------ training series
    def append(
        self, name: str, step: int, time: float, value: float | np.ndarray, unit: str = ""
    ) -> None:
        """Append one sample to ``observables/training/<name>`` (resizable, flushed)."""
        value = np.asarray(value, dtype=np.float64)
        grp = self.f.require_group(_TRAIN)
        if _safe(name) not in grp:
            g = grp.create_group(_safe(name))
            g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
            g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,))
            rows = max(1, CHUNK_BYTES // max(8, value.nbytes))
            g.create_dataset(
                "value",
                shape=(0, *value.shape),
                maxshape=(None, *value.shape),
                dtype=np.float64,
                chunks=(min(rows, 4096), *value.shape),
                compression="gzip",
                compression_opts=GZIP_LEVEL,
                shuffle=True,
            )
            g["value"].attrs["unit"] = unit
        g = grp[_safe(name)]
        n = g["step"].shape[0]
        for key, x in (("step", step), ("time", time), ("value", value)):
            g[key].resize(n + 1, axis=0)
            g[key][n] = x
        self.f.flush()

    # ------------------------------------------------------------------ lifetime
    def close(self, complete: bool = True) -> None:
        if self.f.id.valid:
            self.f.attrs["complete"] = np.int8(bool(complete))
            self.f.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


@contextmanager
def open_log(path: str | Path):
    """Read a log (also one a killed run left behind: HDF5 file locking is not required)."""
    f = h5py.File(path, "r", locking=False)
    try:
        yield f
    finally:
        f.close()


def provenance(f: h5py.File) -> dict[str, str]:
    """The provenance strings of an open log."""
    g = f[_PROV]
    return {k: g[k][()].decode() if isinstance(g[k][()], bytes) else str(g[k][()]) for k in g}


def read_value(g: h5py.Group) -> np.ndarray:
    """A record's value as the controller saw it (codes × scale_factor when digitised)."""
    d = g["value"]
    if "scale_factor" in d.attrs:
        return d[()].astype(np.int64) * d.attrs["scale_factor"]
    return d[()]


def runs(f: h5py.File) -> list[str]:
    """Protocol executions stored in the log, in order."""
    return sorted(
        k
        for k in f[_OBS]
        if k != "training"
        and isinstance(f[_OBS][k], h5py.Group)
        and not isinstance(f[_OBS][k], h5py.Dataset)
    )


def records(f: h5py.File, run: str) -> dict[str, h5py.Group]:
    """Record groups of one execution, keyed by record name, in step order."""
    g = f[f"{_OBS}/{run}"]
    return {g[k].attrs["name"]: g[k] for k in sorted(g) if k != "gradient"}


def gradient(f: h5py.File, run: str) -> h5py.Group | None:
    key = f"{_OBS}/{run}/gradient"
    return f[key] if key in f else None


def training(f: h5py.File) -> dict[str, h5py.Group]:
    return dict(f[_TRAIN].items()) if _TRAIN in f else {}


def summary(path: str | Path) -> str:
    """A human-readable summary of a log: status, provenance, runs and records."""
    lines = []
    with open_log(path) as f:
        version = ".".join(str(int(v)) for v in f["h5md"].attrs["version"])
        lines.append(
            f"{path}: H5MD {version}, physim "
            f"{f['h5md/creator'].attrs['version']}, "
            f"{'complete' if f.attrs['complete'] else 'INCOMPLETE'} "
            f"({int(f.attrs['n_steps_done'])} protocol steps written)"
        )
        prov = provenance(f)
        for key in ("device", "nonideal", "protocol"):
            if key in prov:
                spec = json.loads(prov[key])
                lines.append(f"  {key}: {spec.get('name', '?')}")
        for key in ("seed", "theta"):
            if key in prov:
                lines.append(f"  {key}: {prov[key][:70]}")
        for run in runs(f):
            lines.append(f"  run {run}:")
            for name, g in records(f, run).items():
                d = g["value"]
                adc = f", ADC codes ({d.dtype})" if "scale_factor" in d.attrs else ""
                sat = int(g.attrs["n_saturated"])
                lines.append(
                    f"    [{g.attrs['protocol_step']}] {name}: {g.attrs['kind']} "
                    f"{d.shape} {d.attrs.get('unit', '')}{adc}"
                    f"{f', {sat} saturated' if sat else ''}"
                )
            gr = gradient(f, run)
            if gr is not None and "cosine" in gr.attrs:
                lines.append(
                    f"    gradient vs ideal twin: cosine {gr.attrs['cosine']:.6f}, "
                    f"norm ratio {gr.attrs['norm_ratio']:.6f}, rel. error "
                    f"{gr.attrs['rel_error']:.3e}"
                )
        for name, g in training(f).items():
            v = g["value"][()]
            lines.append(
                f"  training/{name}: {v.shape[0]} epochs"
                + (f", {v[0]:.4g} → {v[-1]:.4g}" if v.ndim == 1 and v.size else "")
            )
    return "\n".join(lines)
