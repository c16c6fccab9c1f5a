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

from physim.device import Device, Physical, io_array
from physim.errors import ChipFailure, NumericalFault, all_finite
from physim.instrument.bath import Bath, thermal_state
from physim.instrument.converters import ADC, DAC, Reading
from physim.instrument.energy import step_energy
from physim.instrument.sources import HOOKS, SOURCES, Source, acts_at, source_label
from physim.instrument.specs import BOLTZMANN, NonidealSpec
from physim.kernels.fixedpoint import FixedPointSteps
from physim.kernels.langevin import LangevinSteps, o_step_matrices
from physim.kernels.leapfrog import (
    batch_groups,
    drive_operands,
    drive_threads,
    echo_inputs,
    forward_inputs,
)
from physim.simulate import (
    CHUNK_ELEMENTS,
    KERNEL_ELEMENTS,
    chunk_bounds,
    parallel_schedule,
    readout,
    readout_matrix,
)

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
    #: drive work ∫ (B u)·q̇ dt per trajectory (n_branches · batch, branch-major) and friction
    #: loss ∫ q̇ᵀ D q̇ dt summed over them, in the device's energy unit (``None``: the family
    #: has none; see :mod:`physim.instrument.energy`)
    work: np.ndarray | None = None
    dissipated: float | None = None


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
        # the bath's O-step matrices in the kernels' form, per bath object (see _o_steps)
        self._o_rows: tuple | None = None
        self._silent: tuple | None = None  # (bath, its noise matrices are all zero)
        self._zeros: dict[tuple, np.ndarray] = {}  # ξ of a silent bath, per chunk shape
        num = self.spec.get("numerics")
        self.mode = num.mode if num is not None else "float64"
        self.fraction_bits = num.fraction_bits if num is not None else 40
        self.lq = self.lp = None  # fixed-point grid steps, set by calibrate()
        self.kT = (self.diss.boltzmann if self.diss else BOLTZMANN) * (
            self.diss.temperature if self.diss else 0.0
        )
        # what the experiment used so far, for its energy and time (physim.instrument.energy):
        # values converted by each ADC, written by each DAC, trajectories flipped
        self.n_conversions = {"readout": 0, "accumulator": 0}
        self.n_writes = {"parameters": 0, "drive": 0}
        self.n_flips = 0
        #: measure drive work and friction loss along every drive (the family's H has a unit)
        self.account_energy = getattr(device.family_kind, "energy_unit", None) is not None
        self._friction: tuple | None = None
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
        self.n_writes["parameters"] += theta.size
        groups = list(self.device.slices().values())
        written = theta
        for src in self._at["program"]:
            written = src.program(written, groups)
        self.theta = np.ascontiguousarray(written, dtype=np.float64)
        try:
            self._update_physics()
        except ValueError as err:
            self._blame_programming(theta, err)
            raise
        return self.theta

    def _blame_programming(self, requested: np.ndarray, err: ValueError) -> None:
        """Raise an error naming the programming sources (the parameter DAC) when the value
        they wrote is one the device cannot have but the requested ``requested`` was fine."""
        if not self._at["program"] or np.array_equal(self.theta, requested):
            return
        try:
            self.device.physical(requested)
        except ValueError:
            return  # the requested value is itself impossible: the original message stands
        names = ", ".join(source_label(src.spec) for src in self._at["program"])
        what = str(err).split(";")[0]
        raise ChipFailure(
            f"{names} wrote a θ the device cannot have ({what}), while the requested θ is "
            f"valid: the converter rounds a group's small values to zero; give {names} more "
            "bits, or a full_scale that fits them (by default the group's largest value sets it)"
        ) from None

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
            try:
                dev.check_fn(w)
            except ValueError as err:
                # the nominal values passed (dev.physical checked them): the fabrication
                # spread or the drift made the element impossible, not a learning step
                names = ", ".join(source_label(src.spec) for src in self._at["physics"])
                what = str(err).split(";")[0]
                raise ChipFailure(
                    f"{names} made an element value the device cannot have ({what}) from valid "
                    f"nominal values: a chip with this spread or drift cannot be built or run; "
                    f"lower the spread (relative_dtod) or the drift (relative_std)"
                ) from None
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
            # the bath's fluctuation spectrum (quantum or classical); 'auto' without a bath
            quantum = self.diss.quantum if self.diss else "auto"
            q, p = thermal_state(self.device, self.phys, kB * T, batch, self.prep_rng, quantum)
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
        self.n_flips += self.Q.shape[0] * self.Q.shape[1]  # every trajectory of every branch
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
        self.n_conversions[target] = self.n_conversions.get(target, 0) + reading.value.size
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
        dev = self.device
        Q = self.Q[0].astype(np.float64).copy()
        P = self.P[0].astype(np.float64).copy()
        qmax = float(np.max(np.abs(Q), initial=0.0))
        pmax = float(np.max(np.abs(P), initial=0.0))
        nb = u.shape[1]
        U = np.ascontiguousarray(u)
        BT = drive_operands(self.phys.B, U)[0]
        for k0, k1 in chunk_bounds(u.shape[0], nb * dev.n_dof):
            Qr = np.empty((k1 - k0, nb, dev.n_dof))
            Pr = np.empty_like(Qr)
            with parallel_schedule(nb), drive_threads(self.phys.B):
                forward_inputs(
                    dev.family,
                    self.phys.prm,
                    dev.dt,
                    dev.n_work,
                    BT,
                    readout_matrix(dev),
                    U,
                    k0,
                    k1,
                    Q,
                    P,
                    _EMPTY3,
                    Qr,
                    Pr,
                    None,
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
    # Every run goes through the twin's own kernels (physim.kernels.leapfrog forward_inputs /
    # echo_inputs: the drive B u formed in blocks, the BLAS route and float32 operands for large
    # B, ∂L/∂B folded in the kernel). The instrument only chooses the step kind: none (the
    # ideal leapfrog), the bath's O steps with this chunk's noise, or the fixed-point grid.
    def _prm(self):
        if self.mode != "float32":
            return self.phys.prm
        w, ai, af, am = self.phys.prm
        return (w.astype(np.float32), ai, af.astype(np.float32), am.astype(np.float32))

    def _on_grid(self, Q, P):
        """The integer states of the fixed-point grid (the kernels' fixed-point states)."""
        return np.rint(Q / self.lq).astype(np.int64), np.rint(P / self.lp).astype(np.int64)

    def _o_steps(self, echo: bool) -> tuple:
        """The bath's O-step matrices as the kernels take them (see
        :func:`physim.kernels.langevin.o_step_matrices`; the echo's with ``echo``), built once
        per bath."""
        bath, cache = self.bath, self._o_rows
        if cache is None or cache[0] is not bath:
            cache = (
                bath,
                o_step_matrices(bath.A, bath.N),
                o_step_matrices(bath.A_echo, bath.N_echo),
            )
            self._o_rows = cache
        return cache[2] if echo else cache[1]

    def _bath_noise(self, shape: tuple) -> np.ndarray:
        """The ξ of a chunk's O steps: standard normals from the bath's stream, or — when the
        bath's noise matrices are all zero (loss without a temperature) — zeros, which give
        the same arithmetic (every noise term is 0·ξ) without drawing numbers nobody uses
        (the draws were most of a lossy chip's cost: 3.9x the ideal HSSM step at Q = 100, T = 0)."""
        bath = self.bath
        if self._silent is None or self._silent[0] is not bath:
            self._silent = (bath, not (np.any(bath.N) or np.any(bath.N_echo)))
        if not self._silent[1]:
            return self.bath_rng.standard_normal(shape)
        z = self._zeros.get(shape)
        if z is None:
            z = self._zeros[shape] = np.zeros(shape)
        return z

    def friction(self) -> np.ndarray | None:
        """The loss's friction matrix D (dp = −D M⁻¹p dt) of the chip now, ``None`` without
        loss (built once per bath: drift rebuilds the bath)."""
        if not self.lossy:
            return None
        from physim.instrument.bath import friction_matrix

        bath, cache = self.bath, self._friction
        if cache is None or cache[0] is not bath:
            cache = (bath, friction_matrix(self.device, self.phys, self.diss))
            self._friction = cache
        return cache[1]

    def _step_energy(self, start, Qrec, U, k0, k1, backwards: bool, copies: int = 1) -> tuple:
        """(work per trajectory, friction loss) of kernel steps k0 … k1−1 of the inputs ``U``
        (see :func:`physim.instrument.energy.step_energy`); ``start`` and ``Qrec`` hold
        ``copies`` branches of the batch, branch-major."""
        n = self.device.n_dof
        Uk = U[k0:k1] if copies == 1 else np.tile(U[k0:k1], (1, copies, 1))
        return step_energy(
            start.reshape(-1, n),
            Qrec.reshape(k1 - k0, -1, n),
            Uk,
            self.phys.B,
            self.friction(),
            self.device.dt,
            backwards,
        )

    def _forward_kernel(self, Q, P, U, BT, k0, k1, dt, Qrec, Prec, Y=_EMPTY3) -> None:
        """Advance ``Q, P`` (nb, n) in place through steps k0 … k1−1 of the inputs ``U``
        (``BT`` = Bᵀ as :func:`drive_operands` gives it), recording as
        :func:`physim.kernels.leapfrog.forward_inputs` does (``Y``: readout R q)."""
        dev = self.device
        steps = None
        QK, PK = Q, P
        if self.lossy:
            XI = self._bath_noise((k1 - k0, Q.shape[0], 2, dev.n_dof))
            steps = LangevinSteps(*self._o_steps(echo=False), XI)
        elif self.mode == "fixed_point":
            steps = FixedPointSteps(self.lq, self.lp)
            QK, PK = self._on_grid(Q, P)
        with parallel_schedule(Q.shape[0]), drive_threads(self.phys.B):
            forward_inputs(
                dev.family,
                self._prm(),
                dt,
                dev.n_work,
                BT,
                readout_matrix(dev),
                U,
                k0,
                k1,
                QK,
                PK,
                Y,
                Qrec,
                Prec,
                steps,
            )
        if isinstance(steps, FixedPointSteps):
            Q[:] = QK * self.lq
            P[:] = PK * self.lp

    def _free_step(self, Q: np.ndarray, P: np.ndarray, tau: float) -> None:
        """One undriven step of length ``tau`` of the states ``Q, P`` (nb, n), in place."""
        U = np.zeros((1, Q.shape[0], 0))
        BT = np.zeros((0, self.device.n_dof))
        self._forward_kernel(Q, P, U, BT, 0, 1, tau, _EMPTY3, _EMPTY3)

    def _echo_kernel(self, Q, P, ops, k0, k1, acc, Qrec, echo: bool) -> None:
        """Walk the branches in ``Q, P`` (nt, nb, n) backwards through steps k1−1 … k0 of the
        inputs: ``ops`` = (U, BT, B, G, kicks, weights) as
        :func:`physim.kernels.leapfrog.echo_inputs` takes them, ``acc`` = (scale, GW, want_gb,
        GB[, GU]) the accumulators it adds to (GU, u's shape: the input gradient ∂L/∂u); ``Qrec`` (k1−k0, nt, nb, n) or empty. ``echo``
        selects the bath's echo O steps (loss compensation)."""
        dev = self.device
        U, BT, B, G, kicks, weights = ops
        scale, GW, want_gb, GB = acc[:4]
        GU = acc[4] if len(acc) > 4 else None
        steps = None
        QK, PK = Q, P
        if self.lossy:
            XI = self._bath_noise((k1 - k0, *Q.shape[:2], 2, dev.n_dof))
            steps = LangevinSteps(*self._o_steps(echo), XI)
        elif self.mode == "fixed_point":
            steps = FixedPointSteps(self.lq, self.lp)
            QK, PK = self._on_grid(Q, P)
        want_gu = GU is not None
        if GU is None:
            GU = np.zeros((0, Q.shape[1], B.shape[1]))
        with parallel_schedule(GB.shape[0]), drive_threads(self.phys.B):
            echo_inputs(
                dev.family,
                self._prm(),
                dev.dt,
                dev.n_work,
                BT,
                B,
                readout_matrix(dev),
                U,
                G,
                k0,
                k1,
                QK,
                PK,
                kicks,
                weights,
                scale,
                GW,
                want_gb,
                GB,
                want_gu,
                GU,
                steps,
                Qrec,
            )
        if isinstance(steps, FixedPointSteps):
            Q[:] = QK * self.lq
            P[:] = PK * self.lp

    # ------------------------------------------------------------------ faults
    def _noise_state(self) -> dict | None:
        return self.bath_rng.bit_generator.state if self.lossy else None

    def _restore_noise(self, state: dict | None) -> None:
        if state is not None:
            self.bath_rng.bit_generator.state = state

    def _cause(self, run: str, u: np.ndarray | None = None) -> str:
        from physim.stability import fault_cause

        return fault_cause(self.device, self.phys, run, u, lossy=self.lossy)

    def _forward_fault(self, t, U, BT, start, k0, k1, K, u) -> NumericalFault:
        """Re-run a forward chunk that ended non-finite, recording, to find its first bad step.

        The re-run goes in pieces of at most ``CHUNK_ELEMENTS`` recorded numbers (a lossy
        chunk is one piece: its noise is drawn again, the same)."""
        Q, P, noise = start
        self._restore_noise(noise)
        nb, n = Q.shape
        step, what = k1, "q"
        for a, b in chunk_bounds(k1 - k0, nb * n):
            Qr = np.empty((b - a, nb, n), dtype=Q.dtype)
            Pr = np.empty_like(Qr)
            self._forward_kernel(Q, P, U, BT, k0 + a, k0 + b, self.device.dt, Qr, Pr)
            bad_p = ~np.isfinite(Pr).reshape(b - a, -1).all(axis=1)
            bad_q = ~np.isfinite(Qr).reshape(b - a, -1).all(axis=1)
            if np.any(bad_p | bad_q):
                i = int(np.argmax(bad_p | bad_q))
                step, what = k0 + a + i + 1, "p" if bad_p[i] else "q"
                break
        run = "forward" if self.n_branches == 1 else f"forward (branch {t})"
        return NumericalFault(
            run,
            step,
            what,
            self._cause("forward", u),
            n_steps=K,
            where=f"instrument ({self.device.name!r})",
        )

    def _echo_fault(self, sel, ops, acc, start, reverse, k0, k1, K, kicks) -> NumericalFault:
        """Re-run a backwards-walking chunk (kernel steps k0 … k1−1) that ended non-finite,
        recording its states in pieces as :meth:`_forward_fault` does. ``k0`` is the chunk's
        first step in the time of the run (the inputs of a forward run are walked reversed)."""
        Q, P, GW, GB, noise = start
        self._restore_noise(noise)
        acc = (acc[0], GW, acc[2], GB, *acc[4:])
        nk = k1 - k0
        a0 = k0 if reverse else K - k1
        step, t, what = None, 0, "accumulated ∂H/∂θ"
        for a, b in reversed(chunk_bounds(nk, Q.size)):
            Qr = np.empty((b - a, *Q.shape), dtype=Q.dtype)
            self._echo_kernel(Q, P, ops, a0 + a, a0 + b, acc, Qr, echo=reverse)
            bad = ~np.isfinite(Qr).reshape(b - a, Q.shape[0], -1).all(axis=2)  # (rows, branches)
            rows = np.flatnonzero(bad.any(axis=1))
            if rows.size:
                k = a + int(rows[-1])  # the kernel walks k = nk − 1 … 0: the highest bad k first
                t = int(np.flatnonzero(bad[k - a])[0])
                step, what = (K - (k0 + k)) if reverse else (k0 + nk - k), "q"
                break
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
        U = np.ascontiguousarray(u)
        BT = drive_operands(self.phys.B, U)[0]
        for k0, k1 in chunk_bounds(K, nb * n):
            self._forward_kernel(
                self.Q[0], self.P[0], U, BT, k0, k1, dev.dt, Qrec[k0:k1], Prec[k0:k1]
            )
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
        grad_u: np.ndarray | None = None,
    ) -> DriveOutput:
        """Drive every branch through ``u`` (n_steps, batch, n_inputs), already DAC-written.

        ``reverse`` replays ``u`` backwards (an echo). ``error`` is ∂L/∂y (n_steps, batch, n_outputs)
        of the forward run; after the echo step landing on state k, branch t is kicked by
        ``kicks[t] · e_k`` with e_k = Rᵀ ∂L/∂y_k. ``integrate`` = "branches" keeps one
        accumulator of ∂H½/∂θ per branch; "differential" keeps one accumulator of
        Σ_t weights[t] ∂H½/∂θ (a matched differential integrator, combined every step).
        Accumulator a is read out multiplied by its integrator gain ``gains[a]``.
        ``sample_every`` > 0 records R q every that many steps (``readout`` R; identity if None).
        ``grad_u`` (u's shape, float64, zeros or a sum to add to) receives the signal conjugate
        to the input integrated by the differential accumulator's gain: ∂L/∂u of an echo
        (``reverse``, ``integrate = "differential"``) as the twin's :func:`physim.rhel.rhel_echo`
        forms it; it is an analog record, read through the readout chain by the caller.
        With ``account_energy`` (a family whose H is in joules) the positions of every step are
        recorded a chunk at a time to measure each trajectory's drive work and the friction
        loss (:mod:`physim.instrument.energy`; the arithmetic of the run is unchanged).
        """
        dev = self.device
        K, nb = u.shape[0], u.shape[1]
        nt = self.n_branches
        n = dev.n_dof
        dtype = self.dtype
        if self.mode == "fixed_point" and self.lq is None:
            self.calibrate(u)
        x = np.ascontiguousarray(u, dtype=np.float64).reshape(-1)
        energy = float(np.dot(x, x) * dev.dt * nt)  # Σ u² without a temporary of u's size
        self.n_writes["drive"] += x.size * nt  # the drive DAC plays the input to every branch
        account = self.account_energy
        work, diss = np.zeros((nt, nb)), 0.0
        samples = idx = None
        if sample_every > 0:
            idx = (
                np.arange(K - sample_every, -1, -sample_every)
                if reverse
                else np.arange(sample_every, K + 1, sample_every)
            )
            samples = np.empty((idx.shape[0], nt, nb, dev.n_outputs))
        U = np.ascontiguousarray(u)
        BT, B = drive_operands(self.phys.B, U)
        empty3 = _EMPTY3.astype(dtype)
        if not (reverse or integrate):
            # every-step readout of one branch: the kernel writes R q into the samples itself,
            # as the twin's forward run writes its y (the same arithmetic)
            direct = (
                sample_every == 1
                and nt == 1
                and self.mode != "fixed_point"
                and (readout is None or readout is dev.readout)
            )
            chunked = samples is not None and not direct
            # without chunk-sized arrays (records, noise) a run is a few long kernel calls; the
            # energy accounting records the positions of every step, a chunk at a time
            recorded = chunked or account
            elements = CHUNK_ELEMENTS if recorded or self.lossy else KERNEL_ELEMENTS
            for k0, k1 in chunk_bounds(K, nb * n, elements):
                for t in range(nt):
                    Qrec = np.empty((k1 - k0, nb, n), dtype=dtype) if recorded else empty3
                    Y = samples[k0:k1, 0] if direct else _EMPTY3
                    start = (self.Q[t].copy(), self.P[t].copy(), self._noise_state())
                    self._forward_kernel(
                        self.Q[t], self.P[t], U, BT, k0, k1, dev.dt, Qrec, empty3, Y
                    )
                    if not all_finite(self.Q[t], self.P[t]):
                        raise self._forward_fault(t, U, BT, start, k0, k1, K, u)
                    if chunked:
                        _store(samples, t, Qrec, k0 + 1, sample_every, readout, K, False)
                    if account:
                        w, d = self._step_energy(start[0], Qrec, U, k0, k1, backwards=False)
                        work[t] += w
                        diss += d
            if not account:
                return DriveOutput(samples, idx, None, None, energy)
            return DriveOutput(samples, idx, None, None, energy, work.reshape(-1), diss)

        if integrate not in (None, "branches", "differential"):
            raise ValueError(f"integrate must be 'branches' or 'differential', got {integrate!r}")
        if grad_u is not None and not (reverse and integrate == "differential"):
            raise ValueError(
                "grad_u is the input gradient of a differential echo: reverse=True, "
                "integrate='differential'"
            )
        accs = [[t] for t in range(nt)] if integrate != "differential" else [list(range(nt))]
        n_acc = len(accs)
        nw = self.phys.w.shape[0]
        m = self.phys.B.shape[1]
        need_B = integrate is not None and (
            grad_u is not None or any(g.target == "B" for g in dev.groups)
        )
        weights = np.ones(nt) if weights is None else np.asarray(weights, dtype=np.float64)
        gains = np.ones(n_acc) if gains is None else np.asarray(gains, dtype=np.float64)
        kicks = np.zeros(nt) if kicks is None else np.asarray(kicks, dtype=np.float64)
        GW = [np.zeros((nb, nw)) for _ in range(n_acc)]
        ng = batch_groups(nb, m * n)
        GB = [np.zeros((ng, m, n) if need_B else (ng, 0, 0)) for _ in range(n_acc)]
        # the kernel walks its steps backwards: a forward run walks the inputs reversed
        if not reverse:
            U = np.ascontiguousarray(U[::-1])
        G = io_array(error) if reverse and error is not None else np.zeros((0, nb, dev.n_outputs))
        recorded = samples is not None or account
        elements = CHUNK_ELEMENTS if recorded or self.lossy else KERNEL_ELEMENTS
        bounds = chunk_bounds(K, nt * nb * n, elements)
        for k0, k1 in reversed(bounds) if reverse else bounds:
            a0, a1 = (k0, k1) if reverse else (K - k1, K - k0)
            for a, ts in enumerate(accs):
                sel = slice(ts[0], ts[-1] + 1)
                Qrec = (
                    np.empty((k1 - k0, len(ts), nb, n), dtype=dtype)
                    if recorded
                    else _EMPTY4.astype(dtype)
                )
                ops = (U, BT, B, G, kicks[sel].copy(), weights[sel].copy())
                acc = (float(gains[a]), GW[a], need_B, GB[a])
                if grad_u is not None:  # the kernel indexes it from the chunk's first step
                    acc = (*acc, grad_u[a0:a1])
                start = (
                    self.Q[sel].copy(),
                    self.P[sel].copy(),
                    GW[a].copy(),
                    GB[a].copy(),
                    self._noise_state(),
                )
                self._echo_kernel(self.Q[sel], self.P[sel], ops, a0, a1, acc, Qrec, echo=reverse)
                if not all_finite(self.Q[sel], self.P[sel], GW[a], GB[a]):
                    raise self._echo_fault(sel, ops, acc, start, reverse, k0, k1, K, kicks)
                if account:
                    # the kernel walks its steps down: step a0 + i lands on Qrec[i], and the
                    # chunk's start is the state before its first step, a1 − 1
                    w, d = self._step_energy(
                        start[0], Qrec, U, a0, a1, backwards=True, copies=len(ts)
                    )
                    work[sel] += w.reshape(len(ts), nb)
                    diss += d
                if samples is not None:
                    for j, t in enumerate(ts):
                        if reverse:
                            _store(samples, t, Qrec[:, j], k0, sample_every, readout, K, True)
                        else:
                            _store(
                                samples, t, Qrec[::-1, j], k0 + 1, sample_every, readout, K, False
                            )
        acc_w = acc_B = None
        if integrate:
            acc_w = np.stack([gains[a] * GW[a].sum(axis=0) for a in range(n_acc)])
            acc_B = np.zeros((n_acc, *self.phys.B.shape))
            if need_B:  # (∂H/∂B)ᵀ per batch group, already times the gain (the kernel's scale)
                for a in range(n_acc):
                    acc_B[a] = GB[a].sum(axis=0).T
        if not account:
            return DriveOutput(samples, idx, acc_w, acc_B, energy)
        return DriveOutput(samples, idx, acc_w, acc_B, energy, work.reshape(-1), diss)


def _store(samples, t, Qrec, first_state, every, R, K, reverse) -> None:
    """Copy the sampled states of a chunk record (Qrec[i] is state first_state + i)."""
    states = first_state + np.arange(Qrec.shape[0])
    keep = ((K - states) % every == 0) & (states < K) if reverse else (states % every == 0)
    if not np.any(keep):
        return
    y = readout(None, Qrec[keep], R) if R is not None else Qrec[keep].astype(np.float64)
    pos = (K - states[keep]) // every - 1 if reverse else states[keep] // every - 1
    samples[pos, t] = y
