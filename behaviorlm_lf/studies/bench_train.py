"""Training speed of our settings against LlamaFactory's defaults, for A-Tuning (SFT) and B-Tuning (DPO).

    behaviorlm bench-train [--dataset default] [--preset cpu] [--sft-steps 10] [--dpo-steps 6]

Each comparison is two runs of the same YAML (``a_tune.yaml``, ``b_tune.yaml``)
with the preset's model and hyper-parameters, for the same steps, samples and
seed, one after the other:

* **LlamaFactory defaults**: plain ``llamafactory-cli``, float32, gradient
  checkpointing on (LlamaFactory's default);
* **ours**: the stages' settings: :mod:`behaviorlm_lf.lf.hooks` (frozen weights in
  bf16, LM head and loss at labelled positions only), this machine's precision
  (:mod:`behaviorlm_lf.extras.hardware`), no gradient checkpointing.

Prints samples (or pairs) per second from each run's ``train_results.json``,
the ratio, and both runs' per-step training losses with the mean paired
difference and its paired bootstrap 95% interval (as the reports'): the settings change speed and rounding, not the math.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..eval.metrics import BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, paired_difference
from ..extras.fileio import read_jsonl, write_jsonl
from ..extras.hardware import llamafactory_precision, machine_description
from ..extras.layout import REGISTRY
from ..hparams import ATuneArguments, BenchTrainArguments, BTuneArguments, RunArguments, for_preset
from ..lf.registry import entry, register
from ..lf.run import run_llamafactory
from ..lf.template import chat_template
from ..train.a_tune import A_TUNE_CONFIG
from ..train.b_tune import VARIANTS

LLAMAFACTORY_DEFAULTS = {"hooks": False, "precision": {"bf16": False}, "overrides": {"disable_gradient_checkpointing": False}}
OURS = {"hooks": True, "precision": None, "overrides": {}}


def bench_stage(config: Path, common: dict, out: Path) -> dict:
    """Both runs of one YAML; returns their rates, per-step losses and the ratio."""
    results = {}
    for name, setting in (("llamafactory_defaults", LLAMAFACTORY_DEFAULTS), ("ours", OURS)):
        found = run_llamafactory(
            config, common | setting["overrides"], out / name, hooks=setting["hooks"], precision=setting["precision"]
        )
        results[name] = {
            "per_second": found["metrics"]["train_samples_per_second"],
            "losses": [loss for _, loss in found["train_loss"]],
        }
    results["speedup"] = results["ours"]["per_second"] / results["llamafactory_defaults"]["per_second"]
    return results


def write_pool_pairs(pool: Path, folder: Path, seed: int = 0) -> Path:
    """DPO pairs from the selection pool (chosen = label, rejected = another behavior), registered in ``folder``.

    DPO's speed does not depend on which pairs it trains on, so the bench needs no
    A-tuned model to select them.
    """
    records = read_jsonl(pool)
    behaviors = sorted({r["output"] for r in records})
    rng = np.random.default_rng(seed)
    pairs = [
        {"instruction": r["instruction"], "input": "", "chosen": r["output"], "rejected": str(rng.choice([b for b in behaviors if b != r["output"]]))}
        for r in records
    ]
    write_jsonl(folder / "bench_pairs.jsonl", pairs)
    registry = folder / REGISTRY
    register({"bench_pairs": entry(folder / "bench_pairs.jsonl", registry, pairs=True)}, registry)
    return folder


def loss_difference(ours: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """Mean of ours - baseline over the same steps (same batches), with the evaluation's paired bootstrap interval:
    both runs' mean loss on the same resamples of steps, then :func:`~behaviorlm_lf.eval.metrics.paired_difference`."""
    ours, baseline = np.asarray(ours), np.asarray(baseline)
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(ours), size=(BOOTSTRAP_REPLICATES, len(ours)))
    return paired_difference(ours[draws].mean(axis=1), baseline[draws].mean(axis=1))


def describe(title: str, unit: str, results: dict) -> str:
    lines = [title]
    for name in ("llamafactory_defaults", "ours"):
        r = results[name]
        losses = " ".join(f"{x:.3f}" for x in r["losses"])
        lines.append(f"  {name:22s} {r['per_second']:.3f} {unit}/s   loss per step: {losses}  (mean {np.mean(r['losses']):.4f})")
    mean, low, high = loss_difference(results["ours"]["losses"], results["llamafactory_defaults"]["losses"])
    verdict = "within noise" if low <= 0 <= high else "outside the 95% interval"
    lines.append(f"  speedup                {results['speedup']:.2f}x")
    lines.append(f"  loss, ours - defaults  {mean:+.4f} per step, 95% interval [{low:+.4f}, {high:+.4f}]: {verdict}")
    return "\n".join(lines)


def bench_train(run: RunArguments, args: BenchTrainArguments) -> str:
    """Both runs of A-Tuning's and B-Tuning's YAMLs; returns the printed comparison."""
    layout = run.layout()
    layout.require_data(layout.set_file("anchor_train"))
    common = {
        "model_name_or_path": run.layout().model_dir(),
        "template": chat_template(run.layout()),
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "plot_loss": False,
        "logging_steps": 1,
    }
    a_hp, b_hp = for_preset(ATuneArguments, run.preset).overrides(), for_preset(BTuneArguments, run.preset, variant="dpo").overrides()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        tmp = Path(tmp)
        sft_data = {"dataset_dir": str(layout.dataset_dir), "dataset": layout.set_registry_name("anchor_train"), "max_steps": args.sft_steps}
        sft = bench_stage(A_TUNE_CONFIG, common | a_hp | sft_data, tmp / "sft")
        dpo_data = {"dataset_dir": str(write_pool_pairs(layout.set_file("pool"), tmp)), "dataset": "bench_pairs", "max_steps": args.dpo_steps}
        dpo = bench_stage(VARIANTS["dpo"].config, common | b_hp | dpo_data, tmp / "dpo")
    return "\n".join([
        (f"\n{machine_description()}; model {run.layout().model_dir()}, {run.preset} preset ({a_hp} / {b_hp}); "
        f"ours = {llamafactory_precision()} + the lf.hooks speed hooks, no gradient checkpointing"),
        describe(f"A-Tuning (SFT), {args.sft_steps} steps x batch 8 of {layout.set_registry_name('anchor_train')}:", "samples", sft),
        describe(f"B-Tuning (DPO), {args.dpo_steps} steps x 8 pairs from {layout.data_name}'s pool:", "pairs", dpo),
    ])
