"""Rerun the error budget of every technology preset on its catalogue device and write the
README's verdicts and the documentation's budget tables from the results (through
``scripts/readme_results.py``; no number there is typed by hand).

    python scripts/readme_budgets.py                 # run every preset, then the tables
    python scripts/readme_budgets.py --only pcb-c0g  # one preset
    python scripts/readme_budgets.py --readme-only   # = python scripts/readme_results.py

Each preset names its device (``pairs_with``). A budget is ``physim budget DEVICE --nonideal
PRESET --by train`` (gradient tolerances at θ-scaled cosine 0.99 and tolerances in learning
terms: in-situ training within 2x of the ideal chip's final loss), 3 replicate chips to start
with; its JSON goes to ``results/budget/PRESET.json`` with the command and the wall time.
``tests/test_budget_claims.py`` checks each claim against a brute-force run on fresh chips.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "budget"
#: the criteria of the README's tables (the budget command's own defaults)
TARGET, TRAIN = 0.99, {"factor": 2.0, "epochs": 20, "lr": 1e-2}
REPLICATES = 3


def presets() -> dict[str, str]:
    """preset name → the device it pairs with, from the catalogue."""
    from physim.instrument.specs import NONIDEALS, load_nonideal

    out = {}
    for name in NONIDEALS.entries():
        spec = load_nonideal(name)
        if spec.pairs_with:
            out[name] = spec.pairs_with
    return out


def run_one(preset: str, device_name: str, workers: int) -> dict:
    from contextlib import nullcontext

    from physim import __version__
    from physim.answers.report import run_budget
    from physim.instrument.specs import load_nonideal
    from physim.protocol.specs import load_protocol
    from physim.specs import load_device
    from physim.study.engine import local_executor

    # the scan's per-point warnings (ADC resolution at each ε tried) are not findings; the
    # spawned workers read this at start-up
    os.environ["PYTHONWARNINGS"] = "ignore"
    device = load_device(device_name)
    protocol = load_protocol("rhel-centred-rerun")
    t0 = time.perf_counter()
    pool = local_executor(workers) if workers else nullcontext(None)
    with pool as ex, warnings.catch_warnings():
        # the per-point warnings (ADC resolution at the scanned ε) are the scan's, not findings
        warnings.simplefilter("ignore")
        rep = run_budget(
            device,
            protocol,
            load_nonideal(preset),
            target=TARGET,
            replicates=REPLICATES,
            executor=ex,
            train=TRAIN,
        )
    rep["seconds"] = time.perf_counter() - t0
    rep["command"] = (
        f"physim budget {device_name} --nonideal {preset} --by train --replicates {REPLICATES}"
    )
    rep["physim_version"] = __version__
    rep["preset"] = preset
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="preset(s) to rerun (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes (0: here)")
    ap.add_argument("--readme-only", action="store_true", help="only rewrite the README")
    args = ap.parse_args(argv)
    if not args.readme_only:
        pairs = presets()
        unknown = set(args.only or ()) - set(pairs)
        if unknown:
            raise SystemExit(f"no preset {sorted(unknown)} with pairs_with; have {sorted(pairs)}")
        OUT.mkdir(parents=True, exist_ok=True)
        for preset, device in pairs.items():
            if args.only and preset not in args.only:
                continue
            print(f"budget of {preset} on {device} ...", flush=True)
            rep = run_one(preset, device, args.workers)
            (OUT / f"{preset}.json").write_text(json.dumps(rep, indent=1) + "\n")
            print(f"  {rep['seconds']:.0f} s; " + "; ".join(v["line"] for v in rep["verdicts"]))
    import readme_results  # this script's folder is on sys.path when run as a script

    return readme_results.main([])


if __name__ == "__main__":
    sys.exit(main())
