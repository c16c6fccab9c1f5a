"""Sub-commands of ``physim`` for protocols and instruments.

``register(subparsers)`` adds ``run`` and ``protocols`` to an argparse sub-parser set (the
log tools ``inspect``, ``plot`` and ``replay`` are :mod:`physim.tools.commands`); each sets ``func`` to a function of the parsed arguments that
returns the exit code.
"""

from __future__ import annotations

import argparse
import sys

from physim import jsonio


def _cmd_protocols(args: argparse.Namespace) -> int:
    from physim.catalogues import listing
    from physim.protocol.specs import PROTOCOLS

    print(listing(PROTOCOLS, lambda s: (s.description,), (20,)))
    return 0


def _eps_arg(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--eps must be a positive number or 'auto', got {text!r}"
        ) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from physim.instrument.specs import load_nonideal
    from physim.protocol.session import run_session
    from physim.protocol.specs import load_protocol
    from physim.spec_base import with_updates
    from physim.specs import load_device

    device = load_device(args.device)
    protocol = load_protocol(args.protocol)
    task = protocol.task
    upd = {k: v for k, v in (("n_steps", args.steps), ("batch", args.batch)) if v is not None}
    if getattr(device.spec, "task", None) is not None and task.kind == "teacher" and not upd:
        upd["kind"] = "device"
    if upd:
        protocol = with_updates(protocol, task=with_updates(task, **upd))
    if args.eps is not None:
        protocol = with_updates(protocol, eps=args.eps)
    nonideal = load_nonideal(args.nonideal)
    seed = args.seed
    if args.noise_seed is not None:
        from physim.seeding import replicate_chip

        nonideal, seed = replicate_chip(nonideal, 0, args.noise_seed)
    res = run_session(
        device,
        protocol,
        nonideal,
        seed=seed,
        log=args.log,
        epochs=args.epochs,
        lr=args.lr,
        progress=True,
        force=args.force,
    )
    last = res.results[-1]
    out = {
        "device": device.name,
        "protocol": protocol.name,
        "nonideal": nonideal.name,
        "loss": last.loss,
        "cost": last.cost.as_dict(),
        # joules and seconds of the last execution (one gradient update); units beside
        "energy_per_update": last.cost.energy.as_dict() if last.cost.energy else None,
        "saturated": last.n_saturated,
        "eps": last.eps,
    }
    if last.eps_calibration is not None:
        out["eps_calibration"] = last.eps_calibration
    diss = nonideal.get("dissipation")
    if diss is not None:
        from physim.instrument.bath import bath_summary

        # of the nominal element values (mismatch moves the modes by its spread)
        bath = bath_summary(device, device.physical(), diss)
        if bath is not None:
            out["bath"] = bath
    if res.fidelity is not None:
        out["fidelity_vs_ideal_twin"] = res.fidelity.as_dict()
    if res.fidelity_as_built is not None:
        out["fidelity_vs_as_built_twin"] = res.fidelity_as_built.as_dict()
    if res.losses is not None:
        out["loss_first"], out["loss_last"] = float(res.losses[0]), float(res.losses[-1])
    if args.json:
        print(jsonio.dumps(out, indent=2))
    else:
        loss = "no loss (forward-only)" if last.loss is None else f"loss {last.loss:.4g}"
        print(
            f"{device.name} · {protocol.name} · {nonideal.name}: {loss}, "
            f"{last.cost.n_runs} physical runs, {last.cost.n_steps} steps driven"
        )
        if last.eps_calibration is not None:
            print(f"eps auto: {last.eps_calibration['reason']}")
        if "bath" in out:
            b = out["bath"]
            per = (
                "{:.3g}–{:.3g} × k_BT".format(*b["mode_energy_over_kT"])
                if b["mode_energy_over_kT"] is not None
                else "{:.3g}–{:.3g} J, the zero point".format(*b["mode_energy"])
            )
            print(
                f"bath: quantum at {b['temperature']:g} K (max ħω/k_BT = "
                f"{b['max_hbar_omega_over_kT']:.3g}): mode energies {per} (Markovian "
                "approximation; quantum = 'off' for the classical bath)"
            )
        if last.cost.energy is not None:
            print(last.cost.energy.describe())
            for note in last.cost.energy.notes:
                print(f"  ({note})")
        if res.fidelity is not None:
            from physim.fidelity import describe

            f = res.fidelity
            print(f"gradient vs ideal twin: {f.summary()}")
            for g, d in f.groups.items():
                print(f"  {g:<20} {describe(d)}  ({100 * d['share']:.2g} % of the θ-scaled norm)")
        if res.fidelity_as_built is not None:
            print(
                "gradient vs as-built twin (mismatch, drift applied): "
                f"{res.fidelity_as_built.summary()}"
            )
        if res.losses is not None:
            print(
                f"trained {len(res.losses)} epochs: loss {res.losses[0]:.4g} -> "
                f"{res.losses[-1]:.4g}"
            )
        sat = {k: v for k, v in last.n_saturated.items() if v}
        if sat:
            print(f"saturated converter samples: {sat}")
    if args.log:
        # --json keeps stdout pure JSON (for jq); everything else goes to stderr
        print(f"wrote {args.log}", file=sys.stderr if args.json else sys.stdout)
    return 0


def register(subparsers) -> None:
    """Add run / protocols to ``physim``'s sub-parsers."""
    p = subparsers.add_parser("protocols", help="list the protocol catalogue (name first)")
    p.set_defaults(func=_cmd_protocols)

    p = subparsers.add_parser(
        "run", help="run a protocol on a simulated instrument (optionally train, log to HDF5)"
    )
    p.add_argument("device", help="catalogue name or path to a device TOML")
    p.add_argument("protocol", help="catalogue name or path to a protocol TOML")
    p.add_argument("--nonideal", metavar="FILE", help="non-ideality TOML (default: ideal)")
    p.add_argument("--log", metavar="OUT.h5", help="write an H5MD log of every measurement")
    p.add_argument("--force", action="store_true", help="overwrite an existing --log file")
    p.add_argument("--seed", type=int, default=0, help="seed of the protocol's own draws")
    p.add_argument(
        "--noise-seed",
        type=int,
        help="re-draw every noise source (mismatch, thermal, converters, drift, flip error) and "
        "the thermal preparation as replicate 0 of seed N (physim.seeding.replicate_chip: the "
        "chip of replicate 0 in a study or budget of seed N), replacing the seeds of the spec "
        "and --seed",
    )
    p.add_argument("--steps", type=int, help="override the task's sequence length")
    p.add_argument("--batch", type=int, help="override the task's batch size")
    p.add_argument("--eps", type=_eps_arg, help="override the protocol's nudge ε (or 'auto')")
    p.add_argument("--epochs", type=int, default=0, help="train in situ for this many epochs")
    p.add_argument("--lr", type=float, default=1e-2, help="relative learning rate")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_run, kernels=True)
