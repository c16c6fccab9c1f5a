"""The ``train`` and ``compare-gradients`` sub-commands (driven through their own parser)."""

import argparse
import json

import pytest

from physim.hssm.commands import register, resolve_train_spec
from physim.hssm.config import ConfigError

#: the Figure-4 targets of the issue (RHEL exact up to echo round-off)
MIN_COSINE = 0.999999
MAX_RATIO_DEV = 1e-5


def _parse(argv):
    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    return ap.parse_args(argv)


def test_compare_gradients_json(capsys, tmp_path):
    args = _parse(
        [
            "compare-gradients",
            "--model",
            "nonlinhru",
            "--blocks",
            "2",
            "--hidden",
            "6",
            "--ssm",
            "4",
            "--length",
            "30",
            "--batch",
            "2",
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    assert args.func(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["min_cosine"] >= MIN_COSINE and s["max_abs_ratio_minus_1"] <= MAX_RATIO_DEV
    assert (tmp_path / "alignment.png").stat().st_size > 0
    rows = json.loads((tmp_path / "alignment.json").read_text())["rows"]
    assert {r["block"] for r in rows} == {"encoder", "block 0", "block 1", "decoder"}


def test_train_command_on_tiny_data(capsys, tmp_path):
    pytest.importorskip("physim.data")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "data": "tiny",
                "n_samples": 40,
                "length": 32,
                "batch_size": 8,
                "n_steps": 2,
                "eval_every": 1,
                "model": {"n_blocks": 1, "hidden": 4, "ssm_dim": 3},
            }
        )
    )
    args = _parse(
        [
            "train",
            "--config",
            str(cfg),
            "--algo",
            "bptt",
            "--seed",
            "2",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 2 and "test_accuracy" in out
    m = json.loads((tmp_path / "run/metrics.json").read_text())
    assert m["config"]["algo"] == "bptt" and m["config"]["seed"] == 2
    # --no-resume over that finished run is refused, and the run is left as it was
    before = {f.name: f.read_bytes() for f in (tmp_path / "run").iterdir() if f.is_file()}
    from physim.cli import main

    assert main([*_train_args(cfg, tmp_path), "--no-resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physim train: error:")
    assert "holds a finished training run (metrics.json); --no-resume would replace it" in err
    assert {f.name: f.read_bytes() for f in (tmp_path / "run").iterdir() if f.is_file()} == before


def _train_args(cfg, tmp_path):
    return ["train", "--config", str(cfg), "--algo", "bptt", "--seed", "2", "--quiet",
            "--out", str(tmp_path / "run")]  # fmt: skip


def test_train_command_reports_bad_config(capsys, tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"lr": -1.0}))
    from physim.cli import main

    assert main(["train", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    # one line, prefixed like every other command's error
    assert err.startswith("physim train: error:") and err.count("\n") == 1
    assert "learning rate lr must be > 0" in err


def test_cli_overrides_preset():
    spec = resolve_train_spec(
        _parse(["train", "--data", "scp1", "--model", "nonlinhru", "--algo", "bptt", "--seed", "4"])
    )
    assert (spec.data, spec.model.model, spec.algo, spec.seed) == ("scp1", "nonlinhru", "bptt", 4)
    assert spec.model.n_blocks == 2  # the CPU-sized preset
    assert spec.model.precision == "float64"
    spec = resolve_train_spec(_parse(["train", "--model", "nonlinhru", "--precision", "float32"]))
    assert (spec.model.model, spec.model.precision) == ("nonlinhru", "float32")
    with pytest.raises(SystemExit):
        _parse(["train", "--precision", "float16"])


def test_a_param_option():
    spec = resolve_train_spec(_parse(["train", "--config", "adding-linhru-warmup"]))
    assert spec.model.a_param == "relu"  # the paper's default
    spec = resolve_train_spec(
        _parse(["train", "--config", "adding-linhru-warmup", "--a-param", "softplus"])
    )
    assert spec.model.a_param == "softplus"
    assert spec.model.input_scale == 0.1  # the rest of the preset is kept
    with pytest.raises(ConfigError, match="a_param = 'softplus' sets the LinHRU stiffness map"):
        resolve_train_spec(_parse(["train", "--model", "nonlinhru", "--a-param", "softplus"]))


def test_a_dataset_without_a_cpu_preset_gets_the_cpu_sized_model():
    # `--data tiny` trained the paper-sized model (6 blocks, P = 256: 2.2 s a step) while
    # `--data scp1` used the CPU preset
    for model in ("linhru", "nonlinhru"):
        spec = resolve_train_spec(_parse(["train", "--data", "tiny", "--model", model]))
        cpu = resolve_train_spec(_parse(["train", "--data", "scp1", "--model", model]))
        assert spec.data == "tiny" and spec.model == cpu.model
        assert (spec.model.n_blocks, spec.model.ssm_dim) == (2, 32)
        assert (spec.lr, spec.batch_size) == (cpu.lr, cpu.batch_size)


def test_adding_presets_and_init_from_option(tmp_path):
    spec = resolve_train_spec(_parse(["train", "--data", "adding"]))
    assert spec.length == 4000 and spec.model.norm == "batch"  # the long-range preset
    assert spec.data_options == {"values": [-1.0, 1.0]}
    warm = resolve_train_spec(
        _parse(["train", "--config", "adding-linhru-warmup", "--init-from", str(tmp_path)])
    )
    assert warm.length == 1000 and warm.init_from == str(tmp_path.resolve())
    assert warm.model == spec.model  # the two stages share one architecture
