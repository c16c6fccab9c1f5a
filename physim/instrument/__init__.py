"""The simulated instrument: a device plus its non-idealities (see :mod:`.hardware`)."""

from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec, load_nonideal, parse_nonideal

__all__ = ["Instrument", "NonidealSpec", "load_nonideal", "parse_nonideal"]
