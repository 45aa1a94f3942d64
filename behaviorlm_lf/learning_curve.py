"""Learning curve of the first stage: A-Tuning and full fine-tuning against the number of training samples.

    python -m behaviorlm_lf.learning_curve --dataset default --preset cpu --sizes 250 500 1000 2000
        [--learning-rates 2e-4 3e-3 --lr-size 500] [--out docs]

Chooses the cpu preset's sizes and learning rate from evidence instead of the
paper's 8B settings. For each size N, A-Tuning trains on N anchor-labelled
samples (plus epsilon x N auxiliary conversations) and full fine-tuning on N
samples of every class, both with the preset's hyper-parameters and the same
LoRA budget; each model is scored on the data set's natural and balanced test
sets with 95% bootstrap intervals. The N samples are nested: the first N of
one seeded permutation of the training set, so a larger N only adds samples.
``--learning-rates`` adds A-Tuning runs at other peak learning rates for one
size (``--lr-size``). Writes ``learning_curve.{md,csv,png}`` to ``--out``;
every training and evaluation is a cached stage, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .a_tune import A_TUNE_CONFIG, a_tune
from .convert import DATASET_INFO, REPO_ROOT, register, registry_path
from .eval import evaluate_model
from .fileio import atomic_output, read_jsonl
from .hardware import machine_description
from .presets import get_preset

logger = logging.getLogger(__name__)

METHODS = {"A-Tuning": ("anchor_train", 0.05), "Full fine-tuning": ("all_train", 0.0)}
SHOWN = ("overall", "head", "medium", "tail", "rec_w", "prec_w")


def nested_subset(data_dir: Path, dataset: str, set_name: str, size: int, seed: int, dataset_info: Path) -> str:
    """Write and register the first ``size`` samples of a seeded permutation of ``set_name``; return its set name."""
    records = read_jsonl(data_dir / f"{set_name}.jsonl")
    if size > len(records):
        raise SystemExit(f"{data_dir / set_name}.jsonl holds {len(records)} samples, fewer than {size}: convert with a larger --max-train")
    order = np.random.default_rng(seed).permutation(len(records))[:size]
    name = f"{set_name}_n{size}"
    path = data_dir / f"{name}.jsonl"
    with atomic_output(path) as tmp:
        tmp.write_text("".join(json.dumps(records[i], ensure_ascii=False) + "\n" for i in sorted(order)), encoding="utf-8")
    columns = {"prompt": "instruction", "query": "input", "response": "output"}
    register({f"{dataset}_{name}": {"file_name": registry_path(path, dataset_info), "columns": columns}}, dataset_info)
    return name


def preset_learning_rate(preset) -> float:
    """The preset's A-Tuning peak learning rate, else the YAML's (the paper's)."""
    return preset.a_tune_args.get("learning_rate", yaml.safe_load(A_TUNE_CONFIG.read_text())["learning_rate"])


def run_curve(dataset: str, preset: str, sizes: list[int], learning_rates: list[float], lr_size: int, seed: int) -> pd.DataFrame:
    """Train and evaluate every point; returns one row per (method, N, learning rate) with metrics and intervals."""
    data_dir = REPO_ROOT / "data" / dataset
    base = get_preset(preset)
    points = [(method, n, preset_learning_rate(base)) for method in METHODS for n in sizes]
    points += [("A-Tuning", lr_size, lr) for lr in learning_rates]
    rows = []
    for method, n, lr in points:
        set_name, epsilon = METHODS[method]
        subset = nested_subset(data_dir, dataset, set_name, n, seed, DATASET_INFO)
        run_dir = REPO_ROOT / "saves" / dataset / preset / "curve" / f"{set_name}_n{n}_lr{lr:g}"
        started = time.time()
        adapter = a_tune(dataset, preset, epsilon=epsilon, run_dir=run_dir, seed=seed, train_set=subset, extra={"learning_rate": lr})
        report = evaluate_model(dataset, preset, run=None, model=base.model, adapter=adapter, name=f"curve_{method[0]}_{n}_lr{lr:g}")
        metrics = json.loads((report / "metrics.json").read_text())
        train = json.loads((adapter / "manifest.json").read_text())
        rows.append(
            {
                "method": method, "samples": n, "learning_rate": lr,
                "train_seconds": train["seconds"],
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
        f"`{command}`, run on {meta['date']} on {meta['machine']}; model {meta['model']}, data `{meta['dataset']}` "
        f"(natural test {meta['natural_n']} samples, balanced test {meta['balanced_n']}). Values in %, with 95% bootstrap "
        "intervals; training time in seconds (LlamaFactory, this machine's precision).\n\n",
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--learning-rates", type=float, nargs="*", default=[], help="extra A-Tuning peak learning rates")
    parser.add_argument("--lr-size", type=int, default=500, help="the size the extra learning rates train at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = "python -m behaviorlm_lf.learning_curve " + " ".join(argv if argv is not None else sys.argv[1:])
    frame = run_curve(args.dataset, args.preset, args.sizes, args.learning_rates, args.lr_size, args.seed)
    preset = get_preset(args.preset)
    vocabulary = json.loads((REPO_ROOT / "data" / args.dataset / "behaviors.json").read_text())
    meta = {
        "date": date.today().isoformat(),
        "machine": machine_description(),
        "model": preset.model, "model_name": Path(preset.model).name, "dataset": args.dataset,
        "learning_rate": preset_learning_rate(preset),
        "natural_n": vocabulary["stats"]["set_sizes"]["test_natural"],
        "balanced_n": vocabulary["stats"]["set_sizes"]["test_balanced"],
    }
    write_curve(frame, args.out, command, meta)
    print(args.out / "learning_curve.md")


if __name__ == "__main__":
    main()
