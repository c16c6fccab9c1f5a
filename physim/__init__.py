"""physim: simulate self-learning Hamiltonian hardware trained in situ by RHEL."""

__version__ = "0.1.0"

from physim.bptt import bptt_gradient, loss_value  # noqa: E402
from physim.device import Device  # noqa: E402
from physim.losses import FinalLoss, MSELoss  # noqa: E402
from physim.rhel import rhel_gradient  # noqa: E402
from physim.simulate import Trajectory, energy, simulate  # noqa: E402
from physim.specs import catalogue, load_device, load_spec, parse_spec  # noqa: E402

__all__ = [
    "Device",
    "FinalLoss",
    "MSELoss",
    "Trajectory",
    "bptt_gradient",
    "catalogue",
    "energy",
    "load_device",
    "load_spec",
    "loss_value",
    "parse_spec",
    "rhel_gradient",
    "simulate",
]
