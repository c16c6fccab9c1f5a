"""The ``physim`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from physim import jsonio
from physim._version import __version__
from physim.answers.commands import register as register_answers
from physim.cli_args import settle
from physim.cli_errors import report_error
from physim.hssm.commands import register as register_hssm
from physim.protocol.commands import register as register_protocol
from physim.schema import register as register_schema
from physim.spice.commands import register as register_spice
from physim.study.commands import register as register_study
from physim.threads import single_threaded_blas
from physim.tools.commands import register as register_tools

#: what `physim --help` shows (plain text: argparse prints it as is)
DESCRIPTION = (
    "Simulate self-learning Hamiltonian hardware trained in situ by RHEL. DEVICE and PROTOCOL "
    "are catalogue names (physim devices, physim protocols) or paths to TOML files; "
    "`physim schema KIND` prints the JSON Schema of each spec, with units. Commands with "
    "--json print only JSON on stdout; messages, warnings and progress go to stderr."
)


def _cmd_devices(args: argparse.Namespace) -> int:
    from physim.catalogues import listing
    from physim.specs import DEVICES

    print(listing(DEVICES, lambda s: (s.kind, s.description), (18, 19)))
    return 0


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from physim.gradcheck import format_report, gradcheck
    from physim.specs import load_device

    device = load_device(args.device)
    rep = gradcheck(
        device,
        n_steps=args.steps,
        batch=args.batch,
        eps=args.eps,
        seed=args.seed,
        n_fd=args.n_fd,
        progress=True,
    )
    print(jsonio.dumps(rep.to_json(), indent=2) if args.json else format_report(rep))
    return 0 if rep.passed else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from physim.demo import run_demo

    res = run_demo(
        args.device,
        epochs=args.epochs,
        lr=args.lr,
        eps=args.eps,
        out=args.out,
        plot=not args.no_plot,
        force=args.force,
    )
    print(
        f"loss {res.losses[0]:.4g} -> {res.losses[-1]:.4g} after {args.epochs} epochs of in-situ RHEL"
    )
    print(f"wrote {res.metrics}")
    print(f"wrote {res.log}  (inspect with: physim inspect {res.log})")
    if res.png is not None:
        print(f"wrote {res.png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="physim", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"physim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("devices", help="list the device catalogue (name first)")
    p.set_defaults(func=_cmd_devices)

    p = sub.add_parser("gradcheck", help="RHEL vs BPTT twin vs finite differences on a device")
    p.add_argument("device", help="catalogue name or path to a device TOML")
    p.add_argument("--steps", type=int, default=200, help="sequence length (default 200)")
    p.add_argument("--batch", type=int, default=2, help="independent sequences (default 2)")
    p.add_argument(
        "--eps",
        type=float,
        default=None,
        help="relative nudge strength (default 1e-2 for quadratic Hamiltonians, 1e-6 otherwise)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random input and target")
    p.add_argument("--n-fd", type=int, default=3, help="finite-difference samples per group")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_gradcheck, kernels=True)

    p = sub.add_parser(
        "demo", help="train the two-mass device in situ by RHEL; write metrics and a figure"
    )
    p.add_argument(
        "--device", default="two-mass", help="a device with a [task] table (default two-mass)"
    )
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.02, help="Adam learning rate")
    p.add_argument("--eps", type=float, default=1e-3, help="relative nudge strength")
    p.add_argument("--out", type=Path, default=Path("physim-out"), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--force", action="store_true", help="overwrite earlier demo outputs in --out")
    p.set_defaults(func=_cmd_demo, kernels=True)

    register_protocol(sub)
    register_tools(sub)
    register_hssm(sub)
    register_schema(sub)
    register_spice(sub)
    register_study(sub)
    register_answers(sub)
    return settle(parser)  # counts read `1e12`; options read `-1e-3` (physim.cli_args)


def main(argv: list[str] | None = None) -> int:
    import warnings

    from physim.warnings import cli_format

    warnings.formatwarning = cli_format  # PhysimWarning: one line on stderr, no source line
    parser = build_parser()
    args = parser.parse_args(argv)
    # a command that runs numba kernels (and so may compile them first) says so where it is
    # defined: set_defaults(func=..., kernels=True)
    if getattr(args, "kernels", False):
        from physim.feedback import compile_notice

        compile_notice()  # one stderr line, only when numba's cache is cold
    try:
        with single_threaded_blas():
            return int(args.func(args))
    except BrokenPipeError:
        # output piped into e.g. `head`, which closed early: not an error of the command
        sys.stderr.close()
        return 0
    except (Exception, KeyboardInterrupt) as err:
        # one line for user error, a numerical fault or Ctrl-C; physim's own bugs re-raise
        return report_error(args.command, err)


if __name__ == "__main__":
    sys.exit(main())
