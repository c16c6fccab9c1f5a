"""The study engine on a cluster that fails: a real Dask scheduler and worker started by the
test on 127.0.0.1 and killed with signals mid-study, a port that accepts connections but never
answers, a jobqueue executor without its submit command, and a study in which every point fails.

What must hold: the client stops within a bounded time (heartbeat + timeout + the 1 s poll)
with one line saying what was lost and how to resume, exits non-zero, keeps every finished
point, and does not journal the points in flight (a rerun runs them, without --restart).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from physim.cli import main
from physim.study import StudyError, local_executor, parse_study, read_journal, run_study
from physim.study.engine import ExecutorLost, dask_executor, probe_scheduler, run_plan
from physim.study.expand import expand
from physim.study.spec import ExecutorSpec
from physim.study.store import StudyStore

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
# the CLI's executor settings in these tests: a lost scheduler must be reported within
# HEARTBEAT + TIMEOUT + 1 s of polling; SLACK covers a loaded 2-core machine
HEARTBEAT, TIMEOUT, SLACK = 1.0, 3.0, 10.0
N_POINTS = 16


def _study(n_steps: int, name: str = "fault-test") -> dict:
    return {
        "name": name,
        "replicates": 2,
        "base": {
            "device": "lc-ladder-8",
            "protocol": "rhel-centred-rerun",
            "nonideal": {"sources": [{"kind": "dissipation", "quality_factor": 100.0}]},
            "set": {"task.n_steps": n_steps},
        },
        "executor": {"timeout": TIMEOUT, "heartbeat": HEARTBEAT},
        "axes": [
            {
                "path": "nonideal.dissipation.quality_factor",
                "name": "Q",
                "logspace": [30.0, 3000.0, N_POINTS // 2],
            }
        ],
    }


def _toml(d: dict, path: Path) -> Path:
    ex = d["executor"]
    q = d["axes"][0]["logspace"]
    path.write_text(
        f'name = "{d["name"]}"\nreplicates = {d["replicates"]}\n[base]\n'
        'device = "lc-ladder-8"\nprotocol = "rhel-centred-rerun"\n'
        'nonideal = { sources = [{ kind = "dissipation", quality_factor = 100.0 }] }\n'
        f'set = {{ "task.n_steps" = {d["base"]["set"]["task.n_steps"]} }}\n'
        f"[executor]\ntimeout = {ex['timeout']}\nheartbeat = {ex['heartbeat']}\n"
        f'[[axes]]\npath = "nonideal.dissipation.quality_factor"\nname = "Q"\n'
        f"logspace = [{q[0]}, {q[1]}, {q[2]}]\n"
    )
    return path


class Cluster:
    """A real ``dask scheduler`` and ``dask worker`` (no nanny) as child processes."""

    def __init__(self, tmp: Path, n_workers: int = 1):
        self.tmp = tmp
        sfile = tmp / "scheduler.json"
        self.scheduler = self._spawn(
            "distributed.cli.dask_scheduler",
            "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(sfile),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not sfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole by then
        self.address = json.loads(sfile.read_text())["address"]
        self.workers = [
            self._spawn(
                "distributed.cli.dask_worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--death-timeout",
                "15",
            )  # fmt: skip
            for _ in range(n_workers)
        ]

    def _spawn(self, module: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{module.rsplit('.', 1)[-1]}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            if sig == signal.SIGKILL:
                proc.wait()

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGCONT)
            self.kill(p)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def _cli(*args: str) -> subprocess.Popen:
    code = "import sys; from physim.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_journal(out: Path, n: int, proc: subprocess.Popen, limit: float = 45) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        k = len(read_journal(out)) if (out / "journal.jsonl").exists() else 0
        if k >= n:
            return k
        time.sleep(0.05)
    raise AssertionError(f"the study did not reach {n} points: {proc.communicate()}")


def _stop(cluster: Cluster, out: Path, victims: list[subprocess.Popen], sig: int) -> None:
    """Run the CLI on the cluster, hit ``victims`` with ``sig`` mid-study, check the client."""
    spec = _study(40_000)
    cmd = _cli(
        "sweep", "run", str(_toml(spec, out.parent / "s.toml")), "--out", str(out),
        "--address", cluster.address, "--no-progress",
    )  # fmt: skip
    try:
        _wait_journal(out, 2, cmd)
        for v in victims:
            cluster.kill(v, sig)
        t_loss = time.monotonic()
        _, err = cmd.communicate(timeout=HEARTBEAT + TIMEOUT + 1 + SLACK)
        waited = time.monotonic() - t_loss
    finally:
        if cmd.poll() is None:
            os.killpg(cmd.pid, signal.SIGKILL)
            cmd.wait()
    assert cmd.returncode == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("physim sweep: error: lost the Dask scheduler at tcp://127.0.0.1:")
    assert "rerun the same command" in last and f"points are saved in {out}" in last
    assert waited < HEARTBEAT + TIMEOUT + 1 + SLACK
    done = read_journal(out)
    assert 2 <= len(done) < N_POINTS, "the loss did not land mid-study"
    # only finished points were journaled: nothing in flight became a 'failed' result
    assert all(r["error"] is None for r in done.values()), done
    assert not (out / "results.nc").exists()
    # a rerun (here, in this process) runs exactly the missing points, without --restart
    resumed = []
    with ThreadPoolExecutor(1) as ex:
        ds = run_study(parse_study(spec), executor=ex, out=out, on_result=resumed.append)
    assert sorted(r["index"] for r in resumed) == sorted(set(range(N_POINTS)) - set(done))
    assert int(ds.failed.sum()) == 0 and ds.attrs["n_done"] == N_POINTS


def test_killed_scheduler_stops_the_client_and_the_rerun_resumes(cluster, tmp_path):
    _stop(cluster, tmp_path / "out", [cluster.scheduler], signal.SIGKILL)


@pytest.mark.slow
def test_hung_scheduler_is_detected_by_the_heartbeat(cluster, tmp_path):
    # SIGSTOP: the TCP connection stays open, only the heartbeat notices the silence
    _stop(cluster, tmp_path / "out", [cluster.scheduler], signal.SIGSTOP)


@pytest.mark.slow
def test_killed_scheduler_and_worker_together(cluster, tmp_path):
    _stop(cluster, tmp_path / "out", [*cluster.workers, cluster.scheduler], signal.SIGKILL)


@pytest.mark.slow
def test_killed_worker_costs_nothing(tmp_path):
    # two workers, one killed mid-study: the scheduler reruns its tasks on the other
    c = Cluster(tmp_path, n_workers=2)
    try:
        spec = _study(20_000, name="worker-kill")
        out = tmp_path / "out"
        cmd = _cli(
            "sweep", "run", str(_toml(spec, tmp_path / "s.toml")), "--out", str(out),
            "--address", c.address, "--no-progress",
        )  # fmt: skip
        _wait_journal(out, 2, cmd)
        c.kill(c.workers[0])
        _, err = cmd.communicate(timeout=120)
        assert cmd.returncode == 0, err
        assert len(read_journal(out)) == N_POINTS
        assert all(r["error"] is None for r in read_journal(out).values())
    finally:
        c.close()


@pytest.fixture
def silent_port():
    """A listening socket that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for s in held:
        s.close()
    srv.close()


def test_silent_address_times_out_within_the_timeout(silent_port):
    t0 = time.monotonic()
    with (
        pytest.raises(StudyError, match=rf"no Dask scheduler answered at {silent_port} within 2 s"),
        dask_executor(ExecutorSpec(timeout=2.0), address=silent_port),
    ):
        pass
    assert time.monotonic() - t0 < 2.0 + SLACK
    assert probe_scheduler(silent_port, 1.0) == "no answer within 1 s"


def test_silent_address_on_the_command_line(silent_port, tmp_path, capsys):
    toml = _toml(_study(30), tmp_path / "s.toml")
    t0 = time.monotonic()
    code = main(["sweep", "run", str(toml), "--out", str(tmp_path / "o"), "--address",
                 silent_port, "--no-progress"])  # fmt: skip
    assert code == 2 and time.monotonic() - t0 < TIMEOUT + SLACK
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"physim sweep: error: no Dask scheduler answered at {silent_port}")
    assert "\n" not in err


def test_slurm_without_sbatch_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch (nor qsub) here
    for kind, cmd in (("slurm", "sbatch"), ("pbs", "qsub")):
        t0 = time.monotonic()
        with (
            pytest.raises(StudyError, match=rf"kind = '{kind}' submits jobs with {cmd}, which is"),
            dask_executor(ExecutorSpec(kind=kind)),
        ):
            pass
        assert time.monotonic() - t0 < 5


def test_killed_local_worker_stops_the_study_and_the_rerun_resumes(tmp_path):
    # a pool worker SIGKILLed mid-study (out of memory, an operator): the pool breaks, the
    # study stops, and the points in flight are not journaled as failed
    spec = parse_study(_study(40_000, name="pool-kill"))
    plan = expand(spec)
    store = StudyStore(tmp_path, plan)
    seen: list[int] = []

    def on_result(r: dict) -> None:
        seen.append(r["index"])
        if len(seen) == 2:  # the warm point and one from the pool: kill the pool's worker
            for pid in list(ex._processes):
                os.kill(pid, signal.SIGKILL)

    with local_executor(1) as ex:
        with pytest.raises(ExecutorLost, match=r"the local worker pool broke: a worker process died"
                           r".* points are saved in .* rerun the same command"):  # fmt: skip
            run_plan(plan, store, ex, max_in_flight=4, on_result=on_result)
    done = read_journal(tmp_path)
    assert 2 <= len(done) < N_POINTS and all(r["error"] is None for r in done.values())


ALL_FAIL = """
name = "all-fail"
replicates = 2
[base]
device = "lc-ladder-8"
nonideal = { sources = [{ kind = "dissipation", quality_factor = 100.0, temperature = 1e300 }] }
set = { "task.n_steps" = 30 }
[[axes]]
path = "nonideal.dissipation.quality_factor"
values = [10.0, 100.0]
"""


def test_every_point_failed_exits_non_zero(tmp_path, capsys):
    # a thermal bath at 1e300 K: every point's gradient overflows, each fails by its own physics
    toml = tmp_path / "s.toml"
    toml.write_text(ALL_FAIL)
    args = ["sweep", "run", str(toml), "--out", str(tmp_path / "o"), "--no-progress"]
    with ThreadPoolExecutor(1) as ex:  # the points, here in-process (the CLI's pool is spawned)
        with pytest.raises(StudyError, match="every one of the 4 points failed"):
            run_study(parse_study(tomllib.loads(ALL_FAIL)), executor=ex, out=tmp_path / "o")
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "4 points, 4 failed" in out
    assert err.startswith("physim sweep: error: every one of the 4 points failed (point 0: ")
    assert "\n" not in err.strip()
    # the same study on a sane bath has results
    sane = ALL_FAIL.replace("temperature = 1e300", "temperature = 300.0")
    toml.write_text(sane)
    with ThreadPoolExecutor(1) as ex:
        run_study(parse_study(tomllib.loads(sane)), executor=ex, out=tmp_path / "o2")
    assert main([*args[:4], str(tmp_path / "o2"), "--no-progress"]) == 0


# ---------------------------------------------------------------- study folders not as written
FOLDER = """
name = "folder-test"
replicates = 1
[base]
device = "lc-ladder-8"
set = { "task.n_steps" = 30 }
[[axes]]
path = "protocol.eps"
values = [1e-3, 1e-2]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A finished two-point study folder, written by physim."""
    out = tmp_path_factory.mktemp("folder")
    with ThreadPoolExecutor(1) as ex:
        run_study(parse_study(tomllib.loads(FOLDER)), executor=ex, out=out)
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"index": 7, "metrics": {}, "error": null, "seconds": 1.0}', r"index = 7 is outside"),
        ('{"index": -1, "metrics": {}, "error": null, "seconds": 1.0}', r"index = -1 is outside"),
        ("[1, 2, 3]", r"a JSON list, not an object"),
        ('{"index": 0, "metrics": "fast", "error": null, "seconds": 1.0}', r"metrics = 'fast'"),
        ('{"index": 0, "metrics": {"cosine": "x"}, "error": null, "seconds": 1}', r"cosine = 'x'"),
        ('{"index": "0", "metrics": {}, "error": null, "seconds": 1.0}', r"index = '0' is not"),
        ('{"index": 0, "metrics": {}}', r"no error, seconds"),
        ('{"index": 0, "metr', r"not JSON"),
    ],
)
def test_hand_edited_journal_is_one_line_error(folder, tmp_path, capsys, line, match):
    d = _copy(folder, tmp_path / "d")
    j = d / "journal.jsonl"
    lines = j.read_text().splitlines()
    j.write_text("\n".join([line, *lines]) + "\n")  # the bad line first, so never the torn tail
    assert main(["sweep", "status", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"physim sweep: error: {j} line 1 is not a point result physim wrote")
    assert re.search(match, err) and "\n" not in err and "--restart" in err
    with pytest.raises(StudyError, match=match):
        run_study(parse_study(tomllib.loads(FOLDER)), out=d)


def test_torn_last_line_is_ignored_and_cut_before_the_resume(folder, tmp_path, capsys):
    d = _copy(folder, tmp_path / "d")
    j = d / "journal.jsonl"
    first = j.read_text().splitlines()[0]
    j.write_text(first + "\n" + '{"index": 1, "metr')  # killed while writing point 1
    assert main(["sweep", "status", str(d)]) == 0
    assert "1 of 2 points done" in capsys.readouterr().out
    resumed = []
    with ThreadPoolExecutor(1) as ex:
        run_study(parse_study(tomllib.loads(FOLDER)), executor=ex, out=d, on_result=resumed.append)
    assert [r["index"] for r in resumed] == [1]
    assert sorted(read_journal(d, 2)) == [0, 1]  # every line readable: the torn tail was cut


@pytest.mark.parametrize(
    ("text", "match"),
    [("[1, 2]", r"a JSON list, not an object"), ("{", r"not JSON"), ('{"a": 1}', "no 'study'")],
)
def test_study_json_not_as_written(folder, tmp_path, capsys, text, match):
    d = _copy(folder, tmp_path / "d")
    (d / "study.json").write_text(text)
    assert main(["sweep", "status", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{d / 'study.json'} is not the study record physim wrote" in err
    assert re.search(match, err) and "\n" not in err
    with pytest.raises(StudyError, match=match):
        run_study(parse_study(tomllib.loads(FOLDER)), out=d)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"line 1 is not the header physim writes"),
        ("a,b\n1,2\n", r"line 1 is not the header physim writes"),
        (None, r"line 3 has 2 fields, the header \d+"),
    ],
)
def test_results_csv_empty_or_ragged(folder, tmp_path, capsys, text, match):
    d = _copy(folder, tmp_path / "d")
    csv = d / "results.csv"
    if text is None:
        rows = csv.read_text().splitlines()
        text = "\n".join([rows[0], rows[1], "0,1", *rows[2:]]) + "\n"
    csv.write_text(text)
    assert main(["sweep", "table", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(match, err) and err.startswith(f"physim sweep: error: {csv}")
    assert "\n" not in err


def test_out_over_a_users_own_results_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my,own\n1,2\n")
    toml = tmp_path / "s.toml"
    toml.write_text(FOLDER)
    for extra in ([], ["--restart"]):
        assert main(["sweep", "run", str(toml), "--out", str(mine), *extra]) == 2
        err = capsys.readouterr().err
        assert "holds results.csv but no study.json" in err and "another --out" in err
        assert (mine / "results.csv").read_text() == "my,own\n1,2\n"


def test_sweep_expansion_checks_the_memory_budget(monkeypatch):
    from physim.memory import MemoryBudgetError

    monkeypatch.setenv("PHYSIM_MEMORY_BUDGET", "64MiB")
    big = {**tomllib.loads(FOLDER), "replicates": 10_000, "max_points": 10**9}
    big["axes"] = [{"path": "protocol.eps", "linspace": [1e-3, 1e-2, 1000]}]
    with pytest.raises(MemoryBudgetError, match=r"study 'folder-test' of 10,000,000 points needs"):
        expand(parse_study(big))


@pytest.mark.slow
def test_local_cluster_through_the_watched_executor(tmp_path):
    # --executor dask without an address: a LocalCluster, heartbeats answered all along
    spec = parse_study(_study(3000, name="watched"))
    with dask_executor(ExecutorSpec(heartbeat=0.2, timeout=5), workers=1) as (ex, _):
        ds = run_study(spec, executor=ex, out=tmp_path)
        ex.check(now=True)  # still answering after the study
    assert int(ds.failed.sum()) == 0 and ds.attrs["n_done"] == N_POINTS


def test_slurm_without_sbatch_on_the_command_line(tmp_path, monkeypatch, capsys):
    toml = tmp_path / "s.toml"
    toml.write_text(FOLDER + '[executor]\nkind = "slurm"\n')
    monkeypatch.setenv("PATH", str(tmp_path))
    t0 = time.monotonic()
    assert main(["sweep", "run", str(toml), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err.strip()
    assert err.startswith("physim sweep: error: [executor] kind = 'slurm' submits jobs with sbatch")
    assert "\n" not in err
