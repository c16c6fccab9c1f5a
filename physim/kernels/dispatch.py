"""The one place that maps a device family id to its Hamiltonian kernels — generated.

numba cannot cache a function that receives other jitted functions as arguments (the cache key
holds their addresses), so the shared integrator calls these dispatchers with the family id of
the device instead. The dispatchers are **generated** from the device-family registry
(:data:`physim.families.FAMILIES`): one branch per registered kernel module, family id = its
position (:mod:`physim.kernels.dispatch_gen` writes the text to a cached ``.py`` file, so that
numba's on-disk cache keeps working, and keeps the integrators' cache per family set). Adding a
family means registering it — a built-in module or a package's ``physim.families`` entry point;
neither this module nor the integrator changes. An id no registered family has raises
``ValueError`` (never another family's physics).

Every family implements the same twelve kernels with the same signatures (``prm = (w, ai, af,
am)``, ``work`` a scratch vector of the device's ``n_work``), and may add the two fused echo
kernels at the end of this list:

* ``kinetic``, ``potential``: T(p) and V(q, s);
* ``grad_T``, ``grad_V``: ∂T/∂p and ∂V/∂q;
* ``acc_dT_dw``, ``acc_dV_dw``: ``gw += scale · ∂T/∂w`` (resp. ∂V/∂w);
* ``dV_ds``: ∂V/∂s (the drive gradient; ∂H/∂u = Bᵀ ∂V/∂s);
* ``hvp_T``, ``hvp_V``: Hessian–vector products (BPTT twin only);
* ``acc_vjp_gT_w``, ``acc_vjp_gV_w``: ``gw += scale · (∂(∇T)/∂w)ᵀ λ`` (BPTT twin only);
* ``vjp_gV_s``: ``(∂(∇_q V)/∂s)ᵀ λ`` (BPTT twin only);
* ``echo_T2``, ``echo_V2``: two lockstep RHEL echo trajectories in one pass, the forces of both
  (with exactly the arithmetic of ``grad_T`` / ``grad_V``) fused with ``gw += c0 ∂T/∂w(p0) +
  c1 ∂T/∂w(p1)`` (resp. ∂V/∂w, and ds += the same combination of ∂V/∂s). A family without them gets
  the composition of its basic kernels in its branch (same states, slower).

The dispatchers compile with ``error_model="numpy"``: the family kernels they inline then carry
no ZeroDivisionError branch per division, which would stop their loops from vectorising (a
division by zero gives inf or NaN, which the drivers' finiteness checks report).
"""

from __future__ import annotations

from physim.families import FAMILIES
from physim.kernels import dispatch_gen as _gen


def _labels() -> list[str]:
    """Per kernel module, the registered kinds that use it (``"oscillator_network, lc_network"``)."""
    mods = FAMILIES.kernel_modules()
    return [", ".join(k.name for k in FAMILIES.ordered() if k.kernels is m) for m in mods]


_generated = _gen.load_dispatch(FAMILIES.kernel_modules(), _labels())
FAMILIES.mark_dispatched(FAMILIES.kernel_modules())  # a family registered later is refused
# before the integrator modules (which import this one first) define their kernels
_gen.install_cache_namespace(_generated.FAMILY_KEY)

#: hash of the registered kernel modules (names, ids, sources) the dispatch was generated for
FAMILY_KEY: str = _generated.FAMILY_KEY
#: family id → the registered kinds that use its kernels
FAMILY_NAMES: dict[int, str] = _generated.FAMILY_NAMES

kinetic = _generated.kinetic
potential = _generated.potential
grad_T = _generated.grad_T
grad_V = _generated.grad_V
acc_dT_dw = _generated.acc_dT_dw
acc_dV_dw = _generated.acc_dV_dw
dV_ds = _generated.dV_ds
hvp_T = _generated.hvp_T
hvp_V = _generated.hvp_V
acc_vjp_gT_w = _generated.acc_vjp_gT_w
acc_vjp_gV_w = _generated.acc_vjp_gV_w
vjp_gV_s = _generated.vjp_gV_s
echo_T2 = _generated.echo_T2
echo_V2 = _generated.echo_V2
