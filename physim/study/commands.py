"""Sub-commands ``physim studies`` and ``physim sweep run|status|table|plot``.

``register(subparsers)`` adds them to ``physim``'s argparse sub-parsers; each sets ``func`` to
a function of the parsed arguments that returns the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path


def _cmd_studies(args: argparse.Namespace) -> int:
    from physim.catalogues import listing
    from physim.study.spec import STUDIES

    print(listing(STUDIES, lambda s: (s.description,), (26,)))
    return 0


def _executor(args, spec, stack: contextlib.ExitStack):
    from physim.study.engine import dask_executor, default_workers, local_executor

    kind = args.executor or ("dask" if spec.executor.kind != "local" else "local")
    if args.address and kind == "local":
        kind = "dask"
    if kind == "dask":
        ex, link = stack.enter_context(
            dask_executor(spec.executor, address=args.address, workers=args.workers)
        )
        if link:
            print(f"Dask dashboard: {link}")
        return ex, 64
    n = args.workers or spec.executor.workers or default_workers()
    return stack.enter_context(local_executor(n)), 2 * n + 2


def _cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from physim.study.engine import run_plan, time_one_point
    from physim.study.expand import describe, expand
    from physim.study.spec import load_study
    from physim.study.store import StudyStore

    spec = load_study(args.study)
    if args.max_points is not None:
        spec = spec.model_copy(update={"max_points": args.max_points})
    plan = expand(spec)
    if args.dry_run:
        print(describe(plan))
        r = time_one_point(plan)
        n = args.workers or spec.executor.workers or _workers()
        est = r["seconds"] * plan.n_points / n
        print(
            f"one point took {r['seconds']:.3g} s here ({'failed: ' + r['error'] if r['error'] else 'ok'}"
            f"; includes numba compilation if the cache was cold): about {est:.3g} s on {n} "
            "worker(s)"
        )
        return 0
    out = Path(args.out or Path("physim-out") / "studies" / spec.name)
    store = StudyStore(out, plan, restart=args.restart)
    n_done = len(store.done)
    if n_done:
        print(f"resuming {out}: {n_done} of {plan.n_points} points already done")
    with contextlib.ExitStack() as stack:
        if store.pending():
            ex, window = _executor(args, spec, stack)
            bar = stack.enter_context(
                tqdm(
                    total=plan.n_points,
                    initial=n_done,
                    unit="pt",
                    desc=spec.name,
                    disable=args.no_progress,
                )
            )
            failed = [sum(1 for r in store.done.values() if r["error"])]

            def on_result(r):
                failed[0] += bool(r["error"])
                bar.set_postfix(failed=failed[0], refresh=False)
                bar.update(1)

            run_plan(plan, store, ex, max_in_flight=window, on_result=on_result)
    ds = store.finish()
    n_failed = int(ds.attrs["n_failed"])
    print(
        f"{plan.n_points} points, {n_failed} failed; wrote {out / 'results.nc'} and "
        f"{out / 'results.csv'}"
    )
    from physim.study.outcome import report

    # the points' warnings, once each; every point failed is an error (exit 2), some are counted
    report(plan, store.done)
    return 0


def _workers() -> int:
    from physim.study.engine import default_workers

    return default_workers()


def _cmd_status(args: argparse.Namespace) -> int:
    from physim.study.expand import expand
    from physim.study.store import RESULTS_NC, load_spec_of, read_journal

    plan = expand(load_spec_of(args.dir))
    done = read_journal(args.dir, plan.n_points)
    failed = {i: r["error"] for i, r in done.items() if r["error"]}
    secs = [r["seconds"] for r in done.values() if r["seconds"] == r["seconds"]]
    state = "complete" if (Path(args.dir) / RESULTS_NC).exists() else "incomplete (rerun to resume)"
    print(
        f"{plan.spec.name}: {len(done)} of {plan.n_points} points done, {len(failed)} failed; {state}"
    )
    if secs:
        print(f"compute {sum(secs):.3g} s in total, {sum(secs) / len(secs):.3g} s per point")
    for i, msg in list(failed.items())[:10]:
        print(f"  point {i} {plan.coords(i)}: {msg}")
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from physim.study.spec import StudyError
    from physim.study.store import RESULTS_CSV

    path = Path(args.dir) / RESULTS_CSV
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist yet; finish the study with physim sweep run"
        )
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise StudyError(f"{path} is not a table physim wrote ({err}); {_REWRITE}") from None
    head = rows[0] if rows else []
    if (
        not head
        or head[0] != "point"
        or "replicate" not in head
        or head[-2:] != ["error", "seconds"]
    ):
        raise StudyError(
            f"{path} line 1 is not the header physim writes (point, axes..., replicate, "
            f"metrics..., error, seconds; got {','.join(head)[:60]!r}); {_REWRITE}"
        )
    for k, r in enumerate(rows[1:], start=2):
        if len(r) != len(head):
            raise StudyError(
                f"{path} line {k} has {len(r)} fields, the header {len(head)}; {_REWRITE}"
            )
    keep = [
        i
        for i, h in enumerate(head)
        if args.metric is None
        or h in (args.metric, "point", "replicate", "error")
        or i <= head.index("replicate")
    ]
    for r in rows:
        print("  ".join(_short(r[i]) for i in keep))
    return 0


_REWRITE = "rerun physim sweep run on the folder to write it again from the journal"


def _short(s: str) -> str:
    try:
        return f"{float(s):<11.6g}"
    except ValueError:
        return f"{s:<11}"


def _cmd_plot(args: argparse.Namespace) -> int:
    from physim.study.plot import plot_study

    print(
        f"wrote {plot_study(args.dir, metric=args.metric, threshold=args.threshold, out=args.out)}"
    )
    return 0


def register(subparsers) -> None:
    """Add ``studies`` and ``sweep run|status|table|plot`` to ``physim``'s sub-parsers."""
    p = subparsers.add_parser("studies", help="list the study catalogue (name first)")
    p.set_defaults(func=_cmd_studies)

    sweep = subparsers.add_parser("sweep", help="run and inspect robustness studies")
    ss = sweep.add_subparsers(dest="sweep_command", required=True, metavar="SWEEP_COMMAND")
    p = ss.add_parser("run", help="run (or resume) a study; results in --out DIR")
    p.add_argument("study", help="catalogue name or path to a study TOML")
    p.add_argument("--out", help="study folder (default physim-out/studies/NAME)")
    p.add_argument("--workers", type=int, help="local workers (default: one per core)")
    p.add_argument("--executor", choices=["local", "dask"], help="where the points run")
    p.add_argument(
        "--address",
        help="Dask scheduler to join, tcp://host:8786; a lost or silent scheduler stops the "
        "run within [executor] heartbeat + timeout seconds (default 5 + 30), keeping every "
        "finished point: rerun to resume",
    )
    p.add_argument("--dry-run", action="store_true", help="count and time; run nothing else")
    p.add_argument("--restart", action="store_true", help="discard the results in --out")
    p.add_argument("--max-points", type=int, help="override the study's point budget")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run, kernels=True)

    p = ss.add_parser("status", help="points done / failed of a study folder")
    p.add_argument("dir")
    p.set_defaults(func=_cmd_status)

    p = ss.add_parser("table", help="print a finished study as a table")
    p.add_argument("dir")
    p.add_argument("--metric", help="show only this metric (default: all)")
    p.set_defaults(func=_cmd_table)

    p = ss.add_parser("plot", help="plot a finished study (band, heatmap or facets)")
    p.add_argument("dir")
    p.add_argument(
        "--metric", help="variable to plot (default: the measure's own, e.g. cosine, loss_ratio)"
    )
    p.add_argument("--threshold", type=float, help="contour level of a heatmap")
    p.add_argument("--out", help="PNG path (default DIR/METRIC.png)")
    p.set_defaults(func=_cmd_plot)
