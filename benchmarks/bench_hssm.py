"""HSSM training-step benchmark: chained RHEL vs the BPTT twin on the paper's SCP1 shapes.

Default shapes: LinHRU, 6 blocks, H = 64, P = 256, batch 32, L = 896 (REFERENCE §2), float64,
dropout 0.05, synthetic N(0, 1) inputs with 7 channels (SCP1's 6 plus the time channel).

Each algorithm runs in its own fresh process (so each peak resident memory is its own): one
warm-up step (numba compilation / caches), then ``--repeats`` timed steps; the best time is
reported with the breakdown into Hamiltonian cores (simulate + echo / adjoint) and the digital
periphery (encoder, norms, readouts, GELU, GLU, dropout, decoder, Adam excluded). Achieved
GFLOP/s counts the dense matrix products of one step analytically and is set against a numpy
matmul of the step's dominant shape measured in the same process.

Targets (issue 4): RHEL step <= 3.5 s, peak memory <= 1 GB, RHEL <= 1.5x BPTT; issue 12: RHEL
<= 1.2x BPTT, the periphery at >= 60 % of the GFLOP/s of a numpy matmul of its dominant shape
(the GLU's (rows × H)·(H × 2H) over all rows, numpy's default threads: "periph/GLU").
``--complex``: LinHRU with complex B, C (the paper's default); ``--precision float32``: the
float32 activations of ``HSSMSpec.precision``; ``--task regression
--output-step 128`` with ``--ssm 16 --batch 4 --length 49920`` is the paper's PPG shape.

    python benchmarks/bench_hssm.py                 # paper shapes
    python benchmarks/bench_hssm.py --complex       # paper shapes, complex B, C
    python benchmarks/bench_hssm.py --length 128 --batch 8 --repeats 2   # quick

``--nonideal PRESET|FILE`` (issue 24): the RHEL step with every core on a chip
(:mod:`physim.hssm.chips`) beside the ideal step and the step on zero-valued chips (an
instrument with no sources), each in its own process, in one run; targets: zero-valued <= 1.2x
the ideal step, the given non-ideality <= 2x.

    python benchmarks/bench_hssm.py --nonideal hru.toml --blocks 2 --hidden 16 --ssm 32 \
        --batch 16                                  # SCP1 CPU size
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def step_flops(
    n_blocks: int, hidden: int, ssm: int, n_steps: int, batch: int, algo: str, complex_ssm=False
) -> float:
    """Dense matrix-product FLOPs of one training step (forward + backward)."""
    lb = n_steps * batch
    H, P = hidden, ssm * (2 if complex_ssm else 1)
    hp = 2.0 * lb * H * P  # one (LB × H) · (H × P) product
    hh = 2.0 * lb * H * H
    # forward: drive B u, readout C φ, GLU (2 products)
    fwd = 2 * hp + 2 * hh
    # backward: GLU recompute (2) + GLU dx, dW (4); dC and dφ (2 hp); core: drive replay, ∂B, ∂u
    bwd = 6 * hh + 2 * hp + 3 * hp
    return n_blocks * (fwd + bwd)


def _matmul_gflops(
    rows: int, inner: int, cols: int, threads: int | None = 1, dtype: str = "float64"
) -> float:
    """GFLOP/s of a numpy (rows × inner)·(inner × cols) product into a preallocated output,
    best of 5, with BLAS at ``threads`` threads (None: all cores, numpy's default), in
    ``dtype`` (the periphery's: ``--precision``)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.normal(size=(rows, inner)).astype(dtype)
    b = rng.normal(size=(inner, cols)).astype(dtype)
    out = np.empty((rows, cols), dtype)
    best = float("inf")
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(5):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * rows * inner * cols / best / 1e9


def _chips(name: str | None):
    """The cores' non-ideality of a worker: none, an instrument with no sources ("zero"), or a
    preset / TOML path."""
    if name in (None, "", "none"):
        return None
    if name == "zero":
        from physim.instrument.specs import NonidealSpec

        return NonidealSpec(name="zero")
    return name


def worker(args: argparse.Namespace) -> dict:
    import numpy as np

    from physim.hssm import HSSM, HSSMSpec, Timings
    from physim.hssm.buffers import StepBuffers
    from physim.optim import AdamState, adam_update, clip_by_global_norm

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    regression = args.task == "regression"
    spec = HSSMSpec(
        model=args.model,
        n_blocks=args.blocks,
        hidden=args.hidden,
        ssm_dim=args.ssm,
        dropout=0.05,
        complex_ssm=args.complex,
        output_step=args.output_step if regression else None,
        precision=args.precision,
        nonideal=_chips(args.nonideal),
    )
    n_out = 1 if regression else 2
    net = HSSM.build(spec, args.inputs, n_out, args.task, seed=0)
    params = net.init_params(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.batch, args.length, args.inputs))
    if regression:
        y = rng.uniform(-0.9, 0.9, (args.batch, net.n_out_steps(args.length), 1))
    else:
        y = rng.integers(0, 2, args.batch)
    adam = AdamState.zeros(params)
    buffers = StepBuffers()  # as the training loop does: activations reused across steps
    runs = []
    for rep in range(args.repeats + 1):
        t = Timings()
        t0 = time.perf_counter()
        _, _, grads = net.loss_and_grad(
            params,
            X,
            y,
            algo=args.algo,
            rng=np.random.default_rng([1, rep]),
            timings=t,
            buffers=buffers,
        )
        grads, _ = clip_by_global_norm(grads, 1.0)
        adam_update(params, grads, adam, lr=1e-4)
        total = time.perf_counter() - t0
        del grads  # not held through the next step
        if rep > 0:  # rep 0 is the warm-up
            runs.append(
                {
                    "step": total,
                    "core": t.core,
                    "digital": t.digital,
                    "core_forward": t.core_forward,
                    "core_backward": t.core_backward,
                    "digital_forward": t.digital_forward,
                    "digital_backward": t.digital_backward,
                }
            )
    best = min(runs, key=lambda r: r["step"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    flops = step_flops(
        args.blocks, args.hidden, args.ssm, args.length, args.batch, args.algo, args.complex
    )
    return {
        "algo": args.algo,
        **best,
        "steps_timed": [r["step"] for r in runs],
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": base_rss,
        "gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / best["step"] / 1e9,
        "numpy_matmul_gflops": _matmul_gflops(
            args.length * args.batch, args.ssm, args.hidden, dtype=args.precision
        ),
        # the periphery's dominant product, the GLU's (rows × H)·(H × 2H): over all rows with
        # numpy's default threads (the reference), and on one 4096-row block, 1 thread
        "numpy_glu_matmul_gflops": _matmul_gflops(
            args.length * args.batch, args.hidden, 2 * args.hidden, None, args.precision
        ),
        "numpy_block_matmul_gflops": _matmul_gflops(
            4096, args.hidden, 2 * args.hidden, dtype=args.precision
        ),
        "periphery_gflops": _periphery_flops(args) / best["digital"] / 1e9,
        "us_per_sample_step_block": best["step"] / (args.batch * args.length * args.blocks) * 1e6,
    }


def _periphery_flops(args: argparse.Namespace) -> float:
    """Matrix-product FLOPs of the digital periphery in one step: per block forward z = φCᵀ
    and the GLU; backward recomputes both, then dGLU (2), dC and dφ."""
    lb = args.length * args.batch
    H, P = args.hidden, args.ssm * (2 if args.complex else 1)
    hp, hh2 = 2.0 * lb * H * P, 2.0 * lb * H * 2 * H
    return args.blocks * (2 * (hp + hh2) + 2 * hh2 + 2 * hp)


WORKER_OPTIONS = ("model", "blocks", "hidden", "ssm", "batch", "length", "repeats", "task")
WORKER_OPTIONS += ("output_step", "inputs", "precision", "nonideal")


def run_worker(args: argparse.Namespace, algo: str) -> dict:
    """One training-step measurement in a fresh process (its own peak RSS)."""
    cmd = [sys.executable, __file__, "--worker", algo]
    cmd += [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in WORKER_OPTIONS]
    cmd += ["--complex"] if args.complex else []
    return run_json(cmd)


def run_json(cmd: list[str]) -> dict:
    """Run a worker process and return the JSON object on its last output line; a failed
    worker stops the benchmark with its own error (the last lines of its stderr)."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n  ".join(proc.stderr.strip().splitlines()[-6:])
        raise SystemExit(f"worker {' '.join(cmd[1:4])} exited {proc.returncode}:\n  {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="linhru", choices=("linhru", "nonlinhru"))
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--ssm", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=896)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--complex", action="store_true", help="LinHRU with complex B, C")
    ap.add_argument(
        "--precision",
        default="float64",
        choices=("float64", "float32"),
        help="HSSMSpec.precision: float32 activations and periphery products, float64 cores",
    )
    ap.add_argument("--task", default="classification", choices=("classification", "regression"))
    ap.add_argument("--output-step", type=int, default=128, help="regression: read every n-th")
    ap.add_argument("--inputs", type=int, default=7, help="input channels (incl. time channel)")
    ap.add_argument(
        "--algos", default="rhel,bptt", help="comma-separated algorithms to run (rhel, bptt)"
    )
    ap.add_argument(
        "--nonideal",
        default="none",
        help="time the RHEL step with every core on a chip of this preset / TOML path beside "
        "the ideal step and zero-valued chips",
    )
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    ap.add_argument("--worker", choices=("rhel", "bptt"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        from physim.threads import single_threaded_blas

        args.algo = args.worker
        with single_threaded_blas():
            print(json.dumps(worker(args)))
        return
    if args.nonideal not in ("", "none"):
        chips(args)
        return
    res = {algo: run_worker(args, algo) for algo in args.algos.split(",")}
    if set(res) != {"rhel", "bptt"}:
        print(json.dumps(res, indent=2))
        return
    r, b = res["rhel"], res["bptt"]
    summary = {
        "shapes": {
            k: getattr(args, k)
            for k in (
                "model",
                "blocks",
                "hidden",
                "ssm",
                "batch",
                "length",
                "complex",
                "task",
                "precision",
            )
        },
        "rhel_step_s": r["step"],
        "bptt_step_s": b["step"],
        "rhel_over_bptt": r["step"] / b["step"],
        "rhel_peak_gb": r["peak_rss_bytes"] / 1e9,
        "bptt_peak_gb": b["peak_rss_bytes"] / 1e9,
        "targets_met": {
            "rhel_step_le_3.5s": r["step"] <= 3.5,
            "rhel_peak_le_1GB": r["peak_rss_bytes"] <= 1e9,
            "rhel_le_1.5x_bptt": r["step"] <= 1.5 * b["step"],
            "rhel_le_1.2x_bptt": r["step"] <= 1.2 * b["step"],
            "periphery_ge_60pct_matmul": r["periphery_gflops"]
            >= 0.6 * r["numpy_glu_matmul_gflops"],
        },
        "runs": res,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"shapes: {summary['shapes']}")
    print(
        f"{'':8}{'step s':>9}{'cores s':>9}{'digital s':>11}{'peak GB':>9}{'base GB':>9}"
        f"{'GFLOP':>8}{'GFLOP/s':>9}{'matmul GFLOP/s':>16}{'periph GFLOP/s':>16}"
        f"{'GLU matmul':>12}{'periph/GLU':>11}{'us/(s*t*blk)':>14}"
    )
    for name, x in res.items():
        print(
            f"{name:8}{x['step']:9.2f}{x['core']:9.2f}{x['digital']:11.2f}"
            f"{x['peak_rss_bytes'] / 1e9:9.2f}{x['baseline_rss_bytes'] / 1e9:9.2f}"
            f"{x['gflop_per_step']:8.1f}{x['achieved_gflops']:9.1f}"
            f"{x['numpy_matmul_gflops']:16.1f}{x['periphery_gflops']:16.1f}"
            f"{x['numpy_glu_matmul_gflops']:12.1f}"
            f"{x['periphery_gflops'] / x['numpy_glu_matmul_gflops']:11.2f}"
            f"{x['us_per_sample_step_block']:14.3f}"
        )
    print(f"RHEL / BPTT step time: {summary['rhel_over_bptt']:.2f}")
    print(
        "targets:",
        ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in summary["targets_met"].items()),
    )


def chips(args: argparse.Namespace) -> None:
    """The RHEL step on the ideal cores, on zero-valued chips and on chips of --nonideal, each
    in its own process, in one run; the two ratios against the ideal step."""
    given = args.nonideal
    res = {}
    for label, name in (("ideal", "none"), ("zero chips", "zero"), (given, given)):
        args.nonideal = name
        res[label] = run_worker(args, "rhel")
    args.nonideal = given
    ideal = res["ideal"]["step"]
    zero, chip = res["zero chips"]["step"] / ideal, res[given]["step"] / ideal
    print(f"{'':24}{'step s':>9}{'cores s':>9}{'digital s':>11}{'x ideal':>9}")
    for name, x in res.items():
        print(
            f"{name:24}{x['step']:9.3f}{x['core']:9.3f}{x['digital']:11.3f}{x['step'] / ideal:9.2f}"
        )
    print(
        f"targets: zero-valued chips <= 1.2x: {'yes' if zero <= 1.2 else 'NO'} ({zero:.2f}), "
        f"{given} <= 2x: {'yes' if chip <= 2.0 else 'NO'} ({chip:.2f})"
    )


if __name__ == "__main__":
    main()
