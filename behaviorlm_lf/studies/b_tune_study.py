"""Which second stage teaches the rare behaviors: every B-Tuning variant from one first-stage model and selection.

    behaviorlm b-tune-study [--dataset default] [--preset cpu] [--variants dpo dpo_nll sft sft_replay sft_dpo]
    behaviorlm b-tune-study --dataset foursquare-nyc --sub-run BehaviorLM     # the benchmark's first stage
    behaviorlm b-tune-study --settings sft_replay:num_train_epochs=4          # a variant with other settings

Runs the data stage, A-Tuning and the selection once, then each variant with the
preset's settings for it (``b_tune:<variant>`` in :mod:`behaviorlm_lf.hparams.presets`;
``--settings`` changes them), each keeping its best epoch on the balanced validation set, and evaluates every
model on the test sets. Writes ``reports/<data>/<preset>[/<sub-run>]/b_tune_study/``
``study.md`` and ``study.csv``: per row the validation Overall that chose it, the
six test metrics with 95% bootstrap intervals, the epoch kept and the time; each
variant's paired differences from the paper's ``dpo``; and the variant with the
best validation Overall, the one a preset should make its default. The test
sets choose nothing: they only show what the choice is worth. Every stage is the
pipeline's own (the stage cache), so ``make demo`` reuses what the study trained
and an interrupted study resumes; the report is rewritten after every row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..data.convert import convert
from ..eval.baselines import run_baseline
from ..eval.evaluate import VALIDATION_SETS, evaluate
from ..eval.metrics import PAPER_METRICS
from ..eval.report import cell, difference_table, summary_frame
from ..eval.rows import A_TUNED
from ..extras.fileio import atomic_output
from ..extras.hardware import machine_description
from ..hparams import (
    ATuneArguments,
    BaselineArguments,
    BTuneArguments,
    DataArguments,
    FirstStageArguments,
    RunArguments,
    SelectArguments,
    StudyArguments,
    for_preset,
)
from ..train.a_tune import a_tune
from ..train.b_tune import b_tune
from ..train.select import select

logger = logging.getLogger(__name__)

REFERENCE = "dpo"  # the paper's B-Tuning: every variant is compared with it




def stage_seconds(*folders: Path) -> float:
    """The time the stages behind ``folders`` took when they were built (their manifests), not this run's reuse."""
    return sum(json.loads((f / "manifest.json").read_text(encoding="utf-8"))["seconds"] for f in folders)


def variant_stages(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, variant: str) -> list[Path]:
    """The folders of the stages that make a variant's model beyond the shared first stage and selection."""
    layout, suffix = run.layout(), sel.suffix()
    own = [layout.b_tune_dir(first.first_stage, suffix, variant)]
    if variant == "sft_dpo":
        own += [layout.b_tune_dir(first.first_stage, suffix, "sft"), layout.b_tune_base_dir(first.first_stage, suffix, variant),
                layout.rebuilt_pairs_dir(first.first_stage, suffix)]
    return own


def row_name(variant: str) -> str:
    return f"{variant} (the paper's)" if variant == REFERENCE else variant


def write_study(out: Path, rows: dict[str, list[Path]], facts: dict[str, dict], meta: dict) -> str | None:
    """study.md and study.csv, atomically; returns the variant with the best validation Overall so far."""
    frame = summary_frame(rows)
    by_name = frame.set_index("name")
    variants = {name: f for name, f in facts.items() if f.get("variant")}
    winner = max(variants, key=lambda n: variants[n]["validation"], default=None)  # first in order on a tie
    header = ("| Row | Settings | Validation Overall | " + " | ".join(n for n in ("Prec_w", "Rec_w", "Overall", "Head", "Medium", "Tail"))
              + " | Epoch kept | Minutes (training + validation; test) |\n|---|---|---|" + "---|" * 6 + "---|---|\n")
    lines = []
    for name in rows:
        row, fact = by_name.loc[name], facts[name]
        validation = f"{100 * fact['validation']:.1f}" if fact.get("validation") is not None else "n/a"
        minutes = f"{fact['train_seconds'] / 60:.1f}; {fact['eval_seconds'] / 60:.1f}" if "train_seconds" in fact else "n/a"
        lines.append(f"| {name} | {fact.get('settings', '')} | {validation} | " + " | ".join(cell(row, m) for m in PAPER_METRICS)
                     + f" | {fact.get('epoch', '')} | {minutes} |\n")
    text = [
        f"# B-Tuning variants: {meta['data']}, {meta['preset']} preset\n\n",
        (f"Command `{meta['command']}`; model {meta['model']}; machine {meta['machine']}. Every variant starts from the same "
        f"A-tuned model, pool and selection ({meta['pairs']} selected samples) and keeps the epoch with the best Overall on "
        f"the {meta['valid_n']} balanced validation samples; the test sets ({meta['natural_n']} natural, {meta['balanced_n']} "
        "balanced) choose nothing. Values in %, 95% bootstrap intervals in brackets.\n\n"),
        header, *lines,
        f"\n**Best on validation: {winner}.**\n" if winner else "",
    ]
    reference = row_name(REFERENCE)
    others = [n for n in variants if n != reference]
    if reference in rows and others:
        text += [f"\n## Change from {reference}, in points (paired 95% intervals)\n\n", difference_table(rows, others, reference)]
    csv = frame.assign(**{k: frame["name"].map(lambda n, k=k: facts[n].get(k)) for k in ("validation", "epoch", "train_seconds", "eval_seconds")})
    with atomic_output(out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "study.md").write_text("".join(text), encoding="utf-8")
        csv.to_csv(tmp / "study.csv", index=False)
    return winner.removesuffix(" (the paper's)") if winner else None


def study(run: RunArguments, data: DataArguments, first: FirstStageArguments, sel: SelectArguments, args: StudyArguments,
          command: str = "") -> Path:
    """Train and evaluate every variant in ``args``; returns the study's folder."""
    convert(run, data)
    layout = run.layout()
    vocabulary = layout.vocabulary()
    sizes = vocabulary["stats"]["set_sizes"]
    adapter = a_tune(run, first, for_preset(ATuneArguments, run.preset))
    selection = select(run, first, sel)
    out = layout.report_dir("b_tune_study")
    meta = {"data": layout.data_name, "preset": run.preset, "command": command, "model": run.layout().model_dir(), "machine": machine_description(),
            "pairs": json.loads((selection / "manifest.json").read_text())["result"]["pairs"], "valid_n": sizes["valid_balanced"],
            "natural_n": sizes["test_natural"], "balanced_n": sizes["test_balanced"]}
    rows: dict[str, list[Path]] = {}
    facts: dict[str, dict] = {}
    valid = evaluate(run, run.layout().model_dir(), adapter, "a_tune_valid", sets=VALIDATION_SETS)
    tested = evaluate(run, run.layout().model_dir(), adapter, "a_tune")
    rows[A_TUNED] = [tested]
    facts[A_TUNED] = {"validation": json.loads((valid / "metrics.json").read_text())["overall"], "settings": "no second stage"}
    for method in args.baselines:
        name = {"markov": "Markov", "sasrec": "SASRec"}.get(method, method)
        rows[name], facts[name] = [run_baseline(run, BaselineArguments(method=method))], {}
    changes = args.changes()
    for variant in args.variants:
        hp = for_preset(BTuneArguments, run.preset, variant=variant, **changes.get(variant, {}))
        b_tune(run, first, sel, hp)
        model, trained = run.layout().trained_model("b_tune", first.first_stage, sel.suffix(), variant)
        report = evaluate(run, model, trained, trained.name)
        diagnostics = json.loads((trained / "diagnostics.json").read_text(encoding="utf-8"))
        name = row_name(variant)
        rows[name] = [report]
        shown = {k: v for k, v in diagnostics["settings"].items() if k in ("learning_rate", "num_train_epochs", "pref_beta", "pref_ftx")}
        facts[name] = {
            "variant": variant, "validation": diagnostics["best_validation_overall"], "epoch": diagnostics["best_epoch"],
            "settings": ", ".join(f"{k}={v:g}" for k, v in shown.items()),
            "train_seconds": stage_seconds(*variant_stages(run, first, sel, variant)), "eval_seconds": stage_seconds(report),
        }
        winner = write_study(out, rows, facts, meta)
        logger.info("%s done; best on validation so far: %s (%s)", variant, winner, out / "study.md")
    write_study(out, rows, facts, meta)
    return out


def show_study(out: Path) -> str:
    """What `behaviorlm b-tune-study` prints: the study (it names the variant validation chose) and where it is."""
    return f"{(out / 'study.md').read_text(encoding='utf-8')}\nstudy: {out / 'study.md'}"
