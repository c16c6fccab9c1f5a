"""The one study engine: points → tasks → any ``concurrent.futures.Executor`` → one writer.

The engine talks only to the Executor interface. The embedded default is a spawn process pool
with numba and BLAS single-threaded in every worker; ``dask.distributed`` provides the same
interface through ``Client.get_executor()`` (a LocalCluster, a scheduler address or a
dask-jobqueue cluster), so local and cluster runs are one code path.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from physim.study.expand import Plan, expand
from physim.study.outcome import report
from physim.study.point import PointTask
from physim.study.spec import ExecutorSpec, StudyError, StudySpec
from physim.study.store import StudyStore
from physim.study.task import run_point

# set in every worker before numba or numpy load: one thread each, the cores go to the workers
WORKER_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# the initializer runs before the worker unpickles its first task (which imports physim and
# numba); ``exec`` of a string needs no import of physim itself to be unpickled. A spawned
# worker may have imported numba already, while it re-ran the parent's main module (the
# ``physim`` console script imports the CLI): numba then holds the thread count it read at
# import, and changing NUMBA_NUM_THREADS under it makes every later compile fail ("Cannot set
# NUMBA_NUM_THREADS to a different value once the threads have been launched"). There the
# variable is left alone; run_point limits numba to one thread with set_num_threads.
_WORKER_INIT = (
    "import os, sys; os.environ.update({k: v for k, v in "
    f"{WORKER_ENV!r}.items() if not (k == 'NUMBA_NUM_THREADS' and 'numba' in sys.modules)}})"
)


def default_workers() -> int:
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def local_executor(workers: int | None = None) -> ProcessPoolExecutor:
    """The embedded pool: spawn context, one single-threaded worker per core by default."""
    return ProcessPoolExecutor(
        max_workers=workers or default_workers(),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exec,
        initargs=(_WORKER_INIT,),
    )


@contextlib.contextmanager
def dask_executor(
    spec: ExecutorSpec | None = None, *, address: str | None = None, workers: int | None = None
) -> Iterator[tuple[Executor, str | None]]:
    """``(executor, dashboard link)`` from dask.distributed: an address, jobqueue or LocalCluster."""
    spec = spec or ExecutorSpec()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "--executor dask needs dask.distributed; install it with pip install 'physim[cluster]'"
        ) from None
    address = address or spec.address
    cluster = None
    if address:
        try:
            client = Client(address, timeout=f"{spec.timeout}s")
        except (OSError, TimeoutError) as err:
            raise StudyError(
                f"no Dask scheduler answered at {address} within {spec.timeout:g} s ({err}); "
                "start one (dask scheduler) or drop --address to run a LocalCluster"
            ) from None
    else:
        if spec.kind in ("slurm", "pbs"):
            try:
                import dask_jobqueue
            except ImportError:
                raise ImportError(
                    f"[executor] kind = {spec.kind!r} needs dask-jobqueue; "
                    "pip install 'physim[cluster]'"
                ) from None
            cls = dask_jobqueue.SLURMCluster if spec.kind == "slurm" else dask_jobqueue.PBSCluster
            cluster = cls(
                cores=spec.cores,
                processes=spec.cores,
                memory=spec.memory,
                walltime=spec.walltime,
                queue=spec.queue,
                account=spec.account,
                job_script_prologue=[f"export {k}={v}" for k, v in WORKER_ENV.items()],
            )
            cluster.scale(jobs=spec.jobs)
        else:
            cluster = LocalCluster(
                n_workers=workers or spec.workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                env=dict(WORKER_ENV),
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
        client = Client(cluster, timeout=f"{spec.timeout}s")
    try:
        link = None
        with contextlib.suppress(Exception):
            link = client.dashboard_link
        yield client.get_executor(), link
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


OnResult = Callable[[dict], None]


def run_tasks(
    executor: Executor,
    tasks: Iterable[PointTask],
    on_result: OnResult,
    *,
    max_in_flight: int = 64,
) -> None:
    """Submit ``run_point`` tasks through ``executor``, ``on_result(result)`` as each finishes.

    The building block of :func:`run_plan` (and of searches that submit batches of points):
    at most ``max_in_flight`` tasks are outstanding; a task whose worker dies is reported as a
    failed result, never raised.
    """
    todo = iter(tasks)
    futures: dict = {}

    def fill() -> None:
        while len(futures) < max_in_flight:
            task = next(todo, None)
            if task is None:
                return
            try:
                futures[executor.submit(run_point, task)] = task.index
            except BrokenProcessPool as err:
                raise StudyError(
                    f"the worker pool broke ({err}); finished points are saved, rerun the same "
                    "command to resume"
                ) from None

    try:
        fill()
        while futures:
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = futures.pop(fut)
                try:
                    r = fut.result()
                except Exception as err:  # the worker died or the task could not be sent
                    r = {
                        "index": i,
                        "metrics": {},
                        "error": f"worker failed: {type(err).__name__}: {err}",
                        "seconds": float("nan"),
                    }
                on_result(r)
            fill()
    finally:
        for fut in futures:
            fut.cancel()


def run_plan(
    plan: Plan,
    store: StudyStore,
    executor: Executor,
    *,
    max_in_flight: int = 64,
    warm: bool = True,
    on_result: OnResult | None = None,
) -> int:
    """Run every pending point of ``plan`` through ``executor``; returns the failures.

    With ``warm`` the first pending point runs in this process first: it compiles (or loads)
    the numba cache once before the fan-out, and its result is kept (the task is pure).
    Each result is journaled by ``store`` the moment it arrives.
    """
    pending = store.pending()
    n_failed = sum(1 for r in store.done.values() if r["error"])

    def record(r: dict) -> None:
        nonlocal n_failed
        store.append(r)
        n_failed += bool(r["error"])
        if on_result is not None:
            on_result(r)

    def task(i: int) -> PointTask:
        t = plan.task(i)
        if plan.spec.log_points:
            t = t.with_(log=str((store.dir / "points" / f"point-{i:06d}.h5").resolve()))
        return t

    try:
        if warm and pending:
            record(run_point(task(pending.pop(0))))
        run_tasks(executor, (task(i) for i in pending), record, max_in_flight=max_in_flight)
    finally:
        store.close()
    return n_failed


def run_study(
    spec: StudySpec,
    executor: Executor | None = None,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    restart: bool = False,
    on_result: OnResult | None = None,
):
    """Run a study and return its results as an ``xarray.Dataset``.

    Parameters
    ----------
    spec
        The study (:func:`physim.study.load_study` reads one from the catalogue or a file).
    executor
        Any ``concurrent.futures.Executor`` (e.g. ``distributed.Client(...).get_executor()``);
        default: the embedded local process pool with ``workers`` workers.
    out
        Study folder (study.json, journal, results.nc, results.csv); rerunning resumes.
        Default: a temporary folder, removed afterwards.
    """
    plan = expand(spec)
    with contextlib.ExitStack() as stack:
        if out is None:
            out = stack.enter_context(tempfile.TemporaryDirectory(prefix="physim-study-"))
        store = StudyStore(out, plan, restart=restart)
        if executor is None and store.pending():
            executor = stack.enter_context(local_executor(workers))
        if store.pending():
            run_plan(plan, store, executor, on_result=on_result)
        ds = store.finish()
        report(plan, store.done)  # warnings per point; raises when every point failed
        return ds.load()


def time_one_point(plan: Plan) -> dict:
    """Run the first point here and return its result (``seconds`` includes any numba
    compilation a cold cache needs; the estimate of ``--dry-run`` says so)."""
    return run_point(plan.task(0))
