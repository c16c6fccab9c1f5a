"""``physim plot``: the figure that makes sense for each kind of log.

* a run log (``physim run``, the demo): readout trajectories (forward and echoes, in separate
  panels), the integrated ∂H/∂θ per channel, the measured gradient beside the ideal (and
  as-built) twin's with the cosine in the legend, and the loss per epoch when it trained;
* a training log (``physim train``): its curves (:func:`physim.hssm.plots.plot_training`);
* an incomplete log: whatever was written, marked INCOMPLETE in the title.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from physim import logs
from physim.fidelity import scaled_cosine
from physim.plots import (
    bars_side_by_side,
    flag_gradient,
    name_axis,
    plot_loss,
    pyplot,
    title_for,
)


def _strings(d) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in d[()]]


#: legends beside the panels, right of the axes: inside they hid bars and traces
OUTSIDE = {"fontsize": 7, "loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}


def _stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


#: the PNG "Software" text of every figure ``physim plot`` writes: how it knows a file at
#: ``--out`` is its own (replotted freely) rather than a user's (refused without --force)
PNG_SOFTWARE = "physim plot"


def check_png_out(out: str | Path, force: bool = False) -> Path:
    """Refuse to replace a file at ``out`` that ``physim plot`` did not write (unless
    ``force``): a user's own figure or data is never overwritten silently."""
    out = Path(out)
    if force or not out.exists():
        return out
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give a PNG file path")
    ours = False
    try:
        from PIL import Image

        with Image.open(out) as im:
            ours = im.format == "PNG" and im.info.get("Software") == PNG_SOFTWARE
    except Exception:  # not an image at all: certainly not ours
        ours = False
    if not ours:
        raise FileExistsError(
            f"{out} exists and physim plot did not write it; choose another --out, or pass "
            "--force to overwrite it"
        )
    return out


def plot_log(
    path: str | Path,
    out: str | Path | None = None,
    run: str | None = None,
    report: Callable[[str], None] = _stderr,
    force: bool = False,
) -> Path:
    """Write a PNG summarising a log (for a run log: one protocol execution, default the
    first); a wrong gradient is flagged on the figure and passed to ``report``. An existing
    ``out`` that ``physim plot`` did not write — the default ``out`` beside the log included,
    e.g. the demo's own ``demo.png`` beside ``demo.h5`` — is refused unless ``force``."""
    path = Path(path)
    out = check_png_out(out if out is not None else path.with_suffix(".png"), force)
    with logs.open_log(path) as f:
        kind = logs.kind(f)
    if kind == "training":
        from physim.hssm.plots import plot_training

        metrics = path.parent / "metrics.json"
        m = json.loads(metrics.read_text()) if metrics.exists() else None
        return plot_training(path, out, metrics=m)
    plt = pyplot()
    with logs.open_log(path) as f:
        prov = logs.provenance(f)
        status = logs.status(f)
        names = logs.runs(f)
        train = {n: logs.series(f, n) for n in logs.training(f)}
        lunit = logs.training(f)["loss"]["value"].attrs.get("unit", "1") if "loss" in train else "1"
        if not names and not train:
            raise logs.LogError(
                f"{path}: the log holds no protocol execution yet ({status}); nothing to plot"
            )
        run = run or (names[0] if names else None)
        if run is not None and run not in names:
            raise logs.LogError(f"{path}: no execution {run!r}; the log holds {names[:5]}…")
        traj, accs, grad = {}, {}, {}
        if run is not None:
            for n, g in logs.records(f, run).items():
                if "value" not in g:
                    continue  # a record the killed writer never finished
                if g.attrs["kind"] == "trajectory":
                    meta = json.loads(g.attrs["meta"])
                    traj[n] = (
                        g["time"][()],
                        logs.read_value(g),
                        meta.get("direction", "forward"),
                        g["time"].attrs.get("unit", "s"),
                        g["value"].attrs.get("unit", "1"),
                    )
                elif g.attrs["kind"] == "accumulator":
                    ch = g["channel"] if "channel" in g else None
                    accs[n] = (
                        logs.read_value(g),
                        _strings(ch) if ch is not None else None,
                        _strings(g["channel_group"]) if "channel_group" in g else None,
                        g["value"].attrs.get("unit", "1"),
                    )
            gr = logs.gradient(f, run)
            if gr is not None:
                for key in ("estimate", "ideal", "as_built", "step_unit"):
                    if key in gr:
                        grad[key] = gr[key][()]
                if "parameter" in gr:
                    grad["names"] = _strings(gr["parameter"])
                    if "parameter_unit" in gr:  # each parameter's own unit, beside its name
                        grad["names"] = [
                            f"{n} [{u}]"
                            for n, u in zip(
                                grad["names"], _strings(gr["parameter_unit"]), strict=True
                            )
                        ]
                    grad["groups"] = _strings(gr["parameter_group"])
                    grad["unit"] = gr["estimate"].attrs.get("unit", "1")
    fwd = {n: v for n, v in traj.items() if v[2] == "forward"}
    echo = {n: v for n, v in traj.items() if v[2] != "forward"}
    panels = [
        p
        for p, on in (
            ("fwd", fwd),
            ("echo", echo),
            ("acc", accs),
            ("grad", grad),
            ("train", "loss" in train),
        )
        if on
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 3.2 * len(panels)), squeeze=False)
    ax = dict(zip(panels, axes[:, 0], strict=True))
    algo = "RHEL (in situ)" if "estimate" in grad or "loss" in train else "forward only"
    fig.suptitle(
        f"{title_for(prov, algo)}\n{path.name} · {run or 'no execution'} · {status}", fontsize=10
    )
    for key, group in (("fwd", fwd), ("echo", echo)):
        if key not in ax:
            continue
        a = ax[key]
        tu, yu = next(iter(group.values()))[3:5]
        colour = 0  # one colour per (record, output) trace: C{o + j} gave two traces one colour
        for n, (t, v, *_) in group.items():
            n_out = min(v.shape[-1], 4)
            for o in range(n_out):
                colour += 1
                for b in range(v.shape[1]):
                    br = "" if v.shape[1] == 1 else f" branch {b} ({'+' if b == 0 else '−'}ε)"
                    a.plot(
                        t,
                        v[:, b, 0, o],
                        lw=1.0,
                        ls=("-", ":")[b % 2],
                        color=f"C{colour - 1}",
                        label=f"{n} output {o}{br}",
                    )
        a.set_xlabel(f"time ({tu})" if key == "fwd" else f"forward time retraced ({tu})")
        a.set_ylabel(f"readout ({yu})")
        a.set_title(
            "forward run (batch 0)"
            if key == "fwd"
            else "echo runs (batch 0), against the forward time they retrace",
            fontsize=9,
        )
        a.legend(**OUTSIDE)
        a.grid(True, alpha=0.3)
    if "acc" in ax:
        a = ax["acc"]
        n, (v, chn, chg, unit) = next(iter(accs.items()))
        flat = v.reshape(-1, v.shape[-1]).sum(axis=0)
        keep = np.array([g != "(not learnable)" for g in chg]) if chg else np.ones(flat.size, bool)
        series = {f"{n} (summed over branches)": flat[keep]}
        scale = bars_side_by_side(a, series, unit)
        if chn:
            name_axis(
                a,
                [c for c, k in zip(chn, keep, strict=True) if k],
                [g for g, k in zip(chg, keep, strict=True) if k],
            )
        a.set_title(
            f"integrated ∂H/∂w × gain per learnable channel ({scale} axis)", fontsize=9, pad=16
        )
        a.legend(**OUTSIDE)
    if "grad" in ax:
        a = ax["grad"]
        est = grad["estimate"]
        # the unit-free θ-scaled cosine (physim.fidelity); a log without step units: raw
        what = "θ-scaled" if "step_unit" in grad else "raw"
        series = {}
        if "ideal" in grad:
            c = scaled_cosine(est, grad["ideal"], grad.get("step_unit"))
            series[f"measured ({what} cosine to ideal {c:.6f})"] = est
            series["ideal twin"] = grad["ideal"]
        else:
            series["measured"] = est
        if "as_built" in grad:
            c = scaled_cosine(est, grad["as_built"], grad.get("step_unit"))
            series[f"as-built twin ({what} cosine to measured {c:.6f})"] = grad["as_built"]
        scale = bars_side_by_side(a, series, grad.get("unit", "1"))
        names_, groups_ = grad.get("names"), grad.get("groups")
        if names_:
            name_axis(a, names_, groups_)
        if "ideal" in grad:
            flag_gradient(
                a, est, grad["ideal"], groups_ or ["θ"] * est.size, report, grad.get("step_unit")
            )
        a.set_title(f"gradient dL/dθ per parameter ({scale} axis)", fontsize=9, pad=16)
        a.legend(**OUTSIDE)
    if "train" in ax:
        a = ax["train"]
        plot_loss(a, train["loss"], lunit)
        a.set_title("in-situ training: loss measured at each epoch (before its update)", fontsize=9)
        a.legend(**OUTSIDE)
    fig.tight_layout()
    fig.savefig(out, dpi=110, metadata={"Software": PNG_SOFTWARE})
    plt.close(fig)
    return out
