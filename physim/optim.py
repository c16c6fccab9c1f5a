"""Adam with global-norm gradient clipping, on dicts of named arrays (state is explicit).

The one optimizer of physim, shared by every learner: the HSSM trainer and in-situ training
through the instrument (``physim run --epochs``, the demo)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def global_norm(grads: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))


def clip_by_global_norm(
    grads: dict[str, np.ndarray], max_norm: float | None
) -> tuple[dict[str, np.ndarray], float]:
    """Scale all gradients by min(1, max_norm / ‖g‖); returns (clipped, norm before clipping)."""
    norm = global_norm(grads)
    if max_norm is None or norm <= max_norm or norm == 0.0:
        return grads, norm
    s = max_norm / norm
    return {k: g * s for k, g in grads.items()}, norm


@dataclass
class AdamState:
    step: int
    m: dict[str, np.ndarray]
    v: dict[str, np.ndarray]

    @classmethod
    def zeros(cls, params: dict[str, np.ndarray]) -> AdamState:
        return cls(
            0,
            {k: np.zeros_like(p) for k, p in params.items()},
            {k: np.zeros_like(p) for k, p in params.items()},
        )


def adam_update(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    state: AdamState,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    eps_relative: bool = False,
) -> None:
    """One Adam step (bias-corrected), updating ``params`` and ``state`` in place.

    With ``eps_relative`` the denominator floor of each array is ``eps`` times its largest
    ``sqrt(v̂)`` (plus the smallest normal float), so Adam behaves the same whatever the
    gradient's unit — device gradients span tens of decades.
    """
    b1, b2 = betas
    state.step += 1
    c1 = 1.0 - b1**state.step
    c2 = 1.0 - b2**state.step
    for k, g in grads.items():
        m, v = state.m[k], state.v[k]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * (g * g)
        root = np.sqrt(v / c2)
        floor = eps * float(np.max(root, initial=0.0)) + 1e-300 if eps_relative else eps
        params[k] -= lr * (m / c1) / (root + floor)
