"""One step of the integrator, of each kind: ideal, lossy (Langevin) and fixed point.

The integrator's kernels (:mod:`physim.kernels.leapfrog`) run one loop over the steps of a
chunk, whatever the instrument; what one step does is chosen by the type of their ``steps``
argument, at compile time (numba specialises the kernel per type, so the ideal step compiles to
exactly the code it had without the other kinds):

* ``None`` — the ideal leapfrog, :func:`_step` forward and :func:`_echo_step` in the echo;
* :class:`~physim.kernels.langevin.LangevinSteps` (A, N, XI) — the O steps of the bath around
  that same leapfrog step, with the chunk's noise drawn by the caller;
* :class:`~physim.kernels.fixedpoint.FixedPointSteps` (lq, lp) — the bit-reversible integer
  step, on int64 states.

:func:`forward_step`, :func:`echo_step`, :func:`store_q` and :func:`store_p` are that
choice; they are called from numba-compiled code only.
"""

from __future__ import annotations

from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from physim.kernels import dispatch as hk
from physim.kernels.fixedpoint import FixedPointSteps, fixed_echo_step, fixed_step
from physim.kernels.langevin import LangevinSteps, o_step


@njit(cache=True, inline="always")
def _axpy(y, a, x):
    for i in range(y.shape[0]):
        y[i] += a * x[i]


@njit(cache=True, inline="always")
def _step(fam, prm, dt, q, p, s, work, g):
    """One leapfrog step of (q, p) in place under the drive s."""
    hk.grad_T(fam, p, prm, work, g)
    _axpy(q, 0.5 * dt, g)
    hk.grad_V(fam, q, s, prm, work, g)
    _axpy(p, -dt, g)
    hk.grad_T(fam, p, prm, work, g)
    _axpy(q, 0.5 * dt, g)


@njit(cache=True, inline="always")
def _echo_step(fam, prm, dt, Q, P, b, s, e, kick, kicks, weights, work, g, v, acc, want_ds, d):
    """One echo step of every trajectory ``t`` of batch element ``b`` (see
    :func:`physim.kernels.leapfrog.echo_inputs`).

    Adds Σ_t weights[t] ∂H½/∂w to ``acc`` (three additions per pair of trajectories: ∂T/∂w at
    p_before, ∂V/∂w at q½, ∂T/∂w at p_after, each already combining the pair); when ``want_ds`` writes Σ_t weights[t] ∂V/∂s(q½)
    to ``d``; then, when ``kick``, applies p += kicks[t] · e.

    Trajectories go through the fused two-trajectory kernels of the family two at a time (the
    ± pair of a centred echo in one pass); an odd last one is paired with itself at weight 0,
    its state updated once. Each state follows exactly the arithmetic of :func:`_step`, so
    the states do not depend on the pairing; ``g`` and ``v`` are the two force buffers.
    """
    nt = Q.shape[0]
    if want_ds:
        for i in range(d.shape[0]):
            d[i] = 0.0
    for t in range(0, nt, 2):
        pair = t + 1 < nt
        u = t + 1 if pair else t
        q0 = Q[t, b]
        p0 = P[t, b]
        q1 = Q[u, b]
        p1 = P[u, b]
        w0 = weights[t]
        w1 = weights[u] if pair else 0.0
        hk.echo_T2(fam, p0, p1, prm, work, 0.5 * w0, 0.5 * w1, acc, g, v)
        _axpy(q0, 0.5 * dt, g)
        if pair:
            _axpy(q1, 0.5 * dt, v)
        hk.echo_V2(fam, q0, q1, s, prm, work, w0, w1, acc, g, v, want_ds, d)
        _axpy(p0, -dt, g)
        if pair:
            _axpy(p1, -dt, v)
        hk.echo_T2(fam, p0, p1, prm, work, 0.5 * w0, 0.5 * w1, acc, g, v)
        _axpy(q0, 0.5 * dt, g)
        if pair:
            _axpy(q1, 0.5 * dt, v)
        if kick:
            _axpy(p0, kicks[t], e)
            if pair:
                _axpy(p1, kicks[u], e)


def _kind(steps) -> str:
    """'ideal', 'lossy' or 'fixed' for the numba type of a ``steps`` argument."""
    if isinstance(steps, (types.NoneType, types.Omitted)):
        return "ideal"
    cls = getattr(steps, "instance_class", None)
    if cls is LangevinSteps:
        return "lossy"
    if cls is FixedPointSteps:
        return "fixed"
    raise TypingError(
        f"steps must be None, LangevinSteps or FixedPointSteps, got numba type {steps}"
    )


def forward_step(steps, fam, prm, dt, q, p, s, c, b, work, g, x):
    """One forward step of (q, p) under the drive s; ``c`` is the step's row in the chunk's
    noise, ``b`` the batch element, ``x`` an (n,) scratch. numba only."""
    raise NotImplementedError("forward_step is called from numba-compiled code only")


@overload(forward_step, inline="always")
def _forward_step_impl(steps, fam, prm, dt, q, p, s, c, b, work, g, x):
    kind = _kind(steps)
    if kind == "ideal":

        def ideal(steps, fam, prm, dt, q, p, s, c, b, work, g, x):
            _step(fam, prm, dt, q, p, s, work, g)

        return ideal
    if kind == "lossy":

        def lossy(steps, fam, prm, dt, q, p, s, c, b, work, g, x):
            o_step(steps, p, steps.XI[c, b, 0], x)
            _step(fam, prm, dt, q, p, s, work, g)
            o_step(steps, p, steps.XI[c, b, 1], x)

        return lossy

    def fixed(steps, fam, prm, dt, q, p, s, c, b, work, g, x):
        fixed_step(fam, prm, dt, q, p, steps.lq, steps.lp, s, work, x, g)

    return fixed


def echo_step(
    steps, fam, prm, dt, Q, P, b, c, s, e, kick, kicks, weights, work, g, v, x, gw, acc, want_ds, d
):
    """One echo step of every trajectory of batch element ``b`` (see :func:`_echo_step`):
    Σ_t weights[t] ∂H½/∂w is added to ``gw``; the lossy and fixed-point steps sum one step's
    terms in the (nw,) scratch ``acc`` first (the bath does not depend on θ: only the
    Hamiltonian part of a lossy step is accumulated), and the lossy step kicks after its
    second O step. numba only."""
    raise NotImplementedError("echo_step is called from numba-compiled code only")


@overload(echo_step, inline="always")
def _echo_step_impl(
    steps, fam, prm, dt, Q, P, b, c, s, e, kick, kicks, weights, work, g, v, x, gw, acc, want_ds, d
):
    kind = _kind(steps)
    if kind == "ideal":

        def ideal(
            steps,
            fam,
            prm,
            dt,
            Q,
            P,
            b,
            c,
            s,
            e,
            kick,
            kicks,
            weights,
            work,
            g,
            v,
            x,
            gw,
            acc,
            want_ds,
            d,
        ):
            _echo_step(
                fam, prm, dt, Q, P, b, s, e, kick, kicks, weights, work, g, v, gw, want_ds, d
            )

        return ideal
    if kind == "lossy":

        def lossy(
            steps,
            fam,
            prm,
            dt,
            Q,
            P,
            b,
            c,
            s,
            e,
            kick,
            kicks,
            weights,
            work,
            g,
            v,
            x,
            gw,
            acc,
            want_ds,
            d,
        ):
            nt = Q.shape[0]
            # trajectories are independent: the O steps of each may run before and after the
            # shared echo step without changing any trajectory's operation order
            for t in range(nt):
                o_step(steps, P[t, b], steps.XI[c, t, b, 0], x)
            for i in range(acc.shape[0]):
                acc[i] = 0.0
            _echo_step(
                fam, prm, dt, Q, P, b, s, e, False, kicks, weights, work, g, v, acc, want_ds, d
            )
            for t in range(nt):
                o_step(steps, P[t, b], steps.XI[c, t, b, 1], x)
                if kick:
                    _axpy(P[t, b], kicks[t], e)
            _axpy(gw, 1.0, acc)

        return lossy

    def fixed(
        steps,
        fam,
        prm,
        dt,
        Q,
        P,
        b,
        c,
        s,
        e,
        kick,
        kicks,
        weights,
        work,
        g,
        v,
        x,
        gw,
        acc,
        want_ds,
        d,
    ):
        for i in range(acc.shape[0]):
            acc[i] = 0.0
        # ``g`` doubles as the dequantised-state scratch ``pf``: each force the sub-steps
        # write to ``g`` is used before the next dequantised state is written there
        fixed_echo_step(
            fam,
            prm,
            dt,
            Q,
            P,
            b,
            s,
            e,
            kick,
            kicks,
            weights,
            steps.lq,
            steps.lp,
            work,
            x,
            g,
            v,
            g,
            acc,
            want_ds,
            d,
        )
        for j in range(acc.shape[0]):
            gw[j] += acc[j]

    return fixed


def store_q(steps, dst, src):
    """dst[:] = the positions src as floats (the grid dequantised for fixed-point states).
    numba only."""
    raise NotImplementedError("store_q is called from numba-compiled code only")


def store_p(steps, dst, src):
    """dst[:] = the momenta src as floats (see :func:`store_q`). numba only."""
    raise NotImplementedError("store_p is called from numba-compiled code only")


def _store_impl(field: int):
    def impl(steps, dst, src):
        if _kind(steps) != "fixed":

            def plain(steps, dst, src):
                dst[:] = src

            return plain

        def fixed(steps, dst, src):
            grid = steps[field]
            for i in range(src.shape[0]):
                dst[i] = src[i] * grid

        return fixed

    return impl


overload(store_q, inline="always")(_store_impl(0))
overload(store_p, inline="always")(_store_impl(1))
