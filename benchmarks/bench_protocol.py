"""Protocol engine overhead, memory in L, and HDF5 log write rate — measured side by side.

    python benchmarks/bench_protocol.py            # chain-16, L = 50,000
    python benchmarks/bench_protocol.py --quick    # L = 5,000

1. ``rhel-centred`` (integrating readout) on the ideal instrument vs the foundation's bare
   :func:`physim.rhel_gradient` on the same device, input and target (median of repeats).
2. Peak Python-traced memory of a protocol execution at L/5 and L next to the bare RHEL's:
   both hold O(L) inputs, targets and the per-step readout/error; the difference is what the
   engine adds and should not grow with L.
3. Writing a full state trajectory (q and p) of the 16-mass chain to an H5MD log (gzip 1 +
   shuffle, chunked): MB/s of raw float64 data.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import physim
from physim import logs
from physim.instrument.hardware import Instrument
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol
from physim.protocol.task import build_task


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, caches)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L = 5,000 instead of 50,000")
    ap.add_argument("--device", default="chain-16")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    L = 5_000 if args.quick else 50_000
    device = physim.load_device(args.device)
    proto = load_protocol("rhel-centred")

    def task_for(n):
        return build_task(device, proto.task.model_copy(update={"n_steps": n}), proto.loss)

    task = task_for(L)
    inst = Instrument(device)

    def engine():
        run_protocol(inst, proto, task=task, theta=device.theta0)

    def bare():
        physim.rhel_gradient(device, None, task.u, task.target)

    t_bare = _median_time(bare, args.repeats)
    t_engine = _median_time(engine, args.repeats)
    print(
        f"[1] {device.name}, L = {L}: bare rhel_gradient {t_bare * 1e3:.1f} ms, "
        f"rhel-centred protocol {t_engine * 1e3:.1f} ms, ratio {t_engine / t_bare:.3f} "
        "(target <= 1.3)"
    )

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
