"""The deep Hamiltonian state-space model (HSSM) of REFERENCE §2 and its two learning rules.

::

    x = encoder(input)                                   linear, H channels
    for each block:  u = norm(x)                         layer norm over channels, or batch
                                                         norm per channel (running statistics
                                                         at evaluation)
                     φ = HRU(u)                          a LinHRU / NonlinHRU Device, y = φ
                     z = Re(φ Cᵀ) + D ⊙ u                readout Re(Cφ) + D⊙u (C real, or
                                                         complex with ``complex_ssm``)
                     h = dropout(GELU(z))                GELU's tanh form (the paper's code)
                                                         or the exact v·Φ(v)
                     x = x + dropout(GLU(h))             GLU(h) = (W₁h + b₁) ⊙ sigmoid(W₂h + b₂)
    classification: logits = decoder(mean_t x) → softmax cross-entropy
    regression:     out = tanh(decoder(x[output_step−1 :: output_step])) → MSE

Learning: the digital periphery is back-propagated by fused numba kernels streamed over row
blocks (:mod:`physim.hssm.periphery_kernels`); each HRU core is differentiated
either by **RHEL** (``rhel_echo``: the core's error dL/dφ nudges its echo, which returns the
parameter gradient and the input gradient dL/du — after the digital backward of the block
below, that becomes the nudge of the block below's echo, paper Thm 3.3) or by the **BPTT**
twin (``bptt_backward``). Both run from the same forward pass. Arrays inside are time-major
(n_steps, batch, channels); model inputs are batch-first (batch, n_steps, channels).

Memory: a block keeps only what its backward cannot cheaply recompute — the normalised input
``xhat``, the core trajectory φ (RHEL) or states q, p (BPTT) and the bit-packed dropout
masks; the readout, GELU and GLU are recomputed during the backward pass, row block by row
block (bit-identical to the forward).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numba
import numpy as np

from physim.bptt import bptt_backward
from physim.device import Device
from physim.families.hru import LinHRUSpec, NonlinHRUSpec
from physim.hssm import layers as L
from physim.hssm import periphery_kernels as PK
from physim.hssm.buffers import StepBuffers
from physim.hssm.chips import ChipCore, chip_specs
from physim.hssm.config import HSSMSpec
from physim.rhel import default_eps, rhel_echo
from physim.simulate import Trajectory, simulate
from physim.threads import single_threaded_blas

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


@dataclass(frozen=True)
class _BlockWeights:
    """One block's periphery weights in the layouts the kernels take."""

    C: np.ndarray  # (H, n_modes) readout of the core's positions ([Re C | −Im C] if complex)
    Ct: np.ndarray  # its transpose (n_modes, H), contiguous
    D: np.ndarray
    W12: np.ndarray  # [W₁; W₂] (2H, H)
    W12t: np.ndarray  # its transpose (H, 2H), contiguous
    b12: np.ndarray


def _block_weights(
    params: dict[str, np.ndarray], k: str, complex_core: bool, dtype=np.float64
) -> _BlockWeights:
    """``dtype``: that of the activations, which the kernels' matrices and their elementwise
    D and b share (float32 arithmetic stays float32)."""
    C = params[k + "C"]
    if complex_core:  # Re(C φ) = Re C · Re φ − Im C · Im φ over the stacked (Re φ, Im φ)
        C = np.concatenate([C, -params[k + "C_im"]], axis=1)
    C = np.ascontiguousarray(C, dtype=dtype)
    W12 = np.concatenate([params[k + "glu.W1"], params[k + "glu.W2"]])
    W12 = np.ascontiguousarray(W12, dtype=dtype)
    return _BlockWeights(
        C=C,
        Ct=np.ascontiguousarray(C.T),
        D=np.ascontiguousarray(params[k + "D"], dtype=dtype),
        W12=W12,
        W12t=np.ascontiguousarray(W12.T),
        b12=np.concatenate([params[k + "glu.b1"], params[k + "glu.b2"]]).astype(dtype),
    )


_NO_MASK = np.zeros((1, 1), dtype=np.uint8)


def _check_algo(algo: str) -> None:
    if algo not in ("rhel", "bptt"):
        raise ValueError(f"algo must be 'rhel' or 'bptt', got {algo!r}")


def _masks(m1: np.ndarray | None, m2: np.ndarray | None) -> tuple:
    """(m1, m2, has_mask) for the kernels (a dummy array when dropout is off)."""
    if m1 is None:
        return _NO_MASK, _NO_MASK, False
    return m1, m2, True


class _Workspace:
    """Per-thread scratch row blocks of the periphery kernels (a few MB, reused per block)."""

    def __init__(self, n_ch: int, dtype=np.float64) -> None:
        self.n_threads = numba.get_num_threads()
        # a row per thread id of numba's pool (the backward's lanes index it by thread id)
        shape = (max(self.n_threads, numba.config.NUMBA_NUM_THREADS), PK.CHUNK_ROWS)
        self.z = np.empty((*shape, n_ch), dtype)
        self.cdf = np.empty((*shape, n_ch), dtype)
        self.pre = np.empty((*shape, 2 * n_ch), dtype)


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
    #: one chip per block when the spec names a non-ideality (physim.hssm.chips), else None
    chips: tuple[ChipCore, ...] | None = None

    @property
    def _complex(self) -> bool:
        """LinHRU cores with complex B, C (two tied real oscillator sets per core)."""
        return self.spec.complex_ssm

    @property
    def dtype(self) -> type:
        """dtype of the sequence-sized activations (``spec.precision``)."""
        return np.float32 if self.spec.precision == "float32" else np.float64

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
                dev = LinHRUSpec(
                    kind="linhru",
                    dt=spec.hru_dt or 1.0,
                    a_param=spec.a_param,
                    complex_ssm=spec.complex_ssm,
                    **init,
                    **common,
                ).build()
            else:
                dev = NonlinHRUSpec(kind="nonlinhru", dt=spec.hru_dt or 0.1, **common).build()
            devs.append(dev)
        specs = chip_specs(spec, spec.n_blocks)
        chips = None
        if specs is not None:
            chips = tuple(
                ChipCore(d, ns, i, spec.chip_seed)
                for i, (d, ns) in enumerate(zip(devs, specs, strict=True))
            )
        return cls(spec, n_inputs, n_outputs, task, tuple(devs), chips)

    def init_params(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Fresh parameters: uniform ±1/√fan_in linears, C ~ N(0, 1/P), D ~ N(0, 1); a complex
        core's C has Re and Im parts ~ N(0, 1/(2P)) each (``C``, ``C_im``, drawn in turn)."""
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
            if self._complex:
                p[k + "C"] = rng.normal(0.0, 1.0 / np.sqrt(2 * P), (H, P))
                p[k + "C_im"] = rng.normal(0.0, 1.0 / np.sqrt(2 * P), (H, P))
            else:
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

    def scale_dt(self, params: dict[str, np.ndarray], factor: float) -> None:
        """Multiply every LinHRU mode's step Δt = sigmoid(θ_Δt) by ``factor`` (in place):
        θ_Δt ← logit(sigmoid(θ_Δt)·factor). With factor L_old/L_new each mode covers the same
        share of an L_new-step sequence as it did of L_old steps (a length curriculum)."""
        if self.spec.model != "linhru":
            raise ValueError(f"scale_dt needs LinHRU cores, got {self.spec.model!r}")
        if not 0 < factor <= 1:
            raise ValueError(f"scale_dt: factor must be in (0, 1], got {factor}")
        for i, dev in enumerate(self.devices):
            sl = dev.slices()["dt"]
            theta = params[f"blocks.{i}.core"]
            dt = factor / (1.0 + np.exp(-theta[sl]))
            theta[sl] = np.log(dt) - np.log1p(-dt)

    def recompute_norm_stats(self, params: dict[str, np.ndarray], batches) -> None:
        """Precise batch norm: set the running statistics (in place) to the mean batch
        statistics of ``batches`` (input arrays) at the current parameters.

        A running average mixes statistics of parameters that have since moved; a lossless
        core integrates the resulting offset over the whole sequence, so on long sequences the
        evaluation-mode model can be far worse than the trained one (adding problem at
        L = 400: validation MSE 0.10 with the running averages, 0.017 with 16 batches here).
        Block i's statistics are those of a forward pass that normalises every block with its
        batch's own statistics, as training does (no dropout)."""
        if self.spec.norm != "batch":
            return
        if self.chips is not None:
            raise ValueError(
                "recomputing the norm statistics runs extra forward passes, which would advance "
                "the chips' noise streams; it is not available with model.nonideal"
            )
        total = None
        n = 0
        for X in batches:
            _, _, stats = self.forward(params, X, keep="stats")
            if total is None:
                total = [(mu.astype(np.float64), var.astype(np.float64)) for mu, var in stats]
            else:
                total = [(a + mu, b + var) for (a, b), (mu, var) in zip(total, stats, strict=True)]
            n += 1
        if total is None:
            raise ValueError("recompute_norm_stats needs at least one batch")
        for i, (mu, var) in enumerate(total):
            params[f"blocks.{i}.norm.mean"][...] = mu / n
            params[f"blocks.{i}.norm.var"][...] = var / n

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
        keep: Algo | Literal["both", "stats"] | None = None,
        timings: Timings | None = None,
        buffers: StepBuffers | None = None,
    ):
        """Model output for batch-first inputs ``X`` (batch, n_steps, n_inputs).

        ``rng`` turns dropout on (training); ``keep`` stores what the backward of the given
        algorithm needs (``"both"``: the BPTT record, from which RHEL can also run;
        ``"stats"``: nothing, but batch norms use their batch's statistics, which take the
        caches' place in the result, a list of (mean, var) per block).
        Returns ``(out, x_top, caches)``: logits (batch, n_classes) or regression outputs
        before tanh (batch, n_out_steps, n_outputs), the top hidden sequence and the caches.
        With ``buffers`` the activations live in its arrays, reused by its next user (see
        :mod:`physim.hssm.buffers`); without, they are fresh.
        """
        t = timings or Timings()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[2] != self.n_inputs:
            raise ValueError(
                f"inputs must have shape (batch, n_steps, {self.n_inputs}), got {X.shape}"
            )
        step = self.spec.output_step or 1
        if self.task == "regression" and X.shape[1] < step:
            raise ValueError(
                f"a regression HSSM reads every output_step = {step}-th step, but the inputs have "
                f"{X.shape[1]} steps: no output would be read; use sequences of >= {step} steps "
                "or a smaller output_step"
            )
        with single_threaded_blas():
            return self._forward(params, X, rng, keep, t, buffers or StepBuffers())

    def _forward(self, params, X, rng, keep, t: Timings, buf: StepBuffers):
        t0 = time.perf_counter()
        batch, n_steps, _ = X.shape
        H = self.spec.hidden
        R = n_steps * batch
        dt = self.dtype
        Xt = np.ascontiguousarray(X.transpose(1, 0, 2), dtype=dt)
        x = buf.get("x", (n_steps, batch, H), dt)
        x2 = x.reshape(R, H)  # a view: the blocks add their residuals into x in place
        np.matmul(Xt.reshape(R, -1), params["encoder.W"].T.astype(dt, copy=False), out=x2)
        x2 += params["encoder.b"]
        rate = self.spec.dropout
        scale = 1.0 / (1.0 - rate)
        ws = _Workspace(H, dt)
        caches: list[_BlockCache] = []
        stats_only: list[tuple[np.ndarray, np.ndarray]] = []
        kept = keep is not None and keep != "stats"  # what a backward needs is stored
        t.digital_forward += time.perf_counter() - t0
        for i, dev in enumerate(self.devices):
            k = f"blocks.{i}."
            t0 = time.perf_counter()
            gamma, beta = params[k + "norm.gamma"], params[k + "norm.beta"]
            stats = None
            own = str(i) if kept else ""  # kept per block, or one shared array
            if self.spec.norm == "layer":
                u = buf.get("u", x.shape, dt)  # the norm output, shared by the blocks
                xhat = buf.get("xhat" + own, x.shape, dt)
                rstd = buf.get("rstd" + own, (R,))
                PK.layer_norm_fwd(
                    x2, gamma, beta, self.spec.norm_eps, u.reshape(R, H), xhat.reshape(R, H), rstd
                )
            elif keep is not None:  # training (or "stats"): this batch's statistics
                stats = L.batch_norm_stats(x)
                u, xhat, rstd = L.batch_norm_forward(x, gamma, beta, self.spec.norm_eps, stats)
            else:  # evaluation: running statistics
                run = (params[k + "norm.mean"], params[k + "norm.var"])
                u, xhat, rstd = L.batch_norm_forward(x, gamma, beta, self.spec.norm_eps, run)
            t1 = time.perf_counter()
            if self.chips is not None:
                if keep in ("bptt", "both"):
                    raise ValueError(
                        "BPTT needs the core's adjoint, which a chip has not: train cores on "
                        "chips with algo = 'rhel' (the BPTT twin runs without model.nonideal)"
                    )
                phi, traj = self.chips[i].forward(params[k + "core"], u)
            elif keep in ("bptt", "both"):
                traj = simulate(dev, params[k + "core"], u, record=True, observe=False)
                phi = traj.q[1:].astype(dt, copy=False)
            else:
                y_out = buf.get("phi" + own, (n_steps, batch, dev.n_outputs), dt)
                traj = simulate(dev, params[k + "core"], u, y_out=y_out)
                phi = traj.y
                traj = Trajectory(traj.q_final, traj.p_final, None, None, None, traj.dt)
            phi = np.ascontiguousarray(phi)
            t2 = time.perf_counter()
            m1 = m2 = None
            if rng is not None and rate > 0.0:
                mshape = (R, (H + 7) // 8)
                m1 = L.dropout_bits(rng, R, H, rate, buf.get("mask1_" + own, mshape, np.uint8))
                m2 = L.dropout_bits(rng, R, H, rate, buf.get("mask2_" + own, mshape, np.uint8))
            w = _block_weights(params, k, self._complex, dt)
            PK.block_fwd(
                x2,
                np.ascontiguousarray(u).reshape(R, H),
                phi.reshape(R, -1),
                w.Ct,
                w.D,
                w.W12t,
                w.b12,
                *_masks(m1, m2),
                scale,
                self.spec.gelu == "tanh",
                ws.n_threads,
                ws.z,
                ws.pre,
            )
            if kept:
                caches.append(_BlockCache(xhat, rstd, phi, traj, m1, m2, stats))
            elif keep == "stats":  # batch_norm_stats' fresh arrays, not buffers
                stats_only.append(stats)
            del u
            t.core_forward += t2 - t1
            t.digital_forward += time.perf_counter() - t0 - (t2 - t1)
        t0 = time.perf_counter()
        out = self._decode(params, x)
        t.digital_forward += time.perf_counter() - t0
        return out, x, (stats_only if keep == "stats" else caches)

    def _decode(self, params, x: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            xm = x.mean(axis=0, dtype=np.float64)
            return L.linear_forward(xm, params["decoder.W"], params["decoder.b"])
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
        buffers: StepBuffers | None = None,
    ) -> dict[str, np.ndarray]:
        """Parameter gradients from dL/dout: backprop through the digital parts (fused
        kernels), ``algo`` (RHEL echo or BPTT twin) for every HRU core, chained block by block.
        Neither ``x_top`` nor ``caches`` is modified (RHEL and BPTT may run from one forward);
        ``buffers`` holds the backward's row buffers (as in :meth:`forward`)."""
        _check_algo(algo)
        if len(caches) != len(self.devices):
            raise ValueError("backward needs the caches of forward(..., keep=algo)")
        with single_threaded_blas():
            return self._backward(
                params,
                X,
                x_top,
                caches,
                dout,
                algo,
                timings or Timings(),
                buffers or StepBuffers(),
                consume=False,
            )

    def _backward(self, params, X, x_top, caches, dout, algo, t, buf, *, consume: bool):
        """``consume``: the caller owns x_top and the caches and drops them afterwards (as
        :meth:`loss_and_grad` does), so dL/dx is formed in x_top's memory and, for RHEL, dL/dφ
        in each block's stored φ (its echo needs only the final state) — one sequence-sized
        array less of each."""
        t0 = time.perf_counter()
        grads: dict[str, np.ndarray] = {}
        n_steps, batch, H = x_top.shape
        R = n_steps * batch
        rate = self.spec.dropout
        scale = 1.0 / (1.0 - rate)
        dt = x_top.dtype
        if self.task == "classification":
            xm = x_top.mean(axis=0, dtype=np.float64)
            dxm, grads["decoder.W"], grads["decoder.b"] = L.linear_backward(
                dout, xm, params["decoder.W"]
            )
            dx = x_top if consume else buf.get("dx", x_top.shape)
            dx[...] = dxm / n_steps
        else:
            s = self.spec.output_step or 1
            xs = x_top[s - 1 :: s]
            dpre = np.ascontiguousarray(dout.transpose(1, 0, 2))
            dxs, grads["decoder.W"], grads["decoder.b"] = L.linear_backward(
                dpre, xs, params["decoder.W"]
            )
            dx = x_top if consume else buf.get("dx", x_top.shape)
            dx[...] = 0.0
            dx[s - 1 :: s] = dxs
        dx2 = dx.reshape(R, H)
        n_modes = caches[0].phi.shape[2]
        # one set of row buffers for all blocks: u (the norm output, recomputed), du (dL/du:
        # the readout's share from the periphery kernel, then the core's added by its echo or
        # adjoint) and dphi (dL/dφ, the core's error signal)
        u = buf.get("u", x_top.shape, dt)  # (the forward's norm output is no longer needed)
        du = buf.get("du", x_top.shape, dt)
        in_place = consume and algo == "rhel"
        dphi_buf = None if in_place else buf.get("dphi", (n_steps, batch, n_modes), dt)
        t.digital_backward += time.perf_counter() - t0
        for i in reversed(range(len(self.devices))):
            k = f"blocks.{i}."
            c = caches[i]
            dev = self.devices[i]
            t0 = time.perf_counter()
            dphi = c.phi if in_place else dphi_buf  # (block_bwd reads each φ row before)
            gamma = params[k + "norm.gamma"]
            PK.norm_apply(c.xhat.reshape(R, H), gamma, params[k + "norm.beta"], u.reshape(R, H))
            w = _block_weights(params, k, self._complex, dt)
            # per-lane sums, a fixed number of lanes: the same sums on any thread count
            acc_C = np.empty((PK.LANES, n_modes, H))
            acc_W = np.empty((PK.LANES, H, 2 * H))
            acc_v = np.empty((PK.LANES, 2, 2 * H))
            ws = _Workspace(H, dt)  # (freed before the core's echo, which can then use its memory)
            PK.block_bwd(
                dx2,
                u.reshape(R, H),
                c.phi.reshape(R, n_modes),
                w.Ct,
                w.C,
                w.D,
                w.W12t,
                w.W12,
                w.b12,
                *_masks(c.mask1, c.mask2),
                scale,
                self.spec.gelu == "tanh",
                PK.LANES,
                ws.z,
                ws.cdf,
                ws.pre,
                dphi.reshape(R, n_modes),
                du.reshape(R, H),
                acc_C,
                acc_W,
                acc_v,
            )
            del ws
            dW12t = acc_W.sum(axis=0)
            v = acc_v.sum(axis=0)
            grads[k + "glu.W1"] = np.ascontiguousarray(dW12t[:, :H].T)
            grads[k + "glu.W2"] = np.ascontiguousarray(dW12t[:, H:].T)
            grads[k + "glu.b1"] = v[0, :H].copy()
            grads[k + "glu.b2"] = v[0, H:].copy()
            grads[k + "D"] = v[1, :H].copy()
            dC = acc_C.sum(axis=0).T  # (H, n_modes): d/d[Re C | −Im C] for a complex core
            if self._complex:
                P = n_modes // 2
                grads[k + "C"] = np.ascontiguousarray(dC[:, :P])
                grads[k + "C_im"] = -np.ascontiguousarray(dC[:, P:])
            else:
                grads[k + "C"] = np.ascontiguousarray(dC)
            t1 = time.perf_counter()
            theta = params[k + "core"]
            # the core's input gradient is added into du (du = readout share + core share)
            if algo == "rhel":
                eps = self.spec.eps if self.spec.eps is not None else default_eps(dev)
                echo = rhel_echo if self.chips is None else self.chips[i].echo
                res = echo(dev, theta, u, c.traj, dphi, eps=eps, input_grad=True, grad_u_into=du)
            else:
                if c.traj.q is None:
                    raise ValueError("BPTT needs forward(..., keep='bptt' or 'both')")
                res = bptt_backward(dev, theta, u, c.traj, dphi, input_grad=True, grad_u_into=du)
            t2 = time.perf_counter()
            grads[k + "core"] = res.grad
            if self.spec.norm == "layer":
                parts = PK.norm_parts(R)  # (not the thread count: the sums stay the same)
                acc = np.empty((parts, 2, H))
                PK.layer_norm_bwd(
                    du.reshape(R, H), c.xhat.reshape(R, H), c.rstd, gamma, parts, dx2, acc
                )
                gb = acc.sum(axis=0)
                grads[k + "norm.gamma"], grads[k + "norm.beta"] = gb[0], gb[1]
            else:
                dxn, grads[k + "norm.gamma"], grads[k + "norm.beta"] = L.batch_norm_backward(
                    du, c.xhat, c.rstd, gamma
                )
                grads[k + "norm.mean"] = np.zeros_like(params[k + "norm.mean"])
                grads[k + "norm.var"] = np.zeros_like(params[k + "norm.var"])
                dx += dxn
                del dxn
            del res
            t.core_backward += t2 - t1
            t.digital_backward += time.perf_counter() - t0 - (t2 - t1)
        del u, du, dphi, dphi_buf
        t0 = time.perf_counter()
        Xt = np.ascontiguousarray(np.asarray(X, dtype=np.float64).transpose(1, 0, 2))
        # (the encoder's input gradient is not needed)
        grads["encoder.W"], grads["encoder.b"] = L.linear_param_grads(dx, Xt)
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
        buffers: StepBuffers | None = None,
    ) -> tuple[float, dict[str, float], dict[str, np.ndarray]]:
        """One training evaluation: forward, loss and parameter gradients by ``algo``;
        ``update_stats`` also moves the batch norms' running statistics (a training step).
        Nothing it returns lives in ``buffers``: a training loop passes one
        :class:`~physim.hssm.buffers.StepBuffers` to all its steps."""
        _check_algo(algo)  # before the forward, which would otherwise run in vain
        buffers = buffers or StepBuffers()
        out, x_top, caches = self.forward(
            params, X, rng=rng, keep=algo, timings=timings, buffers=buffers
        )
        value, dout, metrics = self.loss(out, y)
        with single_threaded_blas():
            grads = self._backward(
                params, X, x_top, caches, dout, algo, timings or Timings(), buffers, consume=True
            )
        if update_stats:
            self.update_norm_stats(params, caches)
        return value, metrics, grads

    def predict(self, params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
        """Evaluation-mode output (no dropout, nothing stored)."""
        return self.forward(params, X)[0]


def estimate_memory_bytes(spec: HSSMSpec, n_steps: int, batch: int, algo: Algo | None) -> int:
    """Bytes of the sequence-sized arrays of one training step by ``loss_and_grad`` (what
    its :class:`~physim.hssm.buffers.StepBuffers` holds, plus BPTT's recorded states);
    ``algo=None`` for an evaluation forward pass, which stores nothing between blocks.

    Per block: xhat and its row scale, two bit-packed dropout masks and φ (RHEL, whose
    backward forms dL/dφ in φ's memory) or the recorded q, p (BPTT). Shared: the residual
    stream x (dL/dx is formed in it), the norm output u and dL/du, and for BPTT dL/dφ.
    Activations take 4 bytes with ``precision = "float32"``, 8 otherwise.
    """
    H, P, N = spec.hidden, spec.ssm_dim, spec.n_blocks
    if spec.complex_ssm:
        P *= 2  # (Re φ, Im φ)
    lb = n_steps * batch
    f = 4 if spec.precision == "float32" else 8  # bytes of an activation; the row scale: 8
    if algo is None:  # x, u, one xhat, its scale and one φ
        return int(lb * (f * (3 * H + P) + 8))
    masks = 2 * lb * ((H + 7) // 8) if spec.dropout > 0 else 0
    if algo == "rhel":
        core = f * lb * P
    else:  # the recorded q, p (float64), and in float32 φ = q[1:] converted
        core = 16 * (n_steps + 1) * batch * P + (f * lb * P if f == 4 else 0)
    per_block = lb * (f * H + 8) + masks + core
    shared = f * lb * 3 * H + (f * lb * P if algo == "bptt" else 0)
    return int(N * per_block + shared)
