"""The one study engine: points → tasks → any ``concurrent.futures.Executor`` → one writer.

The engine talks only to the Executor interface. The embedded default is a spawn process pool
with numba and BLAS single-threaded in every worker; ``dask.distributed`` provides the same
interface through ``Client.get_executor()`` (a LocalCluster, a scheduler address or a
dask-jobqueue cluster), so local and cluster runs are one code path.

Faults: a point that fails by its own physics is a result (journaled with its message). A
task the executor cannot finish (a broken pool, a lost or silent scheduler, a cancelled
future) stops the study with :class:`ExecutorLost` — one line naming what was lost — and the
points in flight are not journaled, so the same command resumes them. The Dask executor is
watched: a scheduler that stops answering is detected within ``heartbeat + timeout`` seconds
of ``[executor]`` (5 + 30 by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from physim.study.expand import Plan, expand
from physim.study.outcome import MAIN_GUARD_HINT, report
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


class ExecutorLost(StudyError):
    """The executor can no longer finish tasks (a lost or silent scheduler, a broken pool).

    The points in flight are *not* results: nothing is journaled for them, and a rerun of the
    same study runs them again.
    """


def probe_scheduler(address: str, timeout: float) -> str | None:
    """``None`` if the Dask scheduler at ``address`` answers an identity request within
    ``timeout`` seconds, else why not (one line).

    The whole exchange (connect, dask's handshake, request, reply) is bounded by ``timeout``:
    a port that accepts connections but never answers would otherwise hold ``distributed``'s
    handshake past its own connect timeout.
    """
    from distributed.comm import connect

    async def ask() -> None:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            reply = await comm.read()
        finally:
            comm.abort()
        if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
            raise OSError(f"the peer is not a Dask scheduler (answered {str(reply)[:60]!r})")

    try:
        asyncio.run(asyncio.wait_for(ask(), timeout))
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as err:  # refused, reset, not a scheduler: all mean "not there"
        return " ".join(f"{type(err).__name__}: {err}".split())
    return None


class WatchedExecutor(Executor):
    """A Dask client's executor whose :meth:`check` raises :class:`ExecutorLost` when the
    scheduler is gone or silent.

    Every ``heartbeat`` seconds :meth:`check` asks the scheduler for its identity over a fresh
    connection, bounded by ``timeout`` seconds: a killed, unreachable or hung (SIGSTOP)
    scheduler is detected within ``heartbeat + timeout`` seconds of the loss (plus the
    engine's polling interval, 1 s). A client that dask itself closed is detected at once.
    """

    def __init__(self, client, *, heartbeat: float, timeout: float):
        self._client = client
        self._inner = client.get_executor()
        self.address = client.scheduler.address
        self.heartbeat = heartbeat
        self.timeout = timeout
        self._last = time.monotonic()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with contextlib.suppress(Exception):
            self._inner.shutdown(wait=False)

    def check(self, *, now: bool = False) -> None:
        """Raise :class:`ExecutorLost` if the scheduler is lost; cheap between heartbeats
        (``now``: ask the scheduler whatever the time since the last heartbeat)."""
        status = str(getattr(self._client, "status", "running"))
        if status in ("closing", "closed", "closed-with-errors"):
            raise ExecutorLost(
                f"lost the Dask scheduler at {self.address} (the client is {status})"
            )
        if not now and time.monotonic() - self._last < self.heartbeat:
            return
        why = probe_scheduler(self.address, self.timeout)
        if why is not None:
            raise ExecutorLost(f"lost the Dask scheduler at {self.address} ({why})")
        self._last = time.monotonic()


@contextlib.contextmanager
def dask_executor(
    spec: ExecutorSpec | None = None, *, address: str | None = None, workers: int | None = None
) -> Iterator[tuple[Executor, str | None]]:
    """``(executor, dashboard link)`` from dask.distributed: an address, jobqueue or LocalCluster.

    The executor is a :class:`WatchedExecutor`: the study engine stops with
    :class:`ExecutorLost` within ``spec.heartbeat + spec.timeout`` seconds of losing the
    scheduler. An address is probed first (bounded by ``spec.timeout``).
    """
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
        why = probe_scheduler(address, spec.timeout)
        if why is not None:
            why = "" if why.startswith("no answer") else f" ({why})"
            raise StudyError(
                f"no Dask scheduler answered at {address} within {spec.timeout:g} s{why}; "
                "start one (dask scheduler) or drop --address to run a LocalCluster"
            )
        try:
            client = Client(address, timeout=f"{spec.timeout}s")
        except (OSError, TimeoutError) as err:
            raise StudyError(
                f"no Dask scheduler answered at {address} within {spec.timeout:g} s ({err}); "
                "start one (dask scheduler) or drop --address to run a LocalCluster"
            ) from None
    else:
        if spec.kind in ("slurm", "pbs"):
            submit = {"slurm": "sbatch", "pbs": "qsub"}[spec.kind]
            if shutil.which(submit) is None:
                # dask-jobqueue would submit nothing and the study would wait for workers forever
                raise StudyError(
                    f"[executor] kind = {spec.kind!r} submits jobs with {submit}, which is not on "
                    f'PATH here; run on the cluster\'s login node, or use kind = "dask" with '
                    "address = a running scheduler, or --executor local"
                )
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
    # the loss of the scheduler is reported once, by the engine (ExecutorLost), not also by
    # the client's own reconnect log
    client_log = logging.getLogger("distributed.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        link = None
        with contextlib.suppress(Exception):
            link = client.dashboard_link
        yield WatchedExecutor(client, heartbeat=spec.heartbeat, timeout=spec.timeout), link
    finally:
        # bounded: after a lost scheduler, closing must not wait for it
        with contextlib.suppress(Exception):
            client.close(timeout=spec.timeout)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        client_log.setLevel(level)


OnResult = Callable[[dict], None]


#: seconds between checks of the executor (:meth:`WatchedExecutor.check`) while waiting
POLL = 1.0


def _lost_by_executor(err: BaseException) -> bool:
    """Whether a task's exception is the executor's (not a result) rather than the point's.

    ``run_point`` never raises, so any exception from a future is the executor's. The one
    exception is dask's ``KilledWorker``: the scheduler gave up on this very task after it
    killed several workers in turn (a crash or memory blow-up of the point itself), so it is
    recorded as the point's failure rather than retried forever.
    """
    return type(err).__name__ != "KilledWorker"


def run_tasks(
    executor: Executor,
    tasks: Iterable[PointTask],
    on_result: OnResult,
    *,
    max_in_flight: int = 64,
) -> None:
    """Submit ``run_point`` tasks through ``executor``, ``on_result(result)`` as each finishes.

    The building block of :func:`run_plan` (and of searches that submit batches of points):
    at most ``max_in_flight`` tasks are outstanding. A point that fails by its own physics is
    a result (``run_point`` returns it with its message). A task the executor could not finish
    (a broken pool, a lost scheduler, a cancelled future) raises :class:`ExecutorLost`, and
    the tasks in flight are dropped, not reported: they are not results. An executor with a
    ``check()`` method (:class:`WatchedExecutor`) is checked every :data:`POLL` seconds while
    waiting, so that a silent scheduler cannot hang the loop.
    """
    todo = iter(tasks)
    futures: dict = {}
    check = getattr(executor, "check", None)

    def fill() -> None:
        while len(futures) < max_in_flight:
            task = next(todo, None)
            if task is None:
                return
            try:
                futures[executor.submit(run_point, task)] = task.index
            except BrokenProcessPool as err:
                raise ExecutorLost(f"the local worker pool broke ({err})") from None
            except Exception as err:  # a closed client, a pool shut down: no task was sent
                if check is not None:
                    check(now=True)  # names the loss (e.g. the scheduler) when it can
                msg = " ".join(f"{type(err).__name__}: {err}".split())
                raise ExecutorLost(f"the executor refused work ({msg})") from None

    try:
        fill()
        while futures:
            finished, _ = wait(futures, timeout=POLL, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = futures.pop(fut)
                try:
                    r = fut.result()
                except BaseException as err:  # noqa: BLE001 - includes CancelledError
                    if isinstance(err, KeyboardInterrupt):
                        raise
                    msg = " ".join(f"{type(err).__name__}: {err}".split())
                    if _lost_by_executor(err):
                        if check is not None:
                            check(now=True)  # names the loss (the scheduler) when it can
                        if isinstance(err, BrokenProcessPool):
                            raise ExecutorLost(
                                "the local worker pool broke: a worker process died (killed, "
                                f"or out of memory) while running point {i}; {MAIN_GUARD_HINT}"
                            ) from None
                        raise ExecutorLost(
                            f"the executor did not finish point {i} ({msg})"
                        ) from None
                    r = {
                        "index": i,
                        "metrics": {},
                        "error": f"worker failed: {msg}",
                        "seconds": float("nan"),
                    }
                on_result(r)
            if check is not None and futures:
                check()
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
    except ExecutorLost as err:
        n = len(store.done)
        raise ExecutorLost(
            f"{err}; {n} of {plan.n_points} points are saved in {store.dir} and the points in "
            "flight were not recorded: rerun the same command (with a working executor) to "
            "resume"
        ) from None
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
