"""Noise budget of in-situ RHEL on the 8-section LC ladder, as three catalogue studies.

How well does the gradient measured on an imperfect instrument point along the ideal one?
Each panel is a study of the ``studies/`` catalogue (``rhel-centred-rerun``: the forward pass
is repeated before each echo, as hardware must), compared with the ideal BPTT twin:

1. ``lc-ladder-q-compensation``: quality factor Q of every mode (no thermal noise), with and
   without loss compensation during the echo;
2. ``lc-ladder-adc-eps``: bits of the ADC that reads the ∂H/∂θ integrators, for two nudge
   sizes ε (the error scales like 2^-bits / ε);
3. ``lc-ladder-thermal-extreme``: bath temperature at Q = 1000. The temperatures are
   unphysical (1e4–1e12 K) on purpose: at 4–400 K thermal noise is invisible on this ladder,
   which ``physim sweep run lc-ladder-noise-budget`` shows at realistic conditions.

The same runs from the command line: ``physim sweep run lc-ladder-adc-eps``.
Prints the tables and writes a three-panel figure.

    python examples/02_noise_budget.py [--quick] [--out noise_budget.png] [--workers N]
"""

from __future__ import annotations

import argparse

import numpy as np

from physim.study import local_executor, parse_study, run_study
from physim.study.spec import read_study_toml

STUDIES = ("lc-ladder-q-compensation", "lc-ladder-adc-eps", "lc-ladder-thermal-extreme")


def studies(quick: bool) -> dict:
    """The three catalogue studies; ``quick`` shortens runs and axes to CI size."""
    out = {}
    for name in STUDIES:
        data, path = read_study_toml(name)
        if quick:
            data["replicates"] = 1
            data["base"]["set"]["protocol.task.n_steps"] = 100
            for ax in data["axes"]:
                if "logspace" in ax:
                    ax["logspace"] = [*ax["logspace"][:2], 4]
                elif ax["path"] == "nonideal.adc.bits":
                    ax["values"] = np.linspace(8, 20, 4).round().astype(int).tolist()
        out[name] = parse_study(data, str(path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="short sequences, few points (CI size)")
    ap.add_argument("--out", default="noise_budget.png", help="figure path (PNG)")
    ap.add_argument("--workers", type=int, default=None, help="local workers (default: cores)")
    args = ap.parse_args()

    with local_executor(args.workers) as pool:  # one pool of workers for the three studies
        ds = {n: run_study(s, executor=pool) for n, s in studies(args.quick).items()}
    q = ds["lc-ladder-q-compensation"].cosine.mean("replicate")
    b = ds["lc-ladder-adc-eps"].cosine.mean("replicate")
    t = ds["lc-ladder-thermal-extreme"].cosine.mean("replicate")

    print("Q          cosine   cosine (lossless echo)")
    for qv in q.Q.values:
        c = q.sel(Q=qv)
        print(
            f"{qv:<10.3g} {float(c.sel(compensation=0.0)):.6f} {float(c.sel(compensation=1.0)):.6f}"
        )
    print("\nADC bits   cosine (eps 1e-4)   cosine (eps 1e-2)")
    for bv in b.bits.values:
        c = b.sel(bits=bv)
        print(f"{bv:<10d} {float(c.sel(eps=1e-4)):.6f}            {float(c.sel(eps=1e-2)):.6f}")
    print("\nT (K)      cosine (Q = 1000, eps 1e-2)")
    for tv in t.temperature.values:
        print(f"{tv:<10.3g} {float(t.sel(temperature=tv)):.6f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for c in (0.0, 1.0):
        ax[0].semilogx(
            q.Q,
            1 - q.sel(compensation=c),
            "o-",
            label="lossless echo (c = 1)" if c else "no compensation",
        )
    ax[0].set_xlabel("quality factor Q")
    ax[0].set_title("dissipation")
    for eps in (1e-4, 1e-2):
        ax[1].plot(b.bits, 1 - b.sel(eps=eps), "o-", label=f"ε = {eps:g}")
    ax[1].set_xlabel("integrator ADC bits")
    ax[1].set_title("gradient readout resolution")
    ax[2].semilogx(t.temperature, 1 - t, "o-", label="Q = 1000, ε = 1e-2")
    ax[2].set_xlabel("temperature (K)")
    ax[2].set_title("thermal noise")
    for a in ax:
        a.set_yscale("log")
        a.set_ylabel("1 − cosine(measured, ideal twin)")
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.suptitle("lc-ladder-8 · rhel-centred-rerun · noise budget")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
