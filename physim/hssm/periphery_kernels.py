"""Fused numba kernels of the HSSM digital periphery, streamed over time in row blocks.

Rows are the flattened (time, batch) axis of the time-major activations, so a row block of
``CHUNK_ROWS`` rows is a contiguous slab of every (rows, channels) array. One call handles one
HSSM block for all rows: the numba threads split the row blocks (static schedule, one workspace
per thread) and each thread runs its own single-threaded BLAS products on its block, so the two
thread pools never run at once (the caller holds BLAS at one thread, see
:func:`physim.threads.single_threaded_blas`). The elementwise parts — the D⊙u skip, GELU, both
dropouts, the GLU gate, the residual add and the layer norm — are fused loops over the block
while it sits in cache; no full-size temporary is created.

Dropout keep masks arrive bit-packed (``np.packbits`` along channels, big-endian bit order):
one bit per element. ``scale`` is 1/(1 − rate); ``has_mask = False`` switches dropout off.

The backward kernel recomputes the readout, GELU and GLU of its row block from the block's
inputs (u, φ) instead of storing them — with the same products on the same row blocks, so the
recomputation is bit-identical to the forward pass.

Every value written to an activation array passes through
:func:`physim.fastexp.flush_to`: with ``precision = "float32"`` a value below float32's
normal range is stored as 0 rather than as a subnormal, which would slow every later product
that reads it (float64 arrays store the value as it is).

The elementwise arithmetic runs in the arrays' own precision: constants come from
:func:`physim.fastexp.like` and the gates from :func:`physim.fastexp.sigmoid`
(the erf form of GELU stays float64), so float32 arrays, with D and the GLU biases in float32
too, get float32 SIMD arithmetic and float64 arrays exactly the arithmetic they always had.
"""

from __future__ import annotations

import math

# numba's np.dot calls scipy's BLAS: load it before any single_threaded_blas() so that
# threadpoolctl limits it too
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401
from numba import get_thread_id, njit, prange

from physim.fastexp import exp_flushed, flush_to, like, sigmoid

#: rows per row block: a block's working set (its φ, u and dx rows, and the 1024 × 2H GLU
#: pre-activations, ~2.5 MB at H = 64) stays in cache between the products and the fused
#: loops. Measured against 4096 and 2048 (bench_hssm.py workers alternating, 2 cores, BLAS at
#: one thread per numba thread): SCP1 complex step 3.45–3.55 s vs 3.82–3.88 s (4096) and
#: 3.50–3.67 s (2048); PPG 6.04–6.22 s vs 6.67 s (4096); (1024 × 64)·(64 × 128) products still
#: run at matmul speed
CHUNK_ROWS = 1024
#: lanes of :func:`block_bwd`'s parameter-gradient sums: a fixed number, so that the sums do
#: not depend on the thread count (per-thread sums made training differ by ~1e-12 between 1
#: and 2 numba threads); up to this many threads share the work
LANES = 16

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: the tanh form: GELU(v) ≈ v · ½(1 + tanh(√(2/π)(v + 0.044715 v³))) = v · σ(2√(2/π)(v + …))
_TANH_K = 2.0 * math.sqrt(2.0 / math.pi)
_TANH_C = 0.044715


@njit(cache=True, inline="always")
def _bit(bits, r, j):
    return (bits[r, j >> 3] >> (7 - (j & 7))) & 1


@njit(cache=True, inline="always")
def _unpack_row(bits, r, keep):
    """keep[j] = bit j of row r (one byte per channel, so the loops that use it vectorise)."""
    for j in range(keep.shape[0]):
        keep[j] = _bit(bits, r, j)


@njit(cache=True, inline="always")
def _gelu_gate(v, tanh_form):
    """The gate g of GELU(v) = v · g: σ(2√(2/π)(v + 0.044715 v³)) (``tanh_form``, in v's own
    precision) or Φ(v) (in float64)."""
    if tanh_form:
        return sigmoid(like(v, _TANH_K) * (v + like(v, _TANH_C) * v * v * v))
    return 0.5 * (1.0 + math.erf(v * _SQRT_HALF))


@njit(cache=True, inline="always")
def _gelu_slope(v, g, tanh_form):
    """d GELU / dv from the gate g = :func:`_gelu_gate` (v)."""
    if tanh_form:
        one = like(v, 1.0)
        k = like(v, _TANH_K)
        return g + v * g * (one - g) * k * (one + like(v, 3.0 * _TANH_C) * v * v)
    return g + v * _INV_SQRT_2PI * exp_flushed(-0.5 * v * v)


# ---------------------------------------------------------------------------------- layer norm
@njit(cache=True, parallel=True)
def layer_norm_fwd(x, gamma, beta, eps, u, xhat, rstd):
    """u = γ·xhat + β, xhat = (x − μ)·rstd per row; writes u, xhat (R, H) and rstd (R,)."""
    n_rows, n_ch = x.shape
    for r in prange(n_rows):
        mu = 0.0
        for j in range(n_ch):
            mu += x[r, j]
        mu /= n_ch
        var = 0.0
        for j in range(n_ch):
            d = x[r, j] - mu
            var += d * d
        s = 1.0 / math.sqrt(var / n_ch + eps)
        rstd[r] = s
        for j in range(n_ch):
            xh = (x[r, j] - mu) * s
            xhat[r, j] = flush_to(xhat, xh)
            u[r, j] = flush_to(u, xhat[r, j] * gamma[j] + beta[j])


@njit(cache=True, parallel=True)
def norm_apply(xhat, gamma, beta, u):
    """u = γ·xhat + β (the norm output recomputed from the stored xhat, bit-identical)."""
    n_rows, n_ch = xhat.shape
    for r in prange(n_rows):
        for j in range(n_ch):
            u[r, j] = flush_to(u, xhat[r, j] * gamma[j] + beta[j])


@njit(cache=True, parallel=True)
def layer_norm_bwd(du, xhat, rstd, gamma, n_parts, dx, acc):
    """dx += layer-norm input gradient of du = dL/du; acc[t] = the (dγ, dβ) sums of part t.

    dx of xhat = (x − μ)·rstd from g = dL/dxhat = du·γ:
    rstd·(g − mean(g) − xhat·mean(g·xhat)); ``acc`` is (n_parts, 2, H). The rows are split into
    ``n_parts`` equal runs summed in parallel; the caller sums ``acc`` over parts. Give
    :func:`norm_parts` (a function of the row count only) so that the sums, and the training,
    are the same whatever the number of threads.
    """
    n_rows, n_ch = xhat.shape
    acc[:] = 0.0
    per = (n_rows + n_parts - 1) // n_parts
    for t in prange(n_parts):
        g = np.empty(n_ch)
        for r in range(t * per, min(n_rows, (t + 1) * per)):
            mg = 0.0
            mgx = 0.0
            for j in range(n_ch):
                d = du[r, j]
                acc[t, 0, j] += d * xhat[r, j]
                acc[t, 1, j] += d
                gj = d * gamma[j]
                g[j] = gj
                mg += gj
                mgx += gj * xhat[r, j]
            mg /= n_ch
            mgx /= n_ch
            s = rstd[r]
            for j in range(n_ch):
                dx[r, j] = flush_to(dx, dx[r, j] + s * (g[j] - mg - xhat[r, j] * mgx))


#: rows per partial (dγ, dβ) sum of :func:`layer_norm_bwd` (enough parts for any thread count)
NORM_PART_ROWS = 256


def norm_parts(n_rows: int) -> int:
    """The number of partial sums of :func:`layer_norm_bwd` for ``n_rows``: a function of the
    row count alone (a partition by thread count made training differ by ~1e-12 between 1
    and 2 numba threads)."""
    return max(1, -(-n_rows // NORM_PART_ROWS))


@njit(cache=True, inline="always")
def _gelu_rows(z, u, D, m1, has_mask, scale, r0, keep, slope, want_slope, tanh_form):
    """The elementwise part of :func:`_readout_gelu` for one GELU form. Its callers pass
    ``tanh_form`` as a constant, so that each inlined copy holds one form's arithmetic and no
    branch between them (a runtime branch inside the loop cost the backward kernel a third of
    its time: PPG block 0.18 s vs 0.12 s)."""
    n, n_ch = z.shape
    zero = like(z, 0.0)
    sc = like(z, scale)
    for i in range(n):
        r = r0 + i
        if has_mask:
            _unpack_row(m1, r, keep)
        for j in range(n_ch):
            v = z[i, j] + D[j] * u[r, j]
            g = _gelu_gate(v, tanh_form)
            if want_slope:
                slope[i, j] = flush_to(slope, _gelu_slope(v, g, tanh_form))
            hv = v * g
            z[i, j] = flush_to(z, hv * sc) if keep[j] else zero


@njit(cache=True, inline="always")
def _readout_gelu(phi, Ct, u, D, m1, has_mask, scale, tanh_gelu, r0, keep, z, slope, want_slope):
    """z ← drop₁(GELU(φ Cᵀ + D⊙u)) for rows r0 … r0 + len(z) − 1 and, with ``want_slope``,
    slope ← GELU′ of the same pre-activations: the one code path of the forward and of the
    backward's recomputation, which must agree bit for bit."""
    np.dot(phi[r0 : r0 + z.shape[0]], Ct, z)
    if tanh_gelu:
        _gelu_rows(z, u, D, m1, has_mask, scale, r0, keep, slope, want_slope, True)
    else:
        _gelu_rows(z, u, D, m1, has_mask, scale, r0, keep, slope, want_slope, False)


# ---------------------------------------------------------------------------------- block
@njit(cache=True, parallel=True, error_model="numpy")
def block_fwd(
    x, u, phi, Ct, D, W12t, b12, m1, m2, has_mask, scale, tanh_gelu, n_threads, ws_z, ws_pre
):  # fmt: skip
    """Readout → GELU → dropout → GLU → dropout → residual, in place on ``x`` (R, H).

    z = φ Cᵀ + D⊙u, h = drop₁(GELU(z)), [a | s] = h [W₁; W₂]ᵀ + [b₁; b₂],
    x += drop₂(a ⊙ sigmoid(s)). ``Ct`` is Cᵀ (P, H), ``W12t`` is [W₁; W₂]ᵀ (H, 2H);
    ``tanh_gelu`` picks GELU's tanh form (else the exact x·Φ(x));
    ``ws_z`` (n_threads, CHUNK_ROWS, H) and ``ws_pre`` (n_threads, CHUNK_ROWS, 2H) are scratch.
    """
    n_rows, n_ch = x.shape
    n_chunks = (n_rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    scale = scale if has_mask else 1.0  # (× 1.0 leaves every value's bits unchanged)
    sc = like(x, scale)
    zero = like(x, 0.0)
    for t in prange(n_threads):
        keep = np.ones(n_ch, dtype=np.uint8)
        for c in range(t, n_chunks, n_threads):
            r0 = c * CHUNK_ROWS
            r1 = min(n_rows, r0 + CHUNK_ROWS)
            n = r1 - r0
            z = ws_z[t, :n]
            pre = ws_pre[t, :n]
            _readout_gelu(phi, Ct, u, D, m1, has_mask, scale, tanh_gelu, r0, keep, z, z, False)
            np.dot(z, W12t, pre)
            for i in range(n):
                r = r0 + i
                if has_mask:
                    _unpack_row(m2, r, keep)
                for j in range(n_ch):
                    o = (pre[i, j] + b12[j]) * sigmoid(pre[i, n_ch + j] + b12[n_ch + j])
                    x[r, j] = flush_to(x, x[r, j] + (o * sc if keep[j] else zero))


@njit(cache=True, parallel=True, error_model="numpy")
def block_bwd(
    dx, u, phi, Ct, C, D, W12t, W12, b12, m1, m2, has_mask, scale, tanh_gelu, n_lanes,
    ws_z, ws_cdf, ws_pre, dphi, du, acc_C, acc_W, acc_v,
):  # fmt: skip
    """Backward of :func:`block_fwd` from dx = dL/d(block output), recomputing the block.

    Writes dphi = dz C (R, P) and du = dz ⊙ D (R, H), the readout's share of dL/du; per-lane
    sums: ``acc_C[t]`` = φᵀ dz (P, H), ``acc_W[t]`` = hᵀ [da | ds] (H, 2H), ``acc_v[t]`` rows
    [db₁ | db₂] (2H) and dD (first H of row 1), with ``acc_v`` shaped (n_lanes, 2, 2H). Row
    chunk c is summed in lane c mod n_lanes (give :data:`LANES`): the sums, and so training, are
    the same whatever the thread count. The scratch ``ws_*`` has a row per thread id.
    ``dphi`` may be ``phi`` itself: each row block of φ is read before its dφ is written.
    """
    n_rows, n_ch = dx.shape
    n_chunks = (n_rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    scale = scale if has_mask else 1.0
    sc = like(dx, scale)
    zero = like(dx, 0.0)
    one = like(dx, 1.0)
    acc_C[:] = 0.0
    acc_W[:] = 0.0
    acc_v[:] = 0.0
    for t in prange(n_lanes):
        keep = np.ones(n_ch, dtype=np.uint8)
        w = get_thread_id()  # this thread's scratch rows (one lane at a time per thread)
        for c in range(t, n_chunks, n_lanes):
            r0 = c * CHUNK_ROWS
            r1 = min(n_rows, r0 + CHUNK_ROWS)
            n = r1 - r0
            z = ws_z[w, :n]
            cdf = ws_cdf[w, :n]
            pre = ws_pre[w, :n]
            # recompute the block: z -> h (kept in z), GELU'(z) (in cdf), GLU pre-activations
            _readout_gelu(phi, Ct, u, D, m1, has_mask, scale, tanh_gelu, r0, keep, z, cdf, True)
            np.dot(z, W12t, pre)
            # GLU backward: pre <- [da | ds]
            for i in range(n):
                r = r0 + i
                if has_mask:
                    _unpack_row(m2, r, keep)
                for j in range(n_ch):
                    d = dx[r, j] * sc if keep[j] else zero
                    a = pre[i, j] + b12[j]
                    g = sigmoid(pre[i, n_ch + j] + b12[n_ch + j])
                    da = d * g
                    ds = d * a * g * (one - g)
                    pre[i, j] = flush_to(pre, da)
                    pre[i, n_ch + j] = flush_to(pre, ds)
            for i in range(n):
                for j in range(2 * n_ch):
                    acc_v[t, 0, j] += pre[i, j]
            acc_W[t] += np.dot(z.T, pre)
            np.dot(pre, W12, z)  # z <- dh
            for i in range(n):
                r = r0 + i
                if has_mask:
                    _unpack_row(m1, r, keep)
                for j in range(n_ch):
                    d = z[i, j] * sc if keep[j] else zero
                    dz = flush_to(z, d * cdf[i, j])
                    z[i, j] = dz
                    du[r, j] = flush_to(du, dz * D[j])
                for j in range(n_ch):
                    acc_v[t, 1, j] += z[i, j] * u[r, j]
            acc_C[t] += np.dot(phi[r0:r1].T, z)
            np.dot(z, C, dphi[r0:r1])
