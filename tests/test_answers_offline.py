"""In-situ vs offline training under mismatch, and its study measure."""

import json

import pytest

from physim.answers.offline import offline_vs_insitu
from physim.cli import main
from physim.instrument.specs import parse_nonideal
from physim.protocol.specs import load_protocol
from physim.specs import load_device
from physim.study.expand import expand
from physim.study.spec import load_study
from physim.study.task import run_point

#: on an ideal chip both routes follow the same Adam path on gradients that agree to ~1e-10
#: (RHEL = BPTT for a quadratic device), so their final losses agree far below this
SAME_PATH_RTOL = 1e-6
#: 5 % mismatch: offline-trained weights miss the chip by far more than this factor
MISMATCH_PENALTY = 3.0


def _protocol():
    p = load_protocol("rhel-centred-rerun")
    return p.model_copy(update={"eps": 1e-3})


def _chip(sigma: float, seed: int = 1):
    return parse_nonideal({"sources": [{"kind": "mismatch", "relative_dtod": sigma, "seed": seed}]})


def test_on_an_ideal_chip_both_routes_reach_the_same_loss():
    r = offline_vs_insitu(load_device("chain-16"), _protocol(), _chip(0.0), epochs=15)
    assert r["loss_offline"] == pytest.approx(r["loss_insitu"], rel=SAME_PATH_RTOL)
    assert r["loss_offline"] == pytest.approx(r["loss_twin"], rel=SAME_PATH_RTOL)
    assert r["loss_insitu"] < 0.5 * r["loss_initial"]  # training did something


@pytest.mark.parametrize("name", ["chain-16", "lc-ladder-8"])
def test_mismatch_breaks_offline_weights_but_not_in_situ_training(name):
    r = offline_vs_insitu(load_device(name), _protocol(), _chip(0.05), epochs=60)
    assert r["loss_offline"] > MISMATCH_PENALTY * r["loss_insitu"]
    assert r["offline_over_insitu"] == pytest.approx(r["loss_offline"] / r["loss_insitu"])


def test_shipped_study_runs_a_point_with_the_offline_vs_insitu_measure():
    plan = expand(load_study("offline-vs-insitu-chain-16"))
    assert plan.spec.measure.kind == "offline_vs_insitu"
    task = plan.task(plan.n_points - 1)  # largest sigma, last replicate
    m = json.loads(task.measure)
    task = task.with_(measure=json.dumps({**m, "epochs": 3}))
    r = run_point(task)
    assert r["error"] is None
    assert set(r["metrics"]) == {
        "loss_initial",
        "loss_offline",
        "loss_insitu",
        "loss_twin",
        "offline_over_insitu",
    }


def test_routes_rejects_a_folder_without_results(tmp_path, capsys):
    assert main(["routes", str(tmp_path)]) == 2
    assert "results.nc: run the study first (physim sweep run" in capsys.readouterr().err
