"""Every digital layer of the HSSM: hand-derived backward vs central finite differences."""

import numpy as np
import pytest

from physim.hssm import layers as L

#: central differences with step 1e-6 on O(1) smooth maps: truncation ~1e-12, round-off
#: ~1e-10 relative; 1e-7 relative to the gradient scale leaves a wide margin
TOL_FD = 1e-7
FD_STEP = 1e-6


def _fd(f, x: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the scalar f at x."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + FD_STEP
        fp = f()
        flat[i] = old - FD_STEP
        fm = f()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * FD_STEP)
    return g


def _close(a: np.ndarray, b: np.ndarray) -> None:
    scale = max(np.max(np.abs(b)), 1e-12)
    assert np.max(np.abs(a - b)) / scale < TOL_FD


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def test_linear_backward(rng):
    x, W, b = rng.normal(size=(3, 2, 4)), rng.normal(size=(5, 4)), rng.normal(size=5)
    R = rng.normal(size=(3, 2, 5))

    def f():
        return float(np.sum(R * L.linear_forward(x, W, b)))

    dx, dW, db = L.linear_backward(R, x, W)
    _close(dx, _fd(f, x))
    _close(dW, _fd(f, W))
    _close(db, _fd(f, b))


@pytest.mark.parametrize(
    ("forward", "backward"),
    [
        (L.layer_norm_forward, L.layer_norm_backward),
        (L.batch_norm_forward, L.batch_norm_backward),
    ],
    ids=["layer", "batch"],
)
def test_norm_backward(rng, forward, backward):
    x = rng.normal(size=(7, 3, 4)) + 2.0  # an offset the norm must remove
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    R = rng.normal(size=x.shape)

    def f():
        return float(np.sum(R * forward(x, gamma, beta)[0]))

    _, xhat, rstd = forward(x, gamma, beta)
    dx, dg, db = backward(R, xhat, rstd, gamma)
    _close(dx, _fd(f, x))
    _close(dg, _fd(f, gamma))
    _close(db, _fd(f, beta))


def test_batch_norm_statistics(rng):
    x = 3.0 * rng.normal(size=(50, 4, 3)) + np.array([1.0, -2.0, 5.0])
    y, xhat, _ = L.batch_norm_forward(x, np.ones(3), np.zeros(3), eps=0.0)
    # per channel over time and batch: zero mean, unit variance (round-off only)
    assert np.max(np.abs(y.mean(axis=(0, 1)))) < 1e-12
    assert np.max(np.abs(y.var(axis=(0, 1)) - 1.0)) < 1e-12
    # given statistics are constants: the same affine map for every sample
    mu, var = np.array([1.0, 0.0, -1.0]), np.array([4.0, 1.0, 0.25])
    y2, _, _ = L.batch_norm_forward(x, np.ones(3), np.zeros(3), eps=0.0, stats=(mu, var))
    np.testing.assert_allclose(y2, (x - mu) / np.sqrt(var), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_gelu_backward(rng, form):
    x = 2 * rng.normal(size=(4, 5))
    R = rng.normal(size=x.shape)
    _close(L.gelu_backward(R, x, form), _fd(lambda: float(np.sum(R * L.gelu(x, form))), x))


def test_gelu_tanh_form_is_close_to_exact():
    # the tanh form approximates x·Φ(x) to about 5e-4 (absolute) everywhere
    x = np.linspace(-8, 8, 3201)
    err = np.abs(L.gelu(x, "tanh") - L.gelu(x))
    assert 1e-4 < err.max() < 1e-3


def test_gelu_matches_definition():
    from scipy.stats import norm

    x = np.linspace(-4, 4, 17)
    # Φ from scipy.stats is an independent route; both are erf-based to round-off
    np.testing.assert_allclose(L.gelu(x), x * norm.cdf(x), rtol=1e-14, atol=1e-15)


def test_dropout_is_inverted_and_linear(rng):
    mask = L.dropout_mask(rng, (2000, 50), 0.25)
    x = np.ones((2000, 50))
    y = L.dropout_apply(x, mask, 0.25)
    # keep fraction is binomial(1e5, 0.75): its std is 1.4e-3, the bound is > 5 std
    assert abs(mask.mean() - 0.75) < 8e-3
    assert set(np.unique(y)) == {0.0, 1.0 / 0.75}
    assert L.dropout_mask(None, (2, 2), 0.25) is None
    assert L.dropout_mask(rng, (2, 2), 0.0) is None


def test_glu_backward(rng):
    x = rng.normal(size=(3, 2, 4))
    W1, b1, W2, b2 = (
        rng.normal(size=(4, 4)),
        rng.normal(size=4),
        rng.normal(size=(4, 4)),
        rng.normal(size=4),
    )
    R = rng.normal(size=(3, 2, 4))

    def f():
        return float(np.sum(R * L.glu_forward(x, W1, b1, W2, b2)[0]))

    _, a, g = L.glu_forward(x, W1, b1, W2, b2)
    dx, dW1, db1, dW2, db2 = L.glu_backward(R, x, a, g, W1, W2)
    for got, arr in ((dx, x), (dW1, W1), (db1, b1), (dW2, W2), (db2, b2)):
        _close(got, _fd(f, arr))


def test_softmax_cross_entropy_backward(rng):
    logits, labels = rng.normal(size=(5, 3)), np.array([0, 2, 1, 1, 0])
    _, d = L.softmax_cross_entropy(logits, labels)
    _close(d, _fd(lambda: L.softmax_cross_entropy(logits, labels)[0], logits))
    # uniform logits: loss is log(n_classes) exactly up to round-off
    assert L.softmax_cross_entropy(np.zeros((4, 3)), np.zeros(4, dtype=int))[0] == pytest.approx(
        np.log(3), rel=1e-14
    )


def test_tanh_mse_backward(rng):
    pre, target = rng.normal(size=(4, 3, 2)), 0.5 * rng.normal(size=(4, 3, 2))
    _, d, _ = L.tanh_mse(pre, target)
    _close(d, _fd(lambda: L.tanh_mse(pre, target)[0], pre))


def test_fused_gelu_matches_plain(rng):
    x, R = 2 * rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    g, cdf = L.gelu_with_cdf(x)
    # same formula with the product taken in another order: equal to a few ulps
    np.testing.assert_allclose(g, L.gelu(x), rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(
        L.gelu_backward_from_cdf(R, x, cdf), L.gelu_backward(R, x), rtol=1e-14, atol=1e-16
    )
