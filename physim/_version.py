"""physim's version: the one place it is written (hatch reads it; nothing here imports physim)."""

__version__ = "0.1.0"
