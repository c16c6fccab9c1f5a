"""Is a device driven inside the range its nonlinear elements model? (cheap, after a run)

A Josephson (cosine) element whose phase 2πΦ_b/Φ₀ winds through many turns is in its running
state: the drive is far above its critical current I_c = 2πE_J/Φ₀, the cosine term oscillates
faster than anything the gradient can follow, and results are dominated by that winding. This
is what a user who mistyped a source gain by 10⁴ gets; :func:`check_drive_range` says so with a
:class:`~physim.warnings.PhysimWarning` from the states of a forward run.
"""

from __future__ import annotations

import numpy as np

from physim.device import Device
from physim.warnings import warn

#: a junction phase that runs through more than this many turns (2π each) is in the running
#: state; within a few turns it is still a (strongly) nonlinear oscillator, which is physics
PHASE_TURNS_MAX = 10.0


def check_drive_range(device: Device, q: np.ndarray, u: np.ndarray | None = None) -> None:
    """Warn when a forward run's node fluxes ``q`` (…, n_dof) wind a junction past 2π by far.

    ``u`` (the drive, (…, n_inputs)) only improves the message: with it the warning states the
    peak source current next to the critical current.
    """
    from physim.families.lc import JosephsonSpec, LCNetworkSpec

    spec = device.spec
    if not isinstance(spec, LCNetworkSpec):
        return
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
