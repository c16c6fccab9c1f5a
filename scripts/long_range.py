"""Long-range runs of the adding problem: a length curriculum up to L = 16,384 or 49,920.

One chain = one (algorithm, seed): the CPU-sized LinHRU HSSM of the ``adding-linhru-cpu``
preset trained at L = 100, then at each longer length of ``CURRICULUM`` from the previous
stage's best parameters (``init_from``), with the same algorithm, seed and configuration for
RHEL and BPTT. Each stage is an ordinary ``physim train`` run directory under ``--runs``; a
finished stage is not repeated and an interrupted one resumes from its checkpoint, so running
the same command again after a kill continues where it stopped.

When a stage at one of ``TARGETS`` finishes, its metrics go to
``results/long-range/adding-L<length>-<algo>-s<seed>.json`` (task, length, algo, seed,
test_mse, baseline_mse, the stages with their test MSE, steps and wall seconds, the validation
curve and this command); ``scripts/readme_results.py`` builds the README's table and figure
from those files.

    python scripts/long_range.py --algo rhel --seed 0 --length 16384
    python scripts/long_range.py --algo bptt --seed 0 --length 49920   # continues the 16k chain
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Stage(NamedTuple):
    """One stage of the length curriculum."""

    length: int
    steps: int
    lr: float
    n_samples: int
    batch: int
    precision: str
    eval_every: int
    warmup: int = 0  # TrainSpec.lr_warmup
    decay: str = "none"  # TrainSpec.lr_decay


#: The length curriculum. Each stage starts from the previous stage's best parameters with a
#: fresh Adam and every mode's step Δt multiplied by L_previous/L (``init_dt_scale``), so each
#: mode covers the same share of the longer sequence. Without that rescaling the L = 1600
#: model (test MSE 24 % of the baseline) started L = 4096 at 170 % and was back at 80 % after
#: 300 steps; with it, it starts at 46 %. Sample counts shrink with length to keep the data
#: near 260 MB (the split is 70/15/15); the last stage halves the batch to fit the session's
#: hours (a BPTT step at L = 49,920 and batch 32 takes about 17 s on one core). At lr 3e-4
#: the L = 16,384 stage of seed 0 drifted away from its start (validation MSE 0.062 → 0.19 in
#: 120 steps), hence 1e-4 from there on. A length may appear more than once: a later stage
#: continues the one before at the same length (same Δt, fresh Adam) in its own directory
#: ``L<length>-<k>``. The 16,384 stage was short of steps (300 steps left seeds at 6–21 % of
#: the baseline; 400 more took them to 2.7–18 %), hence its continuations; the third one lowers
#: the learning rate along a cosine to 0, since at a constant 1e-4 seed 0 kept wandering (its
#: BPTT run's best validation MSE came at step 120 of 400). The 49,920 stage is short of
#: steps rather than noisy: 400 steps at a constant 1e-4 ended seed 1 at 15 % of the baseline
#: and still falling, 400 with a cosine at 18.7 % (RHEL; training MSE 17 % at the end), so it
#: has 1000 steps with a cosine, whose rate stays above 5e-5 for the first half.
CURRICULUM = (
    Stage(100, 1500, 1e-3, 8000, 32, "float64", 50),
    Stage(400, 500, 3e-4, 8000, 32, "float64", 25),
    Stage(1600, 400, 3e-4, 4000, 32, "float64", 25),
    Stage(4096, 300, 3e-4, 2000, 32, "float32", 25),
    Stage(16384, 300, 1e-4, 1000, 32, "float32", 30),
    Stage(16384, 400, 1e-4, 1000, 32, "float32", 40),
    Stage(16384, 300, 1e-4, 1000, 32, "float32", 30, warmup=20, decay="cosine"),
    Stage(49920, 1000, 1e-4, 400, 16, "float32", 25, decay="cosine"),
)
#: lengths whose results are kept in the repository
TARGETS = (16384, 49920)
#: training batches whose statistics the batch norms take before each evaluation
NORM_STAT_BATCHES = 4


def stages_of(last: int) -> list[tuple[str, tuple]]:
    """The curriculum's stages up to length ``last`` as (directory name, stage): ``L<length>``,
    and ``L<length>-<k>`` for the k-th stage at a length already trained."""
    out, seen = [], {}
    for stage in CURRICULUM:
        if stage[0] > last:
            break
        seen[stage[0]] = seen.get(stage[0], 0) + 1
        k = seen[stage[0]]
        out.append((f"L{stage[0]}" if k == 1 else f"L{stage[0]}-{k}", stage))
    return out


def stage_spec(stage: tuple, algo: str, seed: int, a_param: str, prev: tuple[str, int] | None):
    """The training configuration of one ``CURRICULUM`` stage; ``prev`` is the previous
    stage's (run directory, length)."""
    from physim.hssm.config import PRESETS, parse_train_spec

    length, steps, lr, n, batch, precision, every, warmup, decay = Stage(*stage)
    d = PRESETS["adding-linhru-cpu"].model_dump(mode="json")
    d.update(
        name=f"adding-long-range-L{length}",
        description=f"stage L = {length} of scripts/long_range.py",
        length=length,
        n_steps=steps,
        lr=lr,
        lr_warmup=warmup,
        lr_decay=decay,
        n_samples=n,
        batch_size=batch,
        algo=algo,
        seed=seed,
        eval_every=every,
        checkpoint_every=every,
        norm_stat_batches=NORM_STAT_BATCHES,
        init_from=None if prev is None else prev[0],
        init_dt_scale=None if prev is None or prev[1] == length else prev[1] / length,
    )
    d["model"].update(a_param=a_param, precision=precision)
    return parse_train_spec(d, f"long-range stage L = {length}")


def provenance() -> dict[str, str]:
    """What produced a result file: physim's version and commit and the machine (shared with
    ``scripts/paper_runs.py``)."""
    from physim import __version__

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        commit = out.stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    return {"physim_version": __version__, "physim_commit": commit, "machine": machine}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--algo", choices=("rhel", "bptt"), required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument(
        "--length",
        type=int,
        default=16384,
        choices=sorted({s[0] for s in CURRICULUM}),
        help="the last stage to run (default 16384)",
    )
    ap.add_argument("--a-param", choices=("relu", "softplus"), default="softplus")
    ap.add_argument("--runs", default="runs/long-range", help="stage run directories go here")
    ap.add_argument("--results", default=str(ROOT / "results" / "long-range"))
    args = ap.parse_args(argv)

    from physim.hssm.config import config_differences
    from physim.hssm.train import curve, train

    chain = Path(args.runs) / f"adding-{args.a_param}-{args.algo}-s{args.seed}"
    command = "python scripts/long_range.py " + " ".join(
        f"--{k} {v}" for k, v in (("algo", args.algo), ("seed", args.seed), ("length", args.length))
    )
    if args.a_param != "softplus":
        command += f" --a-param {args.a_param}"
    stages, prev = [], None
    plan = stages_of(args.length)
    for i, (name, stage) in enumerate(plan):
        length = stage[0]
        run = chain / name
        spec = stage_spec(stage, args.algo, args.seed, args.a_param, prev)
        done = run / "metrics.json"
        if done.exists():
            # a finished stage is reused only if it is this stage: a changed curriculum (or a
            # stage trained from another predecessor) would otherwise pass its old result on.
            # The saved configuration is read through today's schema, so a field added to
            # TrainSpec since (at its default) is no difference.
            saved = json.loads(done.read_text())["config"]
            if spec.model.output_step is None:  # resolved from the data by `train`
                model = spec.model.model_copy(update={"output_step": saved["model"]["output_step"]})
                spec = spec.model_copy(update={"model": model})
            diff = config_differences(saved, spec, str(done))
            if diff:
                raise SystemExit(
                    f"{run} holds a finished stage of another configuration (differs in "
                    f"{', '.join(diff)}); move it away or pass another --runs directory"
                )
        else:
            print(f"[{chain.name}] stage L = {length}: {spec.n_steps} steps", file=sys.stderr)
            t0 = time.time()
            try:
                train(spec, run, progress=True, plots=False)
            finally:  # wall time summed over the calls that trained this stage, kills included
                clock = run / "wall_seconds.json"
                before = json.loads(clock.read_text()) if clock.exists() else 0.0
                clock.write_text(json.dumps(before + time.time() - t0))
        m = json.loads(done.read_text())
        last_at_length = i + 1 == len(plan) or plan[i + 1][1][0] != length
        clock = run / "wall_seconds.json"
        # (stages run before this clock existed recorded their one call in metrics.json)
        wall = json.loads(clock.read_text()) if clock.exists() else m["wall_seconds_this_call"]
        stages.append(
            {
                "length": length,
                "steps": m["steps"],
                "lr": spec.lr,
                "lr_warmup": spec.lr_warmup,
                "lr_decay": spec.lr_decay,
                "n_samples": spec.n_samples,
                "batch_size": spec.batch_size,
                "precision": spec.model.precision,
                "best_step": m["best_step"],
                "test_mse": m["test_mse"],
                "baseline_mse": m["baseline"],
                "train_seconds": m["train_seconds"],
                "wall_seconds": wall,
                "seconds_per_step": m["seconds_per_step"],
                "curve": curve(run),
            }
        )
        if length in TARGETS and last_at_length:
            out = Path(args.results)
            out.mkdir(parents=True, exist_ok=True)
            result = {
                "task": "adding",
                "length": length,
                "algo": args.algo,
                "seed": args.seed,
                "a_param": args.a_param,
                "test_mse": m["test_mse"],
                "baseline_mse": m["baseline"],
                "ratio": m["test_mse"] / m["baseline"],
                "train_hours": sum(s["train_seconds"] for s in stages) / 3600,
                "wall_hours": sum(s["wall_seconds"] for s in stages) / 3600,
                "model": {
                    k: m["config"]["model"][k]
                    for k in ("model", "n_blocks", "hidden", "ssm_dim", "norm", "a_param")
                },
                "batch_size": m["config"]["batch_size"],
                "stages": stages,
                "command": command
                if length == args.length
                else command.replace(f"--length {args.length}", f"--length {length}"),
                **provenance(),
            }
            path = out / f"adding-L{length}-{args.algo}-s{args.seed}.json"
            path.write_text(json.dumps(result, indent=1) + "\n")
            print(
                f"[{chain.name}] L = {length}: test MSE {m['test_mse']:.4g} "
                f"({100 * result['ratio']:.1f} % of the predict-the-mean {m['baseline']:.4g}) "
                f"→ {path}",
                file=sys.stderr,
            )
        prev = (str(run), length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
