"""Deep Hamiltonian state-space models (HSSMs) trained by chained RHEL or the BPTT twin."""

from physim.hssm.buffers import StepBuffers
from physim.hssm.compare import CompareResult, compare_gradients, compare_model_gradients
from physim.hssm.config import PRESETS, ConfigError, HSSMSpec, TrainSpec, load_train_spec
from physim.hssm.model import HSSM, Timings, estimate_memory_bytes

__all__ = [
    "HSSM",
    "PRESETS",
    "StepBuffers",
    "CompareResult",
    "ConfigError",
    "HSSMSpec",
    "Timings",
    "TrainSpec",
    "compare_gradients",
    "compare_model_gradients",
    "estimate_memory_bytes",
    "load_train_spec",
]
