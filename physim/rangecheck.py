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


def check_drive_range(device: Device, q: np.ndarray, u: np.ndarray | None = None) -> None:
    """Warn when a forward run's states ``q`` (…, n_dof) leave a nonlinear element's range.

    Each device family says what its range is (:meth:`physim.families.base.Family.
    check_drive_range`): LC networks warn on a junction wound far past 2π, oscillator networks
    on a Duffing term stiffened beyond what the step resolves; the HRU families have nothing to
    check. ``u`` (the drive, (…, n_inputs)) only improves the message: with it the warning
    states the peak source current next to the critical current.
    """
    device.family_kind.check_drive_range(device.spec, q, u)
