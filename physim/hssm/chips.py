"""HSSM cores as chips: each block's Hamiltonian core runs on an instrument.

A block's physical experiment is what hardware can do, and only what it measures reaches the
digital periphery:

* **forward** — the parameter DAC programs θ (A, Δt, B: whatever of θ is physical), the chip
  is prepared in its rest state and driven by the block's input u; its mode positions φ are
  read out through the readout chain (amplifier, readout ADC) at every step;
* **echo** — the momenta are flipped (with the flip's errors), kicked by ±β·e_K and the
  input is replayed in reverse with the nudges ±β·e_k from the error dL/dφ that the digital
  backward computed; the differential ∂H/∂θ integrator is read through the accumulator ADC,
  and the **input gradient ∂L/∂u** — the signal conjugate to the input, integrated with the
  same gain — is a measured record read through the readout chain at every step. After the
  digital backward of the block below it becomes that block's nudge, so measurement errors
  compound through depth as they would on hardware.

Every block is its own chip: its fabrication draw (mismatch), its noise streams and its
converters' ranges come from :func:`physim.seeding.replicate_chip` with the block index as the
replicate and the model's ``chip_seed`` as the study seed. A converter's range is set by its
first reading of each record (the instrument's auto-range, then frozen like a gain setting).

With every source at zero the chip is the twin: the forward run and the echo are the same
kernel calls with the same operands as :func:`physim.simulate.simulate` and
:func:`physim.rhel.rhel_echo`, and training reproduces the ideal HSSM bit for bit (tested).

Energy scale: an HRU is dimensionless, so a dissipation source's thermal noise needs the
energy of one HRU unit: its ``boltzmann`` field is k_B in HRU energy units per kelvin
(k_B / E_unit with E_unit the joules of one unit of H). For a technology, choose E_unit as the
energy of a mode at the readout's full scale (e.g. ½ C V_fs² of an LC mode read at V_fs); then
k_B T / E_unit is the thermal energy relative to the signal, an SNR of the readout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from physim.device import Device, Physical
from physim.gradients import GradientResult, error_bound, error_signal
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec, load_nonideal
from physim.rhel import nudge_factor
from physim.seeding import replicate_chip
from physim.simulate import Trajectory


@dataclass(frozen=True)
class AsBuiltCore(Device):
    """The twin of a chip as built, with the nominal device's parameter groups: its element
    values at θ are the chip's (fabrication mismatch and the current drift applied, through
    the instrument's own ``physics`` hooks), lossless, with ideal converters. Its gradients are
    pulled back with the nominal map, as the chip's integrating readout is."""

    chip: ChipCore | None = None

    def physical(self, theta: np.ndarray | None = None) -> Physical:
        return self.chip.instrument._built_physics(self.check_theta(theta))


class ChipCore:
    """One block's core on an instrument (see the module docstring)."""

    def __init__(self, device: Device, nonideal: NonidealSpec, block: int, seed: int = 0):
        spec, inst_seed = replicate_chip(nonideal, block, seed)
        self.device = device
        self.nonideal = spec
        self.seed = inst_seed
        self.block = block
        self.instrument = Instrument(device, spec, seed=inst_seed)
        self._last: dict[str, int] = {}

    def as_built(self) -> AsBuiltCore:
        """The twin of this chip as built (see :class:`AsBuiltCore`)."""
        fields = {f: getattr(self.device, f) for f in self.device.__dataclass_fields__}
        return AsBuiltCore(**{**fields, "name": f"{self.device.name} (as built)"}, chip=self)

    def forward(self, theta: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, Trajectory]:
        """φ (n_steps, batch, n_outputs) as measured, and the run's final state (a Trajectory
        holding only ``q_final``, ``p_final``: the chip keeps its state for the echo)."""
        inst, dev = self.instrument, self.device
        inst.program(theta)
        inst.prepare("device", u.shape[1])
        U = inst.write_drive(np.ascontiguousarray(u, dtype=np.float64))
        out = inst.run(U, sample_every=1, readout=dev.readout)
        rd = inst.read("readout", f"block{self.block}.phi", out.samples)
        phi = np.ascontiguousarray(rd.value[:, 0])
        q = inst.Q[0].astype(np.float64)
        p = inst.P[0].astype(np.float64)
        return phi, Trajectory(q, p, None, None, None, dev.dt)

    def echo(
        self,
        device: Device,
        theta: np.ndarray,
        u: np.ndarray,
        forward: Trajectory,
        dLdy: np.ndarray,
        *,
        eps: float,
        relative_eps: bool = True,
        input_grad: bool = True,
        grad_u_into: np.ndarray | None = None,
    ) -> GradientResult:
        """The centred echo of :func:`physim.rhel.rhel_echo` on the chip, with its signature
        (``device`` must be this chip's; the input gradient is always measured);
        ``grad_u_into`` (u's shape) has the measured ∂L/∂u added to it."""
        if device is not self.device:
            raise ValueError(
                f"chip of block {self.block} echoes its own device, not {device.name!r}"
            )
        inst, dev = self.instrument, self.device
        K = u.shape[0]
        phys = inst.phys
        grad_u = np.zeros(u.shape) if grad_u_into is None else None
        e_max = error_bound(dev, dLdy)
        if e_max == 0.0:
            g_w = np.zeros(phys.w.shape[0])
            g_B = np.zeros_like(phys.B)
            grad = dev.pullback(inst.theta, g_w, g_B)
            return GradientResult("rhel", float("nan"), grad, g_w, g_B, grad_u, kick=0.0)
        beta = nudge_factor(eps, relative_eps, forward.p_final, e_max)
        e_K = error_signal(dev, dLdy, K, K + 1)[0]
        inst.split(2)
        inst.flip()
        inst.kick(e_K, np.array([beta, -beta]))
        U = inst.write_drive(np.ascontiguousarray(u, dtype=np.float64))
        # with nothing on the readout chain the record is the analog signal itself: it is added
        # into the caller's sum in place, as the twin's echo adds it (the same arithmetic)
        direct = (
            not inst._at["read"] and grad_u_into is not None and grad_u_into.dtype == np.float64
        )
        gu = grad_u_into if direct else np.zeros(u.shape)
        out = inst.run(
            U,
            reverse=True,
            error=dLdy,
            kicks=np.array([beta, -beta]),
            integrate="differential",
            weights=np.array([1.0, -1.0]),
            gains=np.array([-dev.dt / (2.0 * beta)]),
            grad_u=gu,
        )
        n_w = out.acc_w.shape[1]
        value = np.concatenate([out.acc_w, out.acc_B.reshape(1, -1)], axis=1)
        acc = inst.read("accumulator", f"block{self.block}.dH", value).value[0]
        g_w = np.ascontiguousarray(acc[:n_w])
        g_B = np.ascontiguousarray(acc[n_w:].reshape(phys.B.shape))
        if not direct:
            gu_read = inst.read("readout", f"block{self.block}.grad_u", gu).value
            if grad_u_into is not None:
                grad_u_into += gu_read.astype(grad_u_into.dtype, copy=False)
            else:
                grad_u = gu_read
        grad = dev.pullback(inst.theta, g_w, g_B)
        return GradientResult("rhel", float("nan"), grad, g_w, g_B, grad_u, kick=beta)


#: attributes that are caches rebuilt on demand, not state (the zero ξ of a silent bath)
_CACHES = frozenset({"_zeros"})


def _state_of(obj) -> dict:
    """The mutable state of one instrument part: its random streams, arrays, counters and
    dicts of arrays (converter ranges), not its references to specs, devices or parts."""
    out = {}
    for k, v in vars(obj).items():
        if k in _CACHES:
            continue
        if isinstance(v, np.random.Generator):
            out[k] = ("rng", v.bit_generator.state)
        elif isinstance(v, np.ndarray):
            out[k] = ("value", v.copy())
        elif isinstance(v, (bool, int, float, str)):
            out[k] = ("value", v)
        elif isinstance(v, dict) and all(
            isinstance(x, (np.ndarray, bool, int, float)) for x in v.values()
        ):
            out[k] = (
                "value",
                {n: (x.copy() if isinstance(x, np.ndarray) else x) for n, x in v.items()},
            )
    return out


def _parts(inst: Instrument) -> list:
    parts = [inst]
    for src in inst.sources:
        parts.append(src)
        if getattr(src, "converter", None) is not None:
            parts.append(src.converter)
    return parts


def chip_states(model) -> list[list[dict]]:
    """What a checkpoint keeps of each chip so that a resumed training continues its noise
    streams, drifts, converter ranges and counters exactly where they were."""
    return [[_state_of(p) for p in _parts(c.instrument)] for c in model.chips]


def restore_chip_states(model, states: list[list[dict]]) -> None:
    """Put the chips of ``model`` (built afresh from the same spec) back in ``states``."""
    if len(states) != len(model.chips):
        raise ValueError(
            f"the checkpoint holds {len(states)} chips, the model has {len(model.chips)}"
        )
    for chip, parts_state in zip(model.chips, states, strict=True):
        parts = _parts(chip.instrument)
        if len(parts) != len(parts_state):
            raise ValueError(f"chip of block {chip.block}: the checkpoint's parts do not match")
        for obj, st in zip(parts, parts_state, strict=True):
            for k, (kind, v) in st.items():
                if kind == "rng":
                    getattr(obj, k).bit_generator.state = v
                else:
                    setattr(obj, k, v)


def as_built_twin(model):
    """The HSSM whose cores are the twins of ``model``'s chips as built (BPTT-able)."""
    if model.chips is None:
        raise ValueError("the model's cores are ideal: it is its own twin")
    return replace(model, devices=tuple(c.as_built() for c in model.chips), chips=None)


def chip_specs(spec, n_blocks: int) -> list[NonidealSpec] | None:
    """The non-ideality spec of each block's chip from an HSSM spec's ``nonideal`` (a preset
    name or TOML path, or one per block), ``None`` for an ideal model."""
    if spec.nonideal is None:
        return None
    given = spec.nonideal
    names = list(given) if isinstance(given, list) else [given] * n_blocks
    if len(names) != n_blocks:
        raise ValueError(
            f"model.nonideal lists {len(names)} non-ideality specs for {n_blocks} blocks; give "
            "one (shared by every block) or one per block"
        )
    return [n if isinstance(n, NonidealSpec) else load_nonideal(n) for n in names]
