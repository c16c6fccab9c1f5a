"""An HSSM training step gives the same numbers, to the last bit, on any numba thread count:
the periphery's parameter-gradient sums run over a fixed partition (lanes of row chunks, parts
of the norm's rows), not one partial sum per thread."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from physim.hssm.config import HSSMSpec
from physim.hssm.model import HSSM


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs a pool of 2 threads")
@pytest.mark.parametrize("algo", ["rhel", "bptt"])
def test_gradients_do_not_depend_on_the_thread_count(algo):
    spec = HSSMSpec(n_blocks=2, hidden=16, ssm_dim=8, dropout=0.1)
    rng = np.random.default_rng(0)
    # 8 × 600 rows: five row chunks of the periphery kernels, 19 parts of the norm's sums
    X = rng.normal(size=(8, 600, 3))
    y = rng.integers(0, 2, size=8)
    model = HSSM.build(spec, 3, 2, "classification", seed=1)
    params = model.init_params(1)
    prev = numba.get_num_threads()
    grads = []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            grads.append(
                model.loss_and_grad(params, X, y, algo=algo, rng=np.random.default_rng(5))[2]
            )
    finally:
        numba.set_num_threads(prev)
    for k, g in grads[0].items():
        assert np.array_equal(g, grads[1][k]), k
