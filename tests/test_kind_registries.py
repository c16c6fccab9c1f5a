"""The registries (generic, device families, protocol steps): lookup, errors, what is derived
from them, the generated dispatch, and the import graph."""

from __future__ import annotations

import dataclasses
import types
from typing import Literal

import pytest
from pydantic import create_model

from physim.families import FAMILIES, KERNELS, Family
from physim.families import network_kernels as _net
from physim.protocol.specs import STEP_OPS, ProtocolError, parse_protocol
from physim.protocol.steps import STEPS, Step
from physim.registry import Registry, RegistryError, UnknownKindError
from physim.schema import SCHEMAS
from physim.spec_base import SpecModel
from physim.specs import SpecError, load_device, parse_spec


class _Kind:
    name = "a"


def test_registry_lists_gets_and_names_the_known_kinds_for_an_unknown_one():
    reg: Registry = Registry("widget", "physim.tests.no-such-group")
    assert reg.register(_Kind) is _Kind
    assert reg.register(_Kind) is _Kind  # registering the same class again is a no-op
    assert reg.names() == ("a",) and reg.get("a") is _Kind and "a" in reg and len(reg) == 1
    reg.register("c", int)  # an entry without a name of its own: named at registration

    @reg.register("b")
    class B:
        pass

    assert reg.names() == ("a", "b", "c") and list(reg) == ["a", "b", "c"]
    assert reg.items() == [("a", _Kind), ("b", B), ("c", int)]
    assert reg.ordered() == (_Kind, int, B)  # registration order
    with pytest.raises(UnknownKindError, match=r"unknown widget kind 'd'; known kinds: a, b, c; a"):
        reg.get("d")


def test_registry_refuses_a_nameless_or_duplicate_kind():
    reg: Registry = Registry("widget", "physim.tests.no-such-group")
    reg.register(_Kind)
    other = type("Other", (), {"name": "a"})
    with pytest.raises(RegistryError, match="widget kind 'a' is registered twice"):
        reg.register(other)
    with pytest.raises(RegistryError, match="needs a class attribute `name`"):
        reg.register(type("Nameless", (), {}))


def test_registry_reports_a_broken_entry_point_and_names_it_again(monkeypatch):
    import importlib.metadata as md

    eps = [
        md.EntryPoint(name="broken", value="physim_no_such_module_xyz", group="physim.tests"),
        md.EntryPoint(name="kind", value="test_kind_registries:_Kind", group="physim.tests"),
    ]
    monkeypatch.setattr(md, "entry_points", lambda group: [e for e in eps if e.group == group])
    reg: Registry = Registry("widget", "physim.tests")
    with pytest.warns(UserWarning, match=r"plugin 'broken' \(physim.tests\) failed to load"):
        assert reg.names() == ("a",)  # a kind class registers under its own name
    with pytest.raises(UnknownKindError, match="plugins that failed to load: broken"):
        reg.get("broken")


def test_derived_lists_follow_the_family_registry():
    names = FAMILIES.names()
    assert names == ("lc_network", "linhru", "nonlinhru", "oscillator_network")
    ordered = [k.name for k in FAMILIES.ordered()]  # the built-ins' order fixes their ids
    assert ordered == ["oscillator_network", "lc_network", "linhru", "nonlinhru"]
    assert [k for k in SCHEMAS if k in names] == ordered
    with pytest.raises(SpecError, match="valid kinds: " + ", ".join(sorted(names))):
        parse_spec({"kind": "nope", "name": "x"})
    assert FAMILIES.get("linhru").family_id() == 1
    with pytest.raises(
        UnknownKindError, match="unknown device family kind 'lihnru'; known kinds: lc_netw"
    ):
        FAMILIES.get("lihnru")


def _family(kernels, kind: str = "fake", spec_kind: str | None = None):
    spec = create_model("FakeSpec", __base__=SpecModel, kind=(Literal[spec_kind or kind], ...))
    return type("Fake", (Family,), {"name": kind, "spec": spec, "kernels": kernels})


def test_a_family_without_kernels_is_refused_at_registration():
    empty = types.ModuleType("fake_kernels")
    empty.kinetic = _net.kinetic  # one of twelve
    with pytest.raises(RegistryError, match="lacks the numba kernels potential, grad_T, "):
        FAMILIES.register(_family(empty))
    with pytest.raises(RegistryError, match=r"spec's field kind must be Literal\['fake'\]"):
        FAMILIES.register(_family(_net, spec_kind="other"))
    assert set(KERNELS) <= set(dir(_net))
    assert "fake" not in FAMILIES  # nothing was registered


def test_a_device_with_a_family_id_without_kernels_is_refused():
    dev = load_device("two-mass")
    with pytest.raises(ValueError, match="family id 99 has no kernels of family 'oscillator_netw"):
        dataclasses.replace(dev, family=99)
    with pytest.raises(ValueError, match="has no registered family kind"):
        dataclasses.replace(dev, family_kind=None)
    with pytest.raises(UnknownKindError, match="unknown device family kind 'fake'"):
        dataclasses.replace(dev, family_kind=_family(_net))
    with pytest.raises(RegistryError, match="is not the one registered as 'oscillator_network'"):
        dataclasses.replace(dev, family_kind=_family(_net, "oscillator_network"))


def test_step_ops_and_the_protocol_union_follow_the_step_registry():
    assert STEP_OPS == tuple(sorted(STEPS.names()))
    assert set(STEPS.names()) == {"prepare", "drive", "flip", "split", "kick", "measure"}
    with pytest.raises(ProtocolError, match="valid ops: " + ", ".join(STEP_OPS)):
        parse_protocol({"name": "t", "steps": [{"op": "prepare"}, {"op": "teleport"}]})


def test_a_step_without_behaviour_is_refused():
    class WaitStep(SpecModel):
        op: Literal["wait"]

    lazy = type("Wait", (Step,), {"name": "wait", "spec": WaitStep})
    with pytest.raises(RegistryError, match="define execute"):
        STEPS.validate(lazy)
    assert "wait" not in STEPS


def test_generated_dispatch_is_content_addressed_and_never_rewritten_unchanged(tmp_path):
    from physim.kernels import dispatch as hk
    from physim.kernels import dispatch_gen, leapfrog

    mods = FAMILIES.kernel_modules()
    src = dispatch_gen.generate_source(mods)
    path = dispatch_gen.write_dispatch(src, hk.FAMILY_KEY, tmp_path)
    stamp = path.stat().st_mtime_ns
    # numba (< 0.61) keys its cache on the file's timestamp: an unchanged text is not rewritten
    assert dispatch_gen.write_dispatch(src, hk.FAMILY_KEY, tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    # one branch per kernel module in each of the 14 dispatchers; the last branch raises
    assert src.count("elif fam == 2:") == 14 and src.count("elif fam == 3:") == 0
    assert src.count("    else:\n        raise ValueError(") == 14
    # the key follows the kernel sources: an edited kernel module is another family set
    fake = types.ModuleType("fake_kernels")
    fake.__file__ = str(tmp_path / "fake_kernels.py")
    (tmp_path / "fake_kernels.py").write_text("A = 1\n")
    key = dispatch_gen.family_set_key([*mods, fake])
    (tmp_path / "fake_kernels.py").write_text("A = 2\n")
    assert dispatch_gen.family_set_key([*mods, fake]) != key != hk.FAMILY_KEY
    # and the integrators' numba cache is kept per family set
    assert f"families-{hk.FAMILY_KEY}" in leapfrog.forward_inputs._cache.cache_path


def test_a_family_registered_after_the_dispatch_was_generated_is_refused(monkeypatch):
    import physim.kernels.dispatch  # noqa: F401 (the dispatch exists)
    from physim.families import linhru_kernels

    late = types.ModuleType("late_kernels")
    for k in KERNELS:
        setattr(late, k, getattr(linhru_kernels, k))
    monkeypatch.setattr(FAMILIES, "_kinds", dict(FAMILIES._kinds))  # restored afterwards
    kind = FAMILIES.register(_family(late, "late"))
    with pytest.raises(RegistryError, match="registered after physim's numba dispatch"):
        kind.family_id()
