"""Drive work and friction loss of recorded steps, in one pass (see
:func:`physim.instrument.energy.step_energy`, which validates and calls it)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def step_energy_kernel(start, Qrec, U, B, D, backwards, work):
    """Add each trajectory's drive work Σ u·Bᵀ Δq to ``work`` (nb,); return Σ Δqᵀ D Δq.

    ``start`` (nb, n), ``Qrec`` (k, nb, n), ``U`` (k, nb, m), ``B`` (n, m), ``D`` (n, n) or
    (0, 0) without loss. Step i lands on Qrec[i]; it starts from Qrec[i − 1] (``start`` for
    i = 0), or with ``backwards`` from Qrec[i + 1] (``start`` for i = k − 1).
    """
    k, nb, n = Qrec.shape
    m = U.shape[2]
    lossy = D.shape[0] > 0
    dq = np.empty(n)
    diss = 0.0
    for b in range(nb):
        w = 0.0
        for i in range(k):
            last = i == k - 1 if backwards else i == 0
            j0 = i + 1 if backwards else i - 1
            for j in range(n):
                before = start[b, j] if last else Qrec[j0, b, j]
                dq[j] = Qrec[i, b, j] - before
            for c in range(m):
                s = 0.0
                for j in range(n):
                    s += B[j, c] * dq[j]
                w += U[i, b, c] * s
            if lossy:
                for j in range(n):
                    s = 0.0
                    for jj in range(n):
                        s += D[j, jj] * dq[jj]
                    diss += dq[j] * s
        work[b] += w
    return diss
