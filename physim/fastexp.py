"""A branch-free exponential that numba can vectorise, for the HSSM periphery's gates.

``math.exp`` compiles to a call into libm, which LLVM cannot vectorise (numba's SVML path
needs an SVML-patched llvmlite, which the PyPI wheels are not), so a fused elementwise loop
that calls it runs one element at a time: 9 ns per element on the machines of issue 12, as
much as the rest of the loop. :func:`exp_clamped` is the textbook reduction
x = n·ln 2 + r, |r| ≤ ln 2 / 2, with r's exponential from its Taylor series to r¹³ (truncation
below 4e-18 relative) and 2ⁿ assembled from its bit pattern, all straight-line arithmetic;
in a fused loop it runs 3–4x faster than ``math.exp``. Measured against libm on a dense
grid of [−708, 709] it is within one ulp (``tests/test_fastexp.py`` checks it and its
siblings :func:`expm1_clamped` and :func:`log1p_unit`). Loops that use them vectorise only
without numba's per-division ZeroDivisionError branch: compile them with
``error_model="numpy"``.

It is *clamped*: arguments below −708 give exp(−708) ≈ 3.3e-308 instead of a subnormal or 0,
above 709 exp(709) ≈ 8.2e307 instead of inf (NaN stays NaN). That is harmless — and the
reason for the name — where the result only enters 1 / (1 + e) or e · (something that
vanishes faster; do not use it where an exact underflow or overflow matters.

Gates need more than that at their low end. The clamped e^709 makes 1 / (1 + e^709) a
*subnormal* 1.2e-308, and an operation that produces a subnormal takes several times as long
on these CPUs: a sigmoid loop measured 3.3 ns per element on N(0, 1) arguments and 9–10 ns on
arguments below −709. On the PPG configuration of issue 12, ~45 % of the GELU gates' arguments
lie below −708 (pre-activations below about −24), which made the periphery's kernels a third
slower on the model's data than on small random data. :func:`sigmoid_flushed` and
:func:`exp_flushed` keep every intermediate normal and return exactly 0 where the true value is
below the normal range (an absolute error below 2.2e-308, smaller than the clamp's).

Storing is the other source. A float64 value that is normal in float64 but below float32's
normal range (1.2e-38) becomes a float32 subnormal when written to a float32 array, and every
later operation that reads it — a BLAS product above all — pays the same penalty. On the PPG
configuration in ``precision = "float32"`` 3.6 % of the GLU's backward signals [da | ds] and
~0.2 % of GELU's outputs and slopes landed there, and the periphery's backward kernel took
0.47 s per block against 0.20 s in float64. :func:`flush_to` gives the value to store in an
array: exactly 0 for one below float32's normal range when the array is float32 (0.47 → 0.18 s
per block), the value itself otherwise (NaN passes through).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype


def _bitcast(src, dst):
    """An intrinsic that reinterprets the bits of a ``src`` value as a ``dst`` of equal width."""

    @intrinsic
    def bitcast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    return bitcast


_bits_as_float = _bitcast(types.int64, types.float64)
_float_as_bits = _bitcast(types.float64, types.int64)
_bits_as_float32 = _bitcast(types.int32, types.float32)
_float32_as_bits = _bitcast(types.float32, types.int32)


_LOG2E = 1.4426950408889634
#: ln 2 split so that n · _LN2_HI is exact for |n| < 2¹¹ (fdlibm's constants)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
#: 1.5 · 2⁵², added to round to the nearest integer: the sum's low mantissa bits hold n
_ROUND = 6755399441055744.0
_ROUND_BITS = 0x4338000000000000
_LO = -708.0
_HI = 709.0


@njit(cache=True, inline="always")
def _exp_parts(x):
    """(e^r − 1, n) with x = n·ln 2 + r, |r| ≤ ln 2 / 2, after clamping x to [−708, 709]."""
    x = _LO if x < _LO else x  # NaN fails both comparisons and stays NaN (so does the result)
    x = _HI if x > _HI else x
    kd = x * _LOG2E + _ROUND
    n = kd - _ROUND
    k = _float_as_bits(kd) - _ROUND_BITS
    r = x - n * _LN2_HI - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r, k


@njit(cache=True, inline="always")
def exp_clamped(x):
    """exp(x) for x in [−708, 709] within one ulp of libm; clamped outside (see module)."""
    q, k = _exp_parts(x)
    return (q + 1.0) * _bits_as_float((k + 1023) << 52)


@njit(cache=True, inline="always")
def exp_flushed(x):
    """exp(x) for x ≥ −708 (as :func:`exp_clamped`), exactly 0 below: never a subnormal."""
    e = exp_clamped(x)  # (clamped at −708: a normal number, discarded below)
    return 0.0 if x < _LO else e


@njit(cache=True, inline="always")
def sigmoid_flushed(v):
    """1 / (1 + e^−v) to a few ulps; exactly 0 for v < −708, where the true value is below the
    normal range. e^−v is clamped at e^708, so that no intermediate is subnormal either."""
    a = -v
    a = -_LO if a > -_LO else a
    s = 1.0 / (1.0 + exp_clamped(a))
    return 0.0 if v < _LO else s


@njit(cache=True, inline="always")
def expm1_clamped(x):
    """exp(x) − 1, accurate near 0 (the Taylor series without its leading 1 when |x| ≤ ln 2 / 2),
    clamped like :func:`exp_clamped`; within 3 ulp of libm's expm1 on dense grids."""
    q, k = _exp_parts(x)
    return q if k == 0 else (q + 1.0) * _bits_as_float((k + 1023) << 52) - 1.0


@njit(cache=True, inline="always")
def log1p_unit(e):
    """log(1 + e) for e in [0, 1]: 2 atanh(t), t = e / (2 + e) ≤ 1/3, by its series to t³⁵;
    within 3 ulp of libm's log1p on dense grids."""
    t = e / (2.0 + e)
    t2 = t * t
    s = 1.0 / 35.0
    s = s * t2 + 1.0 / 33.0
    s = s * t2 + 1.0 / 31.0
    s = s * t2 + 1.0 / 29.0
    s = s * t2 + 1.0 / 27.0
    s = s * t2 + 1.0 / 25.0
    s = s * t2 + 1.0 / 23.0
    s = s * t2 + 1.0 / 21.0
    s = s * t2 + 1.0 / 19.0
    s = s * t2 + 1.0 / 17.0
    s = s * t2 + 1.0 / 15.0
    s = s * t2 + 1.0 / 13.0
    s = s * t2 + 1.0 / 11.0
    s = s * t2 + 1.0 / 9.0
    s = s * t2 + 1.0 / 7.0
    s = s * t2 + 1.0 / 5.0
    s = s * t2 + 1.0 / 3.0
    s = s * t2 + 1.0
    return 2.0 * t * s


def flush_to(a, v):
    """``v``, or exactly 0 when ``a`` is a float32 array and ``v`` lies below float32's normal
    range (it would be stored as a subnormal); NaN and infinities pass through unchanged.
    numba only. For a float64 array ``v`` is returned as it is: float64 subnormals are left to
    their sources (the gates above), as testing the magnitude of every stored float64 made the
    periphery's float64 backward 18 % slower (PPG block: 0.21 → 0.25 s) for the ~1e-5 of its
    values that are subnormal."""
    raise NotImplementedError("flush_to is called from numba-compiled code only")


_TINY32 = float(np.finfo(np.float32).tiny)


@overload(flush_to)
def _flush_to(a, v):
    if as_dtype(a.dtype) != np.float32:
        return lambda a, v: v

    def flush32(a, v):
        if abs(v) < _TINY32:
            return v - v  # 0 of v's own type: a float32 value stays float32
        return v

    return flush32


# ------------------------------------------------------------------------------ float32 gates
# With ``precision = "float32"`` the periphery's elementwise arithmetic runs in float32: twice
# the SIMD lanes of float64. Its gates need a float32 exponential: the same reduction as
# :func:`_exp_parts` with float32 constants and e^r from its Taylor series to r⁷ (truncation
# below 6e-9 relative, a tenth of float32's ulp), clamped to [−87, 88] so that neither the
# result nor 1 / (1 + e) leaves float32's normal range.

_F32 = np.float32
_LOG2E_32 = _F32(1.4426950408889634)
#: ln 2 split so that n · _LN2_HI_32 is exact for |n| < 2⁸ (Cephes' expf constants)
_LN2_HI_32 = _F32(0.693359375)
_LN2_LO_32 = _F32(-2.12194440e-4)
#: 1.5 · 2²³, added to round to the nearest integer: the sum's low mantissa bits hold n
_ROUND_32 = _F32(12582912.0)
_ROUND_BITS_32 = 0x4B400000
_LO_32 = _F32(-87.0)
_HI_32 = _F32(88.0)
_TAYLOR_32 = tuple(_F32(1.0 / f) for f in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0))
_ONE_32 = _F32(1.0)


@njit(cache=True, inline="always")
def exp32_clamped(x):
    """exp(x) of a float32 in float32 arithmetic for x in [−87, 88], within 2 ulp of float32's
    correctly rounded value; clamped outside (NaN stays NaN)."""
    x = _LO_32 if x < _LO_32 else x
    x = _HI_32 if x > _HI_32 else x
    kd = x * _LOG2E_32 + _ROUND_32
    n = kd - _ROUND_32
    k = _float32_as_bits(kd) - np.int32(_ROUND_BITS_32)
    r = x - n * _LN2_HI_32 - n * _LN2_LO_32
    c = _TAYLOR_32
    p = c[0]
    p = p * r + c[1]
    p = p * r + c[2]
    p = p * r + c[3]
    p = p * r + c[4]
    p = p * r + c[5]
    p = p * r + c[6]
    p = p * r + c[7]
    return p * _bits_as_float32((k + np.int32(127)) << np.int32(23))


@njit(cache=True, inline="always")
def sigmoid32_flushed(v):
    """1 / (1 + e^−v) of a float32 in float32 arithmetic; exactly 0 for v < −87 (the true
    value is below 1.7e-38, at float32's normal limit), never a subnormal: e^−v is clamped at
    e^87, as 1 / (1 + e^88) would be a subnormal 6e-39."""
    a = -v
    a = -_LO_32 if a > -_LO_32 else a
    s = _ONE_32 / (_ONE_32 + exp32_clamped(a))
    return s - s if v < _LO_32 else s


def sigmoid(v):
    """The flushed sigmoid in ``v``'s own precision: :func:`sigmoid32_flushed` for a float32,
    :func:`sigmoid_flushed` otherwise. numba only."""
    raise NotImplementedError("sigmoid is called from numba-compiled code only")


@overload(sigmoid)
def _sigmoid(v):
    if v == types.float32:
        return lambda v: sigmoid32_flushed(v)
    return lambda v: sigmoid_flushed(v)


def like(a, c):
    """The constant ``c`` in the precision of ``a`` (an array's dtype, or a scalar's type):
    float32 for float32, float64 otherwise, so that float32 arithmetic stays float32 (a Python
    float would promote it). numba only."""
    raise NotImplementedError("like is called from numba-compiled code only")


@overload(like)
def _like(a, c):
    t = a.dtype if isinstance(a, types.Array) else a
    if t == types.float32:
        return lambda a, c: np.float32(c)
    return lambda a, c: np.float64(c)
