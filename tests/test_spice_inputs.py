"""SPICE import refuses what physim cannot build (with the line), before writing a file;
export refuses inputs a netlist cannot carry."""

from __future__ import annotations

import numpy as np
import pytest

from physim.cli import main
from physim.memory import MemoryBudgetError
from physim.specs import load_spec
from physim.spice.instance import export_device
from physim.spice.parse import NetlistError, import_netlist

_TAIL = "\n.tran 1n 100n\n.end\n"


def test_import_refuses_a_step_beyond_stability_with_the_tran_line():
    # a 1 nH / 1 pF tank rings at 5 GHz: a 1 ns step is far beyond ω·dt = 2
    with pytest.raises(NetlistError, match=r"line 5: '.tran 1n 100n': physim cannot simulate"):
        import_netlist("tank\nC1 a 0 1p\nL1 a 0 1n\nI1 0 a DC 1m" + _TAIL)


def test_import_refuses_a_node_without_capacitance(tmp_path, capsys):
    cir = tmp_path / "bare.cir"
    cir.write_text("bare\nC1 a 0 1n\nL1 a b 1u\nL2 b 0 1u\nI1 0 a DC 1m" + _TAIL)
    out = tmp_path / "bare.toml"
    assert main(["import-spice", str(cir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "physim cannot build the imported circuit" in err and "\n" not in err
    assert not out.exists()  # nothing written that physim would then refuse


@pytest.mark.parametrize(
    ("card", "what"),
    [("I1 0 a DC 0", "its amplitude is 0.0"), ("I1 0 a SIN(0 0 5meg)", "its amplitude is 0.0")],
)
def test_import_refuses_zero_gain_sources(card, what):
    with pytest.raises(NetlistError, match=rf"line 4: .*{what}: an input channel of gain"):
        import_netlist(f"tank\nC1 a 0 1n\nL1 a 0 1u\n{card}" + _TAIL)


def test_import_refuses_a_non_finite_g_source_gain():
    net = "tank\nC1 a 0 1n\nL1 a 0 1u\nVin in_0 0 DC 1\nG1 0 a in_0 0 {1e200*1e200}" + _TAIL
    with pytest.raises(NetlistError, match=r"line 5: .*its gain is inf"):
        import_netlist(net)


def test_import_of_a_2000_term_param_sum_is_one_error():
    total = "+".join(["1n"] * 2000)
    net = f"tank\n.param c={{{total}}}\nC1 a 0 {{c}}\nL1 a 0 1u\nI1 0 a DC 1m" + _TAIL
    with pytest.raises(NetlistError, match=r"line 2: .*too deeply nested.*several .param lines"):
        import_netlist(net)


def test_import_of_a_huge_netlist_checks_the_memory_budget(monkeypatch):
    monkeypatch.setenv("PHYSIM_MEMORY_BUDGET", "64MiB")
    n = 2000  # 4 matrices of 2000 x 2000 floats: 122 MiB
    cards = "\n".join(f"C{k} n{k} 0 1n\nL{k} n{k} 0 1u" for k in range(n))
    with pytest.raises(MemoryBudgetError, match=r"a netlist of 2000 nodes needs about 122 MiB"):
        import_netlist(f"big\n{cards}\nI1 0 n0 DC 1m" + _TAIL)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_export_refuses_non_finite_inputs(bad):
    u = np.zeros((10, 1))
    u[3, 0] = bad
    with pytest.raises(ValueError, match=rf"must be finite .* got u\[3, 0\] = {bad}"):
        export_device(load_spec("lc-ladder-8"), u)


def test_export_spice_cli_refuses_nan_amplitude_and_input_files(tmp_path, capsys):
    assert main(["export-spice", "lc-ladder-8", "--amplitude", "nan"]) == 2
    assert (
        "--amplitude is the rms of the task's input and must be finite" in capsys.readouterr().err
    )
    f = tmp_path / "u.txt"
    f.write_text("0\n1\nnan\n")
    out = tmp_path / "x.cir"
    assert main(["export-spice", "lc-ladder-8", "--input", str(f), "--out", str(out)]) == 2
    assert "got u[2, 0] = nan" in capsys.readouterr().err and not out.exists()


def test_lc_source_input_index_is_checked_against_the_memory_budget(monkeypatch):
    from physim.specs import parse_spec

    monkeypatch.setenv("PHYSIM_MEMORY_BUDGET", "1GiB")

    d = load_spec("lc-ladder-8").model_dump(mode="json")
    d["sources"] = [{"node": d["nodes"][0], "input": 2**31, "gain": 1.0}]
    with pytest.raises(
        MemoryBudgetError, match=r"8 nodes × 2147483649 input channels .* needs about 384 GiB"
    ):
        parse_spec(d).build()
