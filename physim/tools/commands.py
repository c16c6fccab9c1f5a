"""Sub-commands ``physim inspect``, ``plot`` and ``replay``: the tools that read any log.

``register(subparsers)`` adds them to an argparse sub-parser set; each sets ``func`` to a
function of the parsed arguments that returns the exit code.
"""

from __future__ import annotations

import argparse


def _cmd_inspect(args: argparse.Namespace) -> int:
    from physim.tools.loginspect import summary

    print(summary(args.log))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from physim.tools.logplot import plot_log

    # plot_log refuses an existing file it did not write (the default beside the log too)
    print(f"wrote {plot_log(args.log, args.out, args.run, force=args.force)}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from physim.tools.replay import replay

    rep = replay(args.log)
    if rep.note:
        print(f"note: {rep.note}")
    if rep.ok and not rep.n_records:
        return 0
    if rep.ok:
        print(
            f"{args.log}: replay reproduces {rep.n_records} records of {rep.n_runs} "
            "execution(s) bit for bit"
        )
        return 0
    print(
        f"{args.log}: replay differs in {len(rep.mismatches)} of {rep.n_records} records: "
        f"{', '.join(rep.mismatches[:10])}"
    )
    return 1


def register(subparsers) -> None:
    """Add inspect / plot / replay to ``physim``'s sub-parsers."""
    p = subparsers.add_parser("inspect", help="summarise an HDF5 run log and its provenance")
    p.add_argument("log")
    p.set_defaults(func=_cmd_inspect)

    p = subparsers.add_parser("plot", help="plot a run log (trajectories, ∂H/∂θ, gradients)")
    p.add_argument("log")
    p.add_argument("--out", help="PNG path (default: next to the log)")
    p.add_argument("--run", help="protocol execution to plot (default: the first)")
    p.add_argument(
        "--force", action="store_true", help="overwrite --out even if physim did not write it"
    )
    p.set_defaults(func=_cmd_plot)

    p = subparsers.add_parser("replay", help="re-run a log from its provenance and compare")
    p.add_argument("log")
    p.set_defaults(func=_cmd_replay, kernels=True)
