"""Cost of the fault checks (issue 9): RHEL before vs after, side by side in one run.

    python benchmarks/bench_fault_checks.py --base DIR [--repeats N]

``DIR`` holds the ``physim`` package as it was before the checks (e.g. ``git archive <commit>
physim | tar -x -C DIR``). Two worker processes — one importing ``DIR``'s physim, one this
tree's — time ``physim.rhel_gradient`` in strictly alternating rounds (so that load from other
processes hits both alike); the best of N rounds is compared. Cases as in ``bench_core.py``:
chain-16 at L = 50,000 (batch 1) and linhru-scp1 at L = 896 (batch 32). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CASES = {"chain-16": (50_000, 1), "linhru-scp1": (896, 32)}
#: issue 9 target: the checks cost at most this fraction of RHEL time
TARGET_OVERHEAD = 0.02

WORKER = r"""
import sys, time, warnings
import numpy as np
import physim
from physim.specs import load_device
problems = {}
for name, (n, b) in %r.items():
    dev = load_device(name)
    rng = np.random.default_rng(0)
    u = rng.normal(size=(n, b, dev.n_inputs))
    t = rng.normal(size=(n, b, dev.n_outputs))
    physim.rhel_gradient(dev, None, u[:8], t[:8])  # warm the numba cache
    problems[name] = (dev, u, t)
print(physim.__file__, flush=True)
for line in sys.stdin:
    dev, u, t = problems[line.strip()]
    t0 = time.perf_counter()
    physim.rhel_gradient(dev, None, u, t)
    print(time.perf_counter() - t0, flush=True)
"""


def _worker(path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.Popen(
        [sys.executable, "-c", WORKER % (CASES,)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(path),  # `python -c` puts the working directory first on sys.path
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="folder with the old physim package")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    workers = {"before": _worker(args.base), "after": _worker(here)}
    for k, w in workers.items():
        print(f"{k}: {w.stdout.readline().strip()}")
    times: dict[str, dict[str, list[float]]] = {c: {k: [] for k in workers} for c in CASES}
    for r in range(args.repeats):
        for case in CASES:
            order = list(workers) if r % 2 == 0 else list(reversed(workers))
            for k in order:
                workers[k].stdin.write(case + "\n")
                workers[k].stdin.flush()
                times[case][k].append(float(workers[k].stdout.readline()))
    for w in workers.values():
        w.stdin.close()
        w.wait()
    out = {}
    for case, t in times.items():
        b, a = min(t["before"]), min(t["after"])
        out[case] = {"before_s": b, "after_s": a, "overhead": a / b - 1.0}
        print(
            f"{case:<12} RHEL before {b * 1e3:8.2f} ms   after {a * 1e3:8.2f} ms   "
            f"overhead {100 * (a / b - 1):+.2f} % (target <= {100 * TARGET_OVERHEAD:g} %)"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
