"""Core performance of physim (issue 2): forward, RHEL and BPTT measured side by side.

    python benchmarks/bench_core.py [--quick] [--repeats N] [--model]

Cases
-----
* ``linhru-scp1``: one LinHRU layer sized like the paper's SCP1 configuration (P = 256
  oscillators, 64 input channels), batch 32, L = 896 steps.
* ``chain-16``: the 16-mass chain, one sequence (batch 1), L = 50,000 steps.

Timings are the best of N interleaved rounds (every function once per round, so that load from
other processes hits all of them alike) after a warm-up that loads the numba caches.

* forward: ``physim.simulate`` keeping the readout (what RHEL's own forward run does);
* RHEL: ``physim.rhel_gradient`` = forward + loss (``losses.py``: target check, value, ∂L/∂y) +
  both echoes, default ``input_grad=False``; "RHEL+du" adds the per-step input gradient; the
  breakdown times the loss and the echo (``rhel_echo`` from a given forward run) on their own;
* BPTT: ``physim.bptt_gradient`` = recorded forward run + loss + adjoint.

Memory is the peak of ``tracemalloc`` (numpy allocations are traced; scratch arrays that numba
allocates inside kernels are not, they are O(BLOCK × n_dof) per batch group) while the input
and target are built and the gradient is computed on chain-16 at L = 1,000 and 50,000. The
*net* peak subtracts the four arrays whose size is the sequence itself: the input ``u``, the
target, the forward readout ``y`` and the error ∂L/∂y (their bytes are printed).

``--model`` also times the whole 6-block SCP1 HSSM of :mod:`physim.hssm` (forward and one RHEL
and BPTT gradient, batch 32, BLAS single-threaded as its training runs it), the configuration
the paper's public JAX code is quoted for.

Besides the best-of-N ratio, RHEL/forward is printed as a ratio of medians and of process CPU
time (all threads), which other load on a shared machine disturbs less.

Measured (issue 12, 2 cores shared with other jobs, load 3.4–3.8, this script run from the tree
before and after one after the other): RHEL/forward linhru-scp1 3.91 → 3.44, chain-16 9.12 →
3.83 (RHEL 133 → 38 ms; the forward also went 14.6 → 9.8 ms). See the README, development notes.

The last line of output is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numba
import numpy as np
from numba import njit

import physim
from physim.losses import MSELoss
from physim.rhel import rhel_echo
from physim.specs import load_device

#: issue 2 targets
TARGET_RHEL_OVER_FORWARD = 3.5
TARGET_MEM_RATIO = 1.2
#: reference figures quoted in issue 2 (not measured here)
REF_PLAIN_LOOP = 1e9  # LinHRU oscillator-steps per second per core, plain numba loop
REF_JAX_FORWARD_S = 3.0  # public JAX code, whole 6-block SCP1 model, batch 32, 2-core CPU
REF_JAX_RHEL_S = 17.0
#: environment variables that change threading behaviour (printed for the record)
THREAD_ENV = (
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "OPENBLAS_NUM_THREADS",
)


# ------------------------------------------------------------------------------ helpers
def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Run every function once per round for ``repeats`` rounds; min and median seconds of
    wall time, and the min of the process CPU time (all threads) as ``cpu``."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {
        k: {"best": min(v), "median": statistics.median(v), "cpu": min(cpu[k])}
        for k, v in times.items()
    }


def problem(name: str, n_steps: int, batch: int, seed: int = 0):
    device = load_device(name)
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_steps, batch, device.n_inputs))
    target = rng.normal(size=(n_steps, batch, device.n_outputs))
    return device, u, target


def time_case(name: str, n_steps: int, batch: int, repeats: int) -> dict:
    device, u, target = problem(name, n_steps, batch)
    # warm-up: load every kernel from the numba cache (or compile it) on a short run
    w = min(n_steps, 64)
    physim.rhel_gradient(device, None, u[:w], target[:w], input_grad=True)
    physim.bptt_gradient(device, None, u[:w], target[:w], input_grad=True)
    loss = MSELoss()
    fwd = physim.simulate(device, None, u)
    dLdy = loss.error(fwd.y, target)

    scratch = np.empty_like(fwd.y)

    def loss_only():
        # as rhel_gradient does it: one pass, ∂L/∂y written over a readout-sized array
        t = loss.check_target(target, fwd.y.shape)
        loss.value_and_error(fwd.y, t, out=scratch)

    fns = {
        "forward": lambda: physim.simulate(device, None, u),
        "rhel": lambda: physim.rhel_gradient(device, None, u, target),
        "rhel_input_grad": lambda: physim.rhel_gradient(device, None, u, target, input_grad=True),
        "bptt": lambda: physim.bptt_gradient(device, None, u, target),
        "loss": loss_only,
        "echo": lambda: rhel_echo(device, None, u, fwd, dLdy),
    }
    t = interleaved_best(fns, repeats)
    return {
        "device": name,
        "n_dof": device.n_dof,
        "n_inputs": device.n_inputs,
        "n_steps": n_steps,
        "batch": batch,
        "times": t,
        "osc_steps": device.n_dof * n_steps * batch,
    }


def thread_scaling(name: str, n_steps: int, batch: int, repeats: int) -> dict:
    """Forward and RHEL with numba limited to 1 thread vs all threads, interleaved."""
    device, u, target = problem(name, n_steps, batch)
    n_all = numba.get_num_threads()

    def with_threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
        def run():
            numba.set_num_threads(n)
            try:
                fn()
            finally:
                numba.set_num_threads(n_all)

        return run

    fwd = lambda: physim.simulate(device, None, u)  # noqa: E731
    rhel = lambda: physim.rhel_gradient(device, None, u, target)  # noqa: E731
    fns = {
        "forward_1": with_threads(1, fwd),
        f"forward_{n_all}": with_threads(n_all, fwd),
        "rhel_1": with_threads(1, rhel),
        f"rhel_{n_all}": with_threads(n_all, rhel),
    }
    return {"threads": n_all, "times": interleaved_best(fns, repeats)}


def peak_memory(method: str, n_steps: int, name: str = "chain-16", batch: int = 1) -> dict:
    """tracemalloc peak while building the problem and computing the gradient."""
    device = load_device(name)
    grad = physim.rhel_gradient if method == "rhel" else physim.bptt_gradient
    grad(device, None, *problem(name, 8, batch)[1:])  # kernels loaded before tracing
    tracemalloc.start()
    try:
        _, u, target = problem(name, n_steps, batch)
        grad(device, None, u, target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    y_bytes = n_steps * batch * device.n_outputs * 8
    inherent = {
        "u": u.nbytes,
        "target": target.nbytes,
        # ∂L/∂y is written over the spent readout: one L-sized array holds both
        "y (forward readout, then dL/dy)": y_bytes,
    }
    return {
        "n_steps": n_steps,
        "peak": peak,
        "inherent": inherent,
        "net": peak - sum(inherent.values()),
    }


@njit(cache=True)
def _plain_linhru_loop(q, p, s, a, h):
    """Yardstick for the quoted reference figure (not part of physim): the LinHRU leapfrog of
    one trajectory with its drive precomputed, on one thread."""
    n = q.shape[0]
    for k in range(s.shape[0]):
        for i in range(n):
            q[i] += 0.5 * h[i] * p[i]
        for i in range(n):
            p[i] -= h[i] * (a[i] * q[i] - s[k, i])
        for i in range(n):
            q[i] += 0.5 * h[i] * p[i]


def plain_loop_rate(n: int = 256, n_steps: int = 200_000, repeats: int = 5) -> float:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(min(n_steps, 4096), n))
    a, h = rng.uniform(0.1, 1.0, n), rng.uniform(0.1, 0.9, n)
    q, p = np.zeros(n), np.zeros(n)
    _plain_linhru_loop(q, p, s[:2], a, h)
    reps = n_steps // s.shape[0]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(reps):
            _plain_linhru_loop(q, p, s, a, h)
        best = min(best, time.perf_counter() - t0)
    return n * reps * s.shape[0] / best


def time_model(repeats: int) -> dict:
    """The whole 6-block SCP1 HSSM of physim.hssm: forward, RHEL and BPTT gradient, batch 32."""
    from physim.hssm.config import HSSMSpec
    from physim.hssm.model import HSSM

    spec = HSSMSpec()  # the paper's SCP1 configuration: 6 blocks, H = 64, P = 256
    model = HSSM.build(spec, n_inputs=7, n_outputs=2, task="classification")  # 6 ch + time
    params = model.init_params(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 896, 7))
    y = rng.integers(0, 2, size=32)
    for algo in ("rhel", "bptt"):
        model.loss_and_grad(params, X[:, :16], y, algo=algo)
    fns = {
        "forward": lambda: model.predict(params, X),
        "rhel": lambda: model.loss_and_grad(params, X, y, algo="rhel"),
        "bptt": lambda: model.loss_and_grad(params, X, y, algo="bptt"),
    }
    # as physim's HSSM training runs it: BLAS single-threaded beside numba's threads
    from physim.threads import single_threaded_blas

    with single_threaded_blas():
        return {"spec": spec.model_dump(), "times": interleaved_best(fns, repeats)}


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timing rounds (default 7, quick 3)")
    ap.add_argument("--model", action="store_true", help="also time the whole 6-block SCP1 HSSM")
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)

    env = {k: os.environ[k] for k in THREAD_ENV if k in os.environ}
    print(
        f"physim {physim.__version__} · numpy {np.__version__} · numba {numba.__version__} · "
        f"{os.cpu_count()} CPUs · {platform.machine()} · load average "
        f"{os.getloadavg()[0]:.1f} · thread env {env or 'default'}"
    )
    lin = time_case("linhru-scp1", 896, 32, repeats)
    chain = time_case("chain-16", 50_000, 1, repeats)
    n_all = numba.get_num_threads()
    print(
        f"numba threads: {n_all} ({numba.threading_layer()} layer); best of {repeats} "
        f"interleaved rounds\n"
    )

    hdr = (
        f"{'case':<34}{'forward':>10}{'RHEL':>10}{'RHEL+du':>10}{'BPTT':>10}"
        f"{'RHEL/fwd':>10}{'BPTT/fwd':>10}{'Gosc-st/s':>11}"
    )
    print(hdr)
    print("-" * len(hdr))
    out: dict[str, object] = {}
    for case, key in ((lin, "linhru"), (chain, "chain16")):
        t = case["times"]
        f, r, ru, b = (t[k]["best"] for k in ("forward", "rhel", "rhel_input_grad", "bptt"))
        label = f"{case['device']} n={case['n_dof']} L={case['n_steps']} B={case['batch']}"
        rate = case["osc_steps"] / f
        print(
            f"{label:<34}{f * 1e3:>8.1f}ms{r * 1e3:>8.1f}ms{ru * 1e3:>8.1f}ms{b * 1e3:>8.1f}ms"
            f"{r / f:>10.2f}{b / f:>10.2f}{rate / 1e9:>11.3f}"
        )
        out[f"forward_s_{key}"] = f
        out[f"rhel_s_{key}"] = r
        out[f"rhel_input_grad_s_{key}"] = ru
        out[f"bptt_s_{key}"] = b
        out[f"loss_s_{key}"] = t["loss"]["best"]
        out[f"echo_s_{key}"] = t["echo"]["best"]
        out[f"rhel_over_forward_{key}"] = r / f
        out[f"echo_over_forward_{key}"] = t["echo"]["best"] / f
        out[f"bptt_over_forward_{key}"] = b / f
        out[f"forward_osc_steps_per_s_{key}"] = rate
        out[f"median_s_{key}"] = {k: v["median"] for k, v in t.items()}
    out["rhel_over_forward"] = max(
        out["rhel_over_forward_linhru"], out["rhel_over_forward_chain16"]
    )
    print(
        f"(rhel_over_forward = the worse of the two cases; target <= "
        f"{TARGET_RHEL_OVER_FORWARD}; medians in the JSON line)"
    )
    for case, key in ((lin, "linhru"), (chain, "chain16")):
        t = case["times"]
        med = t["rhel"]["median"] / t["forward"]["median"]
        cpu = t["rhel"]["cpu"] / t["forward"]["cpu"]
        out[f"rhel_over_forward_median_{key}"] = med
        out[f"rhel_over_forward_cpu_{key}"] = cpu
        print(
            f"  {case['device']:<12} RHEL/forward of medians {med:.2f}; of process CPU time "
            f"{cpu:.2f} (all threads; less sensitive to other load on the machine)"
        )
    print("RHEL breakdown, each part timed alone: forward + loss (losses.py) + echo (rhel_echo)")
    for case in (lin, chain):
        t = case["times"]
        f, lo, e = (t[k]["best"] for k in ("forward", "loss", "echo"))
        print(
            f"  {case['device']:<12} {f * 1e3:7.1f} + {lo * 1e3:6.1f} + {e * 1e3:7.1f} ms "
            f"= {(f + lo + e) * 1e3:7.1f} ms (RHEL {t['rhel']['best'] * 1e3:.1f} ms); "
            f"echo alone / forward = {e / f:.2f}"
        )
    print()

    ts = thread_scaling("linhru-scp1", 896, 32, repeats)
    tt = {k: v["best"] for k, v in ts["times"].items()}
    print(
        f"numba threads on linhru-scp1: forward {tt['forward_1'] * 1e3:.1f} ms (1 thread) vs "
        f"{tt[f'forward_{n_all}'] * 1e3:.1f} ms ({n_all}); RHEL {tt['rhel_1'] * 1e3:.1f} ms vs "
        f"{tt[f'rhel_{n_all}'] * 1e3:.1f} ms"
    )
    out["thread_scaling_linhru"] = tt

    rate_plain = plain_loop_rate()
    lin_rate = out["forward_osc_steps_per_s_linhru"]
    per_thread = lin_rate / min(n_all, lin["batch"])
    print(
        f"forward oscillator-steps/s, linhru-scp1: {lin_rate / 1e9:.3f} G total, "
        f"{per_thread / 1e9:.3f} G per thread (includes the drive B u: {lin['n_inputs']} "
        f"multiply-adds per oscillator-step, and writing y)"
    )
    print(
        f"  yardstick measured here: plain numba LinHRU loop, drive precomputed, 1 thread: "
        f"{rate_plain / 1e9:.3f} G/s; issue 2 quotes ~{REF_PLAIN_LOOP / 1e9:.0f} G/s per core"
    )
    out["plain_loop_osc_steps_per_s"] = rate_plain
    out["forward_osc_steps_per_s_per_thread_linhru"] = per_thread
    print(
        f"  for scale (quoted, not run here): the paper's public JAX code needs ~"
        f"{REF_JAX_FORWARD_S:.0f} s forward and ~{REF_JAX_RHEL_S:.0f} s RHEL for the whole "
        f"6-block SCP1 model at batch 32 on 2 cores"
    )
    if args.model:
        m = time_model(max(2, repeats // 3))
        mt = {k: v["best"] for k, v in m["times"].items()}
        print(
            f"  whole 6-block SCP1 HSSM measured here (physim.hssm, batch 32, L = 896, BLAS "
            f"single-threaded as in its training): "
            f"forward {mt['forward']:.2f} s, RHEL gradient {mt['rhel']:.2f} s, "
            f"BPTT gradient {mt['bptt']:.2f} s"
        )
        out["model_scp1_s"] = mt
    else:
        print("  (--model times the whole 6-block SCP1 HSSM of physim.hssm)")
    print()

    mem = {}
    for method in ("rhel", "bptt"):
        for n_steps in (1_000, 50_000):
            mem[(method, n_steps)] = peak_memory(method, n_steps)
    print("peak traced memory, chain-16, batch 1 (net = peak - inherent L-sized arrays)")
    print(f"{'':<6}{'L':>8}{'peak':>12}{'inherent':>12}{'net':>12}")
    for (method, n_steps), m in mem.items():
        inh = sum(m["inherent"].values())
        print(
            f"{method:<6}{n_steps:>8}{m['peak'] / 1024:>10.1f}KB{inh / 1024:>10.1f}KB"
            f"{m['net'] / 1024:>10.1f}KB"
        )
        out[f"{method}_peak_bytes_{n_steps // 1000}k"] = m["peak"]
        out[f"{method}_net_bytes_{n_steps // 1000}k"] = m["net"]
    print(
        "inherent arrays subtracted at L=50,000: "
        + ", ".join(f"{k} {v} B" for k, v in mem[("rhel", 50_000)]["inherent"].items())
    )
    for method in ("rhel", "bptt"):
        ratio = mem[(method, 50_000)]["net"] / mem[(method, 1_000)]["net"]
        raw = mem[(method, 50_000)]["peak"] / mem[(method, 1_000)]["peak"]
        out[f"{method}_mem_ratio_50k_over_1k"] = ratio
        out[f"{method}_raw_mem_ratio_50k_over_1k"] = raw
        print(
            f"{method}: net peak ratio 50k/1k = {ratio:.2f} (raw {raw:.2f})"
            + (f"; target <= {TARGET_MEM_RATIO}" if method == "rhel" else "")
        )

    met = out["rhel_over_forward"] <= TARGET_RHEL_OVER_FORWARD
    met_mem = out["rhel_mem_ratio_50k_over_1k"] <= TARGET_MEM_RATIO
    print(
        f"\ntargets: RHEL/forward <= {TARGET_RHEL_OVER_FORWARD}: {'met' if met else 'NOT met'} "
        f"(linhru {out['rhel_over_forward_linhru']:.2f}, chain-16 "
        f"{out['rhel_over_forward_chain16']:.2f}); RHEL memory ratio <= {TARGET_MEM_RATIO}: "
        f"{'met' if met_mem else 'NOT met'} ({out['rhel_mem_ratio_50k_over_1k']:.2f})"
    )
    out.update(
        {
            "numba_threads": n_all,
            "threading_layer": numba.threading_layer(),
            "thread_env": env,
            "load_average_1min": os.getloadavg()[0],
            "repeats": repeats,
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "ref_plain_loop_osc_steps_per_s": REF_PLAIN_LOOP,
            "ref_jax_scp1_forward_s": REF_JAX_FORWARD_S,
            "ref_jax_scp1_rhel_s": REF_JAX_RHEL_S,
        }
    )
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
