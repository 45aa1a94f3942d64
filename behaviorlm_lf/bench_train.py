"""Training speed of our CPU A-Tuning config against LlamaFactory's defaults, on the same data.

    python -m behaviorlm_lf.bench_train [--dataset default] [--model models/SmolLM2-135M-Instruct] [--steps 6]

Both runs are ``llamafactory-cli train llamafactory_configs/a_tune.yaml`` for the
same steps, samples and seed; the baseline resets our CPU settings to
LlamaFactory's defaults. Prints samples/s from each run's ``train_results.json``,
the ratio, and both training losses (the settings change speed, not the math).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from .a_tune import A_TUNE_CONFIG
from .convert import DATASET_INFO
from .lf_run import run_llamafactory

# Our CPU settings, and the value LlamaFactory uses when a config does not set them.
CPU_SETTINGS_AT_DEFAULT = {"disable_gradient_checkpointing": False}


def bench(dataset: str, model: str, steps: int, template: str = "smollm2") -> dict:
    common = {
        "model_name_or_path": model,
        "template": template,
        "dataset_dir": str(DATASET_INFO.parent),
        "dataset": f"{dataset}_anchor_train",
        "max_steps": steps,
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "plot_loss": False,
        "logging_steps": 1,
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("llamafactory_defaults", CPU_SETTINGS_AT_DEFAULT), ("ours", {})):
            metrics = run_llamafactory(A_TUNE_CONFIG, common | extra, Path(tmp) / name)["metrics"]
            results[name] = {"samples_per_s": metrics["train_samples_per_second"], "train_loss": metrics["train_loss"]}
    results["speedup"] = results["ours"]["samples_per_s"] / results["llamafactory_defaults"]["samples_per_s"]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = bench(args.dataset, args.model, args.steps)
    print(f"\nA-Tuning training speed, {args.model}, {args.steps} steps x batch 8 of {args.dataset}_anchor_train:")
    for name in ("llamafactory_defaults", "ours"):
        r = results[name]
        print(f"  {name:22s} {r['samples_per_s']:.3f} samples/s   train loss {r['train_loss']:.4f}")
    print(f"  speedup                {results['speedup']:.2f}x")


if __name__ == "__main__":
    main()
