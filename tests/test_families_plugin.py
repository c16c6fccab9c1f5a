"""A device family and a protocol step from outside physim: installed, found by entry points.

``tests/plugins/duffing_family`` is a real distribution (pyproject; ``physim.families`` and
``physim.steps`` entry points; a family without fused echo kernels and a ``probe`` step). It
is pip-installed into a temporary directory and used from a fresh interpreter with that
directory on its path — the dispatch is generated at import, so a family joins it only in a
process that has it installed from the start. There the family must be listed, validated,
built, dispatched to (id 3) and give RHEL gradients equal to the BPTT twin's; the step must be
a valid op, checked in sequence and run by the protocol engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "plugins" / "duffing_family"
#: as tests/test_core_gradients.py: RHEL equals BPTT to 1e-6 relative per group (O(ε²) bias
#: ~1e-10 at the default ε = 1e-6, plus the echo difference's round-off ~1e-16/ε)
RHEL_BPTT_RTOL = 1e-6
#: as tests/test_core_fused.py: the composed accumulation adds the plain kernels' terms,
#: grouped differently — round-off of a few additions relative to the largest term
ACC_RTOL = 1e-13
#: a cold compile of the integrators for the new family set takes ~1–2 min on 2 cores
TIMEOUT_S = 900


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory, pip_install) -> dict[str, str]:
    """Environment of a Python that has the Duffing family installed (a real pip install)."""
    target = pip_install(PLUGIN, tmp_path_factory.mktemp("site"))
    assert list(target.glob("duffing_family-*.dist-info/entry_points.txt"))
    repo = str(HERE.parent)
    path = os.pathsep.join([str(target), repo, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def plugin_run(plugin_env) -> dict:
    """What tests/plugins/check_duffing.py measured in a process with the plugin installed."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "plugins" / "check_duffing.py")],
        env=plugin_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_installed_family_is_discovered_dispatched_and_matches_bptt(plugin_run):
    out = plugin_run
    # registered after the built-ins, listed by `physim schema`, its own family id
    assert out["families"] == ["oscillator_network", "lc_network", "linhru", "nonlinhru", "duffing"]
    assert "duffing" in out["schema_kinds"] and out["schema_title"] == "DuffingSpec"
    assert out["family_id"] == 3 and out["family_names"]["3"] == "duffing"
    # the gradients are real (not zero) and RHEL equals the twin
    assert out["losses"][0] == out["losses"][1] and out["grad_norm"] > 0
    bad = {k: v for k, v in out["rhel_vs_bptt"].items() if not v <= RHEL_BPTT_RTOL}
    assert not bad, f"RHEL vs BPTT on the Duffing family: groups beyond {RHEL_BPTT_RTOL}: {bad}"
    # one id past the last registered family raises, in that process too
    assert "no kernels for this device family id" in out["unknown_id_error"]
    # no fused kernels: the dispatch composes the plain ones (moved from test_core_fused)
    f = out["fused"]
    assert f["T_forces_equal"] and f["V_forces_equal"] and f["ds_equal"]
    assert f["T_acc_dev"] <= ACC_RTOL * f["T_acc_scale"]
    assert f["V_acc_dev"] <= ACC_RTOL * f["V_acc_scale"]


def test_installed_step_is_a_valid_op_checked_and_run_by_the_engine(plugin_run):
    probe = plugin_run["probe"]
    assert probe["ops"] == ["drive", "flip", "kick", "measure", "prepare", "probe", "split"]
    assert probe["kind"] == "snapshot" and probe["meta"]["probe"] is True
    # read after the 50-step forward drive: the readout of its final state
    assert probe["last_index"] == 50 and probe["equals_final_sample"]
    assert "steps[3] (probe): record name 'p' is used twice" in probe["duplicate_refused"]


def test_builtin_process_does_not_see_the_plugin():
    """The plugin is installed only in the subprocess's path: this process's registry is the
    built-ins (nothing leaked into the shared environment)."""
    from physim.families import FAMILIES
    from physim.protocol.steps import STEPS

    assert "duffing" not in FAMILIES and "probe" not in STEPS
