"""Figures read as a designer reads them: no bar lost, one colour per trace, units spelled out,
legends and flags beside the panels rather than over the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.axes  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from physim.cli import main  # noqa: E402
from physim.plots import bars_side_by_side, readable_unit  # noqa: E402


def test_an_exact_zero_is_marked_on_a_log_bar_chart():
    # a measured gradient of exactly 0 had no bar at all on the log axis
    fig, ax = plt.subplots()
    scale = bars_side_by_side(ax, {"measured": np.array([1e-3, 0.0, -1e-12, 2e-9])}, "J")
    assert scale.startswith("log")
    marks = [ln for ln in ax.get_lines() if "exactly 0" in str(ln.get_label())]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [pytest.approx(1.0)]
    plt.close(fig)


@pytest.mark.parametrize(
    ("unit", "shown"),
    [
        ("Wb^2/parameter_unit", "Wb^2 / unit of each parameter"),
        ("m^2/channel_unit", "m^2 / unit of each channel"),
        ("J", "J"),
    ],
)
def test_placeholder_units_read_as_words(unit, shown):
    assert readable_unit(unit) == shown


@pytest.fixture(scope="module")
def run_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("fig") / "run.h5"
    argv = ["run", "lc-ladder-8", "rhel-centred-traced", "--nonideal", "pcb-c0g"]
    assert main([*argv, "--log", str(log)]) == 0
    return log


def test_run_figure_colours_units_and_legends(run_log, tmp_path, monkeypatch):
    drawn: list[tuple[str, str]] = []
    real_plot = matplotlib.axes.Axes.plot

    def plot(self, *args, **kwargs):
        if "label" in kwargs and "color" in kwargs:
            drawn.append((kwargs["label"], kwargs["color"]))
        return real_plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", plot)
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    assert main(["plot", str(run_log), "--out", str(tmp_path / "run.png")]) == 0
    # one colour per (record, output): the +ε and −ε branches of one output share it
    forward = {lab: c for lab, c in drawn if lab.startswith("forward")}
    assert len(set(forward.values())) == len(forward) == 2
    fig = kept[-1]
    grad = next(a for a in fig.axes if a.get_title().startswith("gradient"))
    assert "unit of each parameter" in grad.get_ylabel()
    assert any(t.get_text().endswith("[F]") for t in grad.get_xticklabels())
    # the legend sits right of the axes, not over the bars
    legend_box = grad.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend_box.x0 >= grad.get_window_extent(fig.canvas.get_renderer()).x1


def test_budget_figure_panels_in_order_legends_below_and_no_source_left_out(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    from physim.answers.report import plot_budget

    rep = json.loads((Path(__file__).parents[1] / "results/budget/pcb-c0g.json").read_text())
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    plot_budget(rep, tmp_path / "b.png")
    fig = kept[-1]
    axes = [a for a in fig.axes if a.get_title()]
    assert [a.get_title()[:3] for a in axes] == ["(a)", "(b)", "(c)"]  # was (a), (c), (b)
    renderer = fig.canvas.get_renderer()
    for a in axes:
        assert a.get_legend().get_window_extent(renderer).y1 <= a.get_window_extent(renderer).y0
    # mismatch meets the target out to the search bound: it has no level, and was left out
    tol = axes[1]
    names = [t.get_text() for t in tol.get_xticklabels()]
    no_level = [t["source"] for t in rep["tolerances"] if t["level"] is None and t.get("preset")]
    assert no_level and set(no_level) <= set(names)
    assert any(ln.get_marker() == "^" and len(ln.get_xdata()) for ln in tol.get_lines())


def test_study_plot_labels_its_axis_and_threshold_in_words(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from physim.study import parse_study, run_study
    from physim.study.plot import plot_study

    study = {
        "name": "label-test",
        "replicates": 1,
        "base": {
            "device": "lc-ladder-8",
            "protocol": "rhel-centred-rerun",
            "set": {"task.n_steps": 30, "protocol.eps": 1e-2},
        },
        "axes": [{"path": "protocol.eps", "values": [1e-3, 1e-2]}],
    }
    with ThreadPoolExecutor(1) as ex:
        run_study(parse_study(study), executor=ex, out=tmp_path / "s")
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    plot_study(tmp_path / "s")
    ax = kept[-1].axes[0]
    # the variable's long name, not `cosine`; the threshold line says what it means
    assert "θ-scaled cosine of the measured" in ax.get_ylabel().replace("\n", " ")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "a good gradient above cosine = 0.99 (1 − cosine = 0.01)" in labels


def test_alignment_figure_reads_at_a_glance(tmp_path, monkeypatch):
    from physim.hssm.compare import compare_gradients, plot_alignment

    res = compare_gradients("linhru", n_blocks=2, hidden=8, ssm_dim=8, length=50, batch=2, seed=0)
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    plot_alignment(res, tmp_path / "alignment.png")
    ax = kept[-1].axes[0]
    # the title gave the cosine as 1.000000000000; now its distance from 1
    assert "1.000000" not in ax.get_title() and "min cosine 1 − " in ax.get_title()
    # one name per tick (blocks labelled above their span), not ~80 two-line labels
    assert all("\n" not in t.get_text() for t in ax.get_xticklabels())
    texts = {t.get_text() for t in ax.texts}
    assert {"encoder", "block 0", "block 1", "decoder"} <= texts
    # exact agreement is a cross at the bottom, not a bar at an invented 1e-18
    heights = [p.get_height() for p in ax.patches]
    assert heights and min(heights) > 1e-18
    zeros = sum(r.norm_ratio == 1.0 for r in res.rows) + sum(r.cosine == 1.0 for r in res.rows)
    crosses = sum(len(ln.get_xdata()) for ln in ax.get_lines() if ln.get_marker() == "x")
    assert crosses == zeros
