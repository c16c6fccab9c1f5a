"""Sub-commands of ``physim`` for chip designers: ``nonideals`` and ``budget``.

``register(subparsers)`` adds them to an argparse sub-parser set; each sets ``func`` to a
function of the parsed arguments that returns the exit code.
"""

from __future__ import annotations

import argparse
import math
from contextlib import contextmanager, nullcontext


def _sources_and_summary(spec) -> tuple[str, str]:
    kinds = ", ".join(
        s.kind + (f"/{s.target}" if getattr(s, "target", None) else "") for s in spec.sources
    )
    return f"[{kinds}] ", " ".join(spec.description.split()).split(". ")[0]


def _cmd_nonideals(args: argparse.Namespace) -> int:
    if args.kinds:
        from physim.instrument.sources import SOURCES

        # every registered source kind, physim's own and installed plugins', name first
        for kind, cls in SOURCES.items():
            targets = ",".join(t for t in cls.targets if t)
            doc = " ".join((cls.spec_class.__doc__ or "").split()).split(". ")[0]
            where = cls.__module__.split(".")[0]
            print(f"{kind:<14} {targets or '-':<22} {where:<12} {doc}")
        return 0

    from physim.catalogues import listing
    from physim.instrument.specs import NONIDEALS

    print(listing(NONIDEALS, _sources_and_summary, (22, 0)))
    return 0


def register(subparsers) -> None:
    """Add ``nonideals`` and ``budget`` to ``physim``'s sub-parsers."""
    p = subparsers.add_parser(
        "nonideals", help="list the technology presets of non-idealities (name first)"
    )
    p.add_argument(
        "--kinds",
        action="store_true",
        help="list the source kinds instead (physim's own and installed plugins'), with their "
        "targets and package",
    )
    p.set_defaults(func=_cmd_nonideals)
    register_budget(subparsers)

    p = subparsers.add_parser(
        "routes",
        help="in-situ vs offline: table and figure from finished offline_vs_insitu studies",
    )
    p.add_argument("dirs", nargs="+", help="study folders written by `physim sweep run`")
    p.add_argument("--out", default="offline-vs-insitu.png", help="figure path")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_routes)


def _cmd_budget(args: argparse.Namespace) -> int:
    import json
    import time

    from physim.answers.report import format_budget, plot_budget, run_budget
    from physim.instrument.specs import load_nonideal
    from physim.protocol.specs import load_protocol
    from physim.spec_base import with_updates
    from physim.specs import load_device

    if not 0.0 < args.target < 1.0:
        raise ValueError(f"--target is a cosine in (0, 1), got {args.target}; e.g. --target 0.99")
    for opt, n in (("--replicates", args.replicates), ("--max-replicates", args.max_replicates)):
        if n is not None and not 1 <= n <= MAX_REPLICATES:
            raise ValueError(
                f"{opt} must be in 1..{MAX_REPLICATES} (simulated chips per level), got {n}; "
                "the default 3 (up to 12 while intervals are wide) is usually enough"
            )
    if args.max_replicates is not None and args.max_replicates < args.replicates:
        raise ValueError(
            f"--max-replicates ({args.max_replicates}) must be >= --replicates ({args.replicates})"
        )
    train = None
    if args.by == "train":
        if not args.train_factor > 1.0:
            raise ValueError(
                f"--train-factor is a ratio of final losses > 1, got {args.train_factor}; "
                "e.g. --train-factor 2"
            )
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        if not args.lr > 0:
            raise ValueError(f"--lr must be > 0, got {args.lr}")
        train = {"factor": args.train_factor, "epochs": args.epochs, "lr": args.lr}
    device = load_device(args.device)
    protocol = load_protocol(args.protocol)
    if args.steps is not None:
        # validated like every CLI override (--steps 0 is an error, not a silent spec)
        protocol = with_updates(protocol, task=with_updates(protocol.task, n_steps=args.steps))
    if protocol.estimator.kind != "sum":
        raise ValueError(
            f"--protocol {protocol.name!r} measures no gradient (estimator kind = "
            f"{protocol.estimator.kind!r}), and a budget is of the gradient's fidelity; use an "
            "RHEL protocol such as rhel-centred-rerun"
        )
    if args.eps is not None:
        _check_eps(args.eps, protocol.relative_eps)
    nonideal = load_nonideal(args.nonideal)
    if not nonideal.sources:
        raise ValueError(f"non-ideality {nonideal.name!r} has no sources: nothing to budget")
    t0 = time.perf_counter()
    from physim.study.engine import local_executor

    pool = local_executor(args.workers) if args.workers else nullcontext(None)
    from physim.answers.budget import BudgetPointError

    with pool as ex, _point_errors(BudgetPointError):
        rep = run_budget(
            device,
            protocol,
            nonideal,
            target=args.target,
            replicates=args.replicates,
            seed=args.seed,
            eps=args.eps,
            executor=ex,
            train=train,
            max_replicates=args.max_replicates,
        )
    rep["seconds"] = time.perf_counter() - t0
    png = None if args.no_plot else plot_budget(rep, args.out or f"budget-{device.name}.png")
    if png is not None:
        rep["figure"] = str(png)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print(format_budget(rep))
        if png is not None:
            print(f"wrote {png}")
    return 0


#: most replicate chips a budget measures per level: each is a full set of gradient runs
MAX_REPLICATES = 1000
#: largest relative nudge: the top of the budget's ε curve (ε is in units of the final momenta)
EPS_MAX_RELATIVE = 1.0


def _check_eps(eps: float, relative: bool) -> None:
    """``--eps`` must be a nudge the protocol can apply: finite, >= EPS_MIN and, relative to
    the final momenta, at most :data:`EPS_MAX_RELATIVE`."""
    from physim.spec_base import EPS_MIN

    top = EPS_MAX_RELATIVE if relative else math.inf
    if not (math.isfinite(eps) and EPS_MIN <= eps <= top):
        span = f"{EPS_MIN:.3g} <= eps <= {top:g}" if relative else f"finite eps >= {EPS_MIN:.3g}"
        raise ValueError(
            f"--eps must be a nudge with {span}"
            + (" (relative to the final momenta)" if relative else "")
            + f", got {eps}; e.g. --eps 1e-3, or leave it out to use the best eps"
        )


@contextmanager
def _point_errors(kind: type[Exception]):
    """A budget point that failed for a reason that is not the chip's (out of the memory
    budget, a crash) ends the command with that point's one-line message."""
    try:
        yield
    except kind as err:
        raise ValueError(" ".join(str(err).split())) from None


def register_budget(subparsers) -> None:
    p = subparsers.add_parser(
        "budget",
        help="error budget of a chip: attribution, tolerance of each source, best eps",
    )
    p.add_argument("device", help="catalogue name or path to a device TOML")
    p.add_argument("--nonideal", required=True, metavar="FILE", help="preset name or TOML path")
    p.add_argument("--protocol", default="rhel-centred-rerun", help="protocol (default: rerun)")
    p.add_argument(
        "--target",
        type=float,
        default=0.99,
        help="θ-scaled cosine vs the as-built twin (the unit-free fidelity; default 0.99)",
    )
    p.add_argument(
        "--by",
        choices=("gradient", "train"),
        default="gradient",
        help="tolerances by the gradient's fidelity only (default), or also in learning "
        "terms: the level where in-situ training ends above --train-factor x the ideal "
        "chip's final loss",
    )
    p.add_argument(
        "--train-factor",
        type=float,
        default=2.0,
        help="--by train: final loss over the ideal chip's that still counts as learning "
        "(default 2)",
    )
    p.add_argument("--epochs", type=int, default=20, help="--by train: epochs (default 20)")
    p.add_argument(
        "--lr", type=float, default=1e-2, help="--by train: relative learning rate (default 0.01)"
    )
    p.add_argument(
        "--replicates", type=int, default=3, help="replicate chips to start with (default 3)"
    )
    p.add_argument(
        "--max-replicates",
        type=int,
        help="replicate chips are added until each tolerance's 90 %% interval is within 2x "
        "(one bit for bits), up to this many (default 12)",
    )
    p.add_argument("--seed", type=int, default=0, help="study seed of the replicate chips")
    p.add_argument("--eps", type=float, help="measure (a), (b) at this eps (default: best eps)")
    p.add_argument("--steps", type=int, help="override the task's sequence length")
    p.add_argument("--workers", type=int, default=0, help="local worker processes (0: here)")
    p.add_argument("--out", help="figure path (default budget-DEVICE.png)")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_budget, kernels=True)


def _cmd_routes(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import xarray as xr

    from physim.answers.offline import format_summary, plot_routes, summarise

    datasets = {}
    for d in args.dirs:
        path = Path(d) / "results.nc"
        if not path.exists():
            raise FileNotFoundError(f"no {path}: run the study first (physim sweep run ...)")
        ds = xr.load_dataset(path)
        if ds.attrs.get("measure") != "offline_vs_insitu" or "sigma" not in ds.dims:
            raise ValueError(
                f"{path} is not an offline_vs_insitu study over sigma (measure = "
                f"{ds.attrs.get('measure')!r}); run e.g. studies/offline-vs-insitu-chain-16"
            )
        name = json.loads(ds.attrs["study"])["base"]["device"]
        datasets[name if isinstance(name, str) else Path(d).name] = ds
    summary = {name: summarise(ds) for name, ds in datasets.items()}
    png = plot_routes(datasets, args.out)
    if args.json:
        print(json.dumps({"routes": summary, "figure": png}, indent=2))
    else:
        for name, rows in summary.items():
            print(format_summary(name, rows))
            print()
        print(f"wrote {png}")
    return 0
