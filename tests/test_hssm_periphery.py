"""The fused periphery kernels against the numpy layers they replace (each layer's backward is
checked against finite differences in test_hssm_layers.py), on row counts that span several
row blocks, a partial last block and both threads."""

import numba
import numpy as np
import pytest

from physim.hssm import layers as L
from physim.hssm import periphery_kernels as PK

#: the same float64 operations in another order (BLAS blocking, fused loops): a few ulps of
#: O(1) values accumulated over ≤ 2H + P terms
TOL = 1e-12
#: parameter gradients sum ~R = 8,000 rows of O(1) terms
TOL_SUM = 1e-10
RATE = 0.3


def _setup(n_ch: int, n_modes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    R = 2 * PK.CHUNK_ROWS + 37
    x = rng.normal(size=(R, n_ch))
    u = rng.normal(size=(R, n_ch))
    phi = rng.normal(size=(R, n_modes))
    C = rng.normal(size=(n_ch, n_modes)) / np.sqrt(n_modes)
    D = rng.normal(size=n_ch)
    W1, W2 = rng.normal(size=(2, n_ch, n_ch)) / np.sqrt(n_ch)
    b1, b2 = rng.normal(size=(2, n_ch))
    return rng, R, x, u, phi, C, D, W1, b1, W2, b2


def _numpy_block(x, u, phi, C, D, W1, b1, W2, b2, m1, m2, form="erf"):
    z = L.linear_forward(phi, C, None) + D * u
    h = L.dropout_apply(L.gelu(z, form), m1, RATE)
    o, _, _ = L.glu_forward(h, W1, b1, W2, b2)
    return x + L.dropout_apply(o, m2, RATE), z, h


def _ws(nt: int, n_ch: int, dtype=np.float64):
    return (
        np.empty((nt, PK.CHUNK_ROWS, n_ch), dtype),
        np.empty((nt, PK.CHUNK_ROWS, n_ch), dtype),
        np.empty((nt, PK.CHUNK_ROWS, 2 * n_ch), dtype),
    )


def test_dropout_bits_are_the_dropout_mask():
    shape = (700, 5, 13)  # 13 channels: two bytes per row, the second padded
    full = L.dropout_mask(np.random.default_rng(4), shape, RATE)
    bits = L.dropout_bits(np.random.default_rng(4), 3500, 13, RATE)
    assert bits.shape == (3500, 2)
    np.testing.assert_array_equal(np.unpackbits(bits, axis=1, count=13), full.reshape(3500, 13))
    assert not np.any(np.unpackbits(bits, axis=1)[:, 13:])  # padding bits are 0
    out = np.empty((3500, 2), np.uint8)
    assert L.dropout_bits(np.random.default_rng(4), 3500, 13, RATE, out=out) is out
    np.testing.assert_array_equal(out, bits)
    assert L.dropout_bits(None, 10, 3, RATE) is None
    with pytest.raises(ValueError, match="out must be a uint8 array of shape"):
        L.dropout_bits(np.random.default_rng(4), 3500, 13, RATE, out=np.empty((3500, 1), np.uint8))


def test_dropout_masks_are_independent_of_threads_and_uncorrelated():
    n = numba.get_num_threads()
    want = L.dropout_bits(np.random.default_rng(2), 50_000, 64, 0.05)
    try:
        numba.set_num_threads(1)
        one = L.dropout_bits(np.random.default_rng(2), 50_000, 64, 0.05)
    finally:
        numba.set_num_threads(n)
    np.testing.assert_array_equal(one, want)
    # 3.2M Bernoulli(0.95) draws: std of the keep fraction 1.2e-4, bound > 8 std
    m = np.unpackbits(want, axis=1).astype(float)
    assert abs(m.mean() - 0.95) < 1e-3
    # neighbouring channels (same 64-bit word), neighbouring rows, and the next mask drawn
    # from the same generator: correlations of 50,000 pairs have std 4.5e-3, bound > 5 std
    rng = np.random.default_rng(7)
    a = np.unpackbits(L.dropout_bits(rng, 50_000, 8, 0.5), axis=1).astype(float)
    b = np.unpackbits(L.dropout_bits(rng, 50_000, 8, 0.5), axis=1).astype(float)
    for x, y in [(a[:, 0], a[:, 1]), (a[:-1, 2], a[1:, 2]), (a[:, 3], b[:, 3])]:
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.025


@pytest.mark.parametrize(("n_ch", "n_modes", "form"), [(5, 3, "erf"), (9, 4, "tanh")])
def test_block_forward_and_backward_match_numpy_layers(n_ch, n_modes, form):
    rng, R, x, u, phi, C, D, W1, b1, W2, b2 = _setup(n_ch, n_modes)
    m1 = L.dropout_mask(np.random.default_rng(8), (R, n_ch), RATE)
    m2 = L.dropout_mask(np.random.default_rng(9), (R, n_ch), RATE)
    want, z, h = _numpy_block(x, u, phi, C, D, W1, b1, W2, b2, m1, m2, form)
    tanh = form == "tanh"
    b1m, b2m = np.packbits(m1, axis=1), np.packbits(m2, axis=1)
    W12 = np.concatenate([W1, W2])
    nt = numba.get_num_threads()
    ws_z, ws_cdf, ws_pre = _ws(nt, n_ch)
    got = x.copy()
    b12 = np.concatenate([b1, b2])
    Ct, W12t = np.ascontiguousarray(C.T), np.ascontiguousarray(W12.T)
    scale = 1.0 / (1.0 - RATE)
    PK.block_fwd(got, u, phi, Ct, D, W12t, b12, b1m, b2m, True, scale, tanh, nt, ws_z, ws_pre)
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)

    # backward from an upstream gradient dy = dL/d(block output)
    dy = rng.normal(size=(R, n_ch))
    _, a, g = L.glu_forward(h, W1, b1, W2, b2)
    dh, dW1, db1, dW2, db2 = L.glu_backward(L.dropout_apply(dy, m2, RATE), h, a, g, W1, W2)
    dz = L.gelu_backward(L.dropout_apply(dh, m1, RATE), z, form)
    _, dC, _ = L.linear_backward(dz, phi, C)
    dphi, du = np.empty((R, n_modes)), np.empty((R, n_ch))
    acc_C, acc_W, acc_v = (
        np.empty((nt, n_modes, n_ch)),
        np.empty((nt, n_ch, 2 * n_ch)),
        np.empty((nt, 2, 2 * n_ch)),
    )
    PK.block_bwd(
        dy,
        u,
        phi,
        Ct,
        C,
        D,
        W12t,
        W12,
        b12,
        b1m,
        b2m,
        True,
        scale,
        tanh,
        nt,
        ws_z,
        ws_cdf,
        ws_pre,
        dphi,
        du,
        acc_C,
        acc_W,
        acc_v,
    )
    np.testing.assert_allclose(dphi, dz @ C, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(du, dz * D, rtol=TOL, atol=TOL)
    W = acc_W.sum(axis=0)
    v = acc_v.sum(axis=0)
    for got_g, want_g in [
        (acc_C.sum(axis=0).T, dC),
        (W[:, :n_ch].T, dW1),
        (W[:, n_ch:].T, dW2),
        (v[0, :n_ch], db1),
        (v[0, n_ch:], db2),
        (v[1, :n_ch], (dz * u).sum(axis=0)),
    ]:
        np.testing.assert_allclose(got_g, want_g, rtol=TOL_SUM, atol=TOL_SUM)


def test_block_forward_without_dropout_and_one_thread():
    _, R, x, u, phi, C, D, W1, b1, W2, b2 = _setup(4, 2, seed=3)
    want, _, _ = _numpy_block(x, u, phi, C, D, W1, b1, W2, b2, None, None)
    ws_z, _, ws_pre = _ws(1, 4)
    W12t = np.ascontiguousarray(np.concatenate([W1, W2]).T)
    none = np.zeros((1, 1), np.uint8)
    PK.block_fwd(
        x,
        u,
        phi,
        np.ascontiguousarray(C.T),
        D,
        W12t,
        np.concatenate([b1, b2]),
        none,
        none,
        False,
        1.0 / (1.0 - RATE),  # ignored without masks
        False,
        1,
        ws_z,
        ws_pre,
    )
    np.testing.assert_allclose(x, want, rtol=TOL, atol=TOL)


def test_layer_norm_kernels_match_numpy():
    rng = np.random.default_rng(6)
    R, H = 3001, 7
    x = rng.normal(size=(R, H)) * 3.0 + 1.0
    gamma, beta = rng.normal(size=(2, H))
    want_u, want_xhat, want_rstd = L.layer_norm_forward(x, gamma, beta, 1e-5)
    u, xhat, rstd = np.empty((R, H)), np.empty((R, H)), np.empty(R)
    PK.layer_norm_fwd(x, gamma, beta, 1e-5, u, xhat, rstd)
    np.testing.assert_allclose(u, want_u, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(xhat, want_xhat, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(rstd, want_rstd[:, 0], rtol=TOL)
    u2 = np.empty((R, H))
    PK.norm_apply(xhat, gamma, beta, u2)
    np.testing.assert_array_equal(u2, u)
    du, gu, dx0 = rng.normal(size=(3, R, H))
    want_dx, want_dg, want_db = L.layer_norm_backward(du + gu, want_xhat, want_rstd, gamma)
    nt = numba.get_num_threads()
    dx, acc = dx0.copy(), np.empty((nt, 2, H))
    PK.layer_norm_bwd(du + gu, xhat, rstd, gamma, nt, dx, acc)
    np.testing.assert_allclose(dx, dx0 + want_dx, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(acc.sum(axis=0)[0], want_dg, rtol=TOL_SUM, atol=TOL_SUM)
    np.testing.assert_allclose(acc.sum(axis=0)[1], want_db, rtol=TOL_SUM, atol=TOL_SUM)


def _subnormal(a: np.ndarray) -> int:
    a = np.abs(a)
    return int(np.count_nonzero((a > 0) & (a < np.finfo(a.dtype).tiny)))


def test_float32_kernels_store_no_subnormals_and_follow_float64():
    # GELU of pre-activations near −13 (tanh form) is ~1e-78 and its slope smaller: normal in
    # float64, below float32's normal range, where the kernels must store 0 (a stored subnormal
    # slows every later product that reads it several times over)
    rng, R, x, u, phi, C, D, W1, b1, W2, b2 = _setup(8, 4, seed=5)
    phi = phi * 4.0 - 13.0 * np.sign(C.sum(axis=1)).mean()  # a wide spread of large |z|
    D = D * 8.0
    m1 = np.packbits(L.dropout_mask(np.random.default_rng(1), (R, 8), RATE), axis=1)
    m2 = np.packbits(L.dropout_mask(np.random.default_rng(2), (R, 8), RATE), axis=1)
    dy = rng.normal(size=(R, 8)) * 1e-30  # small upstream gradients: products reach 1e-40
    W12 = np.concatenate([W1, W2])
    b12 = np.concatenate([b1, b2])
    nt = numba.get_num_threads()
    scale = 1.0 / (1.0 - RATE)
    out = {}
    for dt in (np.float64, np.float32):
        c = lambda a, dt=dt: np.ascontiguousarray(a, dtype=dt)  # noqa: E731
        ws = _ws(nt, 8, dt)
        xo = np.array(x, dtype=dt)  # (a copy: block_fwd adds into it in place)
        PK.block_fwd(xo, c(u), c(phi), c(C.T), c(D), c(W12.T), c(b12), m1, m2, True, scale, True, nt,
                     ws[0], ws[2])  # fmt: skip
        dphi, du = np.empty((R, 4), dt), np.empty((R, 8), dt)
        accs = np.empty((nt, 4, 8)), np.empty((nt, 8, 16)), np.empty((nt, 2, 16))
        PK.block_bwd(c(dy), c(u), c(phi), c(C.T), c(C), c(D), c(W12.T), c(W12), c(b12), m1, m2, True,
                     scale, True, nt, *ws, dphi, du, *accs)  # fmt: skip
        out[dt] = (xo, dphi, du, ws, accs)
    x32, dphi32, du32, ws32, accs32 = out[np.float32]
    x64, dphi64, du64, _, accs64 = out[np.float64]
    assert _subnormal(du64) > 0  # the data do reach below float32's normal range ...
    for a in (x32, dphi32, du32, *ws32):  # ... and nothing float32 holds a subnormal
        assert a.dtype == np.float32 and _subnormal(a) == 0
    # float32 against float64, norm-wise: every sum has ≤ 2H + P = 20 terms and each of its
    # inputs (u, φ, the weights, h, [da | ds], dz) is rounded to float32 once (6e-8 relative):
    # within 4 · 20 · 6e-8 ≈ 5e-6 of each array's largest magnitude; what is flushed to 0 lies
    # below 1.2e-38, far below that (the gradients here are ~1e-30)
    pairs = [(x32 - x, x64 - x), (dphi32, dphi64), (du32, du64)]
    pairs += [(a.sum(axis=0), b.sum(axis=0)) for a, b in zip(accs32, accs64, strict=True)]
    for a32, a64 in pairs:
        scale = np.abs(a64).max()
        assert scale > 0 and np.abs(a32 - a64).max() <= 1e-5 * scale
