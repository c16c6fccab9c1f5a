"""The simulated instrument: one device, one integrator, and every non-ideality.

An :class:`Instrument` offers what a lab setup offers — program parameters, prepare a state,
drive, flip momenta, kick, and read back trajectories or integrated ∂H/∂θ through converters —
and nothing else. It owns the mutable state of the experiment (the device's q, p for each
parallel branch) and one source object per non-ideality (:mod:`physim.instrument.sources`),
each with its own seeded generator, acting at the hooks of the experiment: build the chip
(mismatch), program θ (parameter DAC), prepare (drift advance), each drive (drive DAC, bath),
flip (flip error), kick, readout and accumulator readout (ADCs). A source at its zero value is
not called. The protocol engine (:mod:`physim.protocol.engine`) is its only driver.

Integrator selection (never by device type): the plain leapfrog kernels when there is no
loss, the Langevin splitting of :mod:`physim.kernels.langevin` when there is, and the
fixed-point kernels of :mod:`physim.kernels.fixedpoint` in fixed-point mode. With every source
at its zero value the calls, arrays and arithmetic are those of :func:`physim.rhel_gradient`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from physim.device import Device, Physical
from physim.errors import NumericalFault, all_finite
from physim.gradients import error_signal
from physim.instrument.bath import Bath, thermal_state
from physim.instrument.converters import ADC, DAC, Reading
from physim.instrument.sources import HOOKS, SOURCES, Source, acts_at
from physim.instrument.specs import BOLTZMANN, NonidealSpec
from physim.kernels import fixedpoint, langevin, leapfrog
from physim.simulate import chunk_bounds, drive, readout

_EMPTY3 = np.zeros((0, 1, 1))
_EMPTY4 = np.zeros((0, 1, 1, 1))


@dataclass(frozen=True)
class DriveOutput:
    """What one drive returns to the engine before digitisation.

    ``samples`` (n_samples, n_branches, batch, n_outputs) are readouts R q after the sampled
    steps (state indices ``sample_index``); ``acc_w`` / ``acc_B`` are the integrated ∂H/∂w and
    ∂H/∂B (summed over batch) per accumulator, already multiplied by the integrator gains.
    """

    samples: np.ndarray | None
    sample_index: np.ndarray | None
    acc_w: np.ndarray | None
    acc_B: np.ndarray | None
    drive_energy: float


class Instrument:
    """A device under test with its non-idealities (see module docstring).

    The instrument is a composition of source objects (:mod:`physim.instrument.sources`), one
    per source of ``nonideal``; each acts at the hooks of the experiment its class overrides
    (build the chip, program θ, prepare, drive, flip, kick, readout, accumulator readout).
    A source at its zero value is not called at all.

    Parameters
    ----------
    device
        The nominal device (what the designer specified).
    nonideal
        Its imperfections; ``None`` or an empty spec is the ideal instrument.
    seed
        Seed of the protocol's own draws (thermal state preparation).
    """

    def __init__(self, device: Device, nonideal: NonidealSpec | None = None, *, seed: int = 0):
        self.device = device
        self.spec = nonideal or NonidealSpec()
        self.seed = int(seed)
        self.prep_rng = np.random.default_rng(self.seed)
        self.n_runs = 0
        num = self.spec.get("numerics")
        self.mode = num.mode if num is not None else "float64"
        self.fraction_bits = num.fraction_bits if num is not None else 40
        self.lq = self.lp = None  # fixed-point grid steps, set by calibrate()
        self.kT = (self.diss.boltzmann if self.diss else BOLTZMANN) * (
            self.diss.temperature if self.diss else 0.0
        )
        # the controller's ε calibrations (eps = "auto"), per protocol JSON
        self.eps_calibrations: dict = {}
        self.theta: np.ndarray | None = None
        self.phys: Physical | None = None
        self.Q = np.zeros((1, 1, device.n_dof))
        self.P = np.zeros((1, 1, device.n_dof))
        # build the chip: one object per source, in the order of the spec (the mismatch draw
        # happens here, once; every attribute above is set, so a source may read them)
        self.sources: list[Source] = [SOURCES.get(s.kind)(s, self) for s in self.spec.sources]
        #: the sources that act: every source not at its zero value, by hook order
        self.active: list[Source] = sorted(
            (src for src in self.sources if not type(src).is_zero(src.spec)),
            key=lambda src: type(src).order,
        )
        self._at = {
            hook: [src for src in self.active if acts_at(type(src), hook)] for hook in HOOKS
        }
        # an absent converter is ideal (its saturation counters stay at zero)
        self._ideal = {
            ("adc", "readout"): ADC(None),
            ("adc", "accumulator"): ADC(None),
            ("dac", "parameters"): DAC(None),
            ("dac", "drive"): DAC(None),
        }

    # ------------------------------------------------------------------ sources
    def source(self, kind: str, target: str | None = None) -> Source | None:
        """The source object of ``kind`` (and ``target``), acting or not, or ``None``."""
        for src in self.sources:
            if src.spec.kind == kind and (
                target is None or getattr(src.spec, "target", None) == target
            ):
                return src
        return None

    def _acting(self, kind: str, target: str | None = None) -> Source | None:
        src = self.source(kind, target)
        return src if src is not None and src in self.active else None

    def _converter(self, kind: str, target: str):
        src = self.source(kind, target)
        return src.converter if src is not None else self._ideal[(kind, target)]

    # what the kernel-calling methods and the tools read, delegated to the source objects
    @property
    def diss(self):
        """The dissipation spec (acting or not: its k_B and T serve thermal preparation)."""
        return self.spec.get("dissipation")

    @property
    def bath(self) -> Bath | None:
        src = self._acting("dissipation")
        return src.bath if src is not None else None

    @property
    def bath_rng(self) -> np.random.Generator | None:
        src = self.source("dissipation")
        return src.rng if src is not None else None

    @property
    def drift_spec(self):
        return self.spec.get("drift")

    @property
    def drift(self) -> np.ndarray:
        """The current relative drift of every element value."""
        src = self.source("drift")
        return src.drift if src is not None else np.zeros_like(self.device.w_base)

    @property
    def flip_spec(self):
        return self.spec.get("flip_error")

    @property
    def w_factor(self) -> np.ndarray:
        """The fabrication mismatch of the element values (multiplicative)."""
        src = self.source("mismatch")
        return src.w_factor if src is not None else np.ones_like(self.device.w_base)

    @property
    def B_factor(self) -> np.ndarray:
        """The fabrication mismatch of the input matrix (multiplicative)."""
        src = self.source("mismatch")
        return src.B_factor if src is not None else np.ones_like(self.device.B_base)

    @property
    def adc_readout(self) -> ADC:
        return self._converter("adc", "readout")

    @property
    def adc_accumulator(self) -> ADC:
        return self._converter("adc", "accumulator")

    @property
    def dac_parameters(self) -> DAC:
        return self._converter("dac", "parameters")

    @property
    def dac_drive(self) -> DAC:
        return self._converter("dac", "drive")

    # ------------------------------------------------------------------ properties
    @property
    def dtype(self):
        return np.float32 if self.mode == "float32" else np.float64

    @property
    def lossy(self) -> bool:
        return self.bath is not None and not self.bath.lossless

    @property
    def n_branches(self) -> int:
        return int(self.Q.shape[0])

    # ------------------------------------------------------------------ programming
    def program(self, theta: np.ndarray | None) -> np.ndarray:
        """Write ``theta`` through the parameter DAC; returns the value actually written."""
        theta = self.device.check_theta(theta)
        groups = list(self.device.slices().values())
        written = theta
        for src in self._at["program"]:
            written = src.program(written, groups)
        self.theta = np.ascontiguousarray(written, dtype=np.float64)
        self._update_physics()
        return self.theta

    def _built_physics(self, theta: np.ndarray) -> Physical:
        """Element values of this chip at ``theta``: every ``physics`` hook applied (the
        fabrication mismatch, then the current drift)."""
        dev = self.device
        nominal = dev.physical(theta)
        w = B = None
        for src in self._at["physics"]:
            w_new, B_new = src.physics(nominal.w if w is None else w, nominal.B if B is None else B)
            w = w_new if w_new is not None else w
            B = B_new if B_new is not None else B
        if w is None:
            prm = nominal.prm
        else:
            dev.check_fn(w)
            prm = (w, *dev.aux_fn(w))
        return Physical(prm=prm, B=np.ascontiguousarray(nominal.B if B is None else B))

    def _update_physics(self) -> None:
        self.phys = self._built_physics(self.theta)
        for src in self._at["built"]:
            src.built(self.phys)

    def as_built(self, theta: np.ndarray | None = None) -> Device:
        """The twin of this chip as built: a lossless, ideal-converter device whose element
        values and input matrix are the nominal ones at ``theta`` (default: the θ last written
        through the DAC) with the fabrication mismatch and the current drift applied.

        It has no learnable groups: its BPTT gradients ``grad_w`` / ``grad_B`` are w.r.t. the
        physical values, which is what the instrument's integrators measure; pull them back
        with the nominal ``device.pullback`` to compare with a measured θ gradient.
        """
        if theta is None:
            theta = self.theta if self.theta is not None else self.device.theta0
        phys = self._built_physics(self.device.check_theta(theta))
        return replace(
            self.device,
            name=f"{self.device.name} (as built)",
            w_base=np.array(phys.w),
            B_base=np.array(phys.B),
            groups=(),
            theta0=np.zeros(0),
        )

    def _advance_drift(self) -> None:
        src = self._acting("drift")
        if src is not None:
            src.advance()

    # ------------------------------------------------------------------ state operations
    def prepare(
        self,
        state: str,
        batch: int,
        *,
        temperature: float | None = None,
        q: np.ndarray | None = None,
        p: np.ndarray | None = None,
    ) -> None:
        """Start a new physical run from a prepared state (one branch)."""
        if self.theta is None:
            self.program(self.device.theta0)
        changed = [src.prepare() for src in self._at["prepare"]]
        if any(changed):
            self._update_physics()
        self.n_runs += 1
        n = self.device.n_dof
        if state == "device":
            q, p = self.device.q0, self.device.p0
        elif state == "zero":
            q, p = np.zeros(n), np.zeros(n)
        elif state == "thermal":
            kB = self.diss.boltzmann if self.diss else BOLTZMANN
            T = (
                temperature
                if temperature is not None
                else (self.diss.temperature if self.diss else 0)
            )
            q, p = thermal_state(self.device, self.phys, kB * T, batch, self.prep_rng)
        for name, v in (("q", q), ("p", p)):
            shape = np.shape(v)
            if shape not in ((n,), (batch, n)):
                raise ValueError(
                    f"prepare state = {state!r}: {name} must have {n} entries (one per degree of "
                    f"freedom of device {self.device.name!r}), got shape {shape}"
                )
        Q = np.broadcast_to(np.asarray(q, dtype=np.float64), (batch, n))
        P = np.broadcast_to(np.asarray(p, dtype=np.float64), (batch, n))
        self.Q = np.array(Q[None], dtype=self.dtype, order="C")
        self.P = np.array(P[None], dtype=self.dtype, order="C")
        self._snap()

    def split(self, n_branches: int) -> None:
        """Copy the state into ``n_branches`` identical parallel branches (an idealisation)."""
        self.Q = np.ascontiguousarray(np.repeat(self.Q[:1], n_branches, axis=0))
        self.P = np.ascontiguousarray(np.repeat(self.P[:1], n_branches, axis=0))

    def flip(self) -> None:
        """Reverse the momenta, with the flip's gain and timing errors if any."""
        hooks = self._at["flip"]
        if not hooks:
            self.P = -self.P
            return
        gain = 1.0
        for src in hooks:
            gain = gain * src.flip()
        self.P = np.ascontiguousarray(-gain * self.P, dtype=self.dtype)

    def kick(self, e: np.ndarray, amplitudes: np.ndarray) -> None:
        """p_t ← p_t + amplitudes[t] · e for every branch t (``e`` has shape (batch, n_dof))."""
        for t in range(self.n_branches):
            dp = amplitudes[t] * e
            for src in self._at["kick"]:
                dp = src.kick(dp)
            self.P[t] += dp.astype(self.dtype)

    def read(self, target: str, name: str, x: np.ndarray) -> Reading:
        """A measurement ``x`` of record ``name`` as the controller receives it, through the
        sources acting on ``target`` ("readout" or "accumulator"), analog ones first, then the
        converter. With none the reading is ``x`` itself (as float64, not copied)."""
        reading = Reading(np.asarray(x, dtype=np.float64), None, None, 0)
        for src in self._at["read"]:
            reading = src.read(target, name, reading)
        return reading

    def momentum_rms(self) -> float:
        P = self.P[0].astype(np.float64)
        return float(np.sqrt(np.mean(P**2))) if P.size else 0.0

    # ------------------------------------------------------------------ calibration
    def calibrate(self, u: np.ndarray) -> None:
        """Fixed-point grid steps from an ideal float64 run of the input ``u`` from the
        current state: 4 × max |q| (resp. |p|) rounded up to a power of two, over
        2^fraction_bits."""
        Q = self.Q[0].astype(np.float64).copy()
        P = self.P[0].astype(np.float64).copy()
        qmax = float(np.max(np.abs(Q), initial=0.0))
        pmax = float(np.max(np.abs(P), initial=0.0))
        nb = u.shape[1]
        for k0, k1 in chunk_bounds(u.shape[0], nb * self.device.n_dof):
            S = drive(u, self.phys.B, k0, k1)
            Qr = np.empty((k1 - k0, nb, self.device.n_dof))
            Pr = np.empty_like(Qr)
            leapfrog.forward_chunk(
                self.device.family,
                self.phys.prm,
                self.device.dt,
                self.device.n_work,
                Q,
                P,
                S,
                Qr,
                Pr,
            )
            qmax = max(qmax, float(np.max(np.abs(Qr))))
            pmax = max(pmax, float(np.max(np.abs(Pr))))

        # powers of two, so that integer · step is exact
        def grid(peak: float) -> float:
            return 2.0 ** (np.ceil(np.log2(4.0 * (peak or 1.0))) - self.fraction_bits)

        self.lq, self.lp = grid(qmax), grid(pmax)
        self._snap()

    def _snap(self) -> None:
        """Put the state on the fixed-point grid (the instrument's state *is* that grid)."""
        if self.mode == "fixed_point" and self.lq is not None:
            self.Q = np.rint(self.Q / self.lq) * self.lq
            self.P = np.rint(self.P / self.lp) * self.lp

    # ------------------------------------------------------------------ kernels
    def _prm(self):
        if self.mode != "float32":
            return self.phys.prm
        w, ai, af, am = self.phys.prm
        return (w.astype(np.float32), ai, af.astype(np.float32), am.astype(np.float32))

    def _forward_kernel(self, Q, P, S, dt, Qrec, Prec) -> None:
        dev = self.device
        if self.lossy:
            XI = self.bath_rng.standard_normal((S.shape[0], Q.shape[0], 2, dev.n_dof))
            langevin.forward_chunk(
                dev.family,
                self._prm(),
                dt,
                dev.n_work,
                Q,
                P,
                S,
                self.bath.A,
                self.bath.N,
                XI,
                Qrec,
                Prec,
            )
        elif self.mode == "fixed_point":
            QI = np.rint(Q / self.lq).astype(np.int64)
            PI = np.rint(P / self.lp).astype(np.int64)
            fixedpoint.forward_chunk(
                dev.family, self.phys.prm, dt, dev.n_work, QI, PI, self.lq, self.lp, S, Qrec, Prec
            )
            Q[:] = QI * self.lq
            P[:] = PI * self.lp
        else:
            leapfrog.forward_chunk(dev.family, self._prm(), dt, dev.n_work, Q, P, S, Qrec, Prec)

    def _echo_kernel(self, Q, P, S, E, kicks, weights, GW, DS, Qrec, echo: bool, keep=None) -> None:
        """One backwards pass over a chunk for the branches in ``Q, P`` (nt, nb, n).

        ``keep`` (nk,) marks the rows of ``Qrec`` that will be read (default: every row)."""
        dev = self.device
        dt = dev.dt
        if self.lossy:
            XI = self.bath_rng.standard_normal((S.shape[0], *Q.shape[:2], 2, dev.n_dof))
            A, N = (self.bath.A_echo, self.bath.N_echo) if echo else (self.bath.A, self.bath.N)
            langevin.echo_chunk(
                dev.family,
                self._prm(),
                dt,
                dev.n_work,
                Q,
                P,
                S,
                E,
                kicks,
                weights,
                A,
                N,
                XI,
                GW,
                DS,
                Qrec,
            )
        elif self.mode == "fixed_point":
            QI = np.rint(Q / self.lq).astype(np.int64)
            PI = np.rint(P / self.lp).astype(np.int64)
            fixedpoint.echo_chunk(
                dev.family,
                self.phys.prm,
                dt,
                dev.n_work,
                QI,
                PI,
                self.lq,
                self.lp,
                S,
                E,
                kicks,
                weights,
                GW,
                DS,
                Qrec,
            )
            Q[:] = QI * self.lq
            P[:] = PI * self.lp
        elif Qrec.shape[0] == 0:
            leapfrog.echo_chunk(
                dev.family, self._prm(), dt, dev.n_work, Q, P, S, E, kicks, weights, GW, DS
            )
        else:
            # the ideal echo has no recording kernel: step it from one recorded state to the
            # next (the kernel walks a sub-chunk exactly as it walks the whole chunk, so the
            # result does not depend on where the chunk is cut)
            nk = S.shape[0]
            rows = np.flatnonzero(np.ones(nk, bool) if keep is None else keep)[::-1]
            hi = nk
            for k in [*rows.tolist(), *([0] if not rows.size or rows[-1] != 0 else [])]:
                if k >= hi:
                    continue
                ds = DS[k:hi] if DS.shape[0] else DS
                leapfrog.echo_chunk(
                    dev.family,
                    self._prm(),
                    dt,
                    dev.n_work,
                    Q,
                    P,
                    S[k:hi],
                    E[k:hi],
                    kicks,
                    weights,
                    GW,
                    ds,
                )
                Qrec[k] = Q
                hi = k

    # ------------------------------------------------------------------ faults
    def _noise_state(self) -> dict | None:
        return self.bath_rng.bit_generator.state if self.lossy else None

    def _restore_noise(self, state: dict | None) -> None:
        if state is not None:
            self.bath_rng.bit_generator.state = state

    def _cause(self, run: str, u: np.ndarray | None = None) -> str:
        from physim.stability import fault_cause

        return fault_cause(self.device, self.phys, run, u, lossy=self.lossy)

    def _forward_fault(self, t, S, start, k0, K, u) -> NumericalFault:
        """Re-run a forward chunk that ended non-finite, recording, to find its first bad step."""
        Q, P, noise = start
        self._restore_noise(noise)
        Qr = np.empty((S.shape[0], *Q.shape), dtype=Q.dtype)
        Pr = np.empty_like(Qr)
        self._forward_kernel(Q, P, S, self.device.dt, Qr, Pr)
        bad_p = ~np.isfinite(Pr).reshape(S.shape[0], -1).all(axis=1)
        bad_q = ~np.isfinite(Qr).reshape(S.shape[0], -1).all(axis=1)
        i = int(np.argmax(bad_p | bad_q))
        run = "forward" if self.n_branches == 1 else f"forward (branch {t})"
        return NumericalFault(
            run,
            k0 + i + 1,
            "p" if bad_p[i] else "q",
            self._cause("forward", u),
            n_steps=K,
            where=f"instrument ({self.device.name!r})",
        )

    def _echo_fault(self, sel, args, start, reverse, k0, k1, K, kicks) -> NumericalFault:
        """Re-run a backwards-walking chunk that ended non-finite, recording its states."""
        Q, P, GW, noise = start
        self._restore_noise(noise)
        nk = k1 - k0
        Qr = np.empty((nk, *Q.shape), dtype=Q.dtype)
        self._echo_kernel(Q, P, *args, GW, _EMPTY3, Qr, echo=reverse)
        bad = ~np.isfinite(Qr).reshape(nk, Q.shape[0], -1).all(axis=2)  # (nk, branches)
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size == 0:
            step, t, what = None, 0, "accumulated ∂H/∂θ"
        else:
            k = int(rows[-1])  # the kernel walks k = nk − 1 … 0: the highest bad k came first
            t = int(np.flatnonzero(bad[k])[0])
            step, what = (K - (k0 + k)) if reverse else (k0 + nk - k), "q"
        branch = sel.start + t
        if not reverse:
            run = "forward"
        else:
            sign = float(kicks[branch]) if branch < len(kicks) else 0.0
            run = "echo +" if sign > 0 else "echo −" if sign < 0 else "echo"
        return NumericalFault(
            run, step, what, self._cause(run), n_steps=K, where=f"instrument ({self.device.name!r})"
        )

    def record(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drive the first branch through ``u`` (n_steps, batch, n_inputs), already
        DAC-written, with a probe on every degree of freedom.

        Returns positions and momenta after every step, each (n_steps, batch, n_dof), float64
        (node fluxes and charges for an LC network); the state is advanced as by :meth:`run`.
        """
        dev = self.device
        K, nb, n = u.shape[0], u.shape[1], dev.n_dof
        if self.mode == "fixed_point" and self.lq is None:
            self.calibrate(u)
        Qrec = np.empty((K, nb, n), dtype=self.dtype)
        Prec = np.empty((K, nb, n), dtype=self.dtype)
        for k0, k1 in chunk_bounds(K, nb * n):
            S = np.ascontiguousarray(drive(u, self.phys.B, k0, k1), dtype=self.dtype)
            self._forward_kernel(self.Q[0], self.P[0], S, dev.dt, Qrec[k0:k1], Prec[k0:k1])
        return Qrec.astype(np.float64), Prec.astype(np.float64)

    # ------------------------------------------------------------------ drive
    def write_drive(self, u: np.ndarray) -> np.ndarray:
        """The input as the drive DAC (every ``drive`` hook) writes it."""
        for src in self._at["drive"]:
            u = src.drive(u)
        return np.ascontiguousarray(u)

    def run(
        self,
        u: np.ndarray,
        *,
        reverse: bool = False,
        error: np.ndarray | None = None,
        kicks: np.ndarray | None = None,
        integrate: str | None = None,
        weights: np.ndarray | None = None,
        gains: np.ndarray | None = None,
        sample_every: int = 0,
        readout: np.ndarray | None = None,
    ) -> DriveOutput:
        """Drive every branch through ``u`` (n_steps, batch, n_inputs), already DAC-written.

        ``reverse`` replays ``u`` backwards (an echo). ``error`` is ∂L/∂y (n_steps, batch, n_outputs)
        of the forward run; after the echo step landing on state k, branch t is kicked by
        ``kicks[t] · e_k`` with e_k = Rᵀ ∂L/∂y_k. ``integrate`` = "branches" keeps one
        accumulator of ∂H½/∂θ per branch; "differential" keeps one accumulator of
        Σ_t weights[t] ∂H½/∂θ (a matched differential integrator, combined every step).
        Accumulator a is read out multiplied by its integrator gain ``gains[a]``.
        ``sample_every`` > 0 records R q every that many steps (``readout`` R; identity if None).
        """
        dev = self.device
        K, nb = u.shape[0], u.shape[1]
        nt = self.n_branches
        n = dev.n_dof
        dtype = self.dtype
        if self.mode == "fixed_point" and self.lq is None:
            self.calibrate(u)
        energy = float(np.sum(u.astype(np.float64) ** 2) * dev.dt * nt)
        samples = idx = None
        if sample_every > 0:
            idx = (
                np.arange(K - sample_every, -1, -sample_every)
                if reverse
                else np.arange(sample_every, K + 1, sample_every)
            )
            samples = np.empty((idx.shape[0], nt, nb, dev.n_outputs))
        empty3 = _EMPTY3.astype(dtype)
        if not (reverse or integrate):
            for k0, k1 in chunk_bounds(K, nb * n):
                S = np.ascontiguousarray(drive(u, self.phys.B, k0, k1), dtype=dtype)
                for t in range(nt):
                    Qrec = (
                        np.empty((k1 - k0, nb, n), dtype=dtype) if samples is not None else empty3
                    )
                    start = (self.Q[t].copy(), self.P[t].copy(), self._noise_state())
                    self._forward_kernel(self.Q[t], self.P[t], S, dev.dt, Qrec, empty3)
                    if not all_finite(self.Q[t], self.P[t]):
                        raise self._forward_fault(t, S, start, k0, K, u)
                    if samples is not None:
                        _store(samples, t, Qrec, k0 + 1, sample_every, readout, K, False)
            return DriveOutput(samples, idx, None, None, energy)

        if integrate not in (None, "branches", "differential"):
            raise ValueError(f"integrate must be 'branches' or 'differential', got {integrate!r}")
        accs = [[t] for t in range(nt)] if integrate != "differential" else [list(range(nt))]
        n_acc = len(accs)
        nw = self.phys.w.shape[0]
        need_B = integrate is not None and any(g.target == "B" for g in dev.groups)
        weights = np.ones(nt) if weights is None else np.asarray(weights, dtype=np.float64)
        gains = np.ones(n_acc) if gains is None else np.asarray(gains, dtype=np.float64)
        kicks = np.zeros(nt) if kicks is None else np.asarray(kicks, dtype=np.float64)
        GW = [np.zeros((nb, nw)) for _ in range(n_acc)]
        acc_B = np.zeros((n_acc, *self.phys.B.shape))
        bounds = chunk_bounds(K, nt * nb * n)
        for k0, k1 in reversed(bounds) if reverse else bounds:
            S = drive(u, self.phys.B, k0, k1)
            uc = u[k0:k1]
            if reverse and error is not None:
                E = np.ascontiguousarray(error_signal(dev, error, k0, k1), dtype=dtype)
            else:
                E = np.zeros((k1 - k0, nb, n), dtype=dtype)
            if not reverse:  # the kernel walks a chunk backwards: hand it the chunk reversed
                S, uc = S[::-1], uc[::-1]
            S = np.ascontiguousarray(S, dtype=dtype)
            for a, ts in enumerate(accs):
                sel = slice(ts[0], ts[-1] + 1)
                DS = np.zeros((k1 - k0, nb, n)) if need_B else _EMPTY3
                Qrec = (
                    np.empty((k1 - k0, len(ts), nb, n), dtype=dtype)
                    if samples is not None
                    else _EMPTY4.astype(dtype)
                )
                args = (S, E, kicks[sel].astype(dtype), weights[sel].astype(dtype))
                start = (self.Q[sel].copy(), self.P[sel].copy(), GW[a].copy(), self._noise_state())
                keep = _kept_rows(k0, k1, K, sample_every, reverse) if samples is not None else None
                self._echo_kernel(
                    self.Q[sel], self.P[sel], *args, GW[a], DS, Qrec, echo=reverse, keep=keep
                )
                if not all_finite(self.Q[sel], self.P[sel], GW[a]):
                    raise self._echo_fault(sel, args, start, reverse, k0, k1, K, kicks)
                if need_B:
                    acc_B[a] += _fold(gains[a] * DS, uc)
                if samples is not None:
                    for j, t in enumerate(ts):
                        if reverse:
                            _store(samples, t, Qrec[:, j], k0, sample_every, readout, K, True)
                        else:
                            _store(
                                samples, t, Qrec[::-1, j], k0 + 1, sample_every, readout, K, False
                            )
        acc_w = None
        if integrate:
            acc_w = np.stack([gains[a] * GW[a].sum(axis=0) for a in range(n_acc)])
        return DriveOutput(samples, idx, acc_w, acc_B if integrate else None, energy)


def _kept_rows(k0: int, k1: int, K: int, every: int, reverse: bool) -> np.ndarray | None:
    """Rows of an echo chunk record that :func:`_store` reads (None: all of them)."""
    if not reverse:
        return None
    states = k0 + np.arange(k1 - k0)
    return ((K - states) % every == 0) & (states < K)


def _store(samples, t, Qrec, first_state, every, R, K, reverse) -> None:
    """Copy the sampled states of a chunk record (Qrec[i] is state first_state + i)."""
    states = first_state + np.arange(Qrec.shape[0])
    keep = ((K - states) % every == 0) & (states < K) if reverse else (states % every == 0)
    if not np.any(keep):
        return
    y = readout(None, Qrec[keep], R) if R is not None else Qrec[keep].astype(np.float64)
    pos = (K - states[keep]) // every - 1 if reverse else states[keep] // every - 1
    samples[pos, t] = y


def _fold(ds: np.ndarray, u_chunk: np.ndarray) -> np.ndarray:
    """Σ_k ds_k u_kᵀ over a chunk (batch summed): the ∂H/∂B integrand."""
    nk, nb, n = ds.shape
    if u_chunk.shape[2] == 0:
        return np.zeros((n, 0))
    return ds.reshape(nk * nb, n).T @ u_chunk.reshape(nk * nb, -1)
