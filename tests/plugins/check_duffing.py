"""Run in a subprocess by tests/test_families_plugin.py, with the installed Duffing family on
sys.path: prints one JSON object of measurements, asserted on by the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for reference/

from reference.numerics import group_rel_err  # noqa: E402

import physim  # noqa: E402
from physim.families import FAMILIES  # noqa: E402
from physim.kernels import dispatch as hk  # noqa: E402
from physim.schema import SCHEMAS, json_schema  # noqa: E402

SPEC = {
    "kind": "duffing",
    "name": "duffing-3",
    "dt": 0.05,
    "mass": [1.0, 2.0, 0.5],
    "k": [1.0, 0.5, 2.0],
    "beta": [0.3, 1.0, 0.1],
    "input_gain": 0.8,
}
C0, C1 = 0.7, -0.3  # as in tests/test_core_fused.py


def _fused(device) -> dict:
    """tests/test_core_fused.py's _check_fused on a family without fused kernels: the
    dispatch's composition against the plain kernels (same states and drive)."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(60, 2, device.n_inputs))
    traj = physim.simulate(device, None, u, n_steps=60, batch=2, record=True)
    phys = device.physical(device.theta0)
    prm = phys.prm
    s = np.ascontiguousarray(phys.B @ u[59, 0])
    q0, q1 = traj.q[-1, 0].copy(), traj.q[-1, 1].copy()
    p0, p1 = traj.p[-1, 0].copy(), traj.p[-1, 1].copy()
    fam, n, nw = device.family, device.n_dof, prm[0].shape[0]
    work = np.empty(device.n_work)

    def acc(fn, x, *s_):
        out = np.zeros(nw)
        fn(fam, x, *s_, prm, work, 1.0, out)
        return out

    out = {}
    g0, g1, gw = np.empty(n), np.empty(n), np.zeros(nw)
    hk.echo_T2(fam, p0, p1, prm, work, C0, C1, gw, g0, g1)
    ref0, ref1 = np.empty(n), np.empty(n)
    hk.grad_T(fam, p0, prm, work, ref0)
    hk.grad_T(fam, p1, prm, work, ref1)
    out["T_forces_equal"] = bool(np.array_equal(g0, ref0) and np.array_equal(g1, ref1))
    t0, t1 = acc(hk.acc_dT_dw, p0), acc(hk.acc_dT_dw, p1)
    out["T_acc_dev"] = float(np.max(np.abs(gw - (C0 * t0 + C1 * t1))))
    out["T_acc_scale"] = float(np.max(np.abs(C0 * t0) + np.abs(C1 * t1)))

    gw, ds = np.zeros(nw), np.zeros(n)
    hk.echo_V2(fam, q0, q1, s, prm, work, C0, C1, gw, g0, g1, True, ds)
    hk.grad_V(fam, q0, s, prm, work, ref0)
    hk.grad_V(fam, q1, s, prm, work, ref1)
    out["V_forces_equal"] = bool(np.array_equal(g0, ref0) and np.array_equal(g1, ref1))
    v0, v1 = acc(hk.acc_dV_dw, q0, s), acc(hk.acc_dV_dw, q1, s)
    out["V_acc_dev"] = float(np.max(np.abs(gw - (C0 * v0 + C1 * v1))))
    out["V_acc_scale"] = float(np.max(np.abs(C0 * v0) + np.abs(C1 * v1)))
    d0, d1 = np.empty(n), np.empty(n)
    hk.dV_ds(fam, q0, s, prm, work, d0)
    hk.dV_ds(fam, q1, s, prm, work, d1)
    out["ds_equal"] = bool(np.array_equal(ds, C0 * d0 + C1 * d1))
    return out


def _probe(device) -> dict:
    """The plugin's ``probe`` step: a valid op, checked in sequence, run by the engine."""
    from physim.instrument.hardware import Instrument
    from physim.protocol.engine import run_protocol
    from physim.protocol.specs import STEP_OPS, ProtocolError, parse_protocol

    steps = [{"op": "prepare"}, {"op": "drive", "measure": "f"}, {"op": "probe", "name": "p"}]
    proto = parse_protocol({"name": "probe", "task": {"n_steps": 50}, "steps": steps})
    res = run_protocol(Instrument(device), proto)
    f, p = (next(r for r in res.records if r.name == n) for n in ("f", "p"))
    try:
        parse_protocol({"name": "probe", "steps": [*steps, {"op": "probe", "name": "p"}]})
        refused = None
    except ProtocolError as err:
        refused = str(err)
    return {
        "ops": list(STEP_OPS),
        "kind": p.kind,
        "meta": p.meta,
        "last_index": int(f.index[-1]),
        "equals_final_sample": bool(np.array_equal(p.value, f.value[-1])),
        "duplicate_refused": refused,
    }


def main() -> None:
    device = physim.parse_spec(SPEC).build()
    rng = np.random.default_rng(0)
    u = rng.normal(size=(400, 2, device.n_inputs))
    y = physim.simulate(device, None, u).y
    target = rng.normal(size=y.shape) * np.std(y)
    r = physim.rhel_gradient(device, None, u, target, input_grad=True)
    b = physim.bptt_gradient(device, None, u, target, input_grad=True)
    errors = {name: group_rel_err(r.grad[sl], b.grad[sl]) for name, sl in device.slices().items()}
    errors["input (dL/du)"] = group_rel_err(r.grad_u, b.grad_u)
    unknown = None
    try:
        hk.grad_T(
            len(hk.FAMILY_NAMES), np.zeros(3), device.physical().prm, np.empty(1), np.empty(3)
        )
    except ValueError as err:
        unknown = str(err)
    print(
        json.dumps(
            {
                "families": [k.name for k in FAMILIES.ordered()],
                "family_id": device.family,
                "family_names": {str(k): v for k, v in hk.FAMILY_NAMES.items()},
                "schema_kinds": list(SCHEMAS),
                "schema_title": json_schema("duffing").get("title"),
                "losses": [r.loss, b.loss],
                "rhel_vs_bptt": errors,
                "n_params": device.n_params,
                "grad_norm": float(np.linalg.norm(b.grad)),
                "unknown_id_error": unknown,
                "fused": _fused(device),
                "probe": _probe(device),
            }
        )
    )


if __name__ == "__main__":
    main()
