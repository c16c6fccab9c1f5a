"""Files are never destroyed: no overwrite without --force, never a non-HDF5 file, one writer
per log (lock first, then create), clean errors on unreadable files, SIGKILL at random moments
of `physim run --epochs --log` and `physim train` leaves readable logs, and resume is
bit-identical."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import physim
from physim import logs
from physim.cli import main
from physim.logsafe import LogError
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol

ROOT = Path(__file__).resolve().parents[1]
#: SIGKILLs per command in the default run and in the slow run
N_KILLS_FAST, N_KILLS_SLOW = 2, 10

TRAIN_CONFIG = {
    "data": "adding",
    "algo": "rhel",
    "length": 16,
    "n_samples": 80,
    "lr": 0.01,
    "batch_size": 8,
    "eval_batch_size": 16,
    "n_steps": 40,
    "eval_every": 5,
    "checkpoint_every": 3,
    "patience": None,
    "model": {"model": "linhru", "n_blocks": 1, "hidden": 4, "ssm_dim": 3, "dropout": 0.1},
}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _physim(*argv):
    return [sys.executable, "-m", "physim.cli", *argv]


def _run_log(path, **kw):
    p = load_protocol("rhel-centred")
    p = p.model_copy(update={"task": p.task.model_copy(update={"n_steps": 40})})
    return run_session(physim.load_device("two-mass"), p, log=path, **kw)


# --------------------------------------------------------------------------- overwrite policy
def test_log_over_an_existing_file_is_refused_without_force(tmp_path):
    path = tmp_path / "run.h5"
    _run_log(path)
    before = path.read_bytes()
    with pytest.raises(LogError, match=r"exists; pass --force"):
        _run_log(path)
    assert path.read_bytes() == before
    _run_log(path, force=True)
    with logs.open_log(path) as f:
        assert logs.status(f) == "complete"


def test_log_over_a_toml_is_refused_even_with_force(tmp_path, capsys):
    toml = tmp_path / "dev.toml"
    toml.write_text((ROOT / "devices" / "two-mass.toml").read_text())
    before = toml.read_bytes()
    for extra in ([], ["--force"]):
        code = main(
            ["run", "two-mass", "rhel-centred", "--steps", "30", "--log", str(toml), *extra]
        )
        assert code == 2
        assert "is not an HDF5 file; physim never overwrites it" in capsys.readouterr().err
    assert toml.read_bytes() == before


def test_a_directory_as_log_is_refused(tmp_path):
    with pytest.raises(LogError, match=r"is a directory; give a file path"):
        _run_log(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_demo_refuses_to_overwrite_its_outputs(tmp_path):
    from physim.demo import run_demo

    (tmp_path / "demo.h5").write_bytes(b"precious")
    with pytest.raises(LogError, match="not an HDF5 file"):
        run_demo(epochs=1, out=tmp_path, progress=False, plot=False, force=True)
    assert (tmp_path / "demo.h5").read_bytes() == b"precious"


HOLDER = textwrap.dedent("""
    import sys, time
    from physim import logs
    w = logs.LogWriter(sys.argv[1], provenance={"note": "first writer"})
    w.append("loss", 0, 0.0, 1.0, "1")
    print("ready", flush=True)
    time.sleep(120)
""")


def test_a_second_writer_is_refused_before_it_touches_the_file(tmp_path):
    path = tmp_path / "shared.h5"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        before = path.read_bytes()
        for force in (False, True):
            with pytest.raises(LogError, match="being written by another process"):
                logs.LogWriter(path, force=force)
        assert path.read_bytes() == before
        # a reader still sees what the first writer flushed
        with logs.open_log(path) as f:
            assert logs.series(f, "loss")["value"].tolist() == [1.0]
            assert logs.status(f) == "INCOMPLETE"
    finally:
        child.kill()
        child.wait(timeout=60)
    # the kernel released the dead writer's lock: a new writer (with --force) may proceed
    with logs.LogWriter(path, force=True) as w:
        w.append("loss", 0, 0.0, 2.0, "1")


# --------------------------------------------------------------------------- unreadable files
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"name = 'x'\n", r"is not an HDF5 file"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 40, r"cannot be read as HDF5 .*truncated or damaged"),
        ("foreign", r"is an HDF5 file but not a physim log"),
        ("truncated", r"cannot be read as HDF5 .*truncated or damaged"),
    ],
)
def test_tools_give_one_clean_line_on_bad_files(tmp_path, capsys, content, message):
    path = tmp_path / "bad.h5"
    if content == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    elif content == "truncated":
        _run_log(tmp_path / "good.h5")
        data = (tmp_path / "good.h5").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(content)
    for cmd in ("inspect", "plot", "replay"):
        assert main([cmd, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert __import__("re").search(message, err), err


# --------------------------------------------------------------------------- SIGKILL
def _kill_at_random(argv, t_max, rng, cwd):
    """Start ``argv``, SIGKILL it after a random delay; True when it was killed mid-run."""
    child = subprocess.Popen(
        argv, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(rng.uniform(0.2, t_max))
    killed = child.poll() is None
    if killed:
        os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=120)
    return killed


def _sigkill_run(tmp_path, n_kills, seed):
    rng = random.Random(seed)
    start = time.perf_counter()
    ref = tmp_path / "ref.h5"
    argv = ["run", "two-mass", "rhel-centred", "--steps", "200", "--epochs", "25"]
    assert (
        subprocess.run(_physim(*argv, "--log", str(ref)), env=_env(), timeout=600).returncode == 0
    )
    t_full = time.perf_counter() - start
    for k in range(n_kills):
        log = tmp_path / f"killed-{k}.h5"
        _kill_at_random(_physim(*argv, "--log", str(log)), t_full, rng, tmp_path)
        if not log.exists():
            continue  # killed before the lock and the file were created
        out = subprocess.run(
            _physim("inspect", str(log)), env=_env(), capture_output=True, text=True, timeout=120
        )
        if log.stat().st_size == 0:
            assert out.returncode == 2 and "is empty" in out.stderr
            continue
        assert out.returncode == 0, out.stderr
        rep = subprocess.run(
            _physim("replay", str(log)), env=_env(), capture_output=True, text=True, timeout=600
        )
        assert rep.returncode == 0, rep.stdout + rep.stderr


def test_sigkill_physim_run_epochs_log_then_inspect_and_replay(tmp_path):
    _sigkill_run(tmp_path, N_KILLS_FAST, seed=1)


@pytest.mark.slow
def test_sigkill_physim_run_epochs_log_many(tmp_path):
    _sigkill_run(tmp_path, N_KILLS_SLOW, seed=2)


def _series(path):
    data = logs.read_training(path)
    return {k: v for k, v in data.items() if k not in ("attrs", "seconds")}


def _sigkill_train(tmp_path, n_kills, seed):
    rng = random.Random(seed)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TRAIN_CONFIG))
    start = time.perf_counter()
    ref = subprocess.run(
        _physim("train", "--config", str(cfg), "--out", "ref", "--quiet"),
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        timeout=600,
    )
    assert ref.returncode == 0, ref.stderr
    t_full = time.perf_counter() - start
    argv = _physim("train", "--config", str(cfg), "--out", "killed", "--quiet")
    for _ in range(n_kills):  # kill, resume, kill again ... in one directory
        _kill_at_random(argv, t_full, rng, tmp_path)
        log = tmp_path / "killed" / "train_log.h5"
        if log.exists() and log.stat().st_size:
            out = subprocess.run(
                _physim("inspect", str(log)), env=_env(), capture_output=True, text=True
            )
            assert out.returncode == 0, out.stderr  # readable after a kill at any moment
    done = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    a, b = _series(tmp_path / "ref/train_log.h5"), _series(tmp_path / "killed/train_log.h5")
    assert set(a) == set(b)
    for name in a:
        for key in ("step", "value"):
            assert np.array_equal(a[name][key], b[name][key]), (name, key)
    for f in ("best.npz", "checkpoint.npz"):
        with np.load(tmp_path / "ref" / f) as za, np.load(tmp_path / "killed" / f) as zb:
            for key in za.files:
                if key != "meta":
                    assert np.array_equal(za[key], zb[key]), (f, key)
    ma = json.loads((tmp_path / "ref/metrics.json").read_text())
    mb = json.loads((tmp_path / "killed/metrics.json").read_text())
    assert ma["test_mse"] == mb["test_mse"]


def test_sigkill_physim_train_then_resume_is_bit_identical(tmp_path):
    _sigkill_train(tmp_path, N_KILLS_FAST, seed=3)


@pytest.mark.slow
def test_sigkill_physim_train_many_then_resume_is_bit_identical(tmp_path):
    _sigkill_train(tmp_path, N_KILLS_SLOW, seed=4)
