"""One spec path: one catalogue lookup, one validation-error formatter, one listing pattern, one
replicate-chip seeding, and the per-point task as a typed record."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from physim.answers.budget import point_task
from physim.catalogues import CatalogueError
from physim.cli import main
from physim.hssm.config import PRESETS, TRAINING, ConfigError, load_train_spec, parse_train_spec
from physim.instrument.specs import NONIDEALS, NonidealError, load_nonideal, parse_nonideal
from physim.protocol.specs import PROTOCOLS, ProtocolError, load_protocol, parse_protocol
from physim.seeding import replicate_chip
from physim.specs import DEVICES, SpecError, load_device, load_spec, parse_spec
from physim.spice.instance import replicate_nonideal
from physim.study import StudyError, expand, parse_study
from physim.study.point import PointTask
from physim.study.spec import STUDIES, study_from_json

CATALOGUES = [DEVICES, PROTOCOLS, NONIDEALS, STUDIES, TRAINING]
CHIP = {
    "name": "chip",
    "sources": [
        {"kind": "dissipation", "quality_factor": 100.0, "temperature": 300.0, "seed": 1},
        {"kind": "mismatch", "relative_dtod": 0.02, "input_dtod": 0.02, "seed": 2},
        {"kind": "adc", "target": "accumulator", "bits": 16, "seed": 3},
    ],
}


# ------------------------------------------------------------------------- catalogue lookup
@pytest.mark.parametrize("cat", CATALOGUES, ids=lambda c: c.folder)
def test_every_catalogue_entry_loads_and_an_unknown_name_lists_them(cat):
    entries = cat.entries()
    assert entries
    for name in entries:
        cat.load(name)
    with pytest.raises(CatalogueError, match=rf"unknown {cat.what} 'no-such'.*{cat.command}"):
        cat.load("no-such")
    with pytest.raises(FileNotFoundError, match=rf"no {cat.what} file 'missing\.toml'"):
        cat.load("missing.toml")


def test_an_existing_file_wins_over_a_catalogue_name(tmp_path, monkeypatch):
    # a file named like a catalogue entry is what the user points at
    shutil.copy(DEVICES.entries()["two-mass"], tmp_path / "chain-16")
    monkeypatch.chdir(tmp_path)
    assert load_spec("chain-16").name == "two-mass"
    assert load_spec("lc-ladder-8").name == "lc-ladder-8"


@pytest.mark.parametrize(
    ("load", "error"),
    [
        (load_spec, SpecError),
        (load_protocol, ProtocolError),
        (load_nonideal, NonidealError),
        (load_train_spec, ConfigError),
    ],
)
def test_a_file_that_is_not_toml_names_itself(tmp_path, load, error):
    bad = tmp_path / "bad.toml"
    bad.write_text("x = = 1\n")
    with pytest.raises(error, match=r"bad\.toml: not valid TOML"):
        load(bad)


def test_training_presets_are_a_catalogue_and_json_configs_still_load(tmp_path):
    assert set(PRESETS) == set(TRAINING.entries()) >= {"scp1-linhru-cpu", "adding-linhru-cpu"}
    assert PRESETS["adding-linhru-cpu"].patience is None  # patience = 0 in TOML: never stop
    assert PRESETS["scp1-linhru-cpu"].description
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"data": "tiny", "patience": None, "lr": 0.01}))
    assert load_train_spec(cfg).lr == 0.01


@pytest.mark.parametrize("command", ["devices", "protocols", "nonideals", "studies", "configs"])
def test_every_listing_command_lists_its_catalogue_name_first(command, capsys):
    cat = {c.command: c for c in CATALOGUES}[f"physim {command}"]
    assert main([command]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(cat.entries())


# ------------------------------------------------------------------- one error formatter
@pytest.mark.parametrize(
    ("parse", "data", "error", "what"),
    [
        (parse_spec, {"kind": "chain"}, SpecError, "device spec"),
        (parse_protocol, {"name": "p", "stepz": []}, ProtocolError, "protocol"),
        (parse_nonideal, {"sourcez": []}, NonidealError, "non-ideality spec"),
        (parse_study, {"name": "s", "replicatez": 1}, StudyError, "study spec"),
        (parse_train_spec, {"data": "tiny", "lrr": 1.0}, ConfigError, "training configuration"),
    ],
)
def test_every_loader_formats_errors_the_same_way(parse, data, error, what):
    with pytest.raises(error) as info:
        parse(data)
    head, *lines = str(info.value).splitlines()
    assert head.startswith(f"invalid {what} ") and head.endswith(":")
    assert lines and all(line.startswith("  ") and "(got " in line for line in lines)


# -------------------------------------------------------------- one replicate-chip seeding
def test_replicate_r_of_seed_s_is_the_same_chip_in_a_study_a_budget_and_a_spice_export():
    chip = parse_nonideal(CHIP)
    plan = expand(
        parse_study(
            {
                "name": "s",
                "seed": 7,
                "replicates": 3,
                "base": {"device": "lc-ladder-8", "protocol": "rhel-centred", "nonideal": CHIP},
            }
        )
    )
    device = load_device("lc-ladder-8")
    for r in range(3):
        non, seed = replicate_chip(chip, r, 7)
        study_task = plan.task(r)
        budget_task = point_task(device, load_protocol("rhel-centred"), chip, r, seed=7)
        assert study_task.seed == budget_task.seed == seed
        assert study_task.nonideal == budget_task.nonideal == non.model_dump_json()
        assert replicate_nonideal(chip, r, 7) == non
    seeds = [s.seed for s in replicate_chip(chip, 0, 7)[0].sources]
    assert len(set(seeds)) == 3  # each noise source its own stream
    assert replicate_chip(chip, 1, 7)[0] != replicate_chip(chip, 0, 7)[0]


def test_index_seeding_is_refused_with_the_fix_but_old_study_folders_stay_readable():
    spec = parse_study(
        {
            "name": "old",
            "seeding": "index",
            "base": {"device": "lc-ladder-8", "protocol": "rhel-centred"},
        }
    )
    with pytest.raises(StudyError, match=r"seeding = 'index' is no longer run.*delete the line"):
        expand(spec)
    assert study_from_json(spec.model_dump_json()).seeding == "index"


# ------------------------------------------------------------------ the per-point record
def test_the_point_task_is_a_frozen_record():
    task = PointTask(index=0, device="{}", protocol="{}", nonideal="{}", measure="{}", seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.seed = 2  # type: ignore[misc]
    assert task.with_(log="p.h5").log == "p.h5" and task.log is None
