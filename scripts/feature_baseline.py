"""How hard is a classification dataset on physim's own splits? A ridge classifier on three
summary features per channel (mean, standard deviation, and the mean of the last quarter minus
the first: the slow potential shift the SCP tasks are about), on the same 70/15/15 splits the
HSSM runs use, the ridge strength picked on validation.

    python scripts/feature_baseline.py scp1 scp2 --seeds 0 1 2 3 4

It is the check behind docs/data.md's reading of SCP2: a model far below the paper there is
either the data or the model, and this separates the two without training anything.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

RIDGE = (0.1, 1.0, 10.0, 100.0, 1000.0)


def features(X: np.ndarray) -> np.ndarray:
    q = max(1, X.shape[1] // 4)
    shift = X[:, -q:].mean(axis=1) - X[:, :q].mean(axis=1)
    return np.concatenate([X.mean(axis=1), X.std(axis=1), shift], axis=1)


def accuracy(ds) -> float:
    """Test accuracy of the ridge classifier (two classes) picked on validation."""
    f = {s: features(getattr(ds, f"X_{s}")) for s in ("train", "val", "test")}
    mu, sd = f["train"].mean(axis=0), f["train"].std(axis=0) + 1e-12
    a = {s: np.c_[(v - mu) / sd, np.ones(len(v))] for s, v in f.items()}
    target = 2.0 * np.asarray(ds.y_train) - 1.0
    best = None
    for lam in RIDGE:
        w = np.linalg.solve(
            a["train"].T @ a["train"] + lam * np.eye(a["train"].shape[1]), a["train"].T @ target
        )
        val = np.mean((a["val"] @ w > 0) == (np.asarray(ds.y_val) == 1))
        if best is None or val > best[0]:
            best = (val, w)
    return float(np.mean((a["test"] @ best[1] > 0) == (np.asarray(ds.y_test) == 1)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="+", help="two-class datasets, e.g. scp1 scp2")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args(argv)
    from physim.data import load_dataset

    print("| data | test accuracy % per seed | mean | test recordings |")
    print("|---|---|---|---|")
    for name in args.data:
        accs, n = [], 0
        for seed in args.seeds:
            ds = load_dataset(name, seed=seed)
            if ds.task != "classification" or ds.n_classes != 2:
                what = ds.task if ds.task != "classification" else f"{ds.n_classes} classes"
                raise SystemExit(f"{name} is {what}; this baseline takes two-class data")
            accs.append(100 * accuracy(ds))
            n = len(ds.y_test)
        per = ", ".join(f"{a:.1f}" for a in accs)
        print(f"| {name} | {per} | {np.mean(accs):.1f} | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
