"""Noise budget of in-situ RHEL on the 8-section LC ladder.

How well does the gradient measured on an imperfect instrument point along the ideal one?
Three sweeps of the ``rhel-centred-rerun`` protocol (what hardware must run: the forward pass
is repeated before each echo), each against the ideal BPTT twin of the same device:

1. quality factor Q of every mode (no thermal noise), with and without loss compensation
   during the echo;
2. resolution of the ADC that reads the ∂H/∂θ integrators, for two nudge sizes ε
   (the error scales like 2^-bits / ε);
3. bath temperature at Q = 1000 (thermal Johnson–Nyquist noise in every run).

Prints the tables and writes a three-panel figure.

    python examples/02_noise_budget.py [--quick] [--out noise_budget.png]
"""

from __future__ import annotations

import argparse

import numpy as np

import physim
from physim.instrument import Instrument, parse_nonideal
from physim.protocol import build_task, estimate_gradient, fidelity, load_protocol, run_protocol


def cosine(device, proto, task, ref, sources, seeds) -> float:
    """Mean gradient cosine vs the ideal twin over instrument seeds."""
    out = []
    for seed in seeds:
        srcs = [dict(s, seed=seed) if s["kind"] in ("dissipation", "adc") else s for s in sources]
        inst = Instrument(device, parse_nonideal({"sources": srcs}), seed=seed)
        res = run_protocol(inst, proto, task=task)
        out.append(
            fidelity(estimate_gradient(res, device, proto.estimator).grad, ref, device).cosine
        )
    return float(np.mean(out))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="short sequences, few points (CI size)")
    ap.add_argument("--out", default="noise_budget.png", help="figure path (PNG)")
    args = ap.parse_args()
    n_steps, n_pts, seeds = (100, 4, [0]) if args.quick else (600, 9, [0, 1, 2])

    device = physim.load_device("lc-ladder-8")
    base = load_protocol("rhel-centred-rerun")
    task = build_task(device, base.task.model_copy(update={"n_steps": n_steps}), base.loss)
    ref = physim.bptt_gradient(device, None, task.u, task.target).grad
    period = 2 * np.pi * np.sqrt(1e-6 * 1e-9)
    print(
        f"lc-ladder-8, L = {n_steps} steps = {n_steps * device.dt / period:.1f} periods of "
        "an isolated 1 uH / 1 nF section"
    )

    proto = base.model_copy(update={"eps": 1e-3})
    qs = np.logspace(1, 5, n_pts)
    cos_q = {
        c: [
            cosine(
                device,
                proto,
                task,
                ref,
                [{"kind": "dissipation", "quality_factor": float(q), "compensation": c}],
                [0],
            )
            for q in qs
        ]
        for c in (0.0, 1.0)
    }
    print("\nQ          cosine   cosine (lossless echo)")
    for i, q in enumerate(qs):
        print(f"{q:<10.3g} {cos_q[0.0][i]:.6f} {cos_q[1.0][i]:.6f}")

    bits = np.linspace(8, 20, n_pts).round().astype(int)
    cos_b = {
        eps: [
            cosine(
                device,
                base.model_copy(update={"eps": eps}),
                task,
                ref,
                [{"kind": "adc", "target": "accumulator", "bits": int(b), "dither": True}],
                seeds,
            )
            for b in bits
        ]
        for eps in (1e-4, 1e-2)
    }
    print("\nADC bits   cosine (eps 1e-4)   cosine (eps 1e-2)")
    for i, b in enumerate(bits):
        print(f"{b:<10d} {cos_b[1e-4][i]:.6f}            {cos_b[1e-2][i]:.6f}")

    temps = np.logspace(4, 12, n_pts)
    proto_t = base.model_copy(update={"eps": 1e-2})
    cos_t = [
        cosine(
            device,
            proto_t,
            task,
            ref,
            [{"kind": "dissipation", "quality_factor": 1000.0, "temperature": float(t)}],
            seeds,
        )
        for t in temps
    ]
    print("\nT (K)      cosine (Q = 1000, eps 1e-2)")
    for t, c in zip(temps, cos_t, strict=True):
        print(f"{t:<10.3g} {c:.6f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for c, ys in cos_q.items():
        ax[0].semilogx(
            qs, 1 - np.asarray(ys), "o-", label="lossless echo (c = 1)" if c else "no compensation"
        )
    ax[0].set_xlabel("quality factor Q")
    ax[0].set_title("dissipation")
    for eps, ys in cos_b.items():
        ax[1].plot(bits, 1 - np.asarray(ys), "o-", label=f"ε = {eps:g}")
    ax[1].set_xlabel("integrator ADC bits")
    ax[1].set_title("gradient readout resolution")
    ax[2].semilogx(temps, 1 - np.asarray(cos_t), "o-", label="Q = 1000, ε = 1e-2")
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
