"""Session set-up shared by the tests: warm numba's cache once; install a plugin package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physim
from physim.specs import load_device


@pytest.fixture(scope="session", autouse=True)
def _warm_numba_cache():
    """Compile (or load from the on-disk cache) the shared kernels before the first test.

    Runs a tiny forward, RHEL, BPTT and energy evaluation on the first catalogue device of each
    Hamiltonian family, so that compilation time is paid once per session and never shows up
    inside one test's timing.
    """
    seen: set[int] = set()
    for name in physim.catalogue():
        device = load_device(name)
        if device.family in seen:
            continue
        seen.add(device.family)
        u = np.full((3, 1, device.n_inputs), 0.1)
        traj = physim.simulate(device, None, u, record=True)
        target = np.ones_like(traj.y)  # non-zero error, so that the echoes really run
        physim.energy(device, None, traj, u)
        physim.rhel_gradient(device, None, u, target, input_grad=True)
        physim.bptt_gradient(device, None, u, target, input_grad=True)
    yield


def _pip_install(package: Path, target: Path) -> Path:
    """Install the package folder ``package`` for real into the folder ``target`` (pip, no
    network, no build isolation: the build backends come with physim's test extras) and return
    ``target``; its entry points are found by a Python that has it on sys.path."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip install of {package.name} failed:\n{proc.stderr[-2000:]}")
    assert list(target.glob("*.dist-info/entry_points.txt")), f"{package.name}: no entry points"
    return target


@pytest.fixture(scope="session")
def pip_install():
    """:func:`_pip_install`, for the tests of plugin packages."""
    return _pip_install
