"""Is a device driven inside the range its nonlinear elements model? (cheap, after a run)

A Josephson (cosine) element whose phase 2πΦ_b/Φ₀ winds through many turns is in its running
state: the drive is far above its critical current I_c = 2πE_J/Φ₀, the cosine term oscillates
faster than anything the gradient can follow, and results are dominated by that winding. This
is what a user who mistyped a source gain by 10⁴ gets. A Duffing spring driven to large
displacements stiffens until the integrator step no longer resolves it. :func:`check_drive_range`
says so with a :class:`~physim.warnings.PhysimWarning` from the states of a forward run.
"""

from __future__ import annotations

import numpy as np

from physim.device import Device
from physim.warnings import warn

#: a junction phase that runs through more than this many turns (2π each) is in the running
#: state; within a few turns it is still a (strongly) nonlinear oscillator, which is physics
PHASE_TURNS_MAX = 10.0
#: leapfrog's phase error per step grows like (ω δ)²/24 and it is unstable at ω δ = 2: a
#: Duffing term stiffened to ω δ > 1 at the peak displacement is no longer resolved
DUFFING_OMEGA_DT_MAX = 1.0


def check_drive_range(device: Device, q: np.ndarray, u: np.ndarray | None = None) -> None:
    """Warn when a forward run's states ``q`` (…, n_dof) leave a nonlinear element's range.

    LC networks: a junction wound far past 2π. Oscillator networks: a Duffing term stiffened
    beyond what the step resolves. ``u`` (the drive, (…, n_inputs)) only improves the message:
    with it the warning states the peak source current next to the critical current.
    """
    from physim.families.lc import LCNetworkSpec
    from physim.families.oscillator import OscillatorNetworkSpec

    if isinstance(device.spec, LCNetworkSpec):
        _check_junctions(device.spec, q, u)
    elif isinstance(device.spec, OscillatorNetworkSpec):
        _check_duffing(device.spec, q)


def _check_duffing(spec, q: np.ndarray) -> None:
    q = np.asarray(q, dtype=np.float64)
    worst = None
    for term in spec.quartic:
        d = q[..., term.nodes[0]] - (q[..., term.nodes[1]] if len(term.nodes) > 1 else 0.0)
        peak = float(np.max(np.abs(d))) if d.size else 0.0
        mass = min(spec.masses[i] for i in term.nodes)
        wdt = np.sqrt(3 * abs(term.beta) * peak**2 / mass) * spec.dt
        if worst is None or wdt > worst[0]:
            worst = (wdt, peak, term)
    if worst is None or not np.isfinite(worst[0]) or worst[0] <= DUFFING_OMEGA_DT_MAX:
        return
    wdt, peak, term = worst
    warn(
        f"the Duffing term on masses {list(term.nodes)} (β = {term.beta:g} N/m³) stiffens to "
        f"ω·dt = {wdt:.3g} at the peak displacement {peak:.3g} m",
        f"the step no longer resolves the motion (leapfrog needs ω·dt <= "
        f"{DUFFING_OMEGA_DT_MAX:g} to be accurate and < 2 to be stable)",
        f"lower the drive so that displacements stay below "
        f"{peak * DUFFING_OMEGA_DT_MAX / wdt:.2g} m, or lower dt by {wdt / DUFFING_OMEGA_DT_MAX:.2g}×",
    )


def _check_junctions(spec, q: np.ndarray, u: np.ndarray | None) -> None:
    from physim.families.lc import JosephsonSpec

    q = np.asarray(q, dtype=np.float64)
    index = {n: i for i, n in enumerate(spec.nodes)}
    worst: tuple[float, JosephsonSpec] | None = None
    for e in spec.elements:
        if not isinstance(e, JosephsonSpec):
            continue
        fa = q[..., index[e.a]] if e.a in index else 0.0
        fb = q[..., index[e.b]] if e.b in index else 0.0
        turns = float(np.max(np.abs(fa - fb))) / e.phi0
        if worst is None or turns > worst[0]:
            worst = (turns, e)
    if worst is None or not np.isfinite(worst[0]) or worst[0] <= PHASE_TURNS_MAX:
        return
    turns, e = worst
    i_c = 2 * np.pi * e.E_J / e.phi0
    drive = ""
    if u is not None and spec.sources:
        peak = float(np.max(np.abs(u))) if np.size(u) else 0.0
        i_src = peak * max(abs(s.gain) for s in spec.sources)
        drive = f"; the sources inject up to {i_src:.2g} A, {i_src / i_c:.2g}× I_c"
    warn(
        f"josephson {e.name} winds through {turns:.3g} turns of 2π over the forward run"
        f" (critical current I_c = 2πE_J/Φ₀ = {i_c:.2g} A{drive})",
        "a cosine element driven far past 2π is in its running state, outside the range it "
        "models, and the gradient follows its phase winding",
        f"lower the source gains so that the drive stays below I_c = {i_c:.2g} A, or raise E_J",
    )
