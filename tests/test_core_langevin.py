"""The lossy O step p ← A p + N ξ in both of its forms (compressed rows, dense columns)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from physim.kernels import langevin
from physim.kernels.langevin import LangevinSteps, o_step, o_step_matrices

#: numpy's matrix products sum in another order: round-off of n terms
NUMPY_RTOL = 1e-14


@njit(cache=True)
def _apply(steps, p, xi):
    tmp = np.empty(p.shape[0])
    o_step(steps, p, xi, tmp)


def _matrices(n: int, density: float, seed: int):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) * (rng.random((n, n)) < density)
    N = rng.normal(size=(n, n)) * (rng.random((n, n)) < density)
    return A, N


@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
def test_both_forms_of_the_o_step_are_the_dense_sum_bit_for_bit(density, monkeypatch):
    """Compressed rows (sparse) and dense columns give the same bits (each row's terms summed
    in column order), and numpy's A p + N ξ to round-off."""
    n = 24
    A, N = _matrices(n, density, seed=int(10 * density))
    rng = np.random.default_rng(1)
    p0, xi = rng.normal(size=n), rng.normal(size=n)
    out = []
    for fraction in (1.0, 0.0):  # every matrix sparse, then every matrix dense
        monkeypatch.setattr(langevin, "SPARSE_FRACTION", fraction)
        mats = o_step_matrices(A, N)
        assert (mats[0].shape[0] == 0) == (fraction == 0.0 and density > 0)
        p = p0.copy()
        _apply(LangevinSteps(*mats, np.zeros((1, 1, 2, n))), p, xi)
        out.append(p)
    assert np.array_equal(out[0], out[1])
    ref = A @ p0 + N @ xi
    scale = np.abs(A) @ np.abs(p0) + np.abs(N) @ np.abs(xi)
    assert np.all(np.abs(out[0] - ref) <= NUMPY_RTOL * np.maximum(scale, 1e-300))
