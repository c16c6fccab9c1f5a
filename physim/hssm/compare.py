"""RHEL vs BPTT gradient alignment through a whole HSSM (the paper's Figure 4).

Both gradients come from one forward pass on one batch (dropout off): the BPTT twin
back-propagates through the recorded core trajectories, RHEL echoes each core from its final
state with the chained error signal. Per block and parameter group the report gives the
cosine similarity and the norm ratio ‖g_RHEL‖ / ‖g_BPTT‖.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from physim import jsonio, memory
from physim.gradients import align
from physim.hssm.config import HSSMSpec
from physim.hssm.model import HSSM, estimate_memory_bytes


@dataclass(frozen=True)
class Alignment:
    block: str
    param: str
    cosine: float
    norm_ratio: float
    norm_bptt: float


@dataclass(frozen=True)
class CompareResult:
    rows: tuple[Alignment, ...]
    loss: float
    config: dict

    @property
    def min_cosine(self) -> float:
        return min(r.cosine for r in self.rows)

    @property
    def max_abs_ratio_minus_1(self) -> float:
        return max(abs(r.norm_ratio - 1.0) for r in self.rows)

    def summary(self) -> dict:
        return {
            "min_cosine": self.min_cosine,
            "max_abs_ratio_minus_1": self.max_abs_ratio_minus_1,
            "loss": self.loss,
            "config": self.config,
            "rows": [asdict(r) for r in self.rows],
        }

    def table(self) -> str:
        lines = []
        if self.config.get("nonideal") is not None:
            name = self.config["nonideal"]
            name = name.get("name", "?") if isinstance(name, dict) else name
            lines.append(
                f"RHEL measured on chips ({name}, chip seed {self.config.get('chip_seed', 0)}) "
                f"vs the {self.config.get('reference', 'ideal twin (BPTT)')}"
            )
        lines.append(f"{'block':<10}{'parameter':<20}{'cosine':>20}{'norm ratio - 1':>18}")
        for r in self.rows:
            lines.append(f"{r.block:<10}{r.param:<20}{r.cosine:>20.15f}{r.norm_ratio - 1.0:>18.2e}")
        lines.append(
            f"min cosine {self.min_cosine:.15f}   max |ratio - 1| {self.max_abs_ratio_minus_1:.2e}"
        )
        return "\n".join(lines)


def _split_name(name: str) -> tuple[str, str]:
    parts = name.split(".")
    if parts[0] == "blocks":
        return f"block {parts[1]}", ".".join(parts[2:])
    return parts[0], ".".join(parts[1:])


def compare_model_gradients(
    model: HSSM,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    config: dict | None = None,
    reference: HSSM | None = None,
) -> CompareResult:
    """Figure-4 alignment for a given model, parameters and batch ``(X, y)``.

    ``reference``: the model whose BPTT gradient RHEL is held against (default ``model``
    itself, from the same forward pass), e.g. a float64 twin of a float32 ``model``; the loss
    reported is the reference's.
    """
    if reference is None or reference is model:
        out, x_top, caches = model.forward(params, X, keep="both")
        loss, dout, _ = model.loss(out, y)
        g_rhel = model.groups(model.backward(params, X, x_top, caches, dout, algo="rhel"))
        g_bptt = model.groups(model.backward(params, X, x_top, caches, dout, algo="bptt"))
    else:
        g_rhel = model.groups(model.loss_and_grad(params, X, y, algo="rhel")[2])
        loss, _, g = reference.loss_and_grad(params, X, y, algo="bptt")
        g_bptt = reference.groups(g)
    rows = []
    buffers = set(model.buffer_names())
    for name, gb in g_bptt.items():
        if name in buffers:  # running statistics: not trained
            continue
        cos, ratio = align(g_rhel[name], gb)
        block, param = _split_name(name)
        rows.append(Alignment(block, param, cos, ratio, float(np.linalg.norm(gb))))
    return CompareResult(tuple(rows), loss, config or {})


def compare_gradients(
    model: str = "linhru",
    *,
    n_blocks: int = 6,
    hidden: int = 64,
    ssm_dim: int = 256,
    length: int = 896,
    batch: int = 4,
    n_inputs: int = 7,
    n_classes: int = 2,
    seed: int = 0,
    X: np.ndarray | None = None,
    y: np.ndarray | None = None,
    complex_ssm: bool = False,
    precision: str = "float64",
    nonideal=None,
    chip_seed: int = 0,
    as_built: bool = False,
    a_param: str = "relu",
) -> CompareResult:
    """Figure 4: RHEL vs BPTT alignment per block and parameter on one classification batch.

    Defaults are the paper's SCP1 sizes (6 blocks, H = 64, P = 256, L = 896, 6 channels plus
    a time channel). Without ``X, y`` a seeded synthetic batch is used (N(0, 1) inputs, random
    labels); pass a data batch (batch-first) to use real samples. ``complex_ssm``: LinHRU
    cores with complex B, C. ``precision = "float32"``: RHEL of the float32 model against the
    BPTT gradient of its float64 twin (same parameters and batch). ``nonideal``: RHEL measured
    with every block's core on a chip (:mod:`physim.hssm.chips`, replicate chip i of
    ``chip_seed``) against the BPTT gradient of the ideal twin — the paper's Figure 4 on
    imperfect hardware. With ``as_built`` the reference is the BPTT gradient of the chips'
    as-built twins (:func:`physim.hssm.chips.as_built_twin`: mismatch and drift applied), which
    separates measurement error from the chips' model error. ``a_param``: the LinHRU
    stiffness map (``relu`` or ``softplus``).
    """
    if as_built and nonideal is None:
        raise ValueError("as_built compares with the twins of chips: give nonideal too")
    spec = HSSMSpec(
        model=model,
        n_blocks=n_blocks,
        hidden=hidden,
        ssm_dim=ssm_dim,
        dropout=0.0,
        complex_ssm=complex_ssm,
        precision=precision,
        a_param=a_param,
    )
    L, nb = (length, batch) if X is None else (X.shape[1], X.shape[0])
    # both algorithms' training-step memory (BPTT stores more), plus the inputs
    memory.check(
        estimate_memory_bytes(spec, L, nb, "bptt") + memory.floats((nb, L, n_inputs)),
        f"compare-gradients at L = {L}, batch {nb} ({n_blocks} blocks, H = {hidden}, P = "
        f"{ssm_dim})",
        "lower the length or the batch",
    )
    rng = np.random.default_rng([seed, 4])
    if X is None:
        X = rng.normal(size=(batch, length, n_inputs))
        y = rng.integers(0, n_classes, size=batch)
    elif y is None:
        raise ValueError("give the labels y together with the inputs X")
    net = HSSM.build(spec, X.shape[2], n_classes, "classification", seed=seed)
    ref = net
    if nonideal is not None:
        net = HSSM.build(
            spec.model_copy(update={"nonideal": nonideal, "chip_seed": chip_seed}),
            X.shape[2],
            n_classes,
            "classification",
            seed=seed,
        )
    if spec.precision != "float64" or nonideal is not None:
        ref = HSSM.build(
            spec.model_copy(update={"precision": "float64"}),
            X.shape[2],
            n_classes,
            "classification",
            seed=seed,
        )
    if as_built:
        from physim.hssm.chips import as_built_twin

        ref = as_built_twin(net)
    params = net.init_params(seed)
    cfg = dict(net.spec.model_dump(), length=X.shape[1], batch=X.shape[0], seed=seed)
    cfg["reference"] = "as-built twin (BPTT)" if as_built else "ideal twin (BPTT)"
    return compare_model_gradients(net, params, X, y, cfg, reference=ref)


def plot_alignment(result: CompareResult, path: str | Path) -> Path:
    """Bar chart of 1 − cosine and |ratio − 1| per block and parameter (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physim.plots import name_axis

    one_minus_cos = np.array([1.0 - r.cosine for r in result.rows])
    ratio_dev = np.array([abs(r.norm_ratio - 1.0) for r in result.rows])
    x = np.arange(len(result.rows))
    fig, ax = plt.subplots(figsize=(min(16, max(8, 0.16 * len(x))), 5))
    for dx, v, label, c in (
        (-0.2, one_minus_cos, "1 − cosine", "C0"),
        (0.2, ratio_dev, "|norm ratio − 1|", "C1"),
    ):
        nz = v > 0
        ax.bar(x[nz] + dx, v[nz], 0.4, color=c, label=label)
        if np.any(~nz):  # exact agreement has no bar on a log axis: a cross at the bottom
            ax.plot(
                x[~nz] + dx,
                np.full(int((~nz).sum()), 0.03),
                "x",
                color=c,
                ms=6,
                mew=1.5,
                transform=ax.get_xaxis_transform(),
                label=f"{label} exactly 0 (×)",
            )
    ax.set_yscale("log")
    ax.axhline(1e-6, color="k", lw=0.8, ls="--", label="1e-6 (paper-level target)")
    # parameter names on x, one block per span with its name above (was ~80 two-line labels)
    name_axis(ax, [r.param for r in result.rows], [r.block for r in result.rows])
    ax.set_ylabel("deviation of RHEL from BPTT")
    worst = 1.0 - result.min_cosine
    shown = f"1 − {worst:.1e}" if 0 < worst < 1e-3 else f"{result.min_cosine:.6f}"
    ax.set_title(f"RHEL vs BPTT ({result.config.get('model', '')}): min cosine {shown}", pad=18)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_summary(result: CompareResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(jsonio.dumps(result.summary(), indent=2))
    return path
