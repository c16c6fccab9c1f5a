"""physim vs the paper's official JAX code: one RHEL training step on the same shapes, side by side.

With ``--official-repo DIR --official-python PATH`` (a checkout of
github.com/guillaumepourcel/rhel and a Python that has its pinned dependencies — jax[cpu] 0.6.2,
equinox 0.13.4, optax 0.2.7, numpy 2.2.6, scipy 1.15.3 — both kept outside this project) each
configuration runs physim's step (``benchmarks/bench_hssm.py --worker rhel``: RHEL gradients
and Adam, float64, or with ``--precision float32`` float32 activations and periphery
products around float64 cores) and the official ``make_step`` (RHEL, Adam, float32, synthetic
data) in fresh processes, alternating ``--rounds`` times; the best step time and the peak resident
memory of each process give the ratios, all from this one run. Without the official code only
physim's figures are printed. The official code is never copied: the small runner that drives
it is written to a temporary file at run time and imports the official modules from DIR.

Configurations (REFERENCE §2; LinHRU with complex B, C as in the paper's configs, ``--real``
for real B, C):

    scp1  6 blocks, H 64 (NonlinHRU 128), P 256, batch 32, L 896, classification (2 classes)
    ppg   6 blocks, H 64, P 16, batch 4, L 49,920, regression every 128th step

    git clone https://github.com/guillaumepourcel/rhel ~/official-rhel   # outside this project
    python benchmarks/bench_vs_official.py --official-repo ~/official-rhel \\
        --official-python ~/official-venv/bin/python
    python benchmarks/bench_vs_official.py --configs ppg --families linhru --length 4992  # quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_hssm import run_json

CONFIGS = {
    "scp1": dict(blocks=6, hidden=64, ssm=256, batch=32, length=896, task="classification"),
    "ppg": dict(blocks=6, hidden=64, ssm=16, batch=4, length=49920, task="regression"),
}
#: the paper's NonlinHRU SCP1 model is twice as wide
NONLIN_HIDDEN = {"scp1": 128, "ppg": 64}
OUTPUT_STEP = 128
N_INPUTS = 7  # six channels (SCP1; PPG-DaLiA's wrist signals) plus the time channel
OFFICIAL_EPS = 0.1  # the paper's nudge

_RUNNER = r"""
import json, resource, sys, time
repo, cfg = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, repo)
import equinox as eqx, jax, jax.random as jr, optax
from models.generate_model import create_model
from train_and_test import classification_loss, make_step, regression_loss
key_model, key_data, key_y, key_step = jr.split(jr.PRNGKey(0), 4)
classification = cfg["task"] == "classification"
n_out = 2 if classification else 1
name = "LinHRU" if cfg["family"] == "linhru" else "NonlinHRU"
model, state = create_model(
    name, cfg["inputs"], cfg["length"], n_out, cfg["hidden"], num_blocks=cfg["blocks"],
    classification=classification, output_step=cfg["output_step"], ssm_dim=cfg["ssm"],
    learning_algorithm="RHEL", epsilon=cfg["eps"], complex_ssm=cfg["complex"],
    train_steps=True, key=key_model,
)
filter_spec = jax.tree_util.tree_map(lambda _: True, model)
opt = optax.adam(1e-4)
opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
X = jr.normal(key_data, (cfg["batch"], cfg["length"], cfg["inputs"]))
if classification:
    y = jax.nn.one_hot(jr.randint(key_y, (cfg["batch"],), 0, 2), 2)
    loss_fn = classification_loss
else:
    y = jr.uniform(key_y, (cfg["batch"], cfg["length"] // cfg["output_step"], 1), minval=-0.9,
                   maxval=0.9)
    loss_fn = regression_loss
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
times = []
for rep in range(cfg["repeats"] + 1):
    t0 = time.perf_counter()
    model, state, opt_state, value = make_step(model, filter_spec, X, y, loss_fn, state, opt,
                                               opt_state, jr.fold_in(key_step, rep), 1.0, False)
    jax.block_until_ready((eqx.filter(model, eqx.is_array), value))
    times.append(time.perf_counter() - t0)
print(json.dumps({"step": min(times[1:]), "first_step_with_compile": times[0],
                  "steps_timed": times[1:], "loss": float(value),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "baseline_rss_bytes": base}))
"""


def _shapes(config: str, family: str, length: int | None) -> dict:
    shp = dict(CONFIGS[config])
    if family == "nonlinhru":
        shp["hidden"] = NONLIN_HIDDEN[config]
    if length is not None:
        shp["length"] = length
    return shp


def run_physim(shp: dict, family: str, complex_ssm: bool, repeats: int, precision: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).with_name("bench_hssm.py")), "--worker", "rhel"]
    cmd += [f"--{k}={v}" for k, v in shp.items()]
    cmd += [f"--model={family}", f"--repeats={repeats}", f"--output-step={OUTPUT_STEP}"]
    cmd += [f"--inputs={N_INPUTS}", f"--precision={precision}"]
    cmd += ["--complex"] if complex_ssm else []
    return run_json(cmd)


def run_official(
    python: str, repo: str, runner: Path, shp: dict, family: str, complex_ssm: bool, repeats: int
) -> dict:
    cfg = dict(shp, family=family, complex=complex_ssm, repeats=repeats, eps=OFFICIAL_EPS)
    cfg.update(output_step=OUTPUT_STEP, inputs=N_INPUTS)
    proc = subprocess.run(
        [python, str(runner), repo, json.dumps(cfg)], capture_output=True, text=True, cwd=repo
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"error": f"official run exited {proc.returncode}: " + " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict | None:
    ok = [r for r in runs if "error" not in r]
    return min(ok, key=lambda r: r["step"]) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official-repo", help="checkout of github.com/guillaumepourcel/rhel")
    ap.add_argument("--official-python", help="Python with the official code's pinned deps")
    ap.add_argument("--configs", default="scp1,ppg", help="comma-separated: scp1, ppg")
    ap.add_argument("--families", default="linhru,nonlinhru", help="linhru, nonlinhru")
    ap.add_argument("--real", action="store_true", help="LinHRU with real B, C (default complex)")
    ap.add_argument("--length", type=int, help="override the sequence length (quick runs)")
    ap.add_argument(
        "--precision",
        default="float64",
        choices=("float64", "float32"),
        help="physim's HSSMSpec.precision (the official code runs in float32)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="timed steps per process")
    ap.add_argument("--rounds", type=int, default=1, help="alternations physim / official")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = ap.parse_args()
    if bool(args.official_repo) != bool(args.official_python):
        ap.error("give --official-repo and --official-python together (or neither)")
    for name, given, allowed in (
        ("--configs", args.configs, CONFIGS),
        ("--families", args.families, ("linhru", "nonlinhru")),
    ):
        bad = [v for v in given.split(",") if v not in allowed]
        if bad:
            ap.error(
                f"{name} {given!r}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}"
            )
    if args.length is not None and args.length < OUTPUT_STEP:
        ap.error(
            f"--length {args.length}: give at least {OUTPUT_STEP} steps (PPG reads every "
            f"{OUTPUT_STEP}th)"
        )
    official = args.official_repo is not None
    if official and not (Path(args.official_repo) / "models" / "LinHRU.py").is_file():
        ap.error(f"--official-repo {args.official_repo} has no models/LinHRU.py; clone the repo")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        runner = Path(tmp) / "official_runner.py"
        runner.write_text(_RUNNER)
        for config in args.configs.split(","):
            for family in args.families.split(","):
                cplx = family == "linhru" and not args.real
                shp = _shapes(config, family, args.length)
                ours, theirs = [], []
                for _ in range(args.rounds):
                    ours.append(run_physim(shp, family, cplx, args.repeats, args.precision))
                    if official:
                        theirs.append(
                            run_official(
                                args.official_python,
                                args.official_repo,
                                runner,
                                shp,
                                family,
                                cplx,
                                args.repeats,
                            )
                        )
                results.append(
                    dict(
                        config=config,
                        family=family,
                        complex=cplx,
                        precision=args.precision,
                        shapes=shp,
                        physim=_best(ours),
                        official=_best(theirs),
                        official_errors=[r["error"] for r in theirs if "error" in r],
                    )
                )
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress
    if args.json:
        print(json.dumps(results, indent=2))
        return
    _print(results, official)


def _print(results: list[dict], official: bool) -> None:
    head = (
        f"{'config':<7}{'family':<11}{'cplx':<6}{'prec':<8}{'physim s':>9}{'cores':>7}{'digit':>7}"
    )
    head += f"{'blk core':>9}{'blk dig':>8}"
    head += f"{'GB':>6}{'us/stb':>8}"
    if official:
        head += f"{'official s':>11}{'GB':>6}{'us/stb':>8}{'speed-up':>9}{'mem ratio':>10}"
    print(head)
    for r in results:
        p, o, s = r["physim"], r["official"], r["shapes"]
        per = s["batch"] * s["length"] * s["blocks"] / 1e6  # µs per (sample × step × block)
        line = f"{r['config']:<7}{r['family']:<11}{'yes' if r['complex'] else 'no':<6}"
        line += f"{r['precision']:<8}"
        line += f"{p['step']:9.2f}{p['core']:7.2f}{p['digital']:7.2f}"
        line += f"{p['core'] / s['blocks']:9.3f}{p['digital'] / s['blocks']:8.3f}"
        line += f"{p['peak_rss_bytes'] / 1e9:6.2f}{p['step'] / per:8.3f}"
        if official and o is not None:
            line += f"{o['step']:11.2f}{o['peak_rss_bytes'] / 1e9:6.2f}{o['step'] / per:8.3f}"
            line += f"{o['step'] / p['step']:9.2f}{o['peak_rss_bytes'] / p['peak_rss_bytes']:10.2f}"
        elif official:
            line += "  official failed: " + "; ".join(r["official_errors"])
        print(line)
    print(
        "blk core / blk dig: physim's seconds per block in the cores (forward + echo) and the "
        "digital periphery; us/stb = µs per (sample × step × block); "
        "speed-up = official / physim step time, mem ratio = official / physim peak RSS"
    )


if __name__ == "__main__":
    main()
