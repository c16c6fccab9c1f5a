"""Compile a branch-element graph into a :class:`~physim.device.Device` (network family).

Both the oscillator-network and the LC-netlist specs end here; the Hamiltonian and the kernel
packing are documented in :mod:`physim.families.network_kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physim import memory
from physim.device import Device, ParamGroup
from physim.families.base import Family
from physim.families.network_kernels import _HDR
from physim.stability import check_stability


@dataclass
class Branch:
    a: int
    c: int  # −1 = ground
    value: float
    label: str
    kappa: float = 0.0  # cosine elements only


@dataclass
class NetworkParts:
    """Element lists collected by a front-end spec before compilation."""

    n: int
    caps: list[Branch] = field(default_factory=list)
    lins: list[Branch] = field(default_factory=list)
    quarts: list[Branch] = field(default_factory=list)
    coss: list[Branch] = field(default_factory=list)

    def offsets(self) -> dict[str, int]:
        nc, nl, nq = len(self.caps), len(self.lins), len(self.quarts)
        return {"cap": 0, "lin": nc, "quart": nc + nl, "cos": nc + nl + nq}


def _int_aux(parts: NetworkParts, diag: bool) -> np.ndarray:
    head = [
        parts.n,
        len(parts.caps),
        len(parts.lins),
        len(parts.quarts),
        len(parts.coss),
        int(diag),
    ]
    assert len(head) == _HDR
    body: list[int] = []
    for lst in (parts.caps, parts.lins, parts.quarts, parts.coss):
        body += [b.a for b in lst] + [b.c for b in lst]
    return np.asarray(head + body, dtype=np.int64)


def compile_network(
    parts: NetworkParts,
    *,
    name: str,
    dt: float,
    B: np.ndarray,
    readout: np.ndarray | None,
    q0: np.ndarray,
    p0: np.ndarray,
    groups: list[ParamGroup],
    units: dict[str, str],
    spec: object,
    kinetic_name: str,
    family: type[Family],
) -> Device:
    """Build the Device; ``groups`` index into ``w`` = [caps, lins, quarts, coss] and ``B``."""
    # the kinetic matrix, its inverse, and the two Hessians of the stability check: n × n each
    memory.check(
        4 * memory.floats((parts.n, parts.n)),
        f"device {name!r} with {parts.n} nodes",
        "use fewer nodes (dense n × n matrices are formed)",
    )
    caps = parts.caps
    diag = all(b.c < 0 for b in caps)
    ai = _int_aux(parts, diag)
    af = np.asarray([b.kappa for b in parts.coss], dtype=np.float64)
    cap_a = np.asarray([b.a for b in caps], dtype=np.int64)
    cap_c = np.asarray([b.c for b in caps], dtype=np.int64)
    labels = tuple(b.label for b in caps + parts.lins + parts.quarts + parts.coss)
    n = parts.n

    def check(w: np.ndarray) -> None:
        bad = np.flatnonzero(~(w[: len(caps)] > 0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{kinetic_name} {labels[i]!r} must be positive, got {float(w[i])!r}; a learned "
                f"value crossed zero — lower the learning rate or keep the {kinetic_name} group fixed"
            )

    def aux(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = w[: len(caps)]
        C = np.zeros((n, n))
        if diag:
            np.add.at(C, (cap_a, cap_a), c)
            d = np.diag(C).copy()
            if np.any(d <= 0):
                node = int(np.flatnonzero(d <= 0)[0])
                raise ValueError(
                    f"node {node} has no {kinetic_name}: its kinetic term is undefined; give "
                    f"every node a positive {kinetic_name}"
                )
            return ai, af, np.diag(1.0 / d)
        for ci, a, b in zip(c, cap_a, cap_c, strict=True):
            C[a, a] += ci
            if b >= 0:
                C[b, b] += ci
                C[a, b] -= ci
                C[b, a] -= ci
        try:
            np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            floating = _floating_nodes(n, cap_a, cap_c)
            raise ValueError(
                f"elements: the {kinetic_name} matrix is singular: nodes {floating} (by "
                f"position) have no {kinetic_name} path to ground; add a {kinetic_name} from "
                "each island of nodes to ground"
                if floating
                else f"elements: the {kinetic_name} matrix is not positive definite in float64 "
                f"(its {kinetic_name} values span too many decades); keep them within ~1e12"
            ) from None
        Minv = np.linalg.inv(C)
        return ai, af, np.ascontiguousarray(0.5 * (Minv + Minv.T))

    w = np.asarray(
        [b.value for b in caps + parts.lins + parts.quarts + parts.coss], dtype=np.float64
    )
    theta0 = np.concatenate(
        [(w if g.target == "w" else B.reshape(-1))[g.index] for g in groups] or [np.zeros(0)]
    )
    dev = Device(
        name=name,
        **family.device_fields(),
        n_dof=n,
        n_inputs=int(B.shape[1]),
        dt=float(dt),
        w_base=w,
        B_base=np.ascontiguousarray(B, dtype=np.float64),
        readout=readout,
        q0=np.ascontiguousarray(q0, dtype=np.float64),
        p0=np.ascontiguousarray(p0, dtype=np.float64),
        groups=tuple(groups),
        theta0=np.ascontiguousarray(theta0, dtype=np.float64),
        aux_fn=aux,
        check_fn=check,
        n_work=2 * n + 1,
        units=units,
        spec=spec,
        w_labels=labels,
        quadratic=not (parts.quarts or parts.coss),
    )
    # fail at build time, not at the first run: element values, then the step
    check_stability(dev, dev.physical(dev.theta0))
    return dev


def _floating_nodes(n: int, cap_a, cap_c) -> list[int]:
    """Nodes whose island (connected through node-to-node elements) has none to ground."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = [(int(a), int(b)) for a, b in zip(cap_a, cap_c, strict=True) if b >= 0]
    rows = [a for a, _ in pairs]
    cols = [b for _, b in pairs]
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    grounded = {int(label[a]) for a, b in zip(cap_a, cap_c, strict=True) if b < 0}
    return [i for i in range(n) if int(label[i]) not in grounded]
