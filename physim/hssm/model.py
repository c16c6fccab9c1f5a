"""The deep Hamiltonian state-space model (HSSM) of REFERENCE §2 and its two learning rules.

::

    x = encoder(input)                                   linear, H channels
    for each block:  u = norm(x)                         layer norm over channels, or batch
                                                         norm per channel (running statistics
                                                         at evaluation)
                     φ = HRU(u)                          a LinHRU / NonlinHRU Device, y = φ
                     z = φ Cᵀ + D ⊙ u                    readout Re(Cφ) + D⊙u (C real)
                     h = dropout(GELU(z))
                     x = x + dropout(GLU(h))             GLU(h) = (W₁h + b₁) ⊙ sigmoid(W₂h + b₂)
    classification: logits = decoder(mean_t x) → softmax cross-entropy
    regression:     out = tanh(decoder(x[output_step−1 :: output_step])) → MSE

Learning: the digital periphery is back-propagated in numpy; each HRU core is differentiated
either by **RHEL** (``rhel_echo``: the core's error dL/dφ nudges its echo, which returns the
parameter gradient and the input gradient dL/du — after the digital backward of the block
below, that becomes the nudge of the block below's echo, paper Thm 3.3) or by the **BPTT**
twin (``bptt_backward``). Both run from the same forward pass. Arrays inside are time-major
(n_steps, batch, channels); model inputs are batch-first (batch, n_steps, channels).

Memory: a block keeps only what its backward cannot cheaply recompute — the normalised input
``xhat``, the core trajectory φ (RHEL) or states q, p (BPTT) and the dropout masks; the
readout, GELU and GLU are recomputed during the backward pass (bit-identical to the forward).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from physim.bptt import bptt_backward
from physim.device import Device
from physim.families.hru import LinHRUSpec, NonlinHRUSpec
from physim.gradcheck import default_eps
from physim.hssm import layers as L
from physim.hssm.config import HSSMSpec
from physim.rhel import rhel_echo
from physim.simulate import Trajectory, simulate

Task = Literal["classification", "regression"]
Algo = Literal["rhel", "bptt"]


@dataclass
class _BlockCache:
    xhat: np.ndarray
    rstd: np.ndarray
    phi: np.ndarray
    traj: Trajectory
    mask1: np.ndarray | None
    mask2: np.ndarray | None
    stats: tuple[np.ndarray, np.ndarray] | None = None  # batch norm: this batch's mean, var


@dataclass
class Timings:
    """Wall-clock seconds spent in the Hamiltonian cores and in the digital periphery."""

    core_forward: float = 0.0
    core_backward: float = 0.0
    digital_forward: float = 0.0
    digital_backward: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def core(self) -> float:
        return self.core_forward + self.core_backward

    @property
    def digital(self) -> float:
        return self.digital_forward + self.digital_backward


@dataclass(frozen=True)
class HSSM:
    """An HSSM architecture bound to input/output sizes; parameters live in a separate dict.

    Parameters are a ``dict[str, np.ndarray]`` of named arrays (see :meth:`param_names`); the
    core of block ``i`` is ``blocks.i.core``, the device ``theta`` of ``devices[i]`` (use
    ``devices[i].split`` for its named groups).
    """

    spec: HSSMSpec
    n_inputs: int
    n_outputs: int
    task: Task
    devices: tuple[Device, ...]

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls, spec: HSSMSpec, n_inputs: int, n_outputs: int, task: Task, seed: int = 0
    ) -> HSSM:
        if n_inputs < 1 or n_outputs < 1:
            raise ValueError(
                f"an HSSM needs >= 1 input channel and >= 1 output, got {n_inputs}, {n_outputs}"
            )
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        devs = []
        for i in range(spec.n_blocks):
            common = dict(
                name=f"hssm-block{i}",
                n_modes=spec.ssm_dim,
                n_inputs=spec.hidden,
                input_scale=spec.input_scale,
                seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
            )
            if spec.model == "linhru":
                init = {
                    k: getattr(spec, k)
                    for k in ("a_range", "dt_raw_range")
                    if getattr(spec, k) is not None
                }
                dev = LinHRUSpec(kind="linhru", dt=spec.hru_dt or 1.0, **init, **common).build()
            else:
                dev = NonlinHRUSpec(kind="nonlinhru", dt=spec.hru_dt or 0.1, **common).build()
            devs.append(dev)
        return cls(spec, n_inputs, n_outputs, task, tuple(devs))

    def init_params(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Fresh parameters: uniform ±1/√fan_in linears, C ~ N(0, 1/P), D ~ N(0, 1)."""
        rng = np.random.default_rng([seed, 7919])
        H, P = self.spec.hidden, self.spec.ssm_dim

        def lin(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
            r = 1.0 / np.sqrt(n_in)
            return rng.uniform(-r, r, (n_out, n_in)), rng.uniform(-r, r, n_out)

        p: dict[str, np.ndarray] = {}
        p["encoder.W"], p["encoder.b"] = lin(H, self.n_inputs)
        for i, dev in enumerate(self.devices):
            k = f"blocks.{i}."
            p[k + "norm.gamma"] = np.ones(H)
            p[k + "norm.beta"] = np.zeros(H)
            if self.spec.norm == "batch":
                p[k + "norm.mean"] = np.zeros(H)
                p[k + "norm.var"] = np.ones(H)
            p[k + "core"] = dev.theta0.copy()
            p[k + "C"] = rng.normal(0.0, 1.0 / np.sqrt(P), (H, P))
            p[k + "D"] = rng.normal(0.0, 1.0, H)
            p[k + "glu.W1"], p[k + "glu.b1"] = lin(H, H)
            p[k + "glu.W2"], p[k + "glu.b2"] = lin(H, H)
        p["decoder.W"], p["decoder.b"] = lin(self.n_outputs, H)
        return p

    def param_names(self) -> list[str]:
        return list(self.init_params(0))

    def buffer_names(self) -> list[str]:
        """Entries of the parameter dict that are not trained: the batch norms' running
        statistics (their gradient is zero; :meth:`update_norm_stats` moves them)."""
        if self.spec.norm != "batch":
            return []
        return [f"blocks.{i}.norm.{s}" for i in range(self.spec.n_blocks) for s in ("mean", "var")]

    def update_norm_stats(self, params: dict[str, np.ndarray], caches: list[_BlockCache]) -> None:
        """Move the running statistics (in place) towards the batch statistics of ``caches``."""
        if self.spec.norm != "batch":
            return
        w = self.spec.norm_momentum
        for i, c in enumerate(caches):
            k = f"blocks.{i}.norm."
            mu, var = c.stats
            params[k + "mean"] *= 1.0 - w
            params[k + "mean"] += w * mu
            params[k + "var"] *= 1.0 - w
            params[k + "var"] += w * var

    def groups(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Parameters (or gradients) with each core split into its named device groups."""
        out = {}
        for name, val in params.items():
            if name.endswith(".core"):
                i = int(name.split(".")[1])
                for g, v in self.devices[i].split(val).items():
                    out[f"{name}.{g}"] = v
            else:
                out[name] = val
        return out

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        params: dict[str, np.ndarray],
        X: np.ndarray,
        *,
        rng: np.random.Generator | None = None,
        keep: Algo | Literal["both"] | None = None,
        timings: Timings | None = None,
    ):
        """Model output for batch-first inputs ``X`` (batch, n_steps, n_inputs).

        ``rng`` turns dropout on (training); ``keep`` stores what the backward of the given
        algorithm needs (``"both"``: the BPTT record, from which RHEL can also run).
        Returns ``(out, x_top, caches)``: logits (batch, n_classes) or regression outputs
        before tanh (batch, n_out_steps, n_outputs), the top hidden sequence and the caches.
        """
        t = timings or Timings()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[2] != self.n_inputs:
            raise ValueError(
                f"inputs must have shape (batch, n_steps, {self.n_inputs}), got {X.shape}"
            )
        t0 = time.perf_counter()
        Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
        x = L.linear_forward(Xt, params["encoder.W"], params["encoder.b"])
        rate = self.spec.dropout
        caches: list[_BlockCache] = []
        t.digital_forward += time.perf_counter() - t0
        for i, dev in enumerate(self.devices):
            k = f"blocks.{i}."
            t0 = time.perf_counter()
            gamma, beta = params[k + "norm.gamma"], params[k + "norm.beta"]
            stats = None
            if self.spec.norm == "layer":
                u, xhat, rstd = L.layer_norm_forward(x, gamma, beta, self.spec.norm_eps)
            elif keep is not None:  # training: this batch's statistics, differentiated
                stats = L.batch_norm_stats(x)
                u, xhat, rstd = L.batch_norm_forward(x, gamma, beta, self.spec.norm_eps, stats)
            else:  # evaluation: running statistics
                run = (params[k + "norm.mean"], params[k + "norm.var"])
                u, xhat, rstd = L.batch_norm_forward(x, gamma, beta, self.spec.norm_eps, run)
            t1 = time.perf_counter()
            if keep in ("bptt", "both"):
                traj = simulate(dev, params[k + "core"], u, record=True, observe=False)
                phi = traj.q[1:]
            else:
                traj = simulate(dev, params[k + "core"], u)
                phi = traj.y
                traj = Trajectory(traj.q_final, traj.p_final, None, None, None, traj.dt)
            t2 = time.perf_counter()
            z = L.linear_forward(phi, params[k + "C"], None)
            z += params[k + "D"] * u
            m1 = L.dropout_mask(rng, z.shape, rate)
            h = L.dropout_apply(L.gelu_with_cdf(z)[0], m1, rate)
            del z
            o, _, _ = L.glu_forward(
                h,
                params[k + "glu.W1"],
                params[k + "glu.b1"],
                params[k + "glu.W2"],
                params[k + "glu.b2"],
            )
            del h
            m2 = L.dropout_mask(rng, o.shape, rate)
            x = x + L.dropout_apply(o, m2, rate)
            if keep is not None:
                caches.append(_BlockCache(xhat, rstd, phi, traj, m1, m2, stats))
            t.core_forward += t2 - t1
            t.digital_forward += time.perf_counter() - t0 - (t2 - t1)
        t0 = time.perf_counter()
        out = self._decode(params, x)
        t.digital_forward += time.perf_counter() - t0
        return out, x, caches

    def _decode(self, params, x: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return L.linear_forward(x.mean(axis=0), params["decoder.W"], params["decoder.b"])
        s = self.spec.output_step or 1
        xs = x[s - 1 :: s]
        pre = L.linear_forward(xs, params["decoder.W"], params["decoder.b"])
        return np.ascontiguousarray(pre.transpose(1, 0, 2))

    def n_out_steps(self, n_steps: int) -> int:
        return n_steps // (self.spec.output_step or 1)

    # ------------------------------------------------------------------ loss
    def loss(self, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        """(loss, dloss/dout, metrics) for logits / pre-tanh outputs ``out`` and targets ``y``."""
        if self.task == "classification":
            labels = np.asarray(y).astype(np.int64).reshape(-1)
            value, dout = L.softmax_cross_entropy(out, labels)
            acc = float(np.mean(np.argmax(out, axis=1) == labels))
            return value, dout, {"loss": value, "accuracy": acc}
        target = np.asarray(y, dtype=np.float64).reshape(out.shape)
        value, dout, _ = L.tanh_mse(out, target)
        return value, dout, {"loss": value, "mse": value}

    # ------------------------------------------------------------------ backward
    def backward(
        self,
        params: dict[str, np.ndarray],
        X: np.ndarray,
        x_top: np.ndarray,
        caches: list[_BlockCache],
        dout: np.ndarray,
        *,
        algo: Algo,
        timings: Timings | None = None,
    ) -> dict[str, np.ndarray]:
        """Parameter gradients from dL/dout: numpy backprop for the digital parts, ``algo``
        (RHEL echo or BPTT twin) for every HRU core, chained block by block."""
        if algo not in ("rhel", "bptt"):
            raise ValueError(f"algo must be 'rhel' or 'bptt', got {algo!r}")
        if len(caches) != len(self.devices):
            raise ValueError("backward needs the caches of forward(..., keep=algo)")
        t = timings or Timings()
        t0 = time.perf_counter()
        grads: dict[str, np.ndarray] = {}
        n_steps = x_top.shape[0]
        rate = self.spec.dropout
        if self.task == "classification":
            xm = x_top.mean(axis=0)
            dxm, grads["decoder.W"], grads["decoder.b"] = L.linear_backward(
                dout, xm, params["decoder.W"]
            )
            dx = np.empty_like(x_top)
            dx[...] = dxm / n_steps
        else:
            s = self.spec.output_step or 1
            xs = x_top[s - 1 :: s]
            dpre = np.ascontiguousarray(dout.transpose(1, 0, 2))
            dxs, grads["decoder.W"], grads["decoder.b"] = L.linear_backward(
                dpre, xs, params["decoder.W"]
            )
            dx = np.zeros_like(x_top)
            dx[s - 1 :: s] = dxs
        t.digital_backward += time.perf_counter() - t0
        for i in reversed(range(len(self.devices))):
            k = f"blocks.{i}."
            c = caches[i]
            dev = self.devices[i]
            t0 = time.perf_counter()
            gamma = params[k + "norm.gamma"]
            u = L.layer_norm_apply(c.xhat, gamma, params[k + "norm.beta"])
            C = params[k + "C"]
            z = L.linear_forward(c.phi, C, None)  # same operations as forward: bit-identical
            z += params[k + "D"] * u
            gz, cdf = L.gelu_with_cdf(z)
            h = L.dropout_apply(gz, c.mask1, rate)
            del gz
            W1, W2 = params[k + "glu.W1"], params[k + "glu.W2"]
            _, a, g = L.glu_forward(h, W1, params[k + "glu.b1"], W2, params[k + "glu.b2"])
            do = L.dropout_apply(dx, c.mask2, rate)
            (
                dh,
                grads[k + "glu.W1"],
                grads[k + "glu.b1"],
                grads[k + "glu.W2"],
                grads[k + "glu.b2"],
            ) = L.glu_backward(do, h, a, g, W1, W2)
            del a, g, h, do
            dz = L.gelu_backward_from_cdf(L.dropout_apply(dh, c.mask1, rate), z, cdf)
            del dh, z, cdf
            _, grads[k + "C"], _ = L.linear_backward(dz, c.phi, C)
            grads[k + "D"] = (dz * u).reshape(-1, u.shape[-1]).sum(axis=0)
            dphi = np.ascontiguousarray(L.linear_forward(dz, C.T, None))
            du = dz * params[k + "D"]
            del dz
            t1 = time.perf_counter()
            theta = params[k + "core"]
            if algo == "rhel":
                eps = self.spec.eps if self.spec.eps is not None else default_eps(dev)
                res = rhel_echo(dev, theta, u, c.traj, dphi, eps=eps, input_grad=True)
            else:
                if c.traj.q is None:
                    raise ValueError("BPTT needs forward(..., keep='bptt' or 'both')")
                res = bptt_backward(dev, theta, u, c.traj, dphi, input_grad=True)
            t2 = time.perf_counter()
            del dphi
            grads[k + "core"] = res.grad
            du += res.grad_u
            if self.spec.norm == "layer":
                dxn, grads[k + "norm.gamma"], grads[k + "norm.beta"] = L.layer_norm_backward(
                    du, c.xhat, c.rstd, gamma
                )
            else:
                dxn, grads[k + "norm.gamma"], grads[k + "norm.beta"] = L.batch_norm_backward(
                    du, c.xhat, c.rstd, gamma
                )
                grads[k + "norm.mean"] = np.zeros_like(params[k + "norm.mean"])
                grads[k + "norm.var"] = np.zeros_like(params[k + "norm.var"])
            dx += dxn
            t.core_backward += t2 - t1
            t.digital_backward += time.perf_counter() - t0 - (t2 - t1)
        t0 = time.perf_counter()
        Xt = np.ascontiguousarray(np.asarray(X, dtype=np.float64).transpose(1, 0, 2))
        _, grads["encoder.W"], grads["encoder.b"] = L.linear_backward(dx, Xt, params["encoder.W"])
        t.digital_backward += time.perf_counter() - t0
        return {name: grads[name] for name in params}

    # ------------------------------------------------------------------ conveniences
    def loss_and_grad(
        self,
        params: dict[str, np.ndarray],
        X: np.ndarray,
        y: np.ndarray,
        *,
        algo: Algo,
        rng: np.random.Generator | None = None,
        timings: Timings | None = None,
        update_stats: bool = False,
    ) -> tuple[float, dict[str, float], dict[str, np.ndarray]]:
        """One training evaluation: forward, loss and parameter gradients by ``algo``;
        ``update_stats`` also moves the batch norms' running statistics (a training step)."""
        out, x_top, caches = self.forward(params, X, rng=rng, keep=algo, timings=timings)
        value, dout, metrics = self.loss(out, y)
        grads = self.backward(params, X, x_top, caches, dout, algo=algo, timings=timings)
        if update_stats:
            self.update_norm_stats(params, caches)
        return value, metrics, grads

    def predict(self, params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
        """Evaluation-mode output (no dropout, nothing stored)."""
        return self.forward(params, X)[0]


def estimate_memory_bytes(spec: HSSMSpec, n_steps: int, batch: int, algo: Algo | None) -> int:
    """Peak bytes of one training step (stored activations plus the largest transients);
    ``algo=None`` for an evaluation forward pass, which stores nothing between blocks."""
    H, P, N = spec.hidden, spec.ssm_dim, spec.n_blocks
    lb = n_steps * batch
    if algo is None:
        return int(8 * lb * (6 * H + 2 * P))
    per_block = 8 * lb * (H + (2 * P if algo == "bptt" else P)) + 2 * lb * H
    transient = 8 * lb * (10 * H + 3 * P)
    return int(N * per_block + transient)
