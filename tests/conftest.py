"""Session set-up shared by the core tests: warm numba's cache once, nothing else."""

from __future__ import annotations

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
