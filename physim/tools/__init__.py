"""Tools that read any physim log — ``inspect``, ``plot``, ``replay`` — above every writer.

They sit above both :mod:`physim.protocol` (run logs) and :mod:`physim.hssm` (training logs)
and read through :mod:`physim.logs`, the one module that names HDF5 paths; no library module
imports them.
"""
