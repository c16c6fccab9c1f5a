"""RHEL on every catalogue device, against the BPTT digital twin.

For each device: drive it with a random input, ask it to match a noisy copy of its own
response, and compare the RHEL gradient (forward run, flip, ±ε echoes) with backpropagation
through the very same leapfrog. Prints a table and, with --plot, draws RHEL vs BPTT per entry.

    python examples/01_rhel_equals_bptt.py [--quick] [--plot out.png]
"""

from __future__ import annotations

import argparse

import numpy as np

import physim
from physim.gradcheck import default_eps, random_problem

#: columns of the --plot grid (a figure stays readable at ten catalogue devices)
PANELS_PER_ROW = 4


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="short sequences (CI size)")
    ap.add_argument("--plot", default=None, help="write a scatter plot of RHEL vs BPTT to this PNG")
    args = ap.parse_args()
    n_steps = 100 if args.quick else 1000
    rows = []
    for name in physim.catalogue():
        dev = physim.load_device(name)
        u, target = random_problem(dev, n_steps, batch=2, seed=1)
        eps = default_eps(dev)
        r = physim.rhel_gradient(dev, None, u, target, eps=eps, n_steps=n_steps, batch=2)
        b = physim.bptt_gradient(dev, None, u, target, n_steps=n_steps, batch=2)
        err = float(np.max(np.abs(r.grad - b.grad)) / np.max(np.abs(b.grad)))
        cos = float(r.grad @ b.grad / (np.linalg.norm(r.grad) * np.linalg.norm(b.grad)))
        rows.append((name, dev.n_params, eps, err, cos, r.grad, b.grad))
        print(
            f"{name:<18} {dev.n_params:>6} params  eps {eps:<6g} max rel err {err:.2e}  cosine {cos:.15f}"
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # a grid of at most PANELS_PER_ROW columns: one row of ten was 3000 × 320 px
        ncol = min(PANELS_PER_ROW, len(rows))
        nrow = -(-len(rows) // ncol)
        fig, grid = plt.subplots(
            nrow, ncol, figsize=(3 * ncol, 3.2 * nrow), constrained_layout=True, squeeze=False
        )
        axes = grid.ravel()
        for ax in axes[len(rows) :]:
            ax.set_visible(False)
        for ax, (name, _, _, err, _, gr, gb) in zip(axes, rows, strict=False):
            scale = np.max(np.abs(gb))
            ax.plot(gb / scale, gr / scale, ".", ms=3)
            ax.plot([-1, 1], [-1, 1], "k-", lw=0.5)
            ax.set_title(f"{name}\nerr {err:.1e}", fontsize=9)
            ax.set_xlabel("BPTT (normalised)")
        for row in grid:
            row[0].set_ylabel("RHEL (normalised)")
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
