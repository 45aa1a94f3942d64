"""Learning curve of the first stage: A-Tuning and full fine-tuning against the number of training samples.

    behaviorlm learning-curve --dataset default --preset cpu --max-train 2000 --sizes 250 500 1000 2000
        [--learning-rates 2e-4 3e-3 --lr-size 500] [--out docs]

Chooses the cpu preset's sizes and learning rate from evidence instead of the
paper's 8B settings. For each size N, A-Tuning trains on N anchor-labelled
samples (plus epsilon x N auxiliary conversations) and full fine-tuning on N
samples of every class, both with the preset's hyper-parameters and the same
LoRA budget; each model is scored on the data set's natural and balanced test
sets with 95% bootstrap intervals. The N samples are nested: the first N of
one seeded permutation of the training set, so a larger N only adds samples.
``--learning-rates`` adds A-Tuning runs at other peak learning rates for one
size (``--lr-size``). The data set is converted first with ``--max-train`` at
least the largest size. Writes ``learning_curve.{md,csv,png}`` to ``--out`` (under ``--root`` when relative);
every training and evaluation is a cached stage, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..data.convert import convert
from ..eval.evaluate import evaluate
from ..extras.errors import UserError
from ..extras.fileio import atomic_output, read_jsonl, write_jsonl
from ..extras.hardware import machine_description
from ..extras.layout import RunLayout
from ..hparams import (
    ATuneArguments,
    CurveArguments,
    DataArguments,
    FirstStageArguments,
    RunArguments,
    for_preset,
)
from ..lf.registry import entry, register
from ..train.a_tune import A_TUNE_CONFIG, a_tune

logger = logging.getLogger(__name__)

CURVES = {"A-Tuning": ("anchor_train", 0.05), "Full fine-tuning": ("all_train", 0.0)}
SHOWN = ("overall", "head", "medium", "tail", "rec_w", "prec_w")


def nested_subset(layout: RunLayout, set_name: str, size: int) -> str:
    """Write and register the first ``size`` samples of a seeded permutation of ``set_name``; return its set name."""
    records = read_jsonl(layout.set_file(set_name))
    if size > len(records):
        raise UserError(f"{layout.set_file(set_name)} holds {len(records)} samples, fewer than {size}: convert with --max-train {size}")
    order = np.random.default_rng(layout.seed).permutation(len(records))[:size]
    name = f"{set_name}_n{size}"
    write_jsonl(layout.set_file(name), [records[i] for i in sorted(order)])
    register({layout.set_registry_name(name): entry(layout.set_file(name), layout.registry)}, layout.registry)
    return name


def preset_learning_rate(preset: str) -> float:
    """The preset's A-Tuning peak learning rate, else the YAML's (the paper's)."""
    return for_preset(ATuneArguments, preset).learning_rate or yaml.safe_load(A_TUNE_CONFIG.read_text())["learning_rate"]


def run_curve(run: RunArguments, args: CurveArguments) -> pd.DataFrame:
    """Train and evaluate every point; returns one row per (method, N, learning rate) with metrics and intervals."""
    layout = run.layout()
    main_lr = preset_learning_rate(run.preset)
    points = [(method, n, main_lr) for method in CURVES for n in args.sizes]
    points += [("A-Tuning", args.lr_size, lr) for lr in args.learning_rates]
    rows = []
    for method, n, lr in points:
        set_name, epsilon = CURVES[method]
        subset = nested_subset(layout, set_name, n)
        # each point is its own first stage: a sub-run per set, size and learning rate
        point = dataclasses.replace(run, sub_run=f"curve_{subset}_lr{lr:g}")
        first = FirstStageArguments(first_stage=set_name, epsilon=epsilon)
        started = time.time()
        hp = dataclasses.replace(for_preset(ATuneArguments, run.preset), learning_rate=lr)
        adapter = a_tune(point, first, hp, train_set=subset)
        report = evaluate(point, run.layout().model_dir(), adapter, "eval")
        metrics = json.loads((report / "metrics.json").read_text())
        train = json.loads((adapter / "manifest.json").read_text())
        rows.append(
            {
                "method": method, "samples": n, "learning_rate": lr, "train_seconds": train["seconds"],
                **{key: metrics[key] for m in SHOWN for key in (m, f"{m}_lo", f"{m}_hi")},
            }
        )
        logger.info("%s N=%d lr=%g: Overall %.3f, Tail %.3f, Rec_w %.3f (%.0f s)", method, n, lr, metrics["overall"], metrics["tail"], metrics["rec_w"], time.time() - started)
    return pd.DataFrame(rows)


def _cell(row, metric: str) -> str:
    return f"{100 * row[metric]:.1f} [{100 * row[f'{metric}_lo']:.1f}, {100 * row[f'{metric}_hi']:.1f}]"


def write_curve(frame: pd.DataFrame, out: Path, command: str, meta: dict) -> None:
    """learning_curve.md (table, command, date, machine), .csv and .png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Learning curve of the first stage\n\n",
        (f"`{command}`, run on {meta['date']} on {meta['machine']}; model {meta['model']}, data `{meta['dataset']}` "
        f"(natural test {meta['natural_n']} samples, balanced test {meta['balanced_n']}). Values in %, with 95% bootstrap "
        "intervals; training time in seconds (LlamaFactory, this machine's precision).\n\n"),
        "| Method | N | lr | Overall | Head | Medium | Tail | Rec_w | Prec_w | train s |\n|---|---|---|---|---|---|---|---|---|---|\n",
    ]
    for _, row in frame.iterrows():
        cells = " | ".join(_cell(row, m) for m in SHOWN)
        lines.append(f"| {row['method']} | {row['samples']} | {row['learning_rate']:g} | {cells} | {row['train_seconds']:.0f} |\n")
    with atomic_output(out / "learning_curve.md") as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    with atomic_output(out / "learning_curve.csv") as tmp:
        frame.to_csv(tmp, index=False)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    main_lr = meta["learning_rate"]
    for method, group in frame[frame["learning_rate"] == main_lr].groupby("method", sort=False):
        group = group.sort_values("samples")
        for ax, metric, label in ((axes[0], "overall", "Overall (balanced)"), (axes[1], "rec_w", "Rec_w (natural)")):
            ax.errorbar(
                group["samples"], group[metric],
                yerr=[group[metric] - group[f"{metric}_lo"], group[f"{metric}_hi"] - group[metric]],
                marker="o", capsize=3, label=method,
            )
            ax.set(xscale="log", xlabel="training samples", ylabel=label)
    axes[0].legend()
    fig.suptitle(f"{meta['model_name']} on {meta['dataset']}, lr {main_lr:g}")
    fig.tight_layout()
    with atomic_output(out / "learning_curve.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def learning_curve(run: RunArguments, data: DataArguments, args: CurveArguments, command: str) -> Path:
    """Train and evaluate the first stage at each size and learning rate; returns the curve's report."""
    if data.max_train is not None and data.max_train < max(args.sizes):
        raise UserError(f"--max-train {data.max_train} is smaller than the largest size {max(args.sizes)}")
    convert(run, data)
    frame = run_curve(run, args)
    out = args.out if args.out.is_absolute() else Path(run.root) / args.out
    vocabulary = run.layout().vocabulary()
    meta = {
        "date": date.today().isoformat(), "machine": machine_description(), "model": run.layout().model_dir(),
        "model_name": Path(run.layout().model_dir()).name, "dataset": run.dataset, "learning_rate": preset_learning_rate(run.preset),
        "natural_n": vocabulary["stats"]["set_sizes"]["test_natural"], "balanced_n": vocabulary["stats"]["set_sizes"]["test_balanced"],
    }
    write_curve(frame, out, command, meta)
    return out / "learning_curve.md"
