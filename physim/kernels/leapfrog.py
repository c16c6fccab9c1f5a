"""The one integrator: drift–kick–drift leapfrog with the force at the half-step position.

    q½      = q_k + (δ/2) ∇_p T(p_k)
    p_{k+1} = p_k − δ ∇_q V(q½; s_k)
    q_{k+1} = q½ + (δ/2) ∇_p T(p_{k+1})

It is exactly reversible in exact arithmetic (flip p, replay the drive backwards, and the state
returns) and second-order accurate. One step lives in :mod:`physim.kernels.steps` (``_step``
forward, ``_echo_step`` for the RHEL echo, which adds the gradient accumulation), with its lossy
(Langevin) and fixed-point kinds; the two kernels below run their chunk through those, so there
is one integrator and one loop whatever the entry point — the twin (:func:`physim.simulate`,
:func:`physim.rhel_echo`) and the simulated instrument call the same kernels.

``forward_inputs`` / ``echo_inputs`` take the inputs ``u`` and the error ∂L/∂y and form the
drive s = B u, the readout y = R q, the kick e = Rᵀ ∂L/∂y and the input-side gradients inside
the kernel, a block of steps at a time. They need no chunk-sized temporaries (memory does not
grow with the sequence). For a large B each block's products go to BLAS, called from numba's
threads with BLAS held at one thread (:func:`drive_threads`), so the two thread pools never run
at once. A drive given as an array is the input of an identity B (each entry one exact product).

Both form the drive with :func:`_drive_block` on whole blocks aligned to absolute steps, so s_k
is bit-for-bit the same in the forward run, in the echo and in :func:`drive_chunk` (used by
:func:`physim.simulate.drive`), however each cuts the sequence into chunks.
Kernels trust their inputs: shapes, dtypes and contiguity are checked by the drivers.

Speed: the echo steps its lockstep trajectories two at a time through the family's fused
``echo_T2`` / ``echo_V2`` kernels (both forces and the ∂H½/∂w, ∂V/∂s accumulation in one pass
over the elements), and the per-step helpers are inlined (``inline="always"``): a call to a
separately compiled numba function costs tens of ns, as much as a step of a 16-mass chain.
Inlining and fusion leave every state's arithmetic unchanged (no fastmath, no reordering).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

# numba's np.dot (the drive-gradient products of large input matrices) calls scipy's BLAS:
# load it before any single_threaded_blas() so that threadpoolctl limits it too
import scipy.linalg.cython_blas  # noqa: F401
from numba import njit, prange
from numba.extending import overload

from physim.fastexp import flush_to
from physim.kernels import dispatch as hk
from physim.kernels.steps import _axpy, echo_step, forward_step, store_p, store_q
from physim.threads import single_threaded_blas

#: steps per block for the in-kernel drive and drive-gradient products of small input matrices
#: (summed in numba, :func:`_acc_rows`): each row of B (and of the ∂L/∂B accumulator) is reused
#: across the block; 16 steps × 256 modes fill L1 (32 KiB), and measured 1.3x faster than 8 on
#: the LinHRU SCP1 layer (forward, CPU time, 1 thread)
BLOCK = 16
#: input matrices B (n × m) with at least this many entries get their drive B u, the input
#: gradient Bᵀ ∂L/∂s and the ∂L/∂B sums of a block of steps from BLAS, in blocks of
#: ``BLAS_BLOCK`` steps; smaller ones are summed in numba, where a BLAS call costs more than its
#: arithmetic
DRIVE_BLAS = 1024
#: steps per block on the BLAS route
BLAS_BLOCK = 128
#: batch elements are split into at most this many contiguous groups, each with its own ∂L/∂B
#: accumulator (memory stays bounded in the batch size, and the result does not depend on the
#: number of threads) ...
MAX_GROUPS = 16
#: ... and the accumulators together hold at most this many numbers (128 MiB)
MAX_GROUP_ELEMENTS = 1 << 24


@njit(cache=True)
def _acc_rows(C, A, X):
    """C[r] += Σ_c A[r, c] X[c] for every row r (C, X C-contiguous; A any layout).

    Each element's sum runs over c in index order, one term after the other, whatever the
    sizes: the unrolling below (eight terms of c and two rows of C per pass, so that each
    loaded row of X serves two rows of C) only changes how often C is loaded and stored, not
    the arithmetic.
    """
    nr = A.shape[0]
    nc = A.shape[1]
    n = X.shape[1]
    c = 0
    while c + 8 <= nc:
        x0, x1, x2, x3 = X[c], X[c + 1], X[c + 2], X[c + 3]
        x4, x5, x6, x7 = X[c + 4], X[c + 5], X[c + 6], X[c + 7]
        for r in range(0, nr, 2):
            a0, a1, a2, a3 = A[r, c], A[r, c + 1], A[r, c + 2], A[r, c + 3]
            a4, a5, a6, a7 = A[r, c + 4], A[r, c + 5], A[r, c + 6], A[r, c + 7]
            y = C[r]
            if r + 1 < nr:
                e0, e1, e2, e3 = (A[r + 1, c], A[r + 1, c + 1], A[r + 1, c + 2], A[r + 1, c + 3])
                e4, e5, e6, e7 = (
                    A[r + 1, c + 4],
                    A[r + 1, c + 5],
                    A[r + 1, c + 6],
                    A[r + 1, c + 7],
                )
                z = C[r + 1]
                for i in range(n):
                    v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
                    v4, v5, v6, v7 = x4[i], x5[i], x6[i], x7[i]
                    t = y[i] + a0 * v0
                    t = t + a1 * v1
                    t = t + a2 * v2
                    t = t + a3 * v3
                    t = t + a4 * v4
                    t = t + a5 * v5
                    t = t + a6 * v6
                    y[i] = t + a7 * v7
                    t = z[i] + e0 * v0
                    t = t + e1 * v1
                    t = t + e2 * v2
                    t = t + e3 * v3
                    t = t + e4 * v4
                    t = t + e5 * v5
                    t = t + e6 * v6
                    z[i] = t + e7 * v7
            else:
                for i in range(n):
                    t = y[i] + a0 * x0[i]
                    t = t + a1 * x1[i]
                    t = t + a2 * x2[i]
                    t = t + a3 * x3[i]
                    t = t + a4 * x4[i]
                    t = t + a5 * x5[i]
                    t = t + a6 * x6[i]
                    y[i] = t + a7 * x7[i]
        c += 8
    while c < nc:
        x0 = X[c]
        for r in range(nr):
            a0 = A[r, c]
            y = C[r]
            for i in range(n):
                y[i] += a0 * x0[i]
        c += 1


@njit(cache=True, inline="always")
def _blas_route(A):
    """True when the input matrix, given as B or Bᵀ, takes the BLAS route (``DRIVE_BLAS``)."""
    return A.shape[0] * A.shape[1] >= DRIVE_BLAS


@njit(cache=True, inline="always")
def block_steps(BT):
    """Steps per drive block for the input matrix of ``BT`` = Bᵀ (m, n): ``BLAS_BLOCK`` on the
    BLAS route, ``BLOCK`` otherwise."""
    return BLAS_BLOCK if _blas_route(BT) else BLOCK


@njit(cache=True, inline="always")
def block_span(j, bs, K, k0, k1):
    """Block ``j`` of the drive covers steps lo … hi−1 (lo = j·bs, hi = min(K, lo + bs)); of
    them, s0 … s1−1 lie in the chunk k0 … k1−1. Returns (lo, hi, s0, s1)."""
    lo = j * bs
    hi = min(K, lo + bs)
    return lo, hi, max(lo, k0), min(hi, k1)


@njit(cache=True)
def _drive_block(U, b, lo, nk, BT, S, ub):
    """S[kk] = B u_{lo+kk, b} for kk < nk; BT = Bᵀ (m, n).

    The blocks are aligned to absolute steps (block j is steps j·bs … j·bs + bs − 1 of the
    whole input, see :func:`block_span`) and every caller forms a whole block, whatever part of
    it its chunk needs: the forward run, the echo, the adjoint and :func:`drive_chunk` then make
    the same calls on the same rows, and s_k is bit-for-bit the same in all of them. Large input
    matrices (``DRIVE_BLAS``) take one BLAS product per block over ``ub`` (BLAS_BLOCK, m), a
    contiguous copy of the block's inputs that the drive-gradient fold reuses; small ones sum
    over the inputs in index order.
    """
    if _blas_route(BT):
        for kk in range(nk):
            for j in range(BT.shape[0]):
                ub[kk, j] = U[lo + kk, b, j]
        np.dot(ub[:nk], BT, S[:nk])
    else:
        for kk in range(nk):
            for i in range(S.shape[1]):
                S[kk, i] = 0.0
        _acc_rows(S[:nk], U[lo : lo + nk, b], BT)


def _as_operand(D, dd, a, c):
    """Rows a … c − 1 of the float64 drive gradients ``D`` as a BLAS operand in the dtype of
    the scratch ``dd``: ``D`` itself when the dtypes agree (no copy), else ``dd`` with those
    rows converted (float32 without subnormals). numba only."""
    raise NotImplementedError("_as_operand is called from numba-compiled code only")


@overload(_as_operand, inline="always")
def _as_operand_impl(D, dd, a, c):
    if D.dtype == dd.dtype:
        return lambda D, dd, a, c: D

    def convert(D, dd, a, c):
        for kk in range(a, c):
            for i in range(D.shape[1]):
                dd[kk, i] = flush_to(dd, D[kk, i])
        return dd

    return convert


@njit(cache=True)
def _drive_grad_block(D, dd, U, ub, B, b, lo, s0, s1, want_gb, GB, gbt, want_gu, GU, k0, gu):
    """Fold the drive gradients D[k − lo] = ∂L/∂s_k (float64) of steps s0 ≤ k < s1 of the
    block that starts at step ``lo`` into GB += Σ_k u_k ⊗ D[k − lo] (GB is (∂L/∂B)ᵀ, shape
    (m, n)) and GU[k − k0, b] += Bᵀ D[k − lo] (added: the drivers pass zeros, or an array the
    caller asked to have the gradient added to; a float32 GU gets no subnormals).

    On the BLAS route (``DRIVE_BLAS``; ``ub`` then holds the block's inputs, see
    :func:`_drive_block`) both are one product per block in the operands' precision (see
    :func:`drive_operands`): float32 products read D converted into the scratch ``dd``
    (BLAS_BLOCK, n) without subnormals, float64 products read D itself (:func:`_as_operand`);
    the ∂L/∂B product goes through the scratch ``gbt`` (m, n) in B's dtype and is added to the
    float64 GB. Small input matrices sum in float64, in index order. ∂L/∂B and ∂L/∂u are
    results, not part of any trajectory, so the two routes need not agree bit for bit. ``gu``
    is a (BLAS_BLOCK, m) scratch array in B's dtype.
    """
    n, m = B.shape
    a = s0 - lo
    c = s1 - lo
    blas = _blas_route(B)
    if blas:
        dd = _as_operand(D, dd, a, c)
    if want_gb:
        if blas:
            np.dot(ub[a:c].T, dd[a:c], gbt)
            for j in range(m):
                for i in range(n):
                    GB[j, i] += gbt[j, i]
        else:
            _acc_rows(GB, U[s0:s1, b].T, D[a:c])
    if want_gu:
        if blas:
            np.dot(dd[a:c], B, gu[a:c])
        else:
            for kk in range(a, c):
                for j in range(m):
                    gu[kk, j] = 0.0
            _acc_rows(gu[a:c], D[a:c], B)
        for kk in range(a, c):
            for j in range(m):
                GU[lo + kk - k0, b, j] = flush_to(GU, GU[lo + kk - k0, b, j] + gu[kk, j])


def drive_operands(B: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Bᵀ, B), C-contiguous, as the kernels take them for the inputs ``U``.

    float32 when ``U`` is float32 and B takes the BLAS route (``DRIVE_BLAS``): the drive
    s = B u and the drive gradients ∂L/∂B, ∂L/∂u are then single-precision BLAS products (half
    the time of double precision on AVX2), each rounded once to float32 — the precision of
    the float32 inputs and input gradients themselves. float64 otherwise, when the products
    are exact to float64 round-off of the inputs as they are. The states are integrated in
    float64 either way, and the forward run, the echo, the adjoint and
    :func:`physim.simulate.drive` form the same drive from the same operands.
    """
    dt = np.float32 if U.dtype == np.float32 and _blas_route(B) else np.float64
    return np.ascontiguousarray(B.T, dtype=dt), np.ascontiguousarray(B, dtype=dt)


def drive_threads(B: np.ndarray):
    """Context for a kernel call that forms the drive or its gradients for the input matrix
    ``B``: BLAS held at one thread while numba's threads call it (see :mod:`physim.threads`)
    when the BLAS route applies, nothing otherwise."""
    return single_threaded_blas() if _blas_route(B) else nullcontext()


@njit(cache=True, inline="always")
def _readout_into(R, q, Y, k, b):
    """Y[k, b] = R q (identity when R has no rows); a float32 Y gets no subnormals (see
    :func:`physim.fastexp.flush_to`)."""
    if R.shape[0] == 0:
        for i in range(q.shape[0]):
            Y[k, b, i] = flush_to(Y, q[i])
    else:
        for o in range(R.shape[0]):
            acc = 0.0
            for i in range(q.shape[0]):
                acc += R[o, i] * q[i]
            Y[k, b, o] = flush_to(Y, acc)


@njit(cache=True, inline="always")
def _error_into(R, G, k, b, e):
    """e = Rᵀ G[k − 1, b], the error at state k (y[k−1] = R q_k); identity when R has no rows."""
    if R.shape[0] == 0:
        for i in range(e.shape[0]):
            e[i] = G[k - 1, b, i]
    else:
        for i in range(e.shape[0]):
            e[i] = 0.0
        for o in range(R.shape[0]):
            _axpy(e, G[k - 1, b, o], R[o])


# ---------------------------------------------------------------------------- drive from inputs
@njit(cache=True, parallel=True)
def drive_chunk(U, BT, k0, k1, S):
    """S[k − k0] = B u_k for k0 ≤ k < k1, with U (K, nb, m), BT = Bᵀ (m, n), S (k1−k0, nb, n)."""
    K, nb = U.shape[0], U.shape[1]
    m, n = BT.shape
    bs = block_steps(BT)
    for b in prange(nb):
        blk = np.empty((bs, n), BT.dtype)
        ub = np.empty((bs, m), BT.dtype)
        for j in range(k0 // bs, (k1 + bs - 1) // bs):
            lo, hi, s0, s1 = block_span(j, bs, K, k0, k1)
            _drive_block(U, b, lo, hi - lo, BT, blk, ub)
            for k in range(s0, s1):
                for i in range(n):
                    S[k - k0, b, i] = blk[k - lo, i]


@njit(cache=True, parallel=True)
def forward_inputs(fam, prm, dt, n_work, BT, R, U, k0, k1, Q, P, Y, Qrec, Prec, steps):
    """Advance ``Q, P`` (nb, n) in place through steps k0 … k1−1 of the inputs ``U`` (K, nb, m).

    The drive s_k = B u_k is formed in blocks from ``BT`` = Bᵀ (m, n). After step k the readout
    R q_{k+1} goes to ``Y[k − k0]`` (``R`` (n_out, n), identity when it has no rows), the
    positions to ``Qrec[k − k0]`` and the momenta to ``Prec[k − k0]``; each of these chunk
    arrays is skipped when it has length 0 along time. ``steps`` is the step kind (see
    :mod:`physim.kernels.steps`): ``None`` for the ideal leapfrog, a ``LangevinSteps`` whose
    noise ``XI`` (k1−k0, nb, 2, n) covers the chunk, or a ``FixedPointSteps`` with int64
    ``Q, P`` (then ``Y`` must be empty; the records are dequantised).
    """
    K = U.shape[0]
    nb = Q.shape[0]
    n = Q.shape[1]
    obs = Y.shape[0] > 0
    rec_q = Qrec.shape[0] > 0
    rec_p = Prec.shape[0] > 0
    bs = block_steps(BT)
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        x = np.empty(n)
        S = np.empty((bs, n), BT.dtype)
        ub = np.empty((bs, BT.shape[0]), BT.dtype)
        q = Q[b]
        p = P[b]
        for j in range(k0 // bs, (k1 + bs - 1) // bs):
            lo, hi, s0, s1 = block_span(j, bs, K, k0, k1)
            _drive_block(U, b, lo, hi - lo, BT, S, ub)
            for k in range(s0, s1):
                c = k - k0
                forward_step(steps, fam, prm, dt, q, p, S[k - lo], c, b, work, g, x)
                if obs:
                    _readout_into(R, q, Y, c, b)
                if rec_q:
                    store_q(steps, Qrec[c, b], q)
                if rec_p:
                    store_p(steps, Prec[c, b], p)


def batch_groups(nb: int, size: int) -> int:
    """Number of contiguous batch groups for ``nb`` batch elements when each group carries a
    ∂L/∂B accumulator of ``size`` numbers; the kernels take it from their GB argument."""
    return max(1, min(nb, MAX_GROUPS, MAX_GROUP_ELEMENTS // max(1, size)))


@njit(cache=True, parallel=True)
def echo_inputs(
    fam,
    prm,
    dt,
    n_work,
    BT,
    B,
    R,
    U,
    G,
    k0,
    k1,
    Q,
    P,
    kicks,
    weights,
    scale,
    GW,
    want_gb,
    GB,
    want_gu,
    GU,
    steps,
    Qrec,
):
    """Run ``nt`` echo trajectories ``Q, P`` (nt, nb, n) in lockstep, in place, backwards
    through steps k1−1 … k0 of the inputs.

    ``U`` (K, nb, m) are the forward inputs and ``G`` (K, nb, n_out) the error ∂L/∂y of the
    forward readout y[k−1] = R q_k; after replaying step k, trajectory ``t`` is kicked by
    kicks[t] · Rᵀ G[k−1] (no kick after step 0). Along each step the parameter gradient of the
    half-step Hamiltonian H½ = ½(H[q½, p_before] + H[q½, p_after]) is combined over
    trajectories as Σ_t weights[t] ∂H½/∂w and added to ``GW`` (nb, nw); combining before
    accumulating keeps the difference of the echoes exact to round-off of one step rather than
    of the whole sum. With ds_k = scale · Σ_t weights[t] ∂V/∂s at q½ of
    step k, the drive-side gradients are folded in place: when ``want_gb``, ``GB`` (ng, m, n)
    += Σ_k u_k ⊗ ds_k (the transpose of ∂L/∂B) summed over the batch elements of each group
    (group g holds elements g·nb//ng … (g+1)·nb//ng − 1; ng = GB.shape[0], see
    :func:`batch_groups`, also when GB is not wanted); when ``want_gu``, ``GU[k − k0]`` +=
    Bᵀ ds_k (GU spans the chunk). The groups run in parallel.

    ``steps`` is the step kind (see :mod:`physim.kernels.steps`): ``None`` for the ideal echo,
    a ``LangevinSteps`` whose noise ``XI`` (k1−k0, nt, nb, 2, n) covers the chunk, or a
    ``FixedPointSteps`` with int64 ``Q, P``. A ``G`` with no rows is no error signal (no kicks).
    ``Qrec`` (k1−k0, nt, nb, n), unless empty, receives the positions after step k and its kick
    at row k − k0 (dequantised for fixed-point states).
    """
    K = U.shape[0]
    nb = Q.shape[1]
    n = Q.shape[2]
    m = BT.shape[0]
    nt = Q.shape[0]
    want_ds = want_gb or want_gu
    nudge = G.shape[0] > 0
    rec_q = Qrec.shape[0] > 0
    ng = GB.shape[0]
    bs = block_steps(BT)
    for grp in prange(ng):
        work = np.empty(n_work)
        g = np.empty(n)
        v = np.empty(n)
        e = np.zeros(n)
        x = np.empty(n)
        acc = np.empty(GW.shape[1])
        S = np.empty((bs, n), BT.dtype)
        ub = np.empty((bs, m), BT.dtype)
        D = np.empty((bs, n))
        dd = np.empty((bs, n), BT.dtype)
        gu = np.empty((bs, m), BT.dtype)
        gbt = np.empty((m, n), BT.dtype)
        for b in range(grp * nb // ng, (grp + 1) * nb // ng):
            gw = GW[b]
            for j in range((k1 - 1) // bs, k0 // bs - 1, -1):
                lo, hi, s0, s1 = block_span(j, bs, K, k0, k1)
                _drive_block(U, b, lo, hi - lo, BT, S, ub)
                for k in range(s1 - 1, s0 - 1, -1):
                    kk = k - lo
                    kick = nudge and k > 0
                    if kick:
                        _error_into(R, G, k, b, e)
                    echo_step(
                        steps,
                        fam,
                        prm,
                        dt,
                        Q,
                        P,
                        b,
                        k - k0,
                        S[kk],
                        e,
                        kick,
                        kicks,
                        weights,
                        work,
                        g,
                        v,
                        x,
                        gw,
                        acc,
                        want_ds,
                        D[kk],
                    )
                    if rec_q:
                        for t in range(nt):
                            store_q(steps, Qrec[k - k0, t, b], Q[t, b])
                if want_ds:
                    for kk in range(s0 - lo, s1 - lo):
                        for i in range(n):
                            D[kk, i] *= scale
                    _drive_grad_block(
                        D, dd, U, ub, B, b, lo, s0, s1, want_gb, GB[grp], gbt, want_gu, GU, k0, gu
                    )


@njit(cache=True, parallel=True)
def energy_chunk(fam, prm, Q, P, S, out):
    """Total energy H(q, p; s) of stored states ``Q, P`` (nk, nb, n) into ``out`` (nk, nb)."""
    nk = Q.shape[0]
    nb = Q.shape[1]
    n = Q.shape[2]
    for b in prange(nb):
        work = np.empty(4 * n + 4)
        for k in range(nk):
            out[k, b] = hk.kinetic(fam, P[k, b], prm, work) + hk.potential(
                fam, Q[k, b], S[k, b], prm, work
            )
