"""Independent references for the core tests.

Everything here is plain numpy/scipy written from the equations in the docs (REFERENCE.md §1,
§4 and the family docstrings), not from physim's kernels: Hamiltonians rebuilt from the device
*specs*, a numpy leapfrog, the exact propagator of linear systems (``scipy.linalg.expm``),
central finite differences and log–log slope fits. Nothing in this package imports
``physim.kernels`` or ``physim.families.*_kernels``.
"""
