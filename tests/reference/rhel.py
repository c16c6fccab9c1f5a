"""Centred RHEL written directly from the recipe of REFERENCE.md §1, in numpy.

Forward run keeping only the final state; flip; two echoes nudged by ±β e_k with the inputs
replayed in reverse; ∂H½/∂w accumulated at the half-step Hamiltonian; finite difference of
the two echoes. The two accumulators are differenced step by step (rather than summed
separately and subtracted at the end) so that round-off stays that of one step.
"""

from __future__ import annotations

import numpy as np


def rhel_recipe(model, dt: float, u: np.ndarray, dLdy: np.ndarray, q0, p0, beta: float):
    """RHEL gradients of ``model`` w.r.t. its element values, input matrix and inputs.

    ``u`` (K, nb, n_inputs), ``dLdy`` (K, nb, n_out) with ``dLdy[k-1]`` the error at state k,
    ``q0, p0`` (nb, n), ``beta`` the absolute nudge. Returns ``(g_w, g_B, g_u)``.
    """
    S = u @ model.B.T
    K = S.shape[0]
    e = dLdy @ model.R  # e[k-1] = Rᵀ ∂L/∂y_k: the error at state k (none at state 0)

    q, p = np.array(q0, dtype=float), np.array(p0, dtype=float)
    for k in range(K):
        q = q + 0.5 * dt * model.grad_T(p)
        p = p - dt * model.grad_V(q, S[k])
        q = q + 0.5 * dt * model.grad_T(p)

    signs = (1.0, -1.0)
    states = [(q.copy(), -p + sign * beta * e[K - 1]) for sign in signs]
    dw = 0.0
    ds = np.zeros_like(S)
    for k in range(K - 1, -1, -1):  # replay forward step k
        dHw, dHs = [], []
        for i, sign in enumerate(signs):
            qe, pe = states[i]
            qh = qe + 0.5 * dt * model.grad_T(pe)
            pn = pe - dt * model.grad_V(qh, S[k])
            # H½ = ½(H[q½, p_before] + H[q½, p_after])
            dHw.append(
                np.sum(0.5 * (model.dT_dw(pe) + model.dT_dw(pn)) + model.dV_dw(qh, S[k]), axis=0)
            )
            dHs.append(model.dV_ds(qh, S[k]))
            qn = qh + 0.5 * dt * model.grad_T(pn)
            if k >= 1:  # kick with the error at the state just reached; none after the last step
                pn = pn + sign * beta * e[k - 1]
            states[i] = (qn, pn)
        dw = dw + (dHw[0] - dHw[1])
        ds[k] = dHs[0] - dHs[1]
    scale = -dt / (2.0 * beta)
    g_w = scale * dw
    g_s = scale * ds  # ∂L/∂s_k
    g_B = np.einsum("kbi,kbj->ij", g_s, u)
    g_u = g_s @ model.B
    return g_w, g_B, g_u
