"""The straight-line exp, expm1 and log1p of physim.fastexp, and the NonlinHRU tanh and
log cosh built on them, against numpy's libm on dense grids and at the edges."""

import numba
import numpy as np
from numba import njit

from physim.families.nonlinhru_kernels import _logcosh, _tanh
from physim.fastexp import (
    exp32_clamped,
    exp_clamped,
    exp_flushed,
    expm1_clamped,
    flush_to,
    like,
    log1p_unit,
    sigmoid,
    sigmoid32_flushed,
    sigmoid_flushed,
)


def _vectorised(f, dtype=np.float64):
    @njit(error_model="numpy")
    def apply(z, out):
        for i in range(z.size):
            out[i] = f(z[i])

    def call(z):
        z = np.ascontiguousarray(z, dtype=dtype)
        out = np.empty_like(z)
        apply(z, out)
        return out

    return call


def _ulps(got, want):
    return np.max(np.abs(got - want) / np.spacing(np.abs(want)))


def test_clamped_exp_is_within_one_ulp_of_libm():
    z = np.concatenate([np.linspace(-708.0, 709.0, 1_000_003), np.linspace(-1, 1, 100_001)])
    assert _ulps(_vectorised(exp_clamped)(z), np.exp(z)) <= 1.0
    edge = _vectorised(exp_clamped)(np.array([np.nan, -np.inf, -1e4, 1e4, np.inf]))
    assert np.isnan(edge[0])
    np.testing.assert_allclose(edge[1:], np.exp([-708.0, -708.0, 709.0, 709.0]), rtol=3e-16)


def test_flushed_exp_and_sigmoid_never_return_subnormals():
    z = np.concatenate([np.linspace(-760.0, 760.0, 1_000_003), [-np.inf, np.inf, -1e4, 1e4]])
    e = _vectorised(exp_flushed)(z)
    s = _vectorised(sigmoid_flushed)(z)
    tiny = np.finfo(np.float64).tiny
    for got in (e, s):
        assert not np.any((got != 0.0) & (np.abs(got) < tiny))  # zero or normal, nothing between
    normal = z >= -708.0
    assert np.all(e[~normal] == 0.0) and np.all(s[~normal] == 0.0)
    inside = normal & (z <= 709.0)
    assert _ulps(e[inside], np.exp(z[inside])) <= 1.0
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-z[normal]))
    assert _ulps(s[normal], want) <= 4.0
    assert s[z == np.inf][0] == 1.0 and np.isnan(_vectorised(sigmoid_flushed)(np.array([np.nan])))


def test_expm1_is_accurate_near_zero_and_everywhere():
    z = np.concatenate([np.linspace(-700.0, 700.0, 1_000_001), np.geomspace(1e-300, 0.5, 50_000)])
    z = np.concatenate([z, -z])
    assert _ulps(_vectorised(expm1_clamped)(z), np.expm1(z)) <= 3.0


def test_log1p_on_the_unit_interval():
    e = np.concatenate([np.linspace(0.0, 1.0, 1_000_001), np.geomspace(1e-300, 1e-3, 10_000)])
    got = _vectorised(log1p_unit)(e)
    want = np.log1p(e)
    assert got[0] == 0.0
    assert _ulps(got[1:], want[1:]) <= 3.0


def test_nonlinhru_tanh_and_logcosh_match_libm():
    z = np.concatenate([np.linspace(-40.0, 40.0, 2_000_001), np.geomspace(1e-300, 1.0, 50_000)])
    z = np.concatenate([z, -z])
    t = _vectorised(_tanh)(z)
    assert _ulps(t, np.tanh(z)) <= 4.0
    # log cosh z = |z| + log1p(e^{-2|z|}) - log 2 loses relative accuracy near 0 (a difference
    # of O(1) terms), in libm's formula as in this one: compare absolutely, scaled by max(1, |z|)
    lc = _vectorised(_logcosh)(z)
    want = np.logaddexp(z, -z) - np.log(2.0)
    assert np.max(np.abs(lc - want) / np.maximum(1.0, np.abs(z))) < 4e-16
    edge = _vectorised(_tanh)(np.array([np.nan, np.inf, -np.inf, 1e300, -0.0]))
    assert np.isnan(edge[0])
    np.testing.assert_array_equal(edge[1:], [1.0, -1.0, 1.0, -0.0])


def test_flush_to_stores_no_float32_subnormals_and_leaves_float64_alone():
    @njit
    def store(a, v):
        for i in range(v.size):
            a[i] = flush_to(a, v[i])

    tiny32 = float(np.finfo(np.float32).tiny)
    v = np.array([1e-39, -1e-39, tiny32, -tiny32, 0.99 * tiny32, 2e-38, 1e-310, 1.0, -0.0,
                  np.inf, -np.inf, np.nan])  # fmt: skip
    a32 = np.empty(v.size, np.float32)
    store(a32, v)
    np.testing.assert_array_equal(a32[:6], np.float32([0, 0, tiny32, -tiny32, 0, 2e-38]))
    np.testing.assert_array_equal(a32[6:11], np.float32([0, 1, 0, np.inf, -np.inf]))
    assert np.isnan(a32[11])  # NaN passes through: a fault stays visible
    a64 = np.empty(v.size)
    store(a64, v)
    np.testing.assert_array_equal(a64, v)  # float64: stored as it is, bit for bit


def _ulps32(got, want):
    """ulps of float32 against a float64 reference (its float32 rounding's spacing)."""
    return np.max(np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)))


def test_float32_exp_and_sigmoid_in_float32_arithmetic():
    z = np.concatenate([np.linspace(-87.0, 88.0, 2_000_003), np.linspace(-1, 1, 100_001)])
    z = z.astype(np.float32)
    e = _vectorised(exp32_clamped, np.float32)(z)
    assert e.dtype == np.float32 and _ulps32(e, np.exp(z.astype(np.float64))) <= 2.0
    w = np.concatenate([np.linspace(-100.0, 100.0, 2_000_003), [-np.inf, np.inf, -1e30, 1e30]])
    w = w.astype(np.float32)
    s = _vectorised(sigmoid32_flushed, np.float32)(w)
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-w.astype(np.float64)))
    normal = w >= -87.0
    assert _ulps32(s[normal], want[normal]) <= 3.0
    # below −87 exactly 0 (the true value is < 1.7e-38, at float32's normal limit) ...
    assert np.all(s[~normal] == 0.0) and np.max(want[~normal]) < 1.7e-38
    # ... and nothing subnormal anywhere; NaN passes through
    assert not np.any((s != 0) & (np.abs(s) < np.finfo(np.float32).tiny))
    assert np.isnan(_vectorised(sigmoid32_flushed, np.float32)(np.float32([np.nan]))[0])


def test_sigmoid_and_like_keep_the_argument_precision():
    @njit
    def gate(a):
        return sigmoid(like(a, 0.5) * a[0] + like(a, 1.0))

    for dt, ref in ((np.float32, sigmoid32_flushed), (np.float64, sigmoid_flushed)):
        a = np.array([0.3], dtype=dt)
        got = gate(a)
        (sig,) = [s for s in gate.nopython_signatures if s.args[0].dtype == numba.from_dtype(dt)]
        assert sig.return_type == numba.from_dtype(dt)  # a float32 stays float32 throughout
        assert got == ref(dt(0.5) * a[0] + dt(1.0))
