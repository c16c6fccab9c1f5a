"""Malformed netlists and impossible exports get errors that say where and how to fix."""

from __future__ import annotations

import numpy as np
import pytest

import physim.spice.check as check
from physim.cli import main
from physim.instrument.specs import parse_nonideal
from physim.specs import SpecError, load_spec, parse_spec
from physim.spice.instance import export_device, replicate_nonideal
from physim.spice.parse import NetlistError, import_netlist

_TAIL = "\n.tran 1n 100n\n.end\n"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "C1 a 0 1p\nQ1 c b e npn",
            r"line 3: 'Q1 c b e npn': bipolar transistors are not supported",
        ),
        ("C1 a 0 1p\nC2 b 0 1p\nR1 a b 1k", r"line 4: 'R1 a b 1k': a resistor between two nodes"),
        ("C1 a 0 abc", r"line 2: 'C1 a 0 abc': cannot read the value 'abc'"),
        ("C1 a 0 {2*x}", r"line 2: .*unknown parameter 'x' \(define it with .param\)"),
        ("C1 a 0 1p\nC2 b 0 1p\nI1 a b 1m", r"line 4: .*must connect a node to ground"),
        ("C1 a 0 1p\n.subckt amp 1 2", r"line 3: '.subckt amp 1 2': .subckt is not supported"),
        (
            "C1 a 0 1p\nI1 0 a PULSE(0 1 0 1n 1n 5n 10n)",
            r"line 3: .*waveform PULSE is not supported",
        ),
        ("C1 a 0 1p\nB1 a 0 V=v(a)*2", r"line 3: .*behavioural sources are read only in physim"),
        ("C1 a 0 1p\nL1 a 0 1n IC=1m", r"line 3: .*initial inductor current is read only with"),
        ("C1 a 0 1p\nR1 a 0 -5", r"line 3: 'R1 a 0 -5': resistance must be > 0"),
        ("C1 a 0 1p\nK1 L1 L2 0.5", r"line 3: .*coupled inductors \(K\) are not supported"),
        ("C1 a 0 1p\nV1 a b 1", r"line 3: .*a voltage source is read only as an input channel"),
        # a voltage source on a circuit node, or one driving nothing, was once dropped silently,
        # leaving an undriven circuit on which gradcheck then passed
        (
            "C1 a 0 1p\nL1 a 0 1n\nV1 a 0 SIN(0 1 1meg)",
            r"line 4: .*fixes the voltage of circuit node 'a'.*current source",
        ),
        ("C1 a 0 1p\nV1 x 0 PULSE(0 1)", r"line 3: .*drives node 'x', which no G source reads"),
        # the offset of a SIN current (and a DC value beside a waveform) was dropped silently
        ("C1 a 0 1p\nI1 a 0 SIN(1m 2m 1meg)", r"line 3: .*SIN offset 1m is not read"),
        ("C1 a 0 1p\nI1 a 0 DC 1m SIN(0 2m 1meg)", r"line 3: .*a DC value \(1m\) beside a SIN"),
        ("C1 a 0 1p\nG1 0 a b 0 1m", r"line 3: .*control node 'b' is not driven by an input V"),
        ("C1 a 0 1p\n.param k", r"line 3: .*\.param takes name=value pairs"),
        ("C1 a 0 1p\n.ic v(zz)=1", r"line 3: .*v\(zz\) names no node of the circuit"),
        ("C1 a 0 1p\n.foo 3", r"line 3: '.foo 3': unknown control card '.foo'"),
        ("C1 a 0 1p extra=3", r"line 2: .*option 'extra=3' is not supported on a C element"),
        ("C1 flux_a 0 1p", r"line 2: .*only 'Cflux_<node> flux_<node> 0 sigma'"),
        ("C1 a 0 1p\nI1 0 a DC 0 trnoise(1n 1p)", r"line 3: .*trnoise source needs a resistor"),
    ],
)
def test_malformed_netlists_name_the_line(body, match):
    with pytest.raises(NetlistError, match=match):
        import_netlist("title\n" + body + _TAIL)


def test_netlist_level_errors():
    with pytest.raises(NetlistError, match="the netlist is empty"):
        import_netlist("")
    with pytest.raises(NetlistError, match=r"no \.tran card; add '\.tran <dt> <stop>'"):
        import_netlist("t\nC1 a 0 1p\n.end\n")
    with pytest.raises(NetlistError, match=r"line 2: .*a \.control block without \.endc"):
        import_netlist("t\n.control\nrun\nC1 a 0 1p\n.tran 1n 1u\n")
    with pytest.raises(NetlistError, match=r"line 2: '\+ 1p': a continuation line"):
        import_netlist("t\n+ 1p\n.tran 1n 1u\n")
    with pytest.raises(NetlistError, match="imply different temperatures"):
        import_netlist(
            "t\nC1 a 0 1p\nC2 b 0 1p\nR1 a 0 1k\nR2 b 0 1k\n"
            "I1 a 0 DC 0 trnoise(1n 1p 0 0)\nI2 b 0 DC 0 trnoise(2n 1p 0 0)" + _TAIL
        )
    with pytest.raises(NetlistError, match=r"line 5: .*this resistor has no trnoise source"):
        import_netlist(
            "t\nC1 a 0 1p\nC2 b 0 1p\nR1 a 0 1k\nR2 b 0 1k\nI1 a 0 DC 0 trnoise(1n 1p 0 0)" + _TAIL
        )


def test_a_netlist_that_breaks_the_device_schema_says_which_field():
    # an island without a capacitor to ground is caught when the spec is built from the netlist
    with pytest.raises(
        SpecError, match=r"elements\.0\.capacitor\.C: Input should be greater than 0"
    ):
        import_netlist("t\nC1 a 0 0" + _TAIL)


def _lc(**over) -> dict:
    data = {
        "kind": "lc_network",
        "name": "t",
        "dt": 1e-9,
        "nodes": ["a", "b"],
        "elements": [
            {"type": "capacitor", "name": "C1", "a": "a", "C": 1e-9},
            {"type": "capacitor", "name": "C2", "a": "b", "C": 1e-9},
            {"type": "inductor", "name": "L1", "a": "a", "b": "b", "L": 1e-6},
        ],
    }
    return parse_spec({**data, **over})


def test_export_refuses_what_spice_cannot_name():
    with pytest.raises(
        ValueError, match="needs an lc_network device, got kind = 'oscillator_network'"
    ):
        export_device(load_spec("two-mass"))
    with pytest.raises(
        ValueError, match="node 'flux_b' starts with a prefix the SPICE export reserves"
    ):
        export_device(
            _lc(
                nodes=["a", "flux_b"],
                elements=[
                    {"type": "capacitor", "name": "C1", "a": "a", "C": 1e-9},
                    {"type": "capacitor", "name": "C2", "a": "flux_b", "C": 1e-9},
                ],
            )
        )
    with pytest.raises(ValueError, match="node 'A' is not a distinct SPICE node name"):
        export_device(
            _lc(
                nodes=["a", "A"],
                elements=[
                    {"type": "capacitor", "name": "C1", "a": "a", "C": 1e-9},
                    {"type": "capacitor", "name": "C2", "a": "A", "C": 1e-9},
                ],
            )
        )
    with pytest.raises(
        ValueError, match="element 'c1' is written as 'c1', which is not a distinct"
    ):
        export_device(
            _lc(
                elements=[
                    {"type": "capacitor", "name": "C1", "a": "a", "C": 1e-9},
                    {"type": "capacitor", "name": "c1", "a": "b", "C": 1e-9},
                ],
            )
        )
    with pytest.raises(ValueError, match="'Bflux_a', a name the SPICE export reserves"):
        export_device(
            _lc(
                elements=[
                    {"type": "capacitor", "name": "C1", "a": "a", "C": 1e-9},
                    {"type": "capacitor", "name": "C2", "a": "b", "C": 1e-9},
                    {"type": "josephson", "name": "flux_a", "a": "a", "E_J": 1e-23},
                ],
            )
        )
    with pytest.raises(
        ValueError, match=r"input of 'josephson-4' must have shape \(n_steps >= 1, 2\)"
    ):
        export_device(load_spec("josephson-4"), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="--replicate must be >= 0, got -1"):
        replicate_nonideal(parse_nonideal({}), -1)


def test_spice_check_refuses_noise_and_names_the_missing_ngspice(monkeypatch):
    hot = parse_nonideal(
        {"sources": [{"kind": "dissipation", "damping_rate": 1e5, "temperature": 300.0}]}
    )
    with pytest.raises(ValueError, match="compares deterministic trajectories.*temperature = 300"):
        check.spice_check(load_spec("lc-ladder-8"), nonideal=hot)
    monkeypatch.setattr(check.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="install it with: apt-get install -y ngspice"):
        check.ngspice_path()


def test_import_spice_cli_writes_both_specs_and_never_overwrites(tmp_path, capsys):
    cir = tmp_path / "tank.cir"
    cir.write_text("tank\nC1 a 0 1n\nL1 a 0 1u\nR1 a 0 1k\nI1 0 a SIN(0 1m 5meg)" + _TAIL)
    out, loss = tmp_path / "tank.toml", tmp_path / "tank-loss.toml"
    args = ["import-spice", str(cir), "--out", str(out), "--nonideal-out", str(loss)]
    assert main(args) == 0
    assert load_spec(out).elements[1].L == pytest.approx(1e-6)
    assert "damping_rate" in loss.read_text()
    assert main(args) == 2
    assert "exists; pass --force to overwrite it" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    bad = tmp_path / "bad.cir"
    bad.write_text("bad\nC1 a 0 1n\nD1 a 0 dmod" + _TAIL)
    assert main(["import-spice", str(bad), "--out", str(tmp_path / "b.toml")]) == 2
    assert "line 3: 'D1 a 0 dmod': diodes are not supported" in capsys.readouterr().err


def test_export_warns_about_what_the_netlist_leaves_out():
    drift = parse_nonideal(
        {
            "sources": [
                {"kind": "drift", "relative_std": 1e-3},
                {"kind": "adc", "target": "readout", "bits": 12},
            ]
        }
    )
    with pytest.warns(UserWarning, match="sources adc, drift exist only in physim's instrument"):
        export_device(load_spec("lc-ladder-8"), nonideal=drift)
    # josephson-4's per-mode friction needs two negative conductances between its islands
    q10 = parse_nonideal({"sources": [{"kind": "dissipation", "quality_factor": 10.0}]})
    with pytest.warns(UserWarning, match="not a passive resistor network: 2 of 10 resistors"):
        export_device(load_spec("josephson-4"), nonideal=q10)
