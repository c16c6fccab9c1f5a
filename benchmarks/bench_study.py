"""Study engine: parallel efficiency, Dask vs the local pool, engine overhead, first-point latency.

    python benchmarks/bench_study.py            # 40 points of ~1 s (lc-ladder-8, L = 24000)
    python benchmarks/bench_study.py --quick    # 12 points of ~0.15 s

All ratios are measured side by side in one run (the machine may be shared; only ratios count):

1. ``parallel_efficiency_2`` = T(1 local worker) / (2 · T(2 local workers)), same study, pools
   started and warmed before the clock starts (the engine's parent-side warm point included);
2. ``dask_over_local`` = T(dask LocalCluster, 2 worker processes × 1 thread) / T(2 local workers);
3. ``overhead_fraction`` = (T(1 worker) − Σ point compute) / Σ point compute: what the engine
   adds per point (task specs, pickling, the fsync'd journal line); ``final_write_s`` is the
   one-time write of results.nc and results.csv at the end, reported apart;
   ``point_slowdown_2`` = Σ point compute with 2 workers / with 1, and ``busy_fraction_2`` =
   Σ point compute / (2 · wall): when the cores are shared with other jobs, points slow down
   (slowdown > 1) although the engine keeps both workers busy (busy fraction ≈ 1);
4. first-point latency: a fresh process expanding the study and running its first point, with
   the numba cache warm and with an empty cache directory (cold: every kernel compiles).

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from physim.study import expand, local_executor, parse_study, run_plan
from physim.study.store import StudyStore
from physim.study.task import run_point


def study(n_points: int, n_steps: int) -> dict:
    return {
        "name": "bench-study",
        "replicates": n_points // 4,
        "base": {
            "device": "lc-ladder-8",
            "protocol": "rhel-centred-rerun",
            "nonideal": {
                "sources": [{"kind": "dissipation", "quality_factor": 100.0, "temperature": 1e9}]
            },
            "set": {"protocol.task.n_steps": n_steps, "protocol.eps": 1e-2},
        },
        "axes": [{"path": "nonideal.dissipation.quality_factor", "logspace": [30.0, 3e4, 4]}],
    }


def _warm(ex, plan, n: int) -> None:
    # start every worker (spawn, import of physim and numba, numba cache load) before timing:
    # several real points per worker, so that each worker has run the kernels once
    list(ex.map(run_point, [plan.task(0)] * (3 * n)))


def timed(plan, ex, tmp: Path, tag: str) -> tuple[float, float, float]:
    """(wall time of the points incl. journal, Σ point compute, time of the final write)."""
    store = StudyStore(tmp / tag, plan, restart=True)
    t0 = time.perf_counter()
    run_plan(plan, store, ex, max_in_flight=8)
    wall = time.perf_counter() - t0
    store.finish()
    return wall, sum(r["seconds"] for r in store.done.values()), time.perf_counter() - t0 - wall


_FIRST = (
    "import json, sys, time; t0 = time.perf_counter(); "
    "from physim.study import expand, parse_study; from physim.study.task import run_point; "
    "plan = expand(parse_study(json.loads(sys.argv[1]))); r = run_point(plan.task(0)); "
    "print(time.perf_counter() - t0)"
)


def first_point(spec: dict, cache_dir: str | None) -> float:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-c", _FIRST, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 points of ~0.2 s")
    args = ap.parse_args()
    n_points, n_steps = (12, 3000) if args.quick else (40, 24000)
    spec = study(n_points, n_steps)
    plan = expand(parse_study(spec))
    print(f"{plan.n_points} points of lc-ladder-8 at L = {n_steps}")
    res: dict[str, float] = {}
    import h5netcdf  # noqa: F401
    import xarray  # noqa: F401  # a one-time import is not per-point engine overhead

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        with local_executor(1) as ex:
            _warm(ex, plan, 1)
            t1, c1, fin = timed(plan, ex, tmp, "w1")
        from distributed import Client, LocalCluster

        # the 2-worker pool and the Dask cluster run alternately, twice each (best of two), so
        # that load from elsewhere on a shared machine hits both alike
        with (
            local_executor(2) as pool,
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cl,
            Client(cl) as client,
        ):
            dask_ex = client.get_executor()
            _warm(pool, plan, 2)
            _warm(dask_ex, plan, 2)
            r2, rd = [], []
            for k in range(2):
                r2.append(timed(plan, pool, tmp, f"w2-{k}"))
                rd.append(timed(plan, dask_ex, tmp, f"dask-{k}"))
            (t2, c2, _), (td, cd, _) = min(r2), min(rd)
        res["point_seconds"] = c1 / plan.n_points
        res["t_local_1"], res["t_local_2"], res["t_dask_2"] = t1, t2, td
        res["parallel_efficiency_2"] = t1 / (2 * t2)
        # the same points compute slower when two run at once if the cores are not free:
        res["point_slowdown_2"] = c2 / c1
        # fraction of the wall time both workers were busy computing (1 = no idle worker)
        res["busy_fraction_2"] = c2 / (2 * t2)
        res["busy_fraction_dask_2"] = cd / (2 * td)
        res["dask_over_local"] = td / t2
        res["overhead_fraction"] = (t1 - c1) / c1
        res["final_write_s"] = fin  # results.nc + csv, once per study
        res["first_point_warm_s"] = first_point(spec, None)
        with tempfile.TemporaryDirectory() as cache:
            res["first_point_cold_s"] = first_point(spec, cache)
    print(
        f"1 worker {t1:.2f} s, 2 workers {t2:.2f} s, dask 2 workers {td:.2f} s; point "
        f"{res['point_seconds']:.3f} s; first point warm {res['first_point_warm_s']:.2f} s, "
        f"cold {res['first_point_cold_s']:.2f} s"
    )
    print(json.dumps({k: round(v, 4) for k, v in res.items()}))


if __name__ == "__main__":
    main()
