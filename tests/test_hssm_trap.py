"""The relu trap of the LinHRU stiffness (README, the adding problem's seed 1) and the softplus
option that removes it.

With the paper's A = relu(θ_A), a mode whose θ_A crosses 0 is a free particle (A = 0) whose θ_A
gets exactly zero gradient from RHEL and BPTT alike, so no optimiser step moves it back. With
A = softplus(θ_A) the slope is nowhere zero: the same mode, started from the same (near-zero)
stiffness, recovers.
"""

import numpy as np
import pytest

from physim.bptt import bptt_gradient
from physim.device import transform_values
from physim.families.hru import A_INIT_MIN, LinHRUSpec
from physim.hssm.config import HSSMSpec
from physim.hssm.model import HSSM
from physim.optim import AdamState, adam_update
from physim.rhel import rhel_gradient
from physim.simulate import simulate

#: the trap run: one mode with a large step Δt = sigmoid(2) ≈ 0.88, stiffness A* = 0.01 to be
#: learned (period ≈ 70 steps, longer than the run: the loss is unimodal in A), from relu's
#: A = 0 (θ_A = −0.2) or softplus's A = 1e-4; 150 Adam steps at lr 0.1 on θ_A alone
TRAP_LENGTH = 50
TRAP_A_STAR = 0.01
TRAP_STEPS = 150
TRAP_LR = 0.1
#: softplus recovers: after TRAP_STEPS the loss is 2e-6 of its start (measured); 1e-4 leaves
#: room for round-off differences between machines, and is far below relu's ratio of exactly 1
RECOVERED_LOSS_RATIO = 1e-4
#: RHEL and BPTT on a linear (quadratic-H) core: exact up to echo round-off
RHEL_BPTT_REL = 1e-9


def _softplus_inverse(a: float) -> float:
    return float(np.log(np.expm1(a)))


def _one_mode(a_param: str):
    dev = LinHRUSpec(
        kind="linhru",
        name="trap",
        n_modes=1,
        n_inputs=1,
        a_param=a_param,
        dt_raw_range=(2.0, 2.0),
        learnable=["A"],
    ).build()
    return dev


@pytest.mark.parametrize("algo", ["rhel", "bptt"])
def test_relu_trap_holds_a_free_particle_and_softplus_escapes_it(algo):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(TRAP_LENGTH, 4, 1))
    final = {}
    for a_param, a_start in (("relu", -0.2), ("softplus", _softplus_inverse(1e-4))):
        dev = _one_mode(a_param)
        a_star = TRAP_A_STAR if a_param == "relu" else _softplus_inverse(TRAP_A_STAR)
        target = simulate(dev, np.array([a_star]), u).y.copy()
        params = {"theta": np.array([a_start])}
        state = AdamState.zeros(params)
        losses, grads = [], []
        for _ in range(TRAP_STEPS):
            if algo == "rhel":
                res = rhel_gradient(dev, params["theta"], u, target, eps=1e-2)
            else:
                res = bptt_gradient(dev, params["theta"], u, target)
            losses.append(res.loss)
            grads.append(res.grad[0])
            adam_update(params, {"theta": res.grad}, state, lr=TRAP_LR)
        final[a_param] = (losses, grads, dev.physical(params["theta"]).w[0])

    losses, grads, a_end = final["relu"]
    assert a_end == 0.0  # still a free particle ...
    assert all(g == 0.0 for g in grads)  # ... because θ_A never got a gradient
    assert losses[-1] == losses[0] > 1e3  # and the loss never moved
    losses, grads, a_end = final["softplus"]
    assert grads[0] < 0.0  # the first step already raises A
    assert losses[-1] < RECOVERED_LOSS_RATIO * losses[0]
    assert a_end == pytest.approx(TRAP_A_STAR, rel=0.05)


@pytest.mark.parametrize("a_param", ["relu", "softplus"])
def test_trapped_mode_in_a_stack_gets_the_same_gradient_from_rhel_and_bptt(a_param):
    # a regression HSSM with mode 0 of block 0 at (near-)zero stiffness and a large step
    spec = HSSMSpec(
        model="linhru", n_blocks=2, hidden=3, ssm_dim=2, dropout=0.0, output_step=4,
        a_param=a_param,
    )  # fmt: skip
    net = HSSM.build(spec, 2, 1, "regression", seed=3)
    params = net.init_params(3)
    dev = net.devices[0]
    sl = dev.slices()
    core = params["blocks.0.core"]
    core[sl["A"].start] = -0.2 if a_param == "relu" else _softplus_inverse(1e-4)
    core[sl["dt"].start] = 2.0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 40, 2))
    y = 0.5 * rng.normal(size=(3, 10, 1))
    g = {a: net.loss_and_grad(params, X, y, algo=a)[2]["blocks.0.core"] for a in ("rhel", "bptt")}
    g_a = {a: v[sl["A"].start] for a, v in g.items()}
    if a_param == "relu":
        assert g_a["rhel"] == 0.0 and g_a["bptt"] == 0.0
    else:
        assert g_a["bptt"] != 0.0
        assert abs(g_a["rhel"] - g_a["bptt"]) <= RHEL_BPTT_REL * abs(g_a["bptt"])
    scale = np.max(np.abs(g["bptt"]))
    assert np.max(np.abs(g["rhel"] - g["bptt"])) <= RHEL_BPTT_REL * scale


def test_softplus_starts_from_relus_stiffnesses_and_keeps_the_other_draws():
    kw = dict(kind="linhru", name="x", n_modes=5, n_inputs=3, seed=4, complex_ssm=True)
    relu = LinHRUSpec(**kw).build()
    soft = LinHRUSpec(a_param="softplus", **kw).build()
    P = 5
    a_relu = relu.physical().w[: 2 * P]
    a_soft = soft.physical().w[: 2 * P]
    # A = softplus(softplus⁻¹(A0)): two roundings of functions with slope ≤ 1
    np.testing.assert_allclose(a_soft, np.maximum(a_relu, A_INIT_MIN), rtol=1e-14)
    # the steps Δt and the input matrix come from the same draws, bit for bit
    np.testing.assert_array_equal(soft.physical().w[2 * P :], relu.physical().w[2 * P :])
    np.testing.assert_array_equal(soft.physical().B, relu.physical().B)
    # the default is the paper's relu, θ_A ~ U[a_range] as drawn
    draws = np.random.default_rng(4).uniform(0.0, 1.0, size=P)
    np.testing.assert_array_equal(relu.theta0[:P], draws)
    assert relu.groups[0].transform == "relu"


def test_softplus_transform_and_its_slope():
    raw = np.array([-800.0, -20.0, -1.0, 0.0, 1.0, 20.0, 800.0])
    a = transform_values("softplus", raw)
    assert np.all(np.isfinite(a)) and np.all(a >= 0.0)
    np.testing.assert_allclose(a[1:-1], np.log1p(np.exp(raw[1:-1])), rtol=1e-15)
    assert a[-1] == 800.0  # no overflow
    # the pulled-back gradient of A = softplus(θ) is sigmoid(θ) · ∂L/∂A (central differences)
    dev = _one_mode("softplus")
    theta = np.array([-1.3])
    g_w = np.zeros_like(dev.physical(theta).w)
    g_w[0] = 1.0
    pulled = dev.pullback(theta, g_w, np.zeros_like(dev.B_base))[0]
    h = 1e-6
    a_plus, a_minus = (
        transform_values("softplus", theta + h),
        transform_values("softplus", theta - h),
    )
    assert pulled == pytest.approx((a_plus[0] - a_minus[0]) / (2 * h), rel=1e-8)


def test_softplus_needs_a_linhru():
    with pytest.raises(ValueError, match="a_param = 'softplus' sets the LinHRU stiffness map"):
        HSSMSpec(model="nonlinhru", a_param="softplus")
