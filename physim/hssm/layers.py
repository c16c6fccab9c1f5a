"""Digital layers of the HSSM with hand-derived backward passes (numpy only).

Every array is channels-last; leading axes (time, batch) are arbitrary. Each ``*_forward``
returns its output and what its backward needs; each ``*_backward`` takes the upstream
gradient and returns the gradient w.r.t. its input and, where it has some, its parameters.
Parameter gradients are summed over all leading axes. The tests check every backward against
central finite differences.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, expit

_SQRT_HALF = np.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


# ---------------------------------------------------------------------------------- linear
def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """y = x Wᵀ + b over the last axis; ``W`` is (n_out, n_in)."""
    y = (_flat(x) @ W.T).reshape(*x.shape[:-1], W.shape[0])
    if b is not None:
        y += b
    return y


def linear_backward(
    dy: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dW, db) of y = x Wᵀ + b."""
    dy2 = _flat(dy)
    dx = (dy2 @ W).reshape(x.shape)
    dW = dy2.T @ _flat(x)
    return dx, dW, dy2.sum(axis=0)


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
def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU x·Φ(x) (Φ the standard normal CDF)."""
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


def gelu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dy · (Φ(x) + x·φ(x))."""
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
def dropout_mask(rng: np.random.Generator | None, shape: tuple[int, ...], rate: float):
    """Inverted-dropout keep mask (bool) or ``None`` when dropout is off (rate 0 or eval)."""
    if rng is None or rate <= 0.0:
        return None
    return rng.random(shape) >= rate


#: rows of uniforms drawn per call when building packed masks (bounds the transient to
#: 16384 × H float64, 8 MB at H = 64; the draws are the same stream as one full-size call)
_MASK_DRAW_ROWS = 16384


def dropout_bits(
    rng: np.random.Generator | None, n_rows: int, n_ch: int, rate: float
) -> np.ndarray | None:
    """The keep mask of :func:`dropout_mask` for shape (…, n_ch) with ``n_rows`` leading
    elements, bit-packed along channels (``np.packbits``, big-endian): (n_rows, ⌈n_ch/8⌉) uint8.

    The uniforms are drawn in row blocks from the same stream, so for a given generator state
    the mask is identical, bit for bit, to ``dropout_mask(rng, shape, rate)``.
    """
    if rng is None or rate <= 0.0:
        return None
    out = np.empty((n_rows, (n_ch + 7) // 8), dtype=np.uint8)
    for r0 in range(0, n_rows, _MASK_DRAW_ROWS):
        r1 = min(n_rows, r0 + _MASK_DRAW_ROWS)
        out[r0:r1] = np.packbits(rng.random((r1 - r0, n_ch)) >= rate, axis=1)
    return out


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
