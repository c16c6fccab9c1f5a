"""``physim train`` and ``physim compare-gradients`` (wired into :mod:`physim.cli` by ``register``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from physim import jsonio
from physim.hssm.config import (
    DATASETS,
    PRESETS,
    TRAINING,
    ConfigError,
    HSSMSpec,
    TrainSpec,
    load_train_spec,
)
from physim.spec_base import validation_message, with_updates

MODELS = ("linhru", "nonlinhru")
TRAIN_DATA = DATASETS  # every dataset physim.data loads (the README's table)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``compare-gradients`` sub-commands."""
    p = subparsers.add_parser(
        "train",
        help="train a deep Hamiltonian SSM by RHEL or BPTT (metrics JSON, HDF5 log, plots)",
        description="Train an HSSM. Without --config the CPU-sized preset for the dataset and "
        f"model is used when one exists (presets: {', '.join(TRAINING.entries())}); "
        "--model/--data/--algo/"
        "--seed override the configuration.",
    )
    p.add_argument("--model", choices=MODELS, help="HRU family of the cores")
    p.add_argument("--data", choices=TRAIN_DATA, help="dataset")
    p.add_argument("--algo", choices=("rhel", "bptt"), help="gradient algorithm of the cores")
    p.add_argument("--config", help="preset name or JSON/TOML file holding a TrainSpec")
    p.add_argument("--seed", type=int, help="seed of initialisation, split, batches and dropout")
    p.add_argument("--steps", type=int, help="override the number of training steps")
    p.add_argument("--lr", type=float, help="override the Adam learning rate")
    p.add_argument("--batch", type=int, help="override the training batch size")
    p.add_argument("--length", type=int, help="override the sequence length, steps")
    p.add_argument(
        "--precision",
        choices=("float64", "float32"),
        help="override the model's activation precision (float32: half the memory, faster)",
    )
    p.add_argument(
        "--a-param",
        choices=("relu", "softplus"),
        help="override the LinHRU stiffness map A(θ_A): relu (the paper's) or softplus (no "
        "zero-slope trap)",
    )
    p.add_argument(
        "--init-from",
        help="start from an earlier run's parameters (its directory or an .npz), e.g. the "
        "shorter-sequence stage of a length curriculum",
    )
    p.add_argument(
        "--init-dt-scale",
        type=float,
        metavar="FACTOR",
        help="with --init-from: multiply every LinHRU step Δt by FACTOR in (0, 1], e.g. "
        "L_old/L_new in a length curriculum",
    )
    p.add_argument(
        "--lr-warmup",
        type=int,
        metavar="STEPS",
        help="raise the learning rate linearly over STEPS steps (e.g. with --init-from, so a "
        "fresh Adam does not undo the earlier run)",
    )
    p.add_argument(
        "--lr-decay",
        choices=("none", "cosine"),
        help="after the warm-up, keep the learning rate (none) or lower it along half a "
        "cosine to 0 at the last step (cosine)",
    )
    _chip_arguments(p)
    p.add_argument("--out", help="output directory (default runs/<data>-<model>-<algo>-s<seed>)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train, kernels=True)

    p = subparsers.add_parser(
        "configs", help="list the training presets (`physim train --config NAME`), name first"
    )
    p.set_defaults(func=_cmd_configs)

    p = subparsers.add_parser(
        "compare-gradients",
        help="RHEL vs BPTT gradient alignment per block and parameter (paper Fig. 4)",
    )
    p.add_argument("--model", choices=MODELS, default="linhru")
    p.add_argument("--blocks", type=int, default=6, help="number of blocks (paper: 6)")
    p.add_argument("--hidden", type=int, default=64, help="hidden width H (paper: 64 / 128)")
    p.add_argument("--ssm", type=int, default=256, help="oscillators per core P (paper: 256)")
    p.add_argument("--length", type=int, default=896, help="sequence length (SCP1: 896)")
    p.add_argument("--batch", type=int, default=8, help="batch size of the sample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--complex", action="store_true", help="LinHRU with complex B, C (the paper's default)"
    )
    p.add_argument(
        "--a-param",
        choices=("relu", "softplus"),
        default="relu",
        help="LinHRU stiffness map A(θ_A): relu (the paper's) or softplus",
    )
    p.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default="float64",
        help="activations of the RHEL model; float32 is held against the BPTT gradient of "
        "its float64 twin",
    )
    _chip_arguments(p)
    p.add_argument(
        "--as-built",
        action="store_true",
        help="with --nonideal: compare with the BPTT gradient of the chips as built (mismatch, "
        "drift) instead of the ideal twin",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of a table")
    p.add_argument("--out", help="directory for alignment.png and alignment.json")
    p.set_defaults(func=_cmd_compare, kernels=True)


def _chip_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nonideal",
        metavar="PRESET|FILE",
        help="run every block's core on a chip with this non-ideality (a preset name or TOML "
        "path; see `physim nonideals`)",
    )
    p.add_argument(
        "--chip-seed",
        type=int,
        help="study seed of the blocks' chips: block i is replicate chip i (default 0)",
    )


def _cmd_configs(args: argparse.Namespace) -> int:
    from physim.catalogues import listing

    print(listing(TRAINING, lambda s: (f"{s.data}/{s.model.model}", s.description), (22, 16)))
    return 0


def resolve_train_spec(args: argparse.Namespace) -> TrainSpec:
    """The TrainSpec a ``physim train`` command line describes."""
    if args.config:
        spec = load_train_spec(args.config)
    else:
        data, model = args.data or "scp1", args.model or "linhru"
        key = f"{data}-{model}-cpu"
        if key in PRESETS:
            spec = PRESETS[key]
        else:
            # no CPU preset for this dataset: the CPU-sized recipe of SCP1 (architecture and
            # optimiser), not the paper-sized default model (2.2 s a step on 2 cores)
            cpu = PRESETS.get(f"scp1-{model}-cpu")
            spec = (
                TrainSpec(
                    data=data,
                    model=cpu.model,
                    lr=cpu.lr,
                    batch_size=cpu.batch_size,
                    n_steps=cpu.n_steps,
                    eval_every=cpu.eval_every,
                )
                if cpu is not None
                else TrainSpec(data=data, model=HSSMSpec(model=model))
            )
    upd: dict = {}
    if args.data:
        upd["data"] = args.data
    if args.algo:
        upd["algo"] = args.algo
    if args.seed is not None:
        upd["seed"] = args.seed
    if args.steps is not None:
        upd["n_steps"] = args.steps
    for arg, field in (
        ("lr", "lr"),
        ("lr_warmup", "lr_warmup"),
        ("lr_decay", "lr_decay"),
        ("batch", "batch_size"),
        ("length", "length"),
    ):
        if getattr(args, arg, None) is not None:
            upd[field] = getattr(args, arg)
    if getattr(args, "init_from", None):
        upd["init_from"] = str(Path(args.init_from).resolve())
    if getattr(args, "init_dt_scale", None) is not None:
        upd["init_dt_scale"] = args.init_dt_scale
    model_upd = {
        k: getattr(args, k)
        for k in ("model", "precision", "a_param", "nonideal", "chip_seed")
        if getattr(args, k, None) is not None
    }
    if model_upd.get("nonideal") is not None:
        model_upd["nonideal"] = _check_nonideal(model_upd["nonideal"])
    if model_upd:
        try:  # e.g. --model nonlinhru --a-param softplus: a user error, not a traceback
            upd["model"] = with_updates(spec.model, **model_upd)
        except ValidationError as err:
            raise ConfigError(validation_message(err, "(command line)")) from None
    # re-validate so overrides get the same checks as a file
    data = spec.model_dump()
    data.update({k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in upd.items()})
    from physim.hssm.config import parse_train_spec

    return parse_train_spec(data, "(command line)")


def _check_nonideal(name: str) -> str:
    """The preset name or path, after checking it loads (a typo fails before any training);
    a path is made absolute so a resumed run finds it from anywhere."""
    from physim.instrument.specs import load_nonideal

    load_nonideal(name)
    p = Path(name)
    return str(p.resolve()) if p.suffix == ".toml" and p.exists() else name


def _cmd_train(args: argparse.Namespace) -> int:
    from physim.hssm.train import train

    # errors go to the CLI's one reporter: one line, prefixed `physim train: error:`
    spec = resolve_train_spec(args)
    out = Path(args.out or f"runs/{spec.data}-{spec.model.model}-{spec.algo}-s{spec.seed}")
    if spec.data == "adding" and (spec.length or 0) >= 4000 and spec.init_from is None:
        print(
            "note: at L >= 4000 the adding problem is learned through a length curriculum "
            "here: `python scripts/long_range.py --algo rhel --seed 0 --length L` runs its "
            "stages (each one `--init-from` the last, steps Δt rescaled; docs/data.md)",
            file=sys.stderr,
        )
    if args.no_resume and (out / "metrics.json").exists():
        # --no-resume ignores a checkpoint to start afresh; a finished run is not replaced
        raise ConfigError(
            f"{out} holds a finished training run (metrics.json); --no-resume would "
            "replace it: choose another --out, or delete that folder to train it again"
        )
    res = train(spec, out, resume=not args.no_resume, progress=not args.quiet)
    m = res.metrics
    shown = {k: v for k, v in m.items() if k.startswith(("val_", "test_"))}
    print(
        jsonio.dumps(
            {
                "out": str(out),
                "dataset": m["dataset"],
                "steps": m["steps"],
                "best_step": m["best_step"],
                "seconds_per_step": m["seconds_per_step"],
                **shown,
            },
            indent=2,
        )
    )
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from physim.hssm.compare import compare_gradients, plot_alignment, write_summary

    try:
        res = compare_gradients(
            args.model,
            n_blocks=args.blocks,
            hidden=args.hidden,
            ssm_dim=args.ssm,
            length=args.length,
            batch=args.batch,
            seed=args.seed,
            complex_ssm=args.complex,
            precision=args.precision,
            nonideal=args.nonideal and _check_nonideal(args.nonideal),
            chip_seed=args.chip_seed or 0,
            as_built=args.as_built,
            a_param=args.a_param,
        )
    except (ConfigError, ValueError) as err:
        print(f"physim compare-gradients: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot_alignment(res, out / "alignment.png")
        write_summary(res, out / "alignment.json")
    if args.json:
        s = res.summary()
        print(jsonio.dumps({k: s[k] for k in ("min_cosine", "max_abs_ratio_minus_1", "config")}))
    else:
        print(res.table())
    return 0
