"""The results scripts: the long-range chain runner and the README / docs rebuilder."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_sections_are_the_scripts_output():
    mod = _load("readme_results")
    for path, text in mod.rebuilt().items():
        assert path.read_text() == text, f"{path.name} is stale: run scripts/readme_results.py"


def test_long_range_chain_writes_results_resumes_and_plots(tmp_path, monkeypatch):
    lr = _load("long_range")
    # a three-stage curriculum at toy size: each stage starts from the previous one's
    # parameters, and the third continues the second at the same length
    toy = (
        (20, 6, 1e-3, 64, 8, "float64", 3),
        (40, 4, 1e-3, 64, 4, "float32", 2),
        (40, 2, 1e-3, 64, 4, "float32", 2, 1, "cosine"),
    )
    monkeypatch.setattr(lr, "CURRICULUM", toy)
    monkeypatch.setattr(lr, "TARGETS", (40,))
    args = ["--algo", "rhel", "--seed", "3", "--length", "40"]
    args += ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "res")]
    assert lr.main(args) == 0
    out = tmp_path / "res" / "adding-L40-rhel-s3.json"
    res = json.loads(out.read_text())
    for key in ("task", "length", "algo", "seed", "test_mse", "baseline_mse"):
        assert key in res, key
    assert (res["task"], res["length"], res["algo"], res["seed"]) == ("adding", 40, "rhel", 3)
    assert [s["length"] for s in res["stages"]] == [20, 40, 40]
    assert res["ratio"] == pytest.approx(res["test_mse"] / res["baseline_mse"])
    assert len(res["stages"][1]["curve"]["val_mse"]) == 2  # evaluations at steps 2 and 4
    stage2 = json.loads((tmp_path / "runs/adding-softplus-rhel-s3/L40/metrics.json").read_text())
    assert stage2["config"]["init_from"].endswith("L20")
    assert stage2["config"]["model"]["precision"] == "float32"
    assert stage2["config"]["batch_size"] == 4
    assert stage2["config"]["init_dt_scale"] == 0.5  # L 20 → 40: every mode's Δt halved
    stage3 = json.loads((tmp_path / "runs/adding-softplus-rhel-s3/L40-2/metrics.json").read_text())
    assert stage3["config"]["init_from"].endswith("L40")
    assert stage3["config"]["init_dt_scale"] is None  # same length: Δt kept
    assert (stage3["config"]["lr_warmup"], stage3["config"]["lr_decay"]) == (1, "cosine")
    assert res["test_mse"] == stage3["test_mse"]  # the result is the last stage's
    # a second call finds both stages finished and trains nothing
    stamp = (tmp_path / "runs/adding-softplus-rhel-s3/L40/metrics.json").stat().st_mtime_ns
    assert lr.main(args) == 0
    assert (tmp_path / "runs/adding-softplus-rhel-s3/L40/metrics.json").stat().st_mtime_ns == stamp
    assert json.loads(out.read_text())["test_mse"] == res["test_mse"]
    # a stage finished by an older physim, whose TrainSpec lacked a field added since, is
    # still this stage (the field at its default)
    first = tmp_path / "runs/adding-softplus-rhel-s3/L20/metrics.json"
    old = json.loads(first.read_text())
    del old["config"]["lr_warmup"]
    first.write_text(json.dumps(old))
    assert lr.main(args) == 0
    # a changed curriculum does not pass a finished stage of the old one off as its own
    monkeypatch.setattr(lr, "CURRICULUM", (toy[0], toy[1][:1] + (5,) + toy[1][2:], toy[2]))
    with pytest.raises(SystemExit, match=r"L40 holds a finished stage .*n_steps"):
        lr.main(args)

    pytest.importorskip("matplotlib")
    rr = _load("readme_results")
    assert rr.stage_labels(res["stages"]) == ["20", "40", "40 (continued, cosine lr)"]
    # a result left from another curriculum is refused by name, not averaged with this one
    other = json.loads(json.dumps(res))
    other["algo"], other["stages"][2]["lr_decay"] = "bptt", "none"
    stale = tmp_path / "res" / "adding-L40-bptt-s3.json"
    stale.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match=r"adding-L40-.*-s3.json and adding-L40-.*different"):
        rr.long_range_runs(tmp_path / "res")
    stale.unlink()
    runs = rr.long_range_runs(tmp_path / "res")
    rr.figure(runs, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    solved = int(res["ratio"] <= rr.SOLVED)
    row = f"| L = 40 (batch 4) | {solved} of 1 solved ({100 * res['ratio']:.1f} %;"
    assert row in rr.long_range_table(runs)
    assert rr.long_range_table(runs).endswith("| not run |")  # no BPTT run in this folder
