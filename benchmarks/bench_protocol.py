"""Protocol engine overhead, memory in L, and HDF5 log write rate — measured side by side.

    python benchmarks/bench_protocol.py            # chain-16, L = 5,000 and 50,000
    python benchmarks/bench_protocol.py --quick    # L = 5,000
    python benchmarks/bench_protocol.py --device chain-16 --device linhru-scp1 --steps 5000

1. ``rhel-centred`` (integrating readout) on the zero-valued instrument, and on a lossy one
   (dissipation Q = 100 at 300 K), each vs the bare :func:`physim.rhel_gradient` on the same
   device, input and target (medians of repeats, interleaved in one run), for every device and
   L. The issue's targets: ideal <= 1.2x, lossy <= 2x.
2. Peak Python-traced memory of a protocol execution at L/5 and L next to the bare RHEL's:
   both hold O(L) inputs, targets and the per-step readout/error; the difference is what the
   engine adds and should not grow with L.
3. Writing a full state trajectory (q and p) of the 16-mass chain to an H5MD log (gzip 1 +
   shuffle, chunked): MB/s of raw float64 data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import physim
from physim import logs
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol
from physim.protocol.task import build_task

#: the lossy instrument of part 1: quality factor 100 on every mode, a 300 K bath
LOSSY = {
    "name": "Q = 100, 300 K",
    "sources": [{"kind": "dissipation", "quality_factor": 100.0, "temperature": 300.0, "seed": 1}],
}
IDEAL_TARGET = 1.2
LOSSY_TARGET = 2.0


def _median_times(fns: dict, repeats: int) -> dict:
    """Medians of interleaved repeats (a load change on the machine hits every candidate)."""
    for fn in fns.values():
        fn()  # warm-up (compilation, caches)
    ts: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def ratios(name: str, L: int, repeats: int) -> dict:
    """Part 1 for one device and L: times of bare RHEL and the protocol on the zero-valued and
    the lossy instrument, and the two ratios."""
    device = physim.load_device(name)
    proto = load_protocol("rhel-centred")
    task = build_task(device, proto.task.model_copy(update={"n_steps": L}), proto.loss)
    # each chip is programmed once, as in the lab, and then measured: programming the lossy
    # one builds its bath (an eigendecomposition and n × n products), a cost per θ written
    # rather than per run, reported on its own
    lossy_spec = LOSSY
    if getattr(device.family_kind, "energy_unit", None) != "J":
        # a dimensionless HRU: the bath's k_BT is given in the device's own energy unit
        src = {**LOSSY["sources"][0], "boltzmann": 1.0, "temperature": 1e-4}
        lossy_spec = {**LOSSY, "name": "Q = 100, k_BT = 1e-4", "sources": [src]}
    ideal, lossy = Instrument(device), Instrument(device, parse_nonideal(lossy_spec))
    ideal.program(device.theta0)
    t0 = time.perf_counter()
    lossy.program(device.theta0)
    t_program = time.perf_counter() - t0
    t = _median_times(
        {
            "bare": lambda: physim.rhel_gradient(device, None, task.u, task.target),
            "ideal": lambda: run_protocol(ideal, proto, task=task),
            "lossy": lambda: run_protocol(lossy, proto, task=task),
        },
        repeats,
    )
    out = {
        "device": name,
        "L": L,
        "bare_ms": 1e3 * t["bare"],
        "ideal_ms": 1e3 * t["ideal"],
        "lossy_ms": 1e3 * t["lossy"],
        "ideal_ratio": t["ideal"] / t["bare"],
        "lossy_ratio": t["lossy"] / t["bare"],
        "lossy_program_ms": 1e3 * t_program,
    }
    print(
        f"[1] {name}, L = {L}: bare rhel_gradient {out['bare_ms']:.1f} ms, rhel-centred on the "
        f"zero-valued instrument {out['ideal_ms']:.1f} ms (ratio {out['ideal_ratio']:.3f}, "
        f"target <= {IDEAL_TARGET}), lossy {out['lossy_ms']:.1f} ms (ratio "
        f"{out['lossy_ratio']:.3f}, target <= {LOSSY_TARGET}; programming its θ "
        f"{out['lossy_program_ms']:.1f} ms once)",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L = 5,000 only")
    ap.add_argument(
        "--device", action="append", help="catalogue device (repeatable; default chain-16)"
    )
    ap.add_argument("--steps", type=int, nargs="+", help="sequence lengths L (default 5000 50000)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--ratios-only", action="store_true", help="part 1 only (no memory or log-write parts)"
    )
    args = ap.parse_args()
    names = args.device or ["chain-16"]
    steps = args.steps or ([5_000] if args.quick else [5_000, 50_000])
    rows = [ratios(name, L, args.repeats) for name in names for L in steps]
    if not args.ratios_only:
        _memory_and_log(physim.load_device(names[0]), max(steps))
    worst = {
        "ideal": max(r["ideal_ratio"] for r in rows),
        "lossy": max(r["lossy_ratio"] for r in rows),
    }
    print(
        json.dumps(
            {
                "benchmark": "bench_protocol",
                "protocol": "rhel-centred",
                "lossy": LOSSY["name"],
                "targets": {"ideal": IDEAL_TARGET, "lossy": LOSSY_TARGET},
                "worst": worst,
                "ratios": rows,
            }
        )
    )


def _memory_and_log(device, L: int) -> None:
    """Parts 2 and 3 for one device at L."""
    proto = load_protocol("rhel-centred")

    def task_for(n):
        return build_task(device, proto.task.model_copy(update={"n_steps": n}), proto.loss)

    task = task_for(L)

    def peak(fn):
        fn()  # warm
        tracemalloc.start()
        fn()
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out

    rows = []
    for n in (L // 5, L):
        tk = task_for(n)
        p_eng = peak(lambda tk=tk: run_protocol(Instrument(device), proto, task=tk))
        p_bare = peak(lambda tk=tk: physim.rhel_gradient(device, None, tk.u, tk.target))
        rows.append((n, p_eng, p_bare, tk.u.nbytes + tk.target.nbytes))
    print("[2] peak traced memory (MiB): L, protocol, bare RHEL, protocol - bare, task arrays")
    for n, pe, pb, ta in rows:
        print(
            f"    {n:>7} {pe / 2**20:8.2f} {pb / 2**20:8.2f} {(pe - pb) / 2**20:8.2f} "
            f"{ta / 2**20:8.2f}"
        )

    rec = physim.simulate(device, None, task.u, record=True)
    q, p = rec.q[:, 0], rec.p[:, 0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traj.h5"
        t = time.perf_counter()
        with logs.LogWriter(path, provenance={"device": device.spec.model_dump_json()}) as w:
            w.write_array("state_q", q, unit="m")
            w.write_array("state_p", p, unit="kg m/s")
        dt = time.perf_counter() - t
        size = path.stat().st_size
    mb = (q.nbytes + p.nbytes) / 1e6
    print(
        f"[3] full state trajectory of {device.name}, L = {L}: {mb:.1f} MB written in "
        f"{dt * 1e3:.0f} ms = {mb / dt:.0f} MB/s (target >= 50), file {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
