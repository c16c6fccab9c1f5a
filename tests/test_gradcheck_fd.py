"""gradcheck's finite differences control their own truncation error, so FAIL means wrong."""

from __future__ import annotations

import warnings

import numpy as np

from physim.bptt import bptt_gradient
from physim.gradcheck import (
    FD_REL,
    TOL_VS_FD,
    GradcheckReport,
    GroupCheck,
    align,
    fd_group_check,
    finite_difference,
    gradcheck,
    random_problem,
)
from physim.specs import parse_spec

N_STEPS = 200
#: a deliberately wrong gradient: one entry off by this fraction of the group's largest entry
WRONG = 1e-4


def _stiff_three_masses():
    """Three masses in a chain between walls at dt·ω_max = 1.9 (within 5 % of the limit)."""
    K = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    w = float(np.sqrt(np.max(np.linalg.eigvalsh(K))))
    spec = {
        "kind": "oscillator_network",
        "name": "stiff-3",
        "dt": 1.9 / w,
        "masses": [1.0, 1.0, 1.0],
        "springs": [{"node": 0, "k": 1.0}, {"node": 2, "k": 1.0}],
        "couplings": [{"nodes": [0, 1], "k": 1.0}, {"nodes": [1, 2], "k": 1.0}],
        "n_inputs": 1,
        "input_weights": [[1.0], [0.0], [0.0]],
        "readout": [2],
        "learnable": ["spring", "coupling", "input_weight", "mass"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the step is near the limit on purpose
        return parse_spec(spec).build()


def test_gradcheck_passes_a_correct_stiff_device_and_fails_a_wrong_gradient():
    dev = _stiff_three_masses()
    rep = gradcheck(dev, n_steps=N_STEPS)
    assert rep.passed, rep.groups
    assert all(g.fd_rel_err_estimate is not None for g in rep.groups if g.n_fd)

    u, target = random_problem(dev, N_STEPS, 2, 0)
    b = bptt_gradient(dev, None, u, target)
    sl = dev.slices()["coupling"]
    scale = float(np.sqrt(np.mean(dev.theta0[sl] ** 2)))
    pick = np.arange(sl.stop - sl.start)
    wrong = b.grad.copy()
    wrong[sl.start] += WRONG * np.max(np.abs(b.grad[sl]))
    errs, est = fd_group_check(
        dev, dev.theta0, u, target, {"right": b.grad, "wrong": wrong}, b.grad, sl, pick,
        FD_REL * scale, N_STEPS, 2,
    )  # fmt: skip
    group = GroupCheck("coupling", 2, 0.0, 1.0, errs["wrong"], errs["right"], 2, est)
    assert errs["right"] <= group.fd_tolerance(TOL_VS_FD)
    assert errs["wrong"] > group.fd_tolerance(TOL_VS_FD)
    # the check is needed: one central difference at the same first step is far off
    fd = finite_difference(dev, dev.theta0, u, target, sl.start, FD_REL * scale, N_STEPS, 2)
    assert abs(fd - b.grad[sl.start]) / np.max(np.abs(b.grad[sl])) > 100 * TOL_VS_FD


def _report(groups) -> GradcheckReport:
    return GradcheckReport("d", 1, 1, 1e-6, 0, 1.0, groups)


def test_passed_is_false_on_any_non_finite_group():
    ok = GroupCheck("a", 1, 1e-9, 1.0, 1e-9, 1e-9, 1, 1e-12)
    assert _report([ok]).passed
    for bad in (
        GroupCheck("b", 1, float("nan"), 1.0, 1e-9, 1e-9, 1, 1e-12),
        GroupCheck("b", 1, 1e-9, float("nan"), None, None, 0),
        GroupCheck("b", 1, 1e-9, 1.0, float("nan"), 1e-9, 1, 1e-12),
        GroupCheck("b", 1, 1e-9, 1.0, 1e-9, 1e-9, 1, float("inf")),
    ):
        assert not _report([ok, bad]).passed
        assert not _report([bad, ok]).passed


def test_cosine_is_clipped_to_one():
    a = np.array([0.1, 0.2, 0.3]) * (1 + 1e-16)
    for x in (a, 1e-200 * a, 1e200 * a):
        cos, _ = align(x, x)
        assert -1.0 <= cos <= 1.0
        assert -1.0 <= align(x, -x)[0] <= 1.0
