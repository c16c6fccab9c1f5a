"""Rebuild the README's results section, the documentation's budget tables and the figures
from the files under ``results/``.

    python scripts/readme_results.py            # the sections and the figure
    python scripts/readme_results.py --check    # exit 1 if a section is not this output

No number in those sections is typed by hand: the long-range table and its figure come from
``results/long-range/*.json`` (written by ``scripts/long_range.py``), the budget verdicts
(README) and tables (docs/answers.md) from ``results/budget/*.json``
(``scripts/readme_budgets.py``). The paper's numbers beside them are those of Pourcel & Ernoult
(REFERENCE §2), quoted with the sizes of both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ANSWERS = ROOT / "docs" / "answers.md"
LONG = ROOT / "results" / "long-range"
BUDGETS = ROOT / "results" / "budget"
PAPER_RUNS = ROOT / "results" / "paper"
FIGURE = LONG / "curves.png"
BEGIN, END = "<!-- results: begin -->", "<!-- results: end -->"
BUDGET_BEGIN, BUDGET_END = "<!-- budget-tables: begin -->", "<!-- budget-tables: end -->"
#: a run solves the task when its test MSE is at most this share of predicting the mean
SOLVED = 0.10
#: the paper's long-range headline (REFERENCE §2): PPG-DaLiA, linear HSSM, test MSE
#: the paper's linear-HSSM test accuracy, RHEL / BPTT (REFERENCE §2), per physim preset
PAPER = {"scp1-linhru-paper": (86.1, 86.4), "scp2-linhru-paper": (61.4, 63.9)}
PAPER_LONG = "PPG-DaLiA, L = 49,920, 6 blocks, H 64, P 16, batch 4: test MSE 9.5e-2 / 9.1e-2"


def _stage_key(st: dict) -> tuple:
    """What makes two chains' i-th stages the same stage (the steps trained may differ: early
    stopping)."""
    keys = ("length", "lr", "n_samples", "batch_size", "precision")
    return tuple(st[k] for k in keys) + (st.get("lr_warmup", 0), st.get("lr_decay", "none"))


def long_range_runs(folder: Path = LONG) -> list[dict]:
    """The long-range results; refused if their chains did not run one curriculum, since the
    per-stage line compares stage i across chains (a result left from an older curriculum
    would be averaged with another stage)."""
    files = sorted(folder.glob("adding-L*.json"))
    runs = [json.loads(p.read_text()) for p in files]
    if runs:
        longest = max(range(len(runs)), key=lambda i: len_of(runs[i]))
        ref = [_stage_key(st) for st in runs[longest]["stages"]]
        for path, r in zip(files, runs, strict=True):
            mine = [_stage_key(st) for st in r["stages"]]
            bad = [i for i, k in enumerate(mine) if k != ref[i]]
            if bad:
                raise SystemExit(
                    f"{path.name} and {files[longest].name} ran different curricula (stage "
                    f"{bad[0] + 1}: {mine[bad[0]]} against {ref[bad[0]]}); rerun the older one "
                    f"with scripts/long_range.py or remove it from {folder}"
                )
    return runs


def _cell(runs: list[dict]) -> str:
    if not runs:
        return "not run"
    r = np.array([x["ratio"] for x in runs])
    solved = int((r <= SOLVED).sum())
    seeds = ", ".join(f"{100 * x['ratio']:.1f} %" for x in sorted(runs, key=lambda x: x["seed"]))
    hours = sum(x["wall_hours"] for x in runs) / len(runs)
    return f"{solved} of {len(runs)} solved ({seeds}; {hours:.1f} wall h per run)"


def long_range_table(runs: list[dict], targets: tuple[int, ...] | None = None) -> str:
    """One row per length with results, and per target length of ``scripts/long_range.py``
    without any (so a length the curriculum aims at is never silently missing)."""
    if targets is None:
        here = str(Path(__file__).resolve().parent)  # on sys.path also when imported
        if here not in sys.path:
            sys.path.insert(0, here)
        from long_range import TARGETS as targets
    lines = [
        "| adding problem | physim RHEL: test MSE / predict-the-mean, per seed | physim BPTT |",
        "|---|---|---|",
    ]
    for length in sorted({r["length"] for r in runs} | set(targets)):
        at = [r for r in runs if r["length"] == length]
        cells = [_cell([r for r in at if r["algo"] == a]) for a in ("rhel", "bptt")]
        batches = "/".join(str(b) for b in sorted({r["batch_size"] for r in at}))
        size = f" (batch {batches})" if at else ""
        lines.append(f"| L = {length:,}{size} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def stage_labels(stages: list[dict]) -> list[str]:
    """Each stage's length, with "continued" for a stage that goes on at the previous one's
    length (``scripts/long_range.py`` allows a length more than once) and "cosine lr" for one
    whose learning rate decays."""
    out = []
    for i, st in enumerate(stages):
        notes = ["continued"] if i and stages[i - 1]["length"] == st["length"] else []
        if st.get("lr_decay", "none") != "none":
            notes.append(f"{st['lr_decay']} lr")
        out.append(f"{st['length']:,}" + (f" ({', '.join(notes)})" if notes else ""))
    return out


def stage_line(runs: list[dict]) -> str:
    """Where the curriculum loses the task: each stage's test MSE / baseline, mean over the
    chains (RHEL / BPTT), each chain counted once (from its longest result)."""
    longest: dict[tuple, dict] = {}
    for r in runs:
        key = (r["algo"], r["seed"])
        if key not in longest or r["length"] > longest[key]["length"]:
            longest[key] = r
    parts = []
    # every chain runs the same curriculum, so stage i is the same stage in each
    for i, label in enumerate(stage_labels(max(runs, key=len_of)["stages"])):
        cell = []
        for algo in ("rhel", "bptt"):
            v = [
                r["stages"][i]["test_mse"] / r["stages"][i]["baseline_mse"]
                for (a, _), r in longest.items()
                if a == algo and i < len(r["stages"])
            ]
            cell.append(f"{100 * np.mean(v):.1f}" if v else "-")
        parts.append(f"L = {label}: {' / '.join(cell)} %")
    return "; ".join(parts)


def figure(runs: list[dict], path: Path = FIGURE) -> None:
    """Validation MSE / baseline against cumulative steps over the curriculum, RHEL and BPTT
    of every seed, one panel per final length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted({r["length"] for r in runs})
    fig, axes = plt.subplots(1, len(lengths), figsize=(8 * len(lengths), 4.4), squeeze=False)
    colours = {0: "tab:blue", 1: "tab:orange", 2: "tab:green"}
    for ax, length in zip(axes[0], lengths, strict=True):
        bounds, labels = [], []
        for r in sorted((r for r in runs if r["length"] == length), key=lambda r: r["seed"]):
            offset, xs, ys = 0, [], []
            bounds, labels = [], stage_labels(r["stages"])
            for st in r["stages"]:
                c = st["curve"]
                xs += [offset + s for s in c["step"]]
                ys += [v / st["baseline_mse"] for v in c["val_mse"]]
                bounds.append(offset)
                offset += st["steps"]
            ax.plot(
                xs,
                ys,
                ls="-" if r["algo"] == "rhel" else "--",
                color=colours.get(r["seed"], "grey"),
                label=f"{r['algo'].upper()} seed {r['seed']}",
                lw=1.2,
            )
        for x0, label in zip(bounds, labels, strict=True):
            ax.axvline(x0, color="0.85", lw=0.8, zorder=0)
            ax.text(
                x0,
                1.02,
                "L=" + label.replace("continued", "cont.").replace(" lr)", ")"),
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                rotation=30,
                ha="left",
                va="bottom",
            )
        ax.axhline(SOLVED, color="k", lw=0.8, ls=":", label="solved (10 % of the baseline)")
        ax.set_yscale("log")
        ax.set_xlabel("training step (summed over the length curriculum)")
        ax.set_ylabel("validation MSE / predict-the-mean MSE")
        ax.set_title(f"adding problem up to L = {length:,}", pad=34)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def paper_runs(folder: Path = PAPER_RUNS) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _paper_cell(runs: list[dict]) -> str:
    if not runs:
        return "not run"
    pct = [100 * r[f"test_{r['metric']}"] for r in sorted(runs, key=lambda r: r["seed"])]
    steps = ", ".join(sorted({str(r["steps"]) for r in runs}))
    hours = sum(r["train_hours"] for r in runs) / len(runs)
    vals = ", ".join(f"{v:.1f}" for v in pct)
    return f"{vals} ({len(runs)} seed{'s' * (len(runs) > 1)}; {steps} steps, {hours:.1f} h per run)"


def paper_table(runs: list[dict]) -> str:
    """The paper's configurations: the paper's RHEL / BPTT beside physim's runs of them."""
    lines = [
        "| configuration (6 blocks, the paper's H, P, lr, batch) | paper RHEL / BPTT, test % "
        "(5 seeds, ≤ 100k steps) | physim RHEL, test % | physim BPTT |",
        "|---|---|---|---|",
    ]
    for config in sorted({r["config"] for r in runs}):
        at = [r for r in runs if r["config"] == config]
        rhel, bptt = (_paper_cell([r for r in at if r["algo"] == a]) for a in ("rhel", "bptt"))
        paper = PAPER.get(config)
        ref = "-" if paper is None else f"{paper[0]} / {paper[1]}"
        m = at[0]["model"]
        size = f"H {m['hidden']}, P {m['ssm_dim']}, {m['precision']}"
        lines.append(f"| `{config}` ({size}) | {ref} | {rhel} | {bptt} |")
    return "\n".join(lines)


def section(runs: list[dict], paper: list[dict] | None = None) -> str:
    paper = paper_runs() if paper is None else paper
    tail = []
    if paper:
        cmds = sorted({r["command"] for r in paper})
        tail = [
            "",
            "The paper's own configurations, shortened to the steps shown (the paper trains up "
            "to 100k steps with early stopping; physim's data: the same UEA recordings, "
            "70/15/15 split):",
            "",
            paper_table(paper),
            "",
            f"Each run: `{cmds[0]}` (and `--config`, `--algo`, `--seed` as in the table).",
        ]
    if not runs:
        head = "No long-range run is in `results/long-range/` yet (`scripts/long_range.py`)."
        return "\n".join([head, *tail])
    r0 = runs[0]
    m = r0["model"]
    size = (
        f"{m['n_blocks']} blocks, H {m['hidden']}, P {m['ssm_dim']}, {m['norm']} norm, "
        f"A = {m['a_param']}(θ_A)"
    )
    curriculum = " → ".join(stage_labels(max(runs, key=len_of)["stages"]))
    body = [
        f"The paper's long-range headline is {PAPER_LONG} (RHEL / BPTT; PPG-DaLiA does not "
        "install offline). physim's is the adding problem (the sum of two marked values "
        f"among L distractors) on a LinHRU HSSM of {size}, trained by a length curriculum "
        f"({curriculum}) with the same seeds, data and configuration for both algorithms; "
        f"a run solves it at test MSE ≤ {SOLVED:.0%} of predicting the mean:",
        "",
        long_range_table(runs),
        "",
        "Each stage's test MSE as a share of predicting the mean, RHEL / BPTT (mean over "
        f"seeds): {stage_line(runs)}.",
        "",
        f"![learning curves](results/long-range/{FIGURE.name})",
        "",
        "Each run is `python scripts/long_range.py --algo ALGO --seed SEED --length L` (the "
        "49,920 run continues the seed's 16,384 chain; a killed run resumes); "
        "`results/long-range/*.json` hold every stage's test MSE, steps, hours, curve and "
        "command.",
        *tail,
    ]
    return "\n".join(body)


def len_of(r: dict) -> int:
    return len(r["stages"])


def _level(t: dict | None) -> str:
    if t is None:
        return "-"
    if t["level"] is None:
        note = t.get("note") or "-"
        if "meets the criterion out to the search bound" in note:
            return "not limiting (to the search bound)"
        if "fails even at the search bound" in note:
            alone = note.split("(", 1)[1].split(")")[0] if "alone misses it" in note else ""
            return "fails at every level searched" + (f" ({alone})" if alone else "")
        return note
    s = f"{t['level']:.3g}"
    if t.get("interval"):
        lo, hi = t["interval"]
        s += f" [{lo:.3g}, {hi:.3g}]"
    if not t.get("pinned", True):
        s += " (not pinned down)"
    if t["limiting"]:
        s = f"**{s} — the preset is beyond it**"
    return s


def budget_table(rep: dict) -> str:
    """The README block of one preset's budget."""
    train = {t["source"]: t for t in rep.get("tolerances_train", [])}
    lines = [
        f"**{rep['preset']}** on `{rep['device']}` ({rep['replicates']}+ replicate chips, best "
        f"ε {rep['best_eps']:.2g}; `{rep['command']}`, {rep['seconds']:.0f} s):",
        "",
    ]
    lines += [f"- {v['line']}" for v in rep.get("verdicts", [])]
    e = rep.get("energy_per_update")
    if e:

        def val(k: str) -> str:
            x = e[k]
            return "n/a" if x["value"] is None else f"{x['value']:.2g} {x['unit']}"

        lines.append(
            f"- one gradient update costs {val('energy_total')} and {val('time_update')}: "
            f"converters {val('energy_converters')}, device drive {val('energy_drive')}, "
            f"dissipated {val('energy_dissipated')}, flip {val('energy_flip')}"
        )
    lines += [
        "",
        "| source | unit | preset | tolerated: gradient (θ-scaled cosine ≥ "
        f"{rep['target']}) | tolerated: in-situ training (loss ≤ "
        f"{rep['train']['factor']:g}× ideal) |",
        "|---|---|---|---|---|",
    ]
    for t in rep["tolerances"]:
        pre = "-" if t.get("preset") is None else f"{t['preset']:.3g}"
        lines.append(
            f"| {t['source']} | {t['unit']} | {pre} | {_level(t)} | "
            f"{_level(train.get(t['source']))} |"
        )
    return "\n".join(lines)


def budget_verdicts(reps: list[dict]) -> str:
    """One line per preset: its verdicts, for the README (the tables are in the docs)."""
    lines = [
        "The error budget of each technology preset on the device it describes "
        "(`physim budget DEVICE --nonideal PRESET --by train`; tolerances per imperfection in "
        "[the answers page](docs/answers.md#budget-tables)):",
        "",
    ]
    for rep in reps:
        verdicts = "; ".join(
            v["line"].replace("this chip as specified ", "") for v in rep.get("verdicts", [])
        )
        lines.append(f"- **{rep['preset']}** on `{rep['device']}`: {verdicts}")
    return "\n".join(lines)


def budgets() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(BUDGETS.glob("*.json"))]


def _replace(text: str, begin: str, end: str, body: str, where: str) -> str:
    if begin not in text or end not in text:
        raise SystemExit(f"{where} has no {begin} … {end} section to rewrite")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    note = "<!-- written by scripts/readme_results.py from results/; do not edit by hand -->"
    return f"{head}{begin}\n{note}\n\n{body}\n\n{end}{tail}"


def rebuilt() -> dict[Path, str]:
    """README.md and docs/answers.md with their results sections written anew."""
    runs, reps = long_range_runs(), budgets()
    readme = section(runs) + "\n\n" + budget_verdicts(reps)
    tables = "\n\n".join(budget_table(r) for r in reps)
    return {
        README: _replace(README.read_text(), BEGIN, END, readme, README.name),
        ANSWERS: _replace(ANSWERS.read_text(), BUDGET_BEGIN, BUDGET_END, tables, "docs/answers.md"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a section is stale")
    args = ap.parse_args(argv)
    new = rebuilt()
    stale = [p for p, text in new.items() if p.read_text() != text]
    if args.check:
        for p in stale:
            print(
                f"{p.relative_to(ROOT)}: results section stale; run python scripts/readme_results.py"
            )
        return 1 if stale else 0
    runs = long_range_runs()
    if runs:
        figure(runs)
    for p, text in new.items():
        p.write_text(text)
    print(
        f"rewrote the results sections of README.md and docs/answers.md from {len(runs)} "
        f"long-range runs and {len(budgets())} budgets"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
