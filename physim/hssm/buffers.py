"""Arrays that one HSSM training step hands on to the next, instead of allocating them anew.

A training step of a long-sequence model touches gigabytes of fresh activations (a 6-block
PPG step: ~1.5 GB). Each fresh array is mapped from the operating system again and faulted in
page by page, which measured as seconds of system time per step on the machines of issue 12
(and it grows when transparent huge pages need compaction). A :class:`StepBuffers` keeps the
arrays of one step — the residual stream, each block's stored activations and dropout masks,
the backward's row buffers — and gives them back, by name and shape, to the next step.

Ownership: the arrays returned by ``HSSM.forward(..., buffers=b)`` (its caches and the top
sequence) are overwritten by the next ``forward`` with the same ``b``. ``HSSM.loss_and_grad``
keeps nothing between its forward and its return, so the training loop passes one object for
all its steps; code that holds caches across forwards passes none (fresh arrays each call).
"""

from __future__ import annotations

import numpy as np


class StepBuffers:
    """Named arrays reused across calls; :meth:`get` allocates only on a new name or shape."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """The array ``name`` with ``shape`` and ``dtype`` (contents undefined)."""
        shape = tuple(int(n) for n in shape)
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != np.dtype(dtype):
            self._arrays.pop(name, None)  # release the old one before allocating the new
            a = np.empty(shape, dtype=dtype)
            self._arrays[name] = a
        return a

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(a.nbytes for a in self._arrays.values())

    def clear(self) -> None:
        """Release every array."""
        self._arrays.clear()
