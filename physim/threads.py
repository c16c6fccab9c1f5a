"""Thread budget: physim parallelises its kernels with numba, so BLAS runs single-threaded.

A multi-threaded BLAS beside numba's own threads oversubscribes the cores. On the 2-core
machines this project runs on, a HSSM training step measured 2.2× slower at the paper's SCP1
size (6.17 s vs 2.78 s) and 8× slower at the CPU size (1.13 s vs 0.14 s) with OpenBLAS using
both cores, and a (16 × 14336)·(14336 × 16) product 90× slower.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def single_threaded_blas() -> threadpool_limits:
    """Context manager limiting every loaded BLAS to one thread (restored on exit)."""
    return threadpool_limits(limits=1, user_api="blas")
