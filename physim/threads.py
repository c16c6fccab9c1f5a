"""Thread budget: physim parallelises its kernels with numba, so BLAS runs single-threaded.

A multi-threaded BLAS beside numba's own threads oversubscribes the cores. On the 2-core
machines this project runs on, a HSSM training step measured 2.2× slower at the paper's SCP1
size (6.17 s vs 2.78 s) and 8× slower at the CPU size (1.13 s vs 0.14 s) with OpenBLAS using
both cores, and a (16 × 14336)·(14336 × 16) product 90× slower.

The limit is entered around every kernel call that uses BLAS, once per chunk of a long run, so
its cost matters: ``threadpool_limits`` looks up the loaded libraries on every entry (1.2 ms
measured), while one ``ThreadpoolController`` kept for the process limits and restores them in
16 µs. The controller is made at the first call; numpy's and scipy's BLAS (the one numba's
``np.dot`` calls) are loaded before that, by this module's imports.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (numpy's BLAS, loaded before the controller looks)
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS of numba's np.dot)
from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def single_threaded_blas():
    """Context manager limiting every loaded BLAS to one thread (restored on exit)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
