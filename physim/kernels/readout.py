"""The readout y = R q and the error kick e = Rᵀ ∂L/∂y for whole arrays, with the kernels' own
arithmetic.

The simulation kernels form y and e step by step inside :mod:`physim.kernels.leapfrog`
(``_readout_into``, ``_error_into``); everything else that needs them — the instrument's sampled
readouts and snapshots, the error signal of the first echo kick — calls these wrappers of the
very same functions instead of a BLAS product, whose summation order differs in the last bit.
That keeps one readout path, so a zero-valued instrument reproduces ``rhel_gradient`` bit for
bit also with a readout matrix.
"""

from __future__ import annotations

from numba import njit

from physim.kernels.leapfrog import _error_into, _readout_into


@njit(cache=True)
def readout_rows(R, X, Y):
    """Y[r, b] = R X[r, b] for X (nr, nb, n) into Y (nr, nb, n_out); identity if R has no rows."""
    for r in range(X.shape[0]):
        for b in range(X.shape[1]):
            _readout_into(R, X[r, b], Y, r, b)


@njit(cache=True)
def error_rows(R, G, k0, k1, E):
    """E[k − k0, b] = Rᵀ G[k − 1, b] for states k0 … k1−1 (state 0 has no error: left as is)."""
    for k in range(max(k0, 1), k1):
        for b in range(G.shape[1]):
            _error_into(R, G, k, b, E[k - k0, b])
