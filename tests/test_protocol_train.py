"""Training through the instrument works for every catalogue device."""

from __future__ import annotations

import numpy as np
import pytest

import physim
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.protocol.specs import load_protocol
from physim.protocol.train import train_in_situ
from physim.specs import catalogue

CONVERTERS = {
    "sources": [
        {"kind": "dac", "target": "parameters", "bits": 16},
        {"kind": "dac", "target": "drive", "bits": 12},
        {"kind": "adc", "target": "readout", "bits": 12, "seed": 1},
        {"kind": "adc", "target": "accumulator", "bits": 16, "seed": 2},
    ]
}


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_in_situ_training_lowers_the_loss_through_converters(name):
    device = physim.load_device(name)
    proto = load_protocol("rhel-centred-rerun")
    kind = "device" if getattr(device.spec, "task", None) is not None else "teacher"
    n_steps = 30 if device.n_dof > 64 else 150
    task = proto.task.model_copy(update={"kind": kind, "n_steps": n_steps})
    # a 16-bit accumulator ADC reads the ± echoes separately: the gradient error is
    # ~2^-16/ε (REFERENCE §4), so the nudge must be far above the default 1e-6
    proto = proto.model_copy(update={"task": task, "eps": 1e-2})
    inst = Instrument(device, parse_nonideal(CONVERTERS))
    hist = train_in_situ(inst, proto, n_epochs=12, lr=0.005)
    assert hist.n_runs == 48  # 12 epochs × 4 physical runs of rhel-centred-rerun
    #: 12 Adam steps of 0.5 % relative size (measured: the loss falls to 0.04–0.33 of its start): the measured loss must drop by at least a fifth
    assert hist.losses[-1] < 0.8 * hist.losses[0], hist.losses
    # every θ the chip saw went through the 16-bit parameter DAC: on its grid
    lsb = inst.dac_parameters.lsb
    assert np.allclose(hist.thetas / lsb, np.rint(hist.thetas / lsb), rtol=0, atol=1e-6)


def test_training_needs_a_gradient_protocol():
    device = physim.load_device("two-mass")
    with pytest.raises(ValueError, match="measures no gradient"):
        train_in_situ(Instrument(device), load_protocol("characterise"), n_epochs=1)
