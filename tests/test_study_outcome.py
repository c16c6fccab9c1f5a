"""What a finished study says beyond its numbers: every point failed is an error, some failed
is counted, and the workers' warnings arrive once each, naming the points that raised them."""

import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from physim.cli import main
from physim.study import StudyError, parse_study, read_journal, run_study
from physim.warnings import PhysimWarning


def _study(name: str, axes: list, bits: int = 12, bath: bool = False) -> dict:
    adc = {"kind": "adc", "target": "accumulator", "bits": bits}
    bath_300k = {"kind": "dissipation", "quality_factor": 100.0, "temperature": 300.0}
    return {
        "name": name,
        "replicates": 1,
        "base": {
            "device": "lc-ladder-8",
            "protocol": "rhel-centred-rerun",
            "nonideal": {"sources": [adc, bath_300k] if bath else [adc]},
            "set": {"task.n_steps": 30},
        },
        "axes": axes,
    }


# a bath at 1e300 K: the thermal kicks overflow, every point's result is non-finite (a failure)
HOT = [{"path": "nonideal.dissipation.temperature", "name": "T", "values": [1e300, 1e301]}]
TOML = """
name = "all-fail"
replicates = 1
[base]
device = "lc-ladder-8"
protocol = "rhel-centred-rerun"
nonideal = { sources = [{ kind = "dissipation", quality_factor = 100.0, temperature = 300.0 }] }
set = { "task.n_steps" = 30 }
[[axes]]
path = "nonideal.dissipation.temperature"
name = "T"
values = [1e300, 1e301]
"""


@pytest.fixture
def one_thread():
    # one worker thread: the warm point runs first in this thread, the rest one at a time
    with ThreadPoolExecutor(1) as ex:
        yield ex


def test_a_study_whose_every_point_failed_raises(one_thread, tmp_path):
    spec = parse_study(_study("all-fail", HOT, bath=True))
    with pytest.raises(
        StudyError, match=r"every one of the 2 points failed \(point 0: .*no result"
    ):
        run_study(spec, executor=one_thread, out=tmp_path / "s")
    # the failures are still on disk for `physim sweep status`
    assert all(r["error"] for r in read_journal(tmp_path / "s").values())


def test_sweep_run_exits_non_zero_when_every_point_failed(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(TOML)
    args = ["sweep", "run", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physim sweep: error: every one of the 2 points failed")


def test_some_failed_points_are_counted(one_thread, tmp_path):
    spec = parse_study(_study("some-fail", [{"path": "device.dt", "values": [2e-9, 2e-6]}]))
    with pytest.warns(PhysimWarning, match=r"1 of 2 points failed \(the first, point 1 \(dt="):
        ds = run_study(spec, executor=one_thread, out=tmp_path / "s")
    assert ds.failed.values.ravel().tolist() == [0, 1]


def test_worker_warnings_arrive_once_naming_their_points(one_thread, tmp_path):
    # 4 accumulator bits read every gradient entry below one LSB at every point
    axes = [{"path": "nonideal.adc.bits", "values": [4, 5, 6]}]
    spec = parse_study(_study("warn", axes, bits=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_study(spec, executor=one_thread, out=tmp_path / "s")
    lsb = [str(w.message) for w in caught if "LSB" in str(w.message)]
    assert len(lsb) == 1, lsb  # one line for the three points, not one per point and worker
    assert issubclass(caught[0].category, PhysimWarning)
    for bits in (4, 5, 6):
        assert f"bits={bits}, replicate=0)" in lsb[0]
    assert all("LSB" in r["warnings"][0] for r in read_journal(tmp_path / "s").values())


def test_run_study_in_a_script_without_main_guard_is_an_error_saying_so(tmp_path):
    # the local pool spawns its workers, which import the script again and cannot start a pool
    script = tmp_path / "snippet.py"
    study = _study("snippet", [{"path": "nonideal.adc.bits", "values": [10, 12, 14]}])
    script.write_text(
        "from physim.study import parse_study, run_study\n"
        f"ds = run_study(parse_study({study!r}), workers=2)\n"
        "print(ds.cosine.values)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode != 0
    # the parent's own last word (the children print Python's bootstrapping tracebacks; under
    # load multiprocessing's resource tracker may report the broken pool's semaphore after it)
    lines = [ln for ln in out.stderr.strip().splitlines() if "resource_tracker" not in ln]
    last = lines[-1]
    assert last.startswith("physim.study.engine.ExecutorLost: ")  # a StudyError
    assert 'under `if __name__ == "__main__":`' in last
