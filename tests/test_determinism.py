"""Results are bitwise equal across processes and across NUMBA_NUM_THREADS = 1 and 2."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import physim

SCRIPT = r"""
import hashlib, sys
import numpy as np
import physim
h = hashlib.sha256()
for name, batch in (("chain-16", 3), ("linhru-scp1", 5), ("duffing-chain-5", 2)):
    dev = physim.load_device(name)
    rng = np.random.default_rng(7)
    u = rng.normal(size=(300, batch, dev.n_inputs))
    t = rng.normal(size=(300, batch, dev.n_outputs))
    for res in (physim.rhel_gradient(dev, None, u, t, input_grad=True),
                physim.bptt_gradient(dev, None, u, t, input_grad=True)):
        h.update(res.grad.tobytes()); h.update(res.grad_u.tobytes())
    h.update(physim.simulate(dev, None, u).y.tobytes())
print(h.hexdigest())
"""


def _digest_here() -> str:
    out: list[str] = []
    exec(SCRIPT, {"print": out.append})  # noqa: S102 — the subprocesses' code, in this process
    return out[0]


def _digest_in_subprocess(threads: int) -> str:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(Path(physim.__file__).resolve().parent.parent)
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return res.stdout.strip().splitlines()[-1]


def test_bitwise_equal_across_processes_and_thread_counts():
    here = _digest_here()
    assert _digest_in_subprocess(1) == here
    assert _digest_in_subprocess(2) == here
    assert hashlib.sha256(np.zeros(1).tobytes()).hexdigest() != here  # the digest is of data
