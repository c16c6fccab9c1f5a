"""Digital layers of the HSSM with hand-derived backward passes (numpy only).

Every array is channels-last; leading axes (time, batch) are arbitrary. Each ``*_forward``
returns its output and what its backward needs; each ``*_backward`` takes the upstream
gradient and returns the gradient w.r.t. its input and, where it has some, its parameters.
Parameter gradients are summed over all leading axes. The tests check every backward against
central finite differences.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from scipy.special import erf, expit

_SQRT_HALF = np.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_TANH_K = np.sqrt(2.0 / np.pi)
_TANH_C = 0.044715


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


# ---------------------------------------------------------------------------------- linear
def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """y = x Wᵀ + b over the last axis; ``W`` is (n_out, n_in)."""
    y = (_flat(x) @ W.T).reshape(*x.shape[:-1], W.shape[0])
    if b is not None:
        y += b
    return y


#: rows per block of :func:`linear_param_grads` when it converts float32 rows to float64
_GRAD_ROWS = 16384


def linear_param_grads(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (dW, db) of y = x Wᵀ + b. A float32 ``dy`` (the HSSM's float32 precision)
    is summed in float64, converted a block of rows at a time rather than as one
    sequence-sized copy."""
    dy2, x2 = _flat(dy), _flat(x)
    if dy2.dtype != np.float32:
        return dy2.T @ x2, dy2.sum(axis=0)
    dW = np.zeros((dy2.shape[1], x2.shape[1]))
    db = np.zeros(dy2.shape[1])
    for r0 in range(0, dy2.shape[0], _GRAD_ROWS):
        d = dy2[r0 : r0 + _GRAD_ROWS].astype(np.float64)
        dW += d.T @ x2[r0 : r0 + d.shape[0]]
        db += d.sum(axis=0)
    return dW, db


def linear_backward(
    dy: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dW, db) of y = x Wᵀ + b."""
    dx = (_flat(dy) @ W).reshape(x.shape)
    return (dx, *linear_param_grads(dy, x))


# ---------------------------------------------------------------------------------- layer norm
def layer_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise over channels: (y, xhat, rstd) with y = γ·xhat + β, xhat = (x − μ)·rstd."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    xhat = xc * rstd
    return layer_norm_apply(xhat, gamma, beta), xhat, rstd


def layer_norm_apply(xhat: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """γ·xhat + β (recomputes the norm output from stored ``xhat``, bit-identical)."""
    y = xhat * gamma
    y += beta
    return y


def layer_norm_backward(
    dy: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, gamma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dγ, dβ) of the layer norm."""
    dgamma = _flat(dy * xhat).sum(axis=0)
    dbeta = _flat(dy).sum(axis=0)
    return _normalised_input_grad(dy * gamma, xhat, rstd, -1), dgamma, dbeta


def _normalised_input_grad(g: np.ndarray, xhat: np.ndarray, rstd, axis: int) -> np.ndarray:
    """dx of xhat = (x − mean)·rstd, with mean and variance taken along ``axis``, from
    g = dL/dxhat: rstd·(g − mean(g) − xhat·mean(g·xhat))."""
    dx = g - g.mean(axis=axis, keepdims=True)
    dx -= xhat * (g * xhat).mean(axis=axis, keepdims=True)
    dx *= rstd
    return dx


# ---------------------------------------------------------------------------------- batch norm
def batch_norm_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (biased) variance over every leading axis (time and batch)."""
    x2 = _flat(x)
    mu = x2.mean(axis=0)
    xc = x2 - mu
    return mu, (xc * xc).mean(axis=0)


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float = 1e-5,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise each channel: (y, xhat, rstd), y = γ·xhat + β, xhat = (x − μ)·rstd.

    ``stats = None`` uses the batch's own statistics over all leading axes (training, and
    the gradient then flows through μ and σ); otherwise the given (mean, var) are constants
    (evaluation with running statistics). ``rstd`` has shape (channels,).
    """
    mu, var = batch_norm_stats(x) if stats is None else stats
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * rstd
    return layer_norm_apply(xhat, gamma, beta), xhat, rstd


def batch_norm_backward(
    dy: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, gamma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dγ, dβ) of the batch norm with batch statistics."""
    dy2, xh2 = _flat(dy), _flat(xhat)
    dgamma = (dy2 * xh2).sum(axis=0)
    dbeta = dy2.sum(axis=0)
    dx = _normalised_input_grad(dy2 * gamma, xh2, rstd, 0)
    return dx.reshape(dy.shape), dgamma, dbeta


# ---------------------------------------------------------------------------------- GELU
def gelu(x: np.ndarray, form: str = "erf") -> np.ndarray:
    """GELU: the exact x·Φ(x) (Φ the standard normal CDF), or with ``form="tanh"`` its tanh
    form x·½(1 + tanh(√(2/π)(x + 0.044715 x³))) (jax.nn.gelu's default)."""
    if form == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_TANH_K * (x + _TANH_C * x**3)))
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


def gelu_backward(dy: np.ndarray, x: np.ndarray, form: str = "erf") -> np.ndarray:
    """dy · GELU'(x): Φ(x) + x·φ(x), or the tanh form's derivative."""
    if form == "tanh":
        th = np.tanh(_TANH_K * (x + _TANH_C * x**3))
        slope = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * _TANH_K * (
            1.0 + 3.0 * _TANH_C * x * x
        )
        return dy * slope
    slope = 0.5 * (1.0 + erf(x * _SQRT_HALF)) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return dy * slope


def gelu_with_cdf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GELU(x), Φ(x)) with one erf evaluation; Φ feeds :func:`gelu_backward_from_cdf`."""
    cdf = erf(x * _SQRT_HALF)
    cdf += 1.0
    cdf *= 0.5
    return x * cdf, cdf


def gelu_backward_from_cdf(dy: np.ndarray, x: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Same as :func:`gelu_backward`, reusing Φ(x); overwrites ``cdf`` with the slope."""
    slope = cdf
    slope += x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    slope *= dy
    return slope


# ---------------------------------------------------------------------------------- dropout
# Keep masks come from a counter-based generator: one 64-bit seed is drawn from the caller's
# numpy Generator per mask, and the word of (row r, channel pair j // 2) is the SplitMix64
# output number r·⌈H/2⌉ + j//2 + 1 of that seed; its high 32 bits decide even channels, its
# low 32 bits odd ones, and an element is kept when its 32 bits are >= ⌈rate·2³²⌉ (the keep
# probability is 1 − rate to within 2.4e-10). The mask is a function of (seed, shape, rate)
# only — the same whatever the number of threads — and a parallel kernel writes it packed
# without forming uniforms (drawing 12.8M uniforms through numpy per PPG mask took 0.06 s,
# 0.7 s of a training step's twelve masks).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def _splitmix(seed, i):
    z = seed + (i + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, parallel=True)
def _keep_bits(seed, threshold, n_ch, out):
    """out[r] = the packed keep bits of row r (big-endian, padding bits 0)."""
    n_rows, n_bytes = out.shape
    pairs = np.uint64((n_ch + 1) // 2)
    for r in prange(n_rows):
        base = np.uint64(r) * pairs
        for b in range(n_bytes):
            byte = 0
            for k in range(0, 8, 2):
                j = 8 * b + k
                if j < n_ch:
                    w = _splitmix(seed, base + np.uint64(j // 2))
                    if (w >> np.uint64(32)) >= threshold:
                        byte |= 1 << (7 - k)
                    if j + 1 < n_ch and (w & np.uint64(0xFFFFFFFF)) >= threshold:
                        byte |= 1 << (6 - k)
            out[r, b] = byte


def dropout_bits(
    rng: np.random.Generator | None,
    n_rows: int,
    n_ch: int,
    rate: float,
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """An inverted-dropout keep mask for ``n_rows`` rows of ``n_ch`` channels, bit-packed
    along channels (``np.packbits`` layout, big-endian): (n_rows, ⌈n_ch/8⌉) uint8, written into
    ``out`` when given; ``None`` when dropout is off (no generator, or rate 0). Draws one
    integer from ``rng`` (see the comment above for the generator)."""
    if rng is None or rate <= 0.0:
        return None
    shape = (n_rows, (n_ch + 7) // 8)
    if out is None:
        out = np.empty(shape, dtype=np.uint8)
    elif out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out must be a uint8 array of shape {shape}, got {out.dtype} {out.shape}")
    seed = np.uint64(rng.integers(0, 2**63, dtype=np.int64))
    _keep_bits(seed, np.uint64(math.ceil(rate * 2.0**32)), n_ch, out)
    return out


def dropout_mask(rng: np.random.Generator | None, shape: tuple[int, ...], rate: float):
    """The keep mask of :func:`dropout_bits` unpacked to ``shape`` (bool; rows are the leading
    axes flattened), or ``None`` when dropout is off."""
    n_ch = shape[-1]
    bits = dropout_bits(rng, int(np.prod(shape[:-1], dtype=np.int64)), n_ch, rate)
    if bits is None:
        return None
    return np.unpackbits(bits, axis=1, count=n_ch).astype(bool).reshape(shape)


def dropout_apply(x: np.ndarray, mask: np.ndarray | None, rate: float) -> np.ndarray:
    """x · mask / (1 − rate); also the backward (the map is linear and diagonal)."""
    if mask is None:
        return x
    return np.where(mask, x * (1.0 / (1.0 - rate)), 0.0)


# ---------------------------------------------------------------------------------- GLU
def glu_forward(x, W1, b1, W2, b2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, a, g) with a = x W₁ᵀ + b₁, g = sigmoid(x W₂ᵀ + b₂), y = a ⊙ g."""
    a = linear_forward(x, W1, b1)
    g = expit(linear_forward(x, W2, b2))
    return a * g, a, g


def glu_backward(dy, x, a, g, W1, W2):
    """Gradients (dx, dW1, db1, dW2, db2) of the GLU."""
    da = dy * g
    dpre = dy * a * g * (1.0 - g)
    dx, dW1, db1 = linear_backward(da, x, W1)
    dx2, dW2, db2 = linear_backward(dpre, x, W2)
    dx += dx2
    return dx, dW1, db1, dW2, db2


# ---------------------------------------------------------------------------------- heads
def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy over the batch and its gradient w.r.t. the logits (batch, n_classes)."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    idx = np.arange(n)
    loss = -float(logp[idx, labels].mean())
    d = np.exp(logp)
    d[idx, labels] -= 1.0
    return loss, d / n


def tanh_mse(pre: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(loss, dpre, out): out = tanh(pre), loss = mean((out − target)²)."""
    out = np.tanh(pre)
    r = out - target
    loss = float(np.mean(r * r))
    dpre = (2.0 / r.size) * r * (1.0 - out * out)
    return loss, dpre, out
