"""Sub-commands of ``physim`` for SPICE: ``export-spice``, ``import-spice`` and ``spice-check``.

``register(subparsers)`` adds them to an argparse sub-parser set; each sets ``func`` to a
function of the parsed arguments that returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: a measured order this close to the leapfrog's 2 passes spice-check (three dts, one halving
#: each: noise-free runs give 2.00 ± 0.02, see the README's table)
ORDER_TOL = 0.25


def _inputs(path: Path | None) -> np.ndarray | None:
    """An input sequence (n_steps, n_inputs) from a .npy or whitespace/comma text file."""
    if path is None:
        return None
    if not path.exists():
        raise FileNotFoundError(f"no input file {str(path)!r}")
    if path.suffix == ".npy":
        u = np.load(path)
    else:
        text = path.read_text().replace(",", " ")
        u = np.loadtxt(text.splitlines(), ndmin=1)
    u = np.asarray(u, dtype=np.float64)
    return u[:, None] if u.ndim == 1 else u


def _check_amplitude(amplitude: float) -> None:
    if not (np.isfinite(amplitude) and amplitude >= 0):
        raise ValueError(
            f"--amplitude is the rms of the task's input and must be finite and >= 0, got "
            f"{amplitude}; e.g. --amplitude 1"
        )


def _write(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    path.write_text(text)


def _device_and_instance(args: argparse.Namespace):
    from physim.instrument.specs import load_nonideal
    from physim.specs import load_spec
    from physim.spice.instance import lc_spec

    spec = lc_spec(load_spec(args.device))
    nonideal = load_nonideal(args.nonideal) if args.nonideal else None
    if args.replicate is not None and nonideal is None:
        raise ValueError("--replicate selects an instance of --nonideal FILE; give both")
    return spec, nonideal


def _cmd_export(args: argparse.Namespace) -> int:
    from physim.spice.instance import device_inputs, export_device

    spec, nonideal = _device_and_instance(args)
    _check_amplitude(args.amplitude)
    u = _inputs(args.input)
    if u is None:
        u = device_inputs(spec, args.steps, args.amplitude, args.seed)
    data = args.data or (args.out.with_suffix(".dat").name if args.out else "physim-spice.dat")
    net, _ = export_device(
        spec,
        u,
        nonideal=nonideal,
        replicate=args.replicate,
        chip_seed=args.chip_seed,
        data_file=data,
    )
    if args.out is None:
        sys.stdout.write(net.text)
        return 0
    try:
        _write(args.out, net.text, args.force)
    except FileExistsError as err:
        raise ValueError(str(err)) from None
    print(f"wrote {args.out}  ({net.n_steps} steps of {net.dt:.4g} s; run: ngspice -b {args.out}")
    print(f"  writes {data}: time, then {', '.join(net.columns[:3])}, ...)")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from physim.instrument.specs import load_nonideal
    from physim.specs import load_spec
    from physim.spice.parse import import_netlist
    from physim.spice.tomlout import to_toml

    if not args.netlist.exists():
        raise FileNotFoundError(f"no netlist {str(args.netlist)!r}")
    imp = import_netlist(args.netlist.read_text(), str(args.netlist))
    out = args.out or Path(f"{args.netlist.stem}.toml")
    written = []
    try:
        _write(out, to_toml(imp.spec.model_dump(), f"imported from {args.netlist}"), args.force)
        written.append(out)
        if imp.nonideal is not None:
            nout = args.nonideal_out or Path(f"{args.netlist.stem}-loss.toml")
            text = to_toml(imp.nonideal.model_dump(), f"resistors of {args.netlist}")
            _write(nout, text, args.force)
            written.append(nout)
    except FileExistsError as err:
        raise ValueError(str(err)) from None
    load_spec(out)  # what we wrote must load
    if len(written) > 1:
        load_nonideal(written[1])
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from physim.spice.check import format_agreement, spice_check

    spec, nonideal = _device_and_instance(args)
    _check_amplitude(args.amplitude)
    try:
        agr = spice_check(
            spec,
            nonideal=nonideal,
            replicate=args.replicate,
            chip_seed=args.chip_seed,
            u=_inputs(args.input),
            n_steps=args.steps,
            amplitude=args.amplitude,
            seed=args.seed,
            keep=args.keep,
            ref_check=args.ref_check,
        )
    except RuntimeError as err:
        print(f"physim spice-check: error: {err}", file=sys.stderr)
        return 2
    passed = abs(agr.order() - 2.0) <= ORDER_TOL
    # --json: stdout is the JSON alone (pipe it into jq); the table goes to stderr
    print(format_agreement(agr), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({**agr.as_dict(), "passed": passed}))
    return 0 if passed else 1


def _instance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("device", help="an lc_network catalogue name or TOML path")
    p.add_argument("--nonideal", type=Path, default=None, help="non-ideality TOML (an instance)")
    p.add_argument(
        "--replicate",
        type=int,
        default=None,
        help="instance number: the chip of replicate R in a study or budget of seed --chip-seed "
        "(every source seeded by physim.seeding.replicate_chip)",
    )
    p.add_argument(
        "--chip-seed",
        type=int,
        default=0,
        help="the study or budget seed whose replicate R is exported (default 0, as theirs)",
    )
    p.add_argument(
        "--input", type=Path, default=None, help="input sequence (.npy or text, steps x inputs)"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="steps of the task's input (default: the task's)"
    )
    p.add_argument("--amplitude", type=float, default=1.0, help="rms of the task's input")
    p.add_argument("--seed", type=int, default=0, help="seed of the task's input")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-spice", help="write an LC device (or an instance) as an ngspice netlist"
    )
    _instance_args(p)
    p.add_argument("--out", type=Path, default=None, help="netlist file (default: stdout)")
    p.add_argument("--data", default=None, help="file wrdata writes (default: OUT.dat)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("import-spice", help="read a SPICE netlist into an lc_network TOML")
    p.add_argument("netlist", type=Path, help="a .cir netlist")
    p.add_argument("--out", type=Path, default=None, help="device TOML (default: STEM.toml)")
    p.add_argument(
        "--nonideal-out",
        type=Path,
        default=None,
        help="dissipation TOML for the resistors (default: STEM-loss.toml)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser(
        "spice-check", help="physim at dt, dt/2, dt/4 vs ngspice: max relative error and order"
    )
    _instance_args(p)
    p.add_argument("--keep", type=Path, default=None, help="keep the netlist and data in DIR")
    p.add_argument(
        "--ref-check",
        action="store_true",
        help="also run ngspice at half its step and a tenth of its reltol: the reference's error",
    )
    p.add_argument("--json", action="store_true", help="last line: JSON with max_rel_err, order")
    p.set_defaults(func=_cmd_check, kernels=True)
