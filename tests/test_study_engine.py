"""The study engine: bitwise identical results with 1 worker, 2 workers and a real Dask
LocalCluster, after a SIGKILL + resume; results.nc readable by xarray and h5py."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from physim.study import StudyError, local_executor, parse_study, read_journal, run_study
from physim.study.engine import dask_executor
from physim.study.spec import ExecutorSpec

# a small noisy study: thermal noise, mismatch and a dithered ADC, so replicates differ and any
# dependence on worker, process or order would show in the low bits
STUDY = {
    "name": "engine-test",
    "replicates": 2,
    "base": {
        "device": "lc-ladder-8",
        "protocol": "rhel-centred-rerun",
        "nonideal": {
            "sources": [
                {"kind": "dissipation", "quality_factor": 100.0, "temperature": 1e9},
                {"kind": "mismatch", "relative_dtod": 0.02},
                {"kind": "adc", "target": "accumulator", "bits": 14, "dither": True},
            ]
        },
        "set": {"protocol.task.n_steps": 60, "protocol.eps": 1e-2},
    },
    "axes": [
        {"path": "nonideal.dissipation.quality_factor", "name": "Q", "logspace": [30.0, 3000.0, 3]},
        {"path": "nonideal.adc.bits", "values": [10, 14]},
    ],
}
VARS = ("cosine", "norm_ratio", "rel_error", "loss", "cosine_capacitance", "failed")
# the resume study: longer points, so that the kill lands mid-study
SLOW = {
    **STUDY,
    "name": "engine-kill",
    "base": {**STUDY["base"], "set": {"protocol.task.n_steps": 1000}},
}


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    for v in VARS:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)  # bitwise, NaN = NaN


@pytest.fixture(scope="module")
def pool():
    # one 2-worker pool for the module: a spawn worker takes seconds to import physim and numba
    with local_executor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    # one worker in this very process (a real Executor): identical to spawned workers below
    out = tmp_path_factory.mktemp("w1")
    with ThreadPoolExecutor(max_workers=1) as ex:
        return run_study(parse_study(STUDY), executor=ex, out=out), out


def test_results_nc_has_axes_coords_and_units(one_worker):
    _, out = one_worker
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert ds.cosine.dims == ("Q", "bits", "replicate")
    np.testing.assert_array_equal(ds.Q.values, np.logspace(np.log10(30), np.log10(3000), 3))
    assert ds.bits.values.tolist() == [10, 14]
    assert ds.Q.attrs["units"] == "1" and ds.Q.attrs["scale"] == "log"
    assert ds.bits.attrs["units"] == "bits" and ds.bits.attrs["long_name"] == "resolution"
    assert ds.cosine.attrs["units"] == "1" and "ideal-twin" in ds.cosine.attrs["long_name"]
    assert int(ds.failed.sum()) == 0 and np.all(np.isfinite(ds.cosine))
    # replicates are different chips with different noise
    assert np.all(ds.cosine.isel(replicate=0) != ds.cosine.isel(replicate=1))
    with h5py.File(out / "results.nc", "r") as f:
        assert f["cosine"].shape == (3, 2, 2)
        assert f["Q"].attrs["units"] == b"1" or f["Q"].attrs["units"] == "1"
        np.testing.assert_array_equal(f["cosine"][()], ds.cosine.values)
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("point,Q,bits,replicate,cosine") and len(rows) == 13
    assert json.loads((out / "study.json").read_text())["physim_version"]


def test_two_workers_give_bitwise_the_same(one_worker, pool, tmp_path):
    ds1, _ = one_worker
    _same(ds1, run_study(parse_study(STUDY), executor=pool, out=tmp_path))


def test_dask_local_cluster_gives_bitwise_the_same(one_worker, tmp_path):
    from distributed import Client, LocalCluster

    ds1, _ = one_worker
    # real worker processes (processes=True): the task and its results really are pickled
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        ds = run_study(parse_study(STUDY), executor=client.get_executor(), out=tmp_path)
    _same(ds1, ds)


def test_unreachable_dask_address_times_out():
    t0 = time.perf_counter()
    with (
        pytest.raises(
            StudyError, match=r"no Dask scheduler answered at tcp://127.0.0.1:9 within 2 s"
        ),
        dask_executor(ExecutorSpec(timeout=2.0), address="tcp://127.0.0.1:9"),
    ):
        pass
    assert time.perf_counter() - t0 < 30


_RUN = (
    "import json, sys; from physim.study import parse_study, run_study; "
    "run_study(parse_study(json.loads(sys.argv[1])), workers=1, out=sys.argv[2])"
)


def test_sigkill_mid_study_then_resume_is_identical(pool, tmp_path):
    spec = parse_study(SLOW)
    ref = run_study(spec, executor=pool, out=tmp_path / "ref")
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, json.dumps(SLOW), str(out)], env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(read_journal(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its pool workers, mid-study
        proc.wait()
    n_before = len(read_journal(out))
    assert 2 <= n_before < 12, "the kill did not land mid-study"
    assert not (out / "results.nc").exists()
    resumed = []
    ds = run_study(spec, executor=pool, out=out, on_result=resumed.append)
    assert len(resumed) == 12 - n_before  # only the missing points ran
    _same(ref, ds)
    _same(ref, xr.open_dataset(out / "results.nc", engine="h5netcdf"))


def test_failed_point_is_recorded_and_the_study_goes_on(pool, tmp_path):
    # a time step far past the leapfrog stability limit: the run refuses, the point fails
    bad = {
        **STUDY,
        "name": "engine-fail",
        "replicates": 1,
        "axes": [{"path": "device.dt", "values": [2e-9, 2e-6]}],
    }
    ds = run_study(parse_study(bad), executor=pool, out=tmp_path)
    assert ds.failed.values.ravel().tolist() == [0, 1]
    assert ds.error.values.ravel()[1] != "" and np.isnan(ds.cosine.values.ravel()[1])
    assert ds.attrs["n_failed"] == 1
