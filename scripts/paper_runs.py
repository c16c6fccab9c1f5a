"""A run of one of the paper's configurations (``training/*-paper.toml``), kept as a result.

    python scripts/paper_runs.py --config scp1-linhru-paper --algo rhel --seed 0 --steps 600

Trains the preset as it is (6 blocks, the paper's H, P, lr, batch, dropout, time channel and
70/15/15 split, early stopping on validation) for the first ``--steps`` of its up to 100k
steps, in ``--runs``; running the command again after a kill resumes from the checkpoint. When
the run finishes, ``results/paper/<config>-<algo>-s<seed>.json`` receives its test and
validation metric, the predict-the-majority (or mean) baseline, the hours it took, its learning
curve and this command; ``scripts/readme_results.py`` puts it beside the paper's number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", required=True, help="a paper preset, e.g. scp1-linhru-paper")
    ap.add_argument("--algo", choices=("rhel", "bptt"), required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True, help="steps to train (the run's n_steps)")
    ap.add_argument("--precision", choices=("float64", "float32"), default="float32")
    ap.add_argument("--runs", default="runs/paper", help="run directories go here")
    ap.add_argument("--results", default=str(ROOT / "results" / "paper"))
    args = ap.parse_args(argv)

    from long_range import provenance  # this script's folder is on sys.path

    from physim.hssm.config import load_train_spec, parse_train_spec
    from physim.hssm.train import curve, train

    if not args.config.endswith("-paper"):
        raise SystemExit(
            f"--config {args.config}: this script keeps the paper's configurations "
            "(training/*-paper.toml; physim configs lists them)"
        )
    from physim.catalogues import CatalogueError
    from physim.hssm.config import ConfigError

    try:
        base = load_train_spec(args.config)
        d = base.model_dump(mode="json")
        d.update(algo=args.algo, seed=args.seed, n_steps=args.steps)
        d["model"]["precision"] = args.precision
        spec = parse_train_spec(d, args.config)
    except (CatalogueError, ConfigError) as err:
        raise SystemExit(f"paper_runs.py: error: {err}") from None
    run = Path(args.runs) / f"{args.config}-{args.algo}-s{args.seed}-{args.precision}"
    t0 = time.time()
    res = train(spec, run, progress=True)
    if not res.metrics["finished"]:
        return 1
    m = res.metrics
    metric = m["metric"]
    command = (
        f"python scripts/paper_runs.py --config {args.config} --algo {args.algo} "
        f"--seed {args.seed} --steps {args.steps} --precision {args.precision}"
    )
    mod = m["config"]["model"]
    result = {
        "task": m["config"]["data"],
        "config": args.config,
        "algo": args.algo,
        "seed": args.seed,
        "metric": metric,
        f"test_{metric}": m[f"test_{metric}"],
        f"val_{metric}": m[f"val_{metric}"],
        "baseline": m["baseline"],
        "steps": m["steps"],
        "paper_max_steps": base.n_steps,
        "early_stopped": m["early_stopped"],
        "best_step": m["best_step"],
        "train_hours": m["train_seconds"] / 3600,
        "wall_hours_last_call": (time.time() - t0) / 3600,
        "seconds_per_step": m["seconds_per_step"],
        "model": {
            k: mod[k] for k in ("model", "n_blocks", "hidden", "ssm_dim", "norm", "precision")
        },
        "batch_size": m["config"]["batch_size"],
        "lr": m["config"]["lr"],
        "dataset": m["dataset"],
        "curve": curve(run),
        "command": command,
        **provenance(),
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.config}-{args.algo}-s{args.seed}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"test {metric} {m[f'test_{metric}']:.4g} (baseline {m['baseline']:.4g}) → {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
