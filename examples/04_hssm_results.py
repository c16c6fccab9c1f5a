"""RHEL vs BPTT test accuracy of deep Hamiltonian SSMs, several seeds, as a markdown table.

Runs ``physim train`` for every dataset × HRU family × algorithm × seed (same configuration
and seeds for both algorithms), each in its own process, ``--jobs`` at a time, then prints
mean ± std of the test metric and writes every run's metrics to ``results.json``. Runs that
already finished (their ``metrics.json`` exists) are not repeated, so an interrupted sweep
resumes where it stopped.

    python examples/04_hssm_results.py --steps 500 --seeds 0 1 2 --jobs 2 --out runs/table
    python examples/04_hssm_results.py --quick          # CI size: tiny data, a few steps

The adding problem uses the long-range recipe below (batch norm, zero-mean values, a small
core input scale, per-mode steps spread down to ~e⁻⁶) and, with ``--warmup-length``, a length
curriculum: each run first trains at the warm-up length, then continues at ``--length`` from
the warm-up run's best parameters (``init_from``), both stages with the same algorithm::

    python examples/04_hssm_results.py --data adding --models linhru --length 4000 \
        --warmup-length 1000 --warmup-steps 6000 --steps 1500 --lr 3e-4 --batch 32 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from physim.hssm.config import LONG_RANGE_ADDING

#: the CPU-sized architecture documented next to the paper's (2 blocks, H = 16, P = 32)
CPU_ARCH = {"n_blocks": 2, "hidden": 16, "ssm_dim": 32}


#: synthetic long-range tasks get no time channel (the task itself marks positions)
SYNTHETIC = ("adding", "copy")


def config(
    data: str,
    model: str,
    steps: int,
    batch: int,
    length: int | None,
    lr: float = 1e-3,
    a_param: str = "relu",
) -> dict:
    arch = dict(CPU_ARCH, a_param=a_param) if model == "linhru" else CPU_ARCH
    cfg = {
        "data": data,
        "model": {"model": model, **arch},
        "lr": lr,
        "batch_size": batch,
        "n_steps": steps,
        "eval_every": max(1, steps // 20),
        "checkpoint_every": max(1, steps // 10),
    }
    if data in SYNTHETIC:
        cfg.update(length=length, time_channel=False)
    if data == "adding":
        cfg.update({k: v for k, v in LONG_RANGE_ADDING.items() if k != "model"})
        cfg["model"].update(LONG_RANGE_ADDING["model"])
    return cfg


def run_one(
    cfg_path: Path, algo: str, seed: int, out: Path, threads: int, warmup: Path | None = None
) -> dict:
    """One ``physim train`` run (skipped when finished); ``warmup`` is a first-stage config:
    that stage runs into ``out/warmup`` and the main run starts from its best parameters."""
    if warmup is not None:
        run_one(warmup, algo, seed, out / "warmup", threads)
        cfg = json.loads(cfg_path.read_text())
        cfg["init_from"] = str((out / "warmup").resolve())
        staged = out.parent / f"{out.name}.json"
        staged.write_text(json.dumps(cfg))
        cfg_path = staged
    metrics = out / "metrics.json"
    if not metrics.exists():
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        cmd = [
            sys.executable,
            "-m",
            "physim.cli",
            "train",
            "--config",
            str(cfg_path),
            "--algo",
            algo,
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--quiet",
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(metrics.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", nargs="+", default=["scp1", "scp2"])
    ap.add_argument("--models", nargs="+", default=["linhru", "nonlinhru"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=4000, help="sequence length of adding/copy")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument(
        "--warmup-length",
        type=int,
        default=None,
        help="synthetic tasks: first train at this length",
    )
    ap.add_argument("--warmup-steps", type=int, default=3000, help="steps of the warm-up stage")
    ap.add_argument("--warmup-lr", type=float, default=1e-3, help="learning rate of the warm-up")
    ap.add_argument(
        "--a-param",
        choices=("relu", "softplus"),
        default="relu",
        help="LinHRU stiffness map A(θ_A): relu (the paper's) or softplus (no zero-slope trap)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    ap.add_argument("--out", type=Path, default=Path("runs/hssm-table"))
    ap.add_argument("--quick", action="store_true", help="CI size: tiny data, 3 steps, 1 seed")
    args = ap.parse_args()
    if args.quick:  # CI size: tiny data and a two-stage adding run, a few steps each
        args.data, args.models, args.seeds, args.steps, args.batch = (
            ["tiny", "adding"],
            ["linhru"],
            [0],
            3,
            8,
        )
        args.length, args.warmup_length, args.warmup_steps = 40, 20, 3
        args.out = Path("hssm-table-quick")
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for data in args.data:
        for model in args.models:
            cfg_path = args.out / f"{data}-{model}.json"
            cfg_path.write_text(
                json.dumps(
                    config(data, model, args.steps, args.batch, args.length, args.lr, args.a_param)
                )
            )
            warm = None
            if args.warmup_length is not None and data in SYNTHETIC:
                warm = args.out / f"{data}-{model}-warmup.json"
                wcfg = config(
                    data,
                    model,
                    args.warmup_steps,
                    args.batch,
                    args.warmup_length,
                    args.warmup_lr,
                    args.a_param,
                )
                warm.write_text(json.dumps(wcfg))
            for algo in ("rhel", "bptt"):
                for seed in args.seeds:
                    jobs.append(
                        (
                            data,
                            model,
                            algo,
                            seed,
                            cfg_path,
                            args.out / f"{data}-{model}-{algo}-s{seed}",
                            warm,
                        )
                    )
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_one, cfg, algo, seed, out, 1, warm)
            for (_, _, algo, seed, cfg, out, warm) in jobs
        ]
        results = []
        for (data, model, algo, seed, _, out, _), fut in zip(jobs, futures, strict=True):
            m = fut.result()
            results.append(
                {"data": data, "model": model, "algo": algo, "seed": seed, "out": str(out), **m}
            )
            metric = "test_accuracy" if "test_accuracy" in m else "test_loss"
            print(
                f"{data:<8}{model:<11}{algo:<6}seed {seed}: {metric} {m[metric]:.4f}  "
                f"({m['steps']} steps, {m['seconds_per_step']:.2f} s/step)",
                flush=True,
            )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))

    print("\n| data | model | RHEL | BPTT | seeds | steps |\n|---|---|---|---|---|---|")
    for data in args.data:
        for model in args.models:
            cells = []
            for algo in ("rhel", "bptt"):
                rs = [
                    r for r in results if (r["data"], r["model"], r["algo"]) == (data, model, algo)
                ]
                key = "test_accuracy" if "test_accuracy" in rs[0] else "test_loss"
                vals = np.array([r[key] for r in rs]) * (100 if key == "test_accuracy" else 1)
                cells.append(
                    f"{vals.mean():.1f} ± {vals.std():.1f}"
                    if key == "test_accuracy"
                    else f"{vals.mean():.4f} ± {vals.std():.4f}"
                )
            print(
                f"| {data} | {model} | {cells[0]} | {cells[1]} | {len(args.seeds)} | {args.steps} |"
            )


if __name__ == "__main__":
    main()
