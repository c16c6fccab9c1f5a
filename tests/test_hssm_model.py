"""The whole HSSM: BPTT-through-the-stack gradient vs finite differences of the loss, and
chained RHEL vs BPTT per block and parameter (paper Fig. 4 at small sizes)."""

import numpy as np
import pytest

from physim.hssm.compare import align, compare_gradients
from physim.hssm.config import HSSMSpec
from physim.hssm.model import HSSM, estimate_memory_bytes

#: central differences (step FD_STEP) of a smooth O(1) loss through ~20 leapfrog steps:
#: truncation ~1e-10 and round-off ~1e-10/FD_STEP relative; 1e-6 of each group's scale is ample
TOL_FD = 1e-6
FD_STEP = 1e-5
#: the issue's Figure-4 targets: RHEL is exact up to the O(ε²) nudge bias and echo round-off
MIN_COSINE = 0.999999
MAX_RATIO_DEV = 1e-5


def _tiny(
    model: str,
    task: str = "classification",
    dropout: float = 0.0,
    output_step: int = 1,
    norm: str = "layer",
    complex_ssm: bool = False,
    a_param: str = "relu",
):
    spec = HSSMSpec(
        model=model,
        n_blocks=2,
        hidden=3,
        ssm_dim=2,
        dropout=dropout,
        output_step=output_step,
        norm=norm,
        complex_ssm=complex_ssm,
        a_param=a_param,
    )
    n_out = 2
    net = HSSM.build(spec, 2, n_out, task, seed=3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 12, 2))
    if task == "classification":
        y = np.array([0, 1])
    else:
        y = 0.5 * rng.normal(size=(2, 12 // output_step, n_out))
    return net, net.init_params(3), X, y


def _fd_check(net, params, X, y, algo, drop_seed=None):
    def rng():
        return None if drop_seed is None else np.random.default_rng(drop_seed)

    def loss():  # training mode (keep=algo): a batch norm uses this batch's statistics
        return net.loss(net.forward(params, X, rng=rng(), keep=algo)[0], y)[0]

    _, _, grads = net.loss_and_grad(params, X, y, algo=algo, rng=rng())
    buffers = net.buffer_names()
    for name, arr in params.items():
        if name in buffers:  # running statistics: not trained, zero gradient
            assert not np.any(grads[name]), name
            continue
        fd = np.zeros_like(arr)
        for i in range(arr.size):
            old = arr.flat[i]
            arr.flat[i] = old + FD_STEP
            lp = loss()
            arr.flat[i] = old - FD_STEP
            lm = loss()
            arr.flat[i] = old
            fd.flat[i] = (lp - lm) / (2 * FD_STEP)
        scale = max(np.max(np.abs(fd)), 1e-10)
        err = np.max(np.abs(grads[name] - fd)) / scale
        assert err < TOL_FD, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("model", ["linhru", "nonlinhru"])
def test_bptt_stack_gradient_matches_finite_differences(model):
    net, params, X, y = _tiny(model)
    _fd_check(net, params, X, y, "bptt")


@pytest.mark.parametrize("algo", ["bptt", "rhel"])
def test_softplus_stiffness_stack_gradient_matches_finite_differences(algo):
    net, params, X, y = _tiny("linhru", a_param="softplus", complex_ssm=True)
    _fd_check(net, params, X, y, algo)


def test_rhel_stack_gradient_with_dropout_matches_finite_differences():
    # dropout masks are drawn from a generator seeded identically for every loss evaluation
    net, params, X, y = _tiny("linhru", dropout=0.3)
    _fd_check(net, params, X, y, "rhel", drop_seed=11)


def test_regression_head_matches_finite_differences():
    net, params, X, y = _tiny("linhru", task="regression", output_step=3)
    assert net.forward(params, X)[0].shape == (2, 4, 2)
    _fd_check(net, params, X, y, "bptt")


@pytest.mark.parametrize("algo", ["bptt", "rhel"])
def test_batch_norm_stack_gradient_matches_finite_differences(algo):
    net, params, X, y = _tiny("linhru", norm="batch")
    X = X + np.array([2.0, -1.0])  # channel offsets for the norm to remove
    _fd_check(net, params, X, y, algo)


def test_batch_norm_running_statistics():
    net, params, X, y = _tiny("linhru", norm="batch")
    before = {k: params[k].copy() for k in net.buffer_names()}
    net.loss_and_grad(params, X, y, algo="rhel")
    assert all(np.array_equal(params[k], v) for k, v in before.items())  # no update asked
    net.loss_and_grad(params, X, y, algo="rhel", update_stats=True)
    xt = X.transpose(1, 0, 2) @ params["encoder.W"].T + params["encoder.b"]
    mu, var = xt.reshape(-1, 3).mean(axis=0), xt.reshape(-1, 3).var(axis=0)
    w = net.spec.norm_momentum
    np.testing.assert_allclose(params["blocks.0.norm.mean"], w * mu, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(params["blocks.0.norm.var"], (1 - w) + w * var, rtol=1e-13)
    # evaluation uses the running statistics: a sample's output does not depend on its batch
    one = net.predict(params, X[:1])
    both = net.predict(params, X)
    np.testing.assert_allclose(one[0], both[0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("model", "complex_ssm", "a_param"),
    [
        ("linhru", False, "relu"),
        ("nonlinhru", False, "relu"),
        ("linhru", True, "relu"),
        ("linhru", False, "softplus"),
        ("linhru", True, "softplus"),
    ],
)
def test_chained_rhel_equals_bptt_per_block_and_parameter(model, complex_ssm, a_param):
    res = compare_gradients(
        model,
        n_blocks=3,
        hidden=8,
        ssm_dim=6,
        length=60,
        batch=3,
        seed=1,
        complex_ssm=complex_ssm,
        a_param=a_param,
    )
    n_rows = 2 + 3 * (11 if model == "linhru" else 13) + 2 + (3 if complex_ssm else 0)
    assert len(res.rows) == n_rows
    for r in res.rows:
        assert r.cosine >= MIN_COSINE, r
        assert abs(r.norm_ratio - 1.0) <= MAX_RATIO_DEV, r
    # gradients of lower blocks are non-trivial (the chain carries signal down the stack)
    assert all(r.norm_bptt > 0 for r in res.rows if r.block == "block 0")


@pytest.mark.parametrize("algo", ["bptt", "rhel"])
def test_complex_linhru_stack_gradient_matches_finite_differences(algo):
    # tied A, Δt (sum over the Re and Im halves), [Re B; Im B], C and C_im, with dropout
    net, params, X, y = _tiny("linhru", dropout=0.2, complex_ssm=True)
    assert params["blocks.0.C_im"].shape == (3, 2)
    assert net.devices[0].n_dof == 4 and net.devices[0].split(params["blocks.0.core"])[
        "A"
    ].shape == (2,)
    _fd_check(net, params, X, y, algo, drop_seed=5)


def test_complex_linhru_readout_matches_complex_arithmetic():
    # independent route: the same leapfrog run with complex φ, π and complex B, C in numpy
    net, params, X, _ = _tiny("linhru", complex_ssm=True)
    dev = net.devices[0]
    P, H = 2, 3
    g = dev.split(params["blocks.0.core"])
    A, dt = np.maximum(g["A"], 0.0), 1.0 / (1.0 + np.exp(-g["dt"]))
    Bri = g["input_weight"].reshape(2 * P, H)
    B = Bri[:P] + 1j * Bri[P:]
    C = params["blocks.0.C"] + 1j * params["blocks.0.C_im"]
    rng = np.random.default_rng(2)
    u = rng.normal(size=(40, 2, H))
    phi = np.zeros((2, P), complex)
    pi = np.zeros((2, P), complex)
    want = []
    for k in range(40):  # drift–kick–drift, δ = 1, per-mode step Δt (REFERENCE §2)
        phi = phi + 0.5 * dt * pi
        pi = pi - dt * (A * phi - u[k] @ B.T)
        phi = phi + 0.5 * dt * pi
        want.append((phi @ C.T).real)
    from physim.hssm.model import _block_weights
    from physim.simulate import simulate

    got = simulate(dev, params["blocks.0.core"], u).y @ _block_weights(params, "blocks.0.", True).Ct
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-13)


def test_complex_ssm_needs_linhru():
    with pytest.raises(ValueError, match="complex_ssm = true needs model = 'linhru'"):
        HSSMSpec(model="nonlinhru", complex_ssm=True)


def test_align_edge_cases():
    assert align(np.zeros(3), np.zeros(3)) == (1.0, 1.0)
    assert align(np.ones(3), 2 * np.ones(3)) == pytest.approx((1.0, 0.5))


def test_input_shape_error():
    net, params, X, _ = _tiny("linhru")
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, n_steps, 2\)"):
        net.forward(params, X[:, :, :1])


def test_regression_shorter_than_output_step_is_refused():
    spec = HSSMSpec(n_blocks=1, hidden=4, ssm_dim=3, output_step=128)
    net = HSSM.build(spec, 2, 1, "regression", seed=0)
    X = np.zeros((2, 16, 2))
    with pytest.raises(
        ValueError, match=r"output_step = 128-th step, but the inputs have 16 steps"
    ):
        net.loss_and_grad(net.init_params(0), X, np.zeros((2, 0, 1)), algo="rhel")


def test_memory_estimate_scales_with_length():
    spec = HSSMSpec()
    small = estimate_memory_bytes(spec, 896, 32, "rhel")
    assert estimate_memory_bytes(spec, 2 * 896, 32, "rhel") == pytest.approx(2 * small, rel=2e-3)
    assert estimate_memory_bytes(spec, 896, 32, "bptt") > small


@pytest.mark.parametrize(
    ("complex_ssm", "precision"), [(False, "float64"), (True, "float64"), (True, "float32")]
)
def test_memory_estimate_is_what_a_training_step_holds(complex_ssm, precision):
    # RHEL: every sequence-sized array of loss_and_grad lives in its StepBuffers
    from physim.hssm import StepBuffers

    spec = HSSMSpec(
        n_blocks=3,
        hidden=12,
        ssm_dim=5,
        dropout=0.1,
        complex_ssm=complex_ssm,
        precision=precision,
    )
    net = HSSM.build(spec, 2, 2, "classification", seed=0)
    X = np.random.default_rng(0).normal(size=(3, 40, 2))
    buf = StepBuffers()
    net.loss_and_grad(
        net.init_params(0),
        X,
        np.array([0, 1, 0]),
        algo="rhel",
        rng=np.random.default_rng(1),
        buffers=buf,
    )
    assert buf.nbytes == estimate_memory_bytes(spec, 40, 3, "rhel")
    buf = StepBuffers()
    net.forward(net.init_params(0), X, buffers=buf)
    assert buf.nbytes == estimate_memory_bytes(spec, 40, 3, None)


@pytest.mark.parametrize(
    ("model", "complex_ssm", "norm", "hidden", "ssm"),
    [
        ("linhru", False, "layer", 8, 6),
        ("nonlinhru", False, "layer", 8, 6),
        ("linhru", True, "batch", 8, 6),
        # B of 32 × 32 entries: the cores' drive products take the float32 BLAS route
        ("linhru", True, "layer", 32, 16),
    ],
)
def test_float32_rhel_meets_the_figure4_bar_against_float64_bptt(
    model, complex_ssm, norm, hidden, ssm
):
    # float32 stores the activations and runs the periphery's products (and a large B's drive
    # products) in float32; the cores integrate and echo in float64, so RHEL keeps the
    # Figure-4 bar against the float64 model's BPTT
    res = compare_gradients(
        model, n_blocks=3, hidden=hidden, ssm_dim=ssm, length=60, batch=3, seed=1,
        complex_ssm=complex_ssm, precision="float32",
    )  # fmt: skip
    assert res.config["precision"] == "float32"
    assert res.min_cosine >= MIN_COSINE
    assert res.max_abs_ratio_minus_1 <= MAX_RATIO_DEV
    # ... and float32 is what it stores (a float64 twin would pass the bar trivially)
    spec = HSSMSpec(model=model, n_blocks=2, hidden=4, ssm_dim=3, precision="float32", norm=norm)
    net = HSSM.build(spec, 2, 2, "classification", seed=0)
    X = np.random.default_rng(0).normal(size=(2, 10, 2))
    out, x_top, caches = net.forward(net.init_params(0), X, keep="rhel")
    assert x_top.dtype == np.float32 and caches[0].phi.dtype == np.float32
    assert out.dtype == np.float64
    twin = HSSM.build(spec.model_copy(update={"precision": "float64"}), 2, 2, "classification")
    want = twin.forward(net.init_params(0), X, keep="rhel")[0]  # (batch norm: batch statistics)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(out, want)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "hidden", "complex_ssm"),
    [("linhru", 64, False), ("nonlinhru", 128, False), ("linhru", 64, True)],
)
def test_figure4_at_paper_scp1_sizes(model, hidden, complex_ssm):
    # 6 blocks, P = 256, L = 896, float64 (issue 4); ~10-30 s each on 2 cores
    res = compare_gradients(
        model,
        n_blocks=6,
        hidden=hidden,
        ssm_dim=256,
        length=896,
        batch=4,
        complex_ssm=complex_ssm,
    )
    assert res.min_cosine >= MIN_COSINE
    assert res.max_abs_ratio_minus_1 <= MAX_RATIO_DEV


@pytest.mark.parametrize(("algo", "task"), [("rhel", "classification"), ("bptt", "regression")])
def test_reused_buffers_and_in_place_backward_give_the_fresh_result(algo, task):
    # loss_and_grad forms dL/dx and (RHEL) dL/dφ in the memory of the step's own activations
    # and reuses a StepBuffers across steps; the public forward + backward use fresh arrays
    # and leave the caches alone: all three routes must agree bit for bit
    from physim.hssm import StepBuffers

    net, params, X, y = _tiny("linhru", task=task, dropout=0.2, complex_ssm=True)
    X2 = np.random.default_rng(5).normal(size=X.shape)

    def public(Xb):
        out, x_top, caches = net.forward(params, Xb, rng=np.random.default_rng(4), keep=algo)
        _, dout, _ = net.loss(out, y)
        return net.backward(params, Xb, x_top, caches, dout, algo=algo)

    buf = StepBuffers()
    for Xb in (X, X2, X):  # the third call runs on arrays the first two left behind
        _, _, reused = net.loss_and_grad(
            params, Xb, y, algo=algo, rng=np.random.default_rng(4), buffers=buf
        )
        want = public(Xb)
        for name in params:
            np.testing.assert_array_equal(reused[name], want[name], err_msg=name)
    assert buf.nbytes > 0


def test_recompute_norm_stats_is_the_mean_of_batch_statistics():
    """Block 0's statistics are those of the encoder output, computed here by hand; block 1's
    are the training-mode forward's; the result is their mean over the batches given."""
    net, params, X, y = _tiny("linhru", norm="batch")
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(3, 12, 2)) + np.array([1.5, -0.5]) for _ in range(3)]
    net.recompute_norm_stats(params, batches)
    enc = [
        b.transpose(1, 0, 2).reshape(-1, 2) @ params["encoder.W"].T + params["encoder.b"]
        for b in batches
    ]
    want_mu = np.mean([e.mean(axis=0) for e in enc], axis=0)
    want_var = np.mean([e.var(axis=0) for e in enc], axis=0)
    np.testing.assert_allclose(params["blocks.0.norm.mean"], want_mu, rtol=1e-13)
    np.testing.assert_allclose(params["blocks.0.norm.var"], want_var, rtol=1e-13)
    # block 1: the batch statistics that a training forward (RHEL's caches) records
    cached = [net.forward(params, b, keep="rhel")[2][1].stats for b in batches]
    np.testing.assert_allclose(
        params["blocks.1.norm.mean"], np.mean([c[0] for c in cached], axis=0), rtol=1e-12
    )
    np.testing.assert_allclose(
        params["blocks.1.norm.var"], np.mean([c[1] for c in cached], axis=0), rtol=1e-12
    )
    # with one batch, evaluation mode now reproduces the training-mode output exactly
    net.recompute_norm_stats(params, [X])
    np.testing.assert_allclose(
        net.predict(params, X), net.forward(params, X, keep="rhel")[0], rtol=1e-12
    )


def test_recompute_norm_stats_needs_a_batch_and_leaves_layer_norms_alone():
    net, params, X, _ = _tiny("linhru", norm="batch")
    with pytest.raises(ValueError, match="at least one batch"):
        net.recompute_norm_stats(params, [])
    net, params, X, _ = _tiny("linhru", norm="layer")
    before = {k: v.copy() for k, v in params.items()}
    net.recompute_norm_stats(params, [X])
    assert all(np.array_equal(before[k], params[k]) for k in params)


def test_scale_dt_multiplies_every_linhru_step():
    net, params, X, _ = _tiny("linhru", task="regression")
    before = {i: net.devices[i].split(params[f"blocks.{i}.core"].copy()) for i in range(2)}
    net.scale_dt(params, 0.25)
    for i in range(2):
        after = net.devices[i].split(params[f"blocks.{i}.core"])
        sig = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
        np.testing.assert_allclose(sig(after["dt"]), 0.25 * sig(before[i]["dt"]), rtol=1e-12)
        for g in ("A", "input_weight"):
            assert np.array_equal(after[g], before[i][g])
    with pytest.raises(ValueError, match="factor must be in"):
        net.scale_dt(params, 1.5)
    net, params, X, _ = _tiny("nonlinhru")
    with pytest.raises(ValueError, match="needs LinHRU"):
        net.scale_dt(params, 0.5)
