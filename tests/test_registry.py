"""The source and measure registries: everything that lists kinds is derived from them, an
unknown kind is an error naming the known ones, and `physim sweep plot` draws every measure."""

from __future__ import annotations

import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from pydantic import BaseModel

from physim.answers.budget import LEVELS, level_of
from physim.cli import main
from physim.instrument.hardware import Instrument
from physim.instrument.sources import SOURCES, Source, acts_at
from physim.instrument.specs import NOISE_STREAMS, SOURCE_KINDS, NonidealSpec, parse_nonideal
from physim.registry import Registry, UnknownKindError
from physim.specs import load_device
from physim.study import parse_study, run_study
from physim.study.expand import SOURCE_MODELS, TARGETS
from physim.study.measures import MEASURES, metric_info
from physim.study.plot import plot_defaults, plot_study
from physim.study.spec import MEASURE_KINDS

ROOT = Path(__file__).resolve().parents[1]


def test_registry_register_get_names_and_unknown_kind():
    reg: Registry = Registry("widget", "physim.tests.no-such-group")
    reg.register("b", int)

    @reg.register("a")
    class A:
        pass

    assert reg.names() == ("a", "b") and reg.get("a") is A and "b" in reg
    with pytest.raises(UnknownKindError, match=r"unknown widget kind 'c'; known kinds: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", float)


def test_registry_loads_entry_points_once_and_survives_a_broken_plugin(monkeypatch):
    import importlib.metadata as md
    import json

    eps = [
        md.EntryPoint(name="decoder", value="json:JSONDecoder", group="physim.tests"),
        md.EntryPoint(name="broken", value="physim_no_such_module_xyz", group="physim.tests"),
    ]
    calls = []

    def entry_points(group):
        calls.append(group)
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(md, "entry_points", entry_points)
    reg: Registry = Registry("widget", "physim.tests")
    with pytest.warns(UserWarning, match=r"plugin 'broken' \(physim.tests\) failed to load"):
        assert reg.names() == ("decoder",)
    assert reg.get("decoder") is json.JSONDecoder and calls == ["physim.tests"]
    with pytest.raises(UnknownKindError, match=r"plugins that failed to load: broken"):
        reg.get("broken")
    assert calls == ["physim.tests"]  # discovered once


def test_every_source_list_is_derived_from_the_registry():
    kinds = SOURCES.names()
    assert SOURCE_KINDS == kinds
    assert set(SOURCE_MODELS) == set(kinds)
    assert {"readout", "accumulator", "parameters", "drive"} <= set(TARGETS)
    # the built-in stream numbers are fixed: a replicate's chip must not change
    assert NOISE_STREAMS == {
        ("prepare", ""): 0,
        ("mismatch", ""): 1,
        ("dissipation", ""): 2,
        ("drift", ""): 3,
        ("flip_error", ""): 4,
        ("adc", "readout"): 5,
        ("adc", "accumulator"): 6,
        ("amplifier", ""): 7,
    }
    assert LEVELS["dac/drive"].field == "bits" and LEVELS["dissipation"].worse == -1
    for kind in kinds:
        cls = SOURCES.get(kind)
        assert issubclass(cls, Source) and issubclass(cls.spec_class, BaseModel)
        assert cls.spec_class.model_fields["kind"].annotation.__args__ == (kind,)


def test_unknown_source_kind_names_the_known_ones():
    with pytest.raises(UnknownKindError, match=r"unknown non-ideality source kind 'x'.*drift"):
        SOURCES.get("x")
    assert level_of(parse_nonideal({"sources": [{"kind": "numerics"}]}).sources[0]) is None


def test_a_rule_between_sources_is_checked_by_the_kind_that_imposes_it():
    from physim.instrument.specs import NonidealError

    with pytest.raises(NonidealError, match=r"fixed_point' is a bit-reversible model.*remove"):
        parse_nonideal(
            {
                "sources": [
                    {"kind": "numerics", "mode": "fixed_point"},
                    {"kind": "dissipation", "quality_factor": 10.0},
                ]
            }
        )


def test_zero_valued_sources_are_not_called():
    zero = parse_nonideal(
        {
            "sources": [
                {"kind": "mismatch"},
                {"kind": "drift", "seed": 3},
                {"kind": "flip_error"},
                {"kind": "dissipation", "quality_factor": float("inf")},
                {"kind": "numerics", "mode": "float64"},
            ]
        }
    )
    inst = Instrument(load_device("chain-16"), zero)
    assert len(inst.sources) == 5 and inst.active == []
    some = parse_nonideal(
        {"sources": [{"kind": "mismatch", "relative_dtod": 0.01}, {"kind": "flip_error"}]}
    )
    inst = Instrument(load_device("chain-16"), some)
    assert [s.spec.kind for s in inst.active] == ["mismatch"]
    assert acts_at(type(inst.active[0]), "physics") and not acts_at(type(inst.active[0]), "flip")
    assert Instrument(load_device("chain-16"), NonidealSpec()).active == []


def test_every_measure_list_is_derived_from_the_registry():
    assert MEASURE_KINDS == MEASURES.names()
    assert {"gradient", "train", "offline_vs_insitu"} <= set(MEASURE_KINDS)
    for kind in MEASURE_KINDS:
        metric, thresholds = plot_defaults(kind)
        assert metric in metric_info(kind, ("g",)), kind
        assert set(thresholds) <= set(metric_info(kind, ("g",)))
    with pytest.raises(UnknownKindError, match=r"unknown study measure kind 'x'.*gradient"):
        MEASURES.get("x")


def test_sweep_plot_draws_an_offline_vs_insitu_study(tmp_path):
    # the shipped study, shrunk: two σ, one chip, two gradient steps, a short task
    data = tomllib.loads((ROOT / "studies" / "offline-vs-insitu-chain-16.toml").read_text())
    data["replicates"] = 1
    data["measure"]["epochs"] = 2
    data["axes"][0]["values"] = [0.0, 0.03]
    data["base"]["set"] = {**data["base"]["set"], "task.n_steps": 40}
    out = tmp_path / "routes"
    with ThreadPoolExecutor(1) as ex:
        ds = run_study(parse_study(data), executor=ex, out=out)
    assert int(ds.failed.sum()) == 0
    png = plot_study(out)
    assert png.name == "offline_over_insitu.png" and mpimg.imread(png).shape[1] > 300
    assert main(["sweep", "plot", str(out), "--out", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").exists()


def test_nonideals_kinds_lists_every_source_kind(capsys):
    assert main(["nonideals", "--kinds"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(SOURCES.names())


def test_sweep_plot_keeps_the_replicate_band_inside_a_measures_bounds(tmp_path, monkeypatch):
    """A pass/fail metric's mean ± std over chips runs past [0, 1]; a measure that declares
    bounds gets a band inside them (and a measure without bounds keeps the plain band)."""
    import matplotlib.axes
    import numpy as np
    import xarray as xr

    from physim.study.measures import Measure

    class PassFail(Measure):
        kind = "pass_fail_test"
        plot_metric = "passed"
        bounds = {"passed": (0.0, 1.0)}

    monkeypatch.setattr(MEASURES, "_kinds", dict(MEASURES._kinds))  # restored afterwards
    MEASURES.register(PassFail.kind, PassFail)
    passed = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])  # mean ± std: past 1, 0
    ds = xr.Dataset(
        {"passed": (("x", "replicate"), passed), "failed": (("x", "replicate"), 0 * passed)},
        coords={"x": [1.0, 2.0], "replicate": np.arange(4)},
        attrs={"measure": "pass_fail_test", "title": "bounded"},
    )
    ds.to_netcdf(tmp_path / "results.nc", engine="h5netcdf")
    bands = []
    real = matplotlib.axes.Axes.fill_between

    def spy(self, x, lo, hi, *args, **kwargs):
        bands.append((np.asarray(lo), np.asarray(hi)))
        return real(self, x, lo, hi, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", spy)
    plot_study(tmp_path)
    mean, std = passed.mean(axis=1), passed.std(axis=1, ddof=0)
    assert np.any(mean + std > 1.0) and np.any(mean - std < 0.0)  # the data needs the bounds
    ((lo, hi),) = bands
    assert lo.min() >= 0.0 and hi.max() <= 1.0
    np.testing.assert_allclose(hi, np.minimum(mean + std, 1.0))
    monkeypatch.setattr(PassFail, "bounds", {})
    plot_study(tmp_path)
    np.testing.assert_allclose(bands[1][1], mean + std)


def test_sweep_plot_averages_a_log_metric_geometrically(tmp_path, monkeypatch):
    """A ratio over decades (a measure's log_metrics) is drawn on a log axis with its geometric
    mean and a × / ÷ geometric-std band, which stays positive where mean − std would not."""
    import matplotlib.axes
    import numpy as np
    import xarray as xr

    from physim.study.measures import Measure

    class Ratio(Measure):
        kind = "ratio_test"
        plot_metric = "ratio"
        log_metrics = ("ratio",)

    monkeypatch.setattr(MEASURES, "_kinds", dict(MEASURES._kinds))  # restored afterwards
    MEASURES.register(Ratio.kind, Ratio)
    ratio = np.array([[1.0, 1.0, 1.0, 1e4], [0.5, 2.0, 0.5, 2.0]])  # geometric means 10 and 1
    ds = xr.Dataset(
        {"ratio": (("x", "replicate"), ratio), "failed": (("x", "replicate"), 0 * ratio)},
        coords={"x": [1.0, 2.0], "replicate": np.arange(4)},
        attrs={"measure": "ratio_test", "title": "ratios"},
    )
    ds.to_netcdf(tmp_path / "results.nc", engine="h5netcdf")
    drawn = {}
    real_plot, real_band = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.fill_between

    def plot(self, x, y, *args, **kwargs):
        drawn["mean"] = np.asarray(y)
        return real_plot(self, x, y, *args, **kwargs)

    def band(self, x, lo, hi, *args, **kwargs):
        drawn["band"] = (np.asarray(lo), np.asarray(hi))
        return real_band(self, x, lo, hi, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", plot)
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", band)
    real_scale = matplotlib.axes.Axes.set_yscale
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "set_yscale",
        lambda self, v, **kw: (drawn.__setitem__("log", v), real_scale(self, v, **kw))[1],
    )
    plot_study(tmp_path)
    spread = 10 ** np.log10(ratio).std(axis=1)  # [10^√3, 2]
    np.testing.assert_allclose(drawn["mean"], [10.0, 1.0])
    np.testing.assert_allclose(drawn["band"][0], [10.0 / spread[0], 0.5])
    np.testing.assert_allclose(drawn["band"][1], [10.0 * spread[0], 2.0])
    assert drawn["log"] == "log"
    assert ratio.mean(axis=1)[0] - ratio.std(axis=1)[0] < 0  # the arithmetic band would not
