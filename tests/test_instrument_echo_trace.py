"""A recorded ideal echo is stepped from one sampled state to the next: sampling the echo
every k steps reads exactly the states (and integrates exactly the ∂H/∂θ) of every-step
sampling, bit for bit."""

import numpy as np
import pytest

import physim
from physim.instrument.hardware import Instrument
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol


def _traced(every: int, n_steps: int = 90):
    p = load_protocol("rhel-centred-traced")
    steps = [
        st.model_copy(update={"every": every})
        if st.op == "drive" and st.direction == "reverse"
        else st
        for st in p.steps
    ]
    task = p.task.model_copy(update={"n_steps": n_steps, "batch": 2})
    return p.model_copy(update={"steps": steps, "task": task})


@pytest.mark.parametrize("every", [7, 30])
def test_sparse_echo_sampling_reads_the_same_states(every):
    device = physim.load_device("chain-16")
    dense = run_protocol(Instrument(device), _traced(1))
    sparse = run_protocol(Instrument(device), _traced(every))
    e1, ek = dense.get("echo"), sparse.get("echo")
    pos = np.searchsorted(e1.index[::-1], ek.index)  # dense index runs K-1 … 0
    rows = e1.index.size - 1 - pos
    assert np.array_equal(e1.index[rows], ek.index)
    assert np.array_equal(e1.value[rows], ek.value)
    assert np.array_equal(dense.get("dH/dtheta").value, sparse.get("dH/dtheta").value)
