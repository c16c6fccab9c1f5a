"""Three independent routes to one gradient: RHEL, the BPTT twin and finite differences.

Errors are relative to the largest BPTT gradient magnitude within each parameter group
(``max_i |a_i − b_i| / max_i |b_i|``): gradients of one group share units and scale, while a
per-entry ratio would be dominated by entries that happen to be near zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from physim import feedback, memory
from physim.bptt import bptt_gradient, loss_value
from physim.device import Device
from physim.gradients import align
from physim.losses import MSELoss
from physim.rangecheck import check_drive_range
from physim.rhel import EPS_NONLINEAR, EPS_QUADRATIC, default_eps, rhel_gradient
from physim.simulate import simulate

# align, default_eps and the EPS_* nudges live in the library (physim.gradients, physim.rhel),
# which never imports this diagnostic; they are re-exported here for gradcheck's users
__all__ = [
    "EPS_NONLINEAR",
    "EPS_QUADRATIC",
    "GradcheckReport",
    "GroupCheck",
    "align",
    "default_eps",
    "format_report",
    "gradcheck",
    "random_problem",
]

#: RHEL equals BPTT up to the O(ε²) centred bias and round-off (REFERENCE §1)
TOL_RHEL_VS_BPTT = 1e-6
#: agreement with finite differences, on top of FD's own error estimate: round-off of the
#: loss difference (~1e-16 · |L| / h relative) and the Richardson remainder stay far below it
TOL_VS_FD = 1e-5
#: first step of the Richardson sequence, relative to the group's scale; the steps halve
#: FD_LEVELS − 1 times. Large enough that round-off (~1e-16 / 1e-4) is negligible, small enough
#: that the O(h⁴) remainder of the extrapolation is (checked by the estimate itself)
FD_REL = 1e-3
FD_LEVELS = 4
#: the FD error estimate (difference of successive extrapolations) is of the order of the
#: actual error; a gradient within this many estimates of FD still agrees with it
FD_ERR_FACTOR = 3.0
#: below this readout-to-state ratio a failure is most likely round-off, and the report says so
SIGNAL_HINT = 1e-4


@dataclass(frozen=True)
class GroupCheck:
    name: str
    size: int
    rhel_vs_bptt_max_rel_err: float
    rhel_vs_bptt_cosine: float
    rhel_vs_fd_max_rel_err: float | None
    bptt_vs_fd_max_rel_err: float | None
    n_fd: int
    #: FD's own error estimate, relative like the errors (None without FD samples)
    fd_rel_err_estimate: float | None = None

    @property
    def finite(self) -> bool:
        vals = (
            self.rhel_vs_bptt_max_rel_err,
            self.rhel_vs_bptt_cosine,
            self.rhel_vs_fd_max_rel_err,
            self.bptt_vs_fd_max_rel_err,
            self.fd_rel_err_estimate,
        )
        return all(v is None or np.isfinite(v) for v in vals)

    def fd_tolerance(self, tol_vs_fd: float) -> float:
        """The FD agreement this group must reach: the tolerance plus FD's own error."""
        return tol_vs_fd + FD_ERR_FACTOR * (self.fd_rel_err_estimate or 0.0)


@dataclass(frozen=True)
class GradcheckReport:
    device: str
    n_steps: int
    batch: int
    eps: float
    seed: int
    loss: float
    groups: list[GroupCheck] = field(default_factory=list)
    tol_rhel_vs_bptt: float = TOL_RHEL_VS_BPTT
    tol_vs_fd: float = TOL_VS_FD
    #: rms of the readout over rms of the whole state along the forward run
    signal_ratio: float = 1.0

    @property
    def worst_bptt(self) -> float:
        return max((g.rhel_vs_bptt_max_rel_err for g in self.groups), default=0.0)

    @property
    def worst_cosine(self) -> float:
        return min((g.rhel_vs_bptt_cosine for g in self.groups), default=1.0)

    @property
    def worst_fd(self) -> float:
        vals = [
            v
            for g in self.groups
            for v in (g.rhel_vs_fd_max_rel_err, g.bptt_vs_fd_max_rel_err)
            if v is not None
        ]
        return max(vals, default=0.0)

    @property
    def worst_fd_estimate(self) -> float:
        return max((g.fd_rel_err_estimate or 0.0 for g in self.groups), default=0.0)

    @property
    def passed(self) -> bool:
        """Every group finite and within tolerance (a NaN never compares as passing)."""
        if not (np.isfinite(self.loss) and all(g.finite for g in self.groups)):
            return False
        for g in self.groups:
            if not g.rhel_vs_bptt_max_rel_err <= self.tol_rhel_vs_bptt:
                return False
            tol = g.fd_tolerance(self.tol_vs_fd)
            for v in (g.rhel_vs_fd_max_rel_err, g.bptt_vs_fd_max_rel_err):
                if v is not None and not v <= tol:
                    return False
        return True

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "n_steps": self.n_steps,
            "batch": self.batch,
            "eps": self.eps,
            "seed": self.seed,
            "loss": self.loss,
            "passed": self.passed,
            "rhel_vs_bptt": {"max_rel_err": self.worst_bptt, "cosine": self.worst_cosine},
            "rhel_vs_fd": {"max_rel_err": self.worst_fd, "fd_err_estimate": self.worst_fd_estimate},
            "tolerances": {"rhel_vs_bptt": self.tol_rhel_vs_bptt, "vs_fd": self.tol_vs_fd},
            "signal_ratio": self.signal_ratio,
            "groups": [asdict(g) for g in self.groups],
        }


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return align(a, b)[0]


def random_problem(
    device: Device, n_steps: int, batch: int, seed: int
) -> tuple[np.ndarray | None, np.ndarray]:
    """A random input and a target a noisy copy of the device's own response (same scale)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_steps, batch, device.n_inputs)) if device.n_inputs else None
    y = simulate(device, None, u, n_steps=n_steps, batch=batch).y
    scale = float(np.std(y)) or 1.0
    return u, y + 0.5 * scale * rng.normal(size=y.shape)


def finite_difference(
    device: Device, theta: np.ndarray, u, target, index: int, h: float, n_steps: int, batch: int
) -> float:
    """Central difference of the simulated loss along ``theta[index]`` with step ``h``."""
    tp, tm = theta.copy(), theta.copy()
    tp[index] += h
    tm[index] -= h
    lp = loss_value(device, tp, u, target, n_steps=n_steps, batch=batch)
    lm = loss_value(device, tm, u, target, n_steps=n_steps, batch=batch)
    return (lp - lm) / (2 * h)


def richardson_difference(
    device: Device,
    theta: np.ndarray,
    u,
    target,
    index: int,
    h: float,
    n_steps: int,
    batch: int,
    levels: int = FD_LEVELS,
) -> tuple[float, float]:
    """Richardson-extrapolated central difference and its own error estimate.

    Central differences D(h/2^j) have the error c₂h² + c₄h⁴ + …; R_j = (4 D_{j+1} − D_j)/3
    cancels the h² term. Of the successive extrapolations the pair that agrees best is taken:
    the value is the later one and the estimate their difference (truncation), plus the
    round-off of the loss difference at the smallest step used.
    """
    steps = [h / 2**j for j in range(levels)]
    D = [finite_difference(device, theta, u, target, index, hj, n_steps, batch) for hj in steps]
    R = [(4.0 * D[j + 1] - D[j]) / 3.0 for j in range(levels - 1)]
    errs = [abs(R[j + 1] - R[j]) for j in range(len(R) - 1)]
    j = int(np.argmin(errs))
    loss0 = abs(loss_value(device, theta, u, target, n_steps=n_steps, batch=batch))
    roundoff = np.finfo(np.float64).eps * max(loss0, 1e-300) / steps[j + 2]
    return R[j + 1], errs[j] + roundoff


def fd_group_check(
    device: Device,
    theta: np.ndarray,
    u,
    target,
    grads: dict[str, np.ndarray],
    reference: np.ndarray,
    sl: slice,
    pick: np.ndarray,
    h: float,
    n_steps: int,
    batch: int,
) -> tuple[dict[str, float | None], float | None]:
    """Max |grad − FD| / max |reference| over the sampled entries ``pick`` of the slice ``sl``
    for each named gradient, and FD's own error estimate on the same scale."""
    if pick.size == 0:
        return {k: None for k in grads}, None
    fd, est = np.array(
        [
            richardson_difference(device, theta, u, target, sl.start + int(i), h, n_steps, batch)
            for i in pick
        ]
    ).T
    norm = float(np.max(np.abs(reference[sl]))) or 1.0
    errs = {k: float(np.max(np.abs(g[sl][pick] - fd))) / norm for k, g in grads.items()}
    return errs, float(np.max(est)) / norm


def gradcheck(
    device: Device,
    *,
    n_steps: int = 200,
    batch: int = 2,
    eps: float | None = None,
    seed: int = 0,
    n_fd: int = 3,
    tol_rhel_vs_bptt: float = TOL_RHEL_VS_BPTT,
    tol_vs_fd: float = TOL_VS_FD,
    progress: bool = False,
) -> GradcheckReport:
    """Compare RHEL, BPTT and central finite differences per parameter group of ``device``.

    Finite differences are taken on ``n_fd`` sampled entries per group (every entry when the
    group is smaller), avoiding entries whose relu transform sits within a step of its kink.
    ``progress`` shows a bar on stderr over the finite differences when they take long (the
    RHEL and BPTT runs before it have compiled the kernels, so its ETA leaves compiling out).
    """
    if n_steps < 1 or batch < 1:
        raise ValueError(f"n_steps and batch must be >= 1, got {n_steps} and {batch}")
    eps = default_eps(device) if eps is None else eps
    # inputs, input gradients (two), target, readout, error and BPTT's recorded trajectory
    memory.check(
        3 * memory.floats((n_steps, batch, device.n_inputs))
        + 3 * memory.floats((n_steps, batch, device.n_outputs))
        + 2 * memory.floats((n_steps + 1, batch, device.n_dof)),
        f"gradcheck of {device.name!r} over {n_steps} steps × batch {batch}",
        "lower --steps or --batch",
    )
    theta = device.theta0.copy()
    u, target = random_problem(device, n_steps, batch, seed)
    kw = dict(n_steps=n_steps, batch=batch, loss=MSELoss(), input_grad=device.n_inputs > 0)
    r = rhel_gradient(device, theta, u, target, eps=eps, **kw)
    b = bptt_gradient(device, theta, u, target, **kw)
    rng = np.random.default_rng(seed + 1)
    groups = []
    n_fd_total = sum(min(n_fd, g.size) for g in device.groups)
    bar = feedback.progress(n_fd_total, "finite differences", enable=progress, unit="param")
    for g, sl in zip(device.groups, device.slices().values(), strict=True):
        gr, gb = r.grad[sl], b.grad[sl]
        th = theta[sl]
        scale = float(np.sqrt(np.mean(th**2))) or 1.0
        candidates = np.arange(g.size)
        if g.transform == "relu":
            candidates = candidates[np.abs(th) > 10 * FD_REL * scale]
        pick = (
            candidates if candidates.size <= n_fd else rng.choice(candidates, n_fd, replace=False)
        )
        errs, est = fd_group_check(
            device,
            theta,
            u,
            target,
            {"rhel": r.grad, "bptt": b.grad},
            b.grad,
            sl,
            pick,
            FD_REL * scale,
            n_steps,
            batch,
        )
        bar.update(int(pick.size))
        groups.append(
            GroupCheck(
                g.name,
                g.size,
                _rel_err(gr, gb),
                _cosine(gr, gb),
                errs["rhel"],
                errs["bptt"],
                int(pick.size),
                est,
            )
        )
    bar.close()
    if r.grad_u is not None:
        groups.append(
            GroupCheck(
                "input (dL/du)",
                int(r.grad_u.size),
                _rel_err(r.grad_u, b.grad_u),
                _cosine(r.grad_u.ravel(), b.grad_u.ravel()),
                None,
                None,
                0,
            )
        )
    fwd = simulate(device, theta, u, n_steps=n_steps, batch=batch, record=True)
    check_drive_range(device, fwd.q, u)
    q_rms = float(np.sqrt(np.mean(fwd.q**2)))
    ratio = float(np.sqrt(np.mean(fwd.y**2))) / q_rms if q_rms > 0 else 1.0
    return GradcheckReport(
        signal_ratio=ratio,
        device=device.name,
        n_steps=n_steps,
        batch=batch,
        eps=eps,
        seed=seed,
        loss=b.loss,
        groups=groups,
        tol_rhel_vs_bptt=tol_rhel_vs_bptt,
        tol_vs_fd=tol_vs_fd,
    )


def format_report(rep: GradcheckReport) -> str:
    head = f"{'group':<18}{'n':>7}  {'RHEL~BPTT err':>14}{'cosine':>20}{'RHEL~FD err':>13}{'BPTT~FD err':>13}{'FD err est':>12}"
    lines = [
        f"gradcheck {rep.device}: {rep.n_steps} steps, batch {rep.batch}, eps {rep.eps:g} (relative), "
        f"seed {rep.seed}, loss {rep.loss:.6g}",
        head,
        "-" * len(head),
    ]
    for g in rep.groups:
        fd_r = f"{g.rhel_vs_fd_max_rel_err:.2e}" if g.rhel_vs_fd_max_rel_err is not None else "-"
        fd_b = f"{g.bptt_vs_fd_max_rel_err:.2e}" if g.bptt_vs_fd_max_rel_err is not None else "-"
        est = f"{g.fd_rel_err_estimate:.1e}" if g.fd_rel_err_estimate is not None else "-"
        # the cosine of one number is its sign: say so rather than print a trivial ±1
        cos = (
            f"{g.rhel_vs_bptt_cosine:>20.15f}"
            if g.size != 1
            else f"{'same sign' if g.rhel_vs_bptt_cosine > 0 else 'OPPOSITE sign':>20}"
        )
        lines.append(
            f"{g.name:<18}{g.size:>7}  {g.rhel_vs_bptt_max_rel_err:>14.2e}{cos}{fd_r:>13}{fd_b:>13}{est:>12}"
        )
    verdict = "PASS" if rep.passed else "FAIL"
    lines.append(
        f"{verdict}: worst RHEL~BPTT {rep.worst_bptt:.2e} (tol {rep.tol_rhel_vs_bptt:g}), "
        f"worst vs FD {rep.worst_fd:.2e} (tol {rep.tol_vs_fd:g} + {FD_ERR_FACTOR:g} × FD's own "
        f"error estimate, at most {rep.worst_fd_estimate:.1e})"
    )
    bad = [g.name for g in rep.groups if not g.finite]
    if bad or not np.isfinite(rep.loss):
        lines.append(f"non-finite results in: {', '.join(bad) or 'the loss'}")
    if not rep.passed and rep.signal_ratio < SIGNAL_HINT:
        lines.append(
            f"note: the readout is {rep.signal_ratio:.1e} of the state's size, so the echo difference "
            "that carries the gradient sits near float64 round-off of the large state; run more "
            "steps (let the drive reach the readout) or read out nearer the drive"
        )
    return "\n".join(lines)
