"""The device-family registry: what a family declares, and how a family id is assigned.

A device family kind is a :class:`Family` subclass registered in :data:`FAMILIES` under the
``kind`` its spec answers to (``oscillator_network``, ``lc_network``, ``linhru``, ``nonlinhru``).
It brings

* ``spec``: the pydantic model users write (its ``kind`` field is ``Literal[name]``) whose
  ``build()`` returns a :class:`~physim.device.Device` made with :meth:`Family.device_fields`;
* ``kernels``: the module of its numba Hamiltonian kernels — the twelve of
  :data:`KERNELS`, optionally the two fused echo kernels of :data:`FUSED_KERNELS` (signatures and
  meaning in :mod:`physim.kernels.dispatch`). Several kinds may share one module: oscillator
  networks and LC netlists are two vocabularies of the network kernels;
* ``summary``: the line ``physim schema`` lists it with;
* ``diagonal_hessian``: True when ∂²H/∂p² and ∂²H/∂q² are diagonal (one oscillator per mode),
  so that the stability check needs one Hessian–vector product instead of n.

Everything else is derived from the registry: the ``DeviceSpec`` union (:mod:`physim.specs`),
``physim schema``, and the numba dispatch over family ids (:mod:`physim.kernels.dispatch`). A
family id is the position of the family's kernel module among the distinct kernel modules of
the registered kinds — the built-ins first (network 0, linhru 1, nonlinhru 2), then the
entry-point families — so it is fixed within one process and one set of installed families.

A third-party package adds a family through the ``physim.families`` entry-point group::

    [project.entry-points."physim.families"]
    duffing = "duffing_family:Duffing"

where ``Duffing`` is a :class:`Family` subclass (see :mod:`physim.registry`);
``tests/plugins/duffing_family`` is a complete, installable example (uncoupled Duffing
oscillators, no fused kernels). The family's modules should import from ``physim.families``,
``physim.device``, ``physim.spec_base`` and ``physim.stability`` only: they are loaded while
``physim.kernels.dispatch`` is being generated. A family joins the dispatch of processes that
start with it installed; registering one by hand after ``physim.kernels`` was imported gives a
family id the dispatch has no branch for, which raises.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar, get_args

from physim.registry import Registry, RegistryError

#: the kernels every family implements, with the parameters that follow the family id in the
#: dispatcher (all return None except ``kinetic`` and ``potential``, which return a float)
KERNELS: dict[str, str] = {
    "kinetic": "p, prm, work",
    "potential": "q, s, prm, work",
    "grad_T": "p, prm, work, out",
    "grad_V": "q, s, prm, work, out",
    "acc_dT_dw": "p, prm, work, scale, gw",
    "acc_dV_dw": "q, s, prm, work, scale, gw",
    "dV_ds": "q, s, prm, work, out",
    "hvp_T": "p, prm, v, work, out",
    "hvp_V": "q, s, prm, v, work, out",
    "acc_vjp_gT_w": "p, prm, lam, work, scale, gw",
    "acc_vjp_gV_w": "q, s, prm, lam, work, scale, gw",
    "vjp_gV_s": "q, s, prm, lam, work, out",
}
#: the optional fused echo kernels; a family without them gets the composition of its basic ones
FUSED_KERNELS: dict[str, str] = {
    "echo_T2": "p0, p1, prm, work, c0, c1, gw, g0, g1",
    "echo_V2": "q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds",
}


class Family:
    """A registered device family kind (subclass it, set the class attributes, register it)."""

    #: the spec's ``kind`` (its discriminator value)
    name: ClassVar[str]
    #: the pydantic model of the spec; ``kind: Literal[name]``
    spec: ClassVar[type]
    #: the module of the family's numba Hamiltonian kernels
    kernels: ClassVar[ModuleType]
    #: one line for ``physim schema``
    summary: ClassVar[str] = ""
    #: ∂²T/∂p² and ∂²V/∂q² are diagonal (one product gives them; see physim.stability)
    diagonal_hessian: ClassVar[bool] = False
    #: the unit of H when time is in seconds and the drive enters as −qᵀ(B u) (its work over a
    #: step is (B u)·Δq): ``"J"`` for families in SI units; ``None`` when H has no joule scale
    #: (dimensionless HRUs) — energies per update are then reported as unavailable
    energy_unit: ClassVar[str | None] = None

    @classmethod
    def family_id(cls) -> int:
        """The id the integrators' dispatch selects this family's kernels by (registered only)."""
        if FAMILIES.get(cls.name) is not cls:  # UnknownKindError when nothing has the name
            raise RegistryError(
                f"device family {cls.__module__}.{cls.__qualname__} is not the one registered "
                f"as {cls.name!r}; register it (FAMILIES.register) or use the registered one"
            )
        return FAMILIES.family_id(cls.kernels)

    @classmethod
    def check_drive_range(cls, spec: Any, q: Any, u: Any = None) -> None:
        """Warn (:func:`physim.warnings.warn`) when a forward run's states ``q`` (…, n_dof) under
        the drive ``u`` leave the range the family's nonlinear elements model; nothing to check
        by default (:func:`physim.rangecheck.check_drive_range` calls it after a run)."""

    @classmethod
    def device_fields(cls) -> dict[str, Any]:
        """The :class:`~physim.device.Device` fields that say which family built it."""
        return {"family": cls.family_id(), "family_kind": cls}


def _is_jitted(obj: object) -> bool:
    return callable(obj) and hasattr(obj, "py_func")


class FamilyRegistry(Registry[type[Family]]):
    """:class:`~physim.registry.Registry` of device families, plus the family ids."""

    #: the kernel modules the numba dispatch was generated for (None before it was)
    dispatched: tuple[ModuleType, ...] | None = None

    def mark_dispatched(self, modules: tuple[ModuleType, ...]) -> None:
        """Record the kernel modules the generated dispatch has branches for (called by
        :mod:`physim.kernels.dispatch`): a family with other kernels is refused from then on."""
        self.dispatched = tuple(modules)

    def validate(self, kind_cls: type[Family]) -> None:
        where = f"device family {kind_cls.__module__}.{kind_cls.__qualname__}"
        if not (isinstance(kind_cls, type) and issubclass(kind_cls, Family)):
            raise RegistryError(f"{where} must subclass physim.families.Family")
        spec = getattr(kind_cls, "spec", None)
        fields = getattr(spec, "model_fields", None)
        if fields is None or "kind" not in fields:
            raise RegistryError(
                f"{where}: spec must be a pydantic model with a field kind: "
                f"Literal[{kind_cls.name!r}], got {spec!r}"
            )
        if get_args(fields["kind"].annotation) != (kind_cls.name,):
            raise RegistryError(
                f"{where}: its spec's field kind must be Literal[{kind_cls.name!r}] (the name it "
                f"registers under), got {fields['kind'].annotation!r}"
            )
        check_kernels(getattr(kind_cls, "kernels", None), where)

    def kernel_modules(self) -> tuple[ModuleType, ...]:
        """The distinct kernel modules of the registered families, in family-id order."""
        return tuple({id(k.kernels): k.kernels for k in self.ordered()}.values())

    def family_id(self, kernels: ModuleType) -> int:
        """The family id of kernel module ``kernels``; raises if no family registered it."""
        for i, mod in enumerate(self.kernel_modules()):
            if mod is kernels:
                if self.dispatched is not None and not any(m is mod for m in self.dispatched):
                    raise RegistryError(
                        f"kernel module {mod.__name__!r} was registered after physim's numba "
                        "dispatch was generated, which has no branch for it; register its "
                        "family through the 'physim.families' entry points (or import it "
                        "before physim.kernels)"
                    )
                return i
        raise RegistryError(
            f"kernel module {getattr(kernels, '__name__', kernels)!r} belongs to no registered "
            f"device family (known: {', '.join(self.names())}); register its Family first"
        )


def check_kernels(kernels: object, where: str) -> None:
    """Raise :class:`RegistryError` unless ``kernels`` is a module holding every kernel."""
    if not isinstance(kernels, ModuleType):
        raise RegistryError(f"{where}: kernels must be the module of its numba kernels")
    missing = [k for k in KERNELS if not _is_jitted(getattr(kernels, k, None))]
    if missing:
        raise RegistryError(
            f"{where}: kernel module {kernels.__name__!r} lacks the numba kernels "
            f"{', '.join(missing)}; every family implements {', '.join(KERNELS)} "
            "(see physim.kernels.dispatch)"
        )
    odd = [k for k in FUSED_KERNELS if hasattr(kernels, k) and not _is_jitted(getattr(kernels, k))]
    if odd:
        raise RegistryError(
            f"{where}: {', '.join(odd)} in {kernels.__name__!r} must be numba kernels (or absent)"
        )


#: every device family physim knows: the built-ins, then the ``physim.families`` entry points
FAMILIES: FamilyRegistry = FamilyRegistry("device family", "physim.families")
