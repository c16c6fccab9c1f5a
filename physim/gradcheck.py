"""Three independent routes to one gradient: RHEL, the BPTT twin and finite differences.

Errors are relative to the largest BPTT gradient magnitude within each parameter group
(``max_i |a_i − b_i| / max_i |b_i|``): gradients of one group share units and scale, while a
per-entry ratio would be dominated by entries that happen to be near zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from physim import feedback
from physim.bptt import bptt_gradient, loss_value
from physim.device import Device
from physim.losses import MSELoss
from physim.rangecheck import check_drive_range
from physim.rhel import rhel_gradient
from physim.simulate import simulate

#: RHEL equals BPTT up to the O(ε²) centred bias and round-off (REFERENCE §1)
TOL_RHEL_VS_BPTT = 1e-6
#: central differences with a step of FD_REL × the group's scale: truncation ~1e-10 and
#: round-off ~1e-11 relative leave a 1e-5 tolerance ample margin
TOL_VS_FD = 1e-5
FD_REL = 1e-5
#: default relative nudges: quadratic H is exact at any ε, so a large nudge keeps the echo
#: difference far above round-off; otherwise the O(ε²) bias needs a small one
EPS_QUADRATIC = 1e-2
#: below this readout-to-state ratio a failure is most likely round-off, and the report says so
SIGNAL_HINT = 1e-4
EPS_NONLINEAR = 1e-6


def default_eps(device: Device) -> float:
    """The relative nudge gradcheck uses when none is given (see EPS_QUADRATIC)."""
    return EPS_QUADRATIC if device.quadratic else EPS_NONLINEAR


@dataclass(frozen=True)
class GroupCheck:
    name: str
    size: int
    rhel_vs_bptt_max_rel_err: float
    rhel_vs_bptt_cosine: float
    rhel_vs_fd_max_rel_err: float | None
    bptt_vs_fd_max_rel_err: float | None
    n_fd: int


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
    def passed(self) -> bool:
        return self.worst_bptt <= self.tol_rhel_vs_bptt and self.worst_fd <= self.tol_vs_fd

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
            "rhel_vs_fd": {"max_rel_err": self.worst_fd},
            "tolerances": {"rhel_vs_bptt": self.tol_rhel_vs_bptt, "vs_fd": self.tol_vs_fd},
            "signal_ratio": self.signal_ratio,
            "groups": [asdict(g) for g in self.groups],
        }


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def align(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Cosine similarity and norm ratio ‖a‖/‖b‖ of two gradients (estimate ``a``, reference ``b``).

    Two zero vectors count as perfectly aligned (1, 1); a zero estimate of a non-zero
    reference as unaligned (0, 0); a non-zero estimate of a zero reference as (0, inf).
    """
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if nb == 0.0:
        return (1.0, 1.0) if na == 0.0 else (0.0, float("inf"))
    if na == 0.0:
        return 0.0, 0.0
    return float(np.dot(np.ravel(a), np.ravel(b)) / (na * nb)), na / nb


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
    """Central difference of the simulated loss along ``theta[index]``."""
    tp, tm = theta.copy(), theta.copy()
    tp[index] += h
    tm[index] -= h
    lp = loss_value(device, tp, u, target, n_steps=n_steps, batch=batch)
    lm = loss_value(device, tm, u, target, n_steps=n_steps, batch=batch)
    return (lp - lm) / (2 * h)


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
        fd = np.empty(pick.size)
        for j, i in enumerate(pick):
            fd[j] = finite_difference(
                device, theta, u, target, sl.start + int(i), FD_REL * scale, n_steps, batch
            )
            bar.update(1)
        norm = float(np.max(np.abs(gb))) or 1.0
        fd_r = float(np.max(np.abs(gr[pick] - fd))) / norm if pick.size else None
        fd_b = float(np.max(np.abs(gb[pick] - fd))) / norm if pick.size else None
        groups.append(
            GroupCheck(
                g.name, g.size, _rel_err(gr, gb), _cosine(gr, gb), fd_r, fd_b, int(pick.size)
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
    head = f"{'group':<18}{'n':>7}  {'RHEL~BPTT err':>14}{'cosine':>20}{'RHEL~FD err':>13}{'BPTT~FD err':>13}"
    lines = [
        f"gradcheck {rep.device}: {rep.n_steps} steps, batch {rep.batch}, eps {rep.eps:g} (relative), "
        f"seed {rep.seed}, loss {rep.loss:.6g}",
        head,
        "-" * len(head),
    ]
    for g in rep.groups:
        fd_r = f"{g.rhel_vs_fd_max_rel_err:.2e}" if g.rhel_vs_fd_max_rel_err is not None else "-"
        fd_b = f"{g.bptt_vs_fd_max_rel_err:.2e}" if g.bptt_vs_fd_max_rel_err is not None else "-"
        # the cosine of one number is its sign: say so rather than print a trivial ±1
        cos = (
            f"{g.rhel_vs_bptt_cosine:>20.15f}"
            if g.size != 1
            else f"{'same sign' if g.rhel_vs_bptt_cosine > 0 else 'OPPOSITE sign':>20}"
        )
        lines.append(
            f"{g.name:<18}{g.size:>7}  {g.rhel_vs_bptt_max_rel_err:>14.2e}{cos}{fd_r:>13}{fd_b:>13}"
        )
    verdict = "PASS" if rep.passed else "FAIL"
    lines.append(
        f"{verdict}: worst RHEL~BPTT {rep.worst_bptt:.2e} (tol {rep.tol_rhel_vs_bptt:g}), "
        f"worst vs FD {rep.worst_fd:.2e} (tol {rep.tol_vs_fd:g})"
    )
    if not rep.passed and rep.signal_ratio < SIGNAL_HINT:
        lines.append(
            f"note: the readout is {rep.signal_ratio:.1e} of the state's size, so the echo difference "
            "that carries the gradient sits near float64 round-off of the large state; run more "
            "steps (let the drive reach the readout) or read out nearer the drive"
        )
    return "\n".join(lines)
