"""B-Tuning: merge the A-Tuning adapter, then LoRA-DPO on the selected pairs, via ``llamafactory-cli``.

    python -m behaviorlm_lf.b_tune --dataset default --preset cpu [--variant dpo|sft] [--pairs-suffix _random]

``llamafactory-cli export llamafactory_configs/a_merge.yaml`` folds the A-Tuning
adapter into the backbone (``saves/<dataset>/<preset>/a_merged``); B-Tuning
trains a new adapter on it, so DPO's frozen reference is the A-tuned model.
``--variant sft`` is the "w/o DPO" ablation (SFT on the same samples).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .cache import code_files, run_stage
from .convert import DATASET_INFO, REPO_ROOT
from .lf_run import CONFIG_DIR, run_llamafactory
from .presets import get_preset

logger = logging.getLogger(__name__)

MERGE_CONFIG = CONFIG_DIR / "a_merge.yaml"
VARIANTS = {"dpo": (CONFIG_DIR / "b_tune.yaml", "pairs"), "sft": (CONFIG_DIR / "b_tune_sft.yaml", "selected_sft")}


def merge_adapter(model: str, adapter: Path, template: str, out: Path) -> Path:
    """The backbone with ``adapter`` merged in (cached)."""
    overrides = {"model_name_or_path": model, "adapter_name_or_path": str(adapter), "template": template}
    inputs = {"model": Path(model), "adapter": adapter / "adapter_model.safetensors", "config": MERGE_CONFIG}
    run_stage("a_merge", out, inputs, overrides, lambda tmp: run_llamafactory(MERGE_CONFIG, overrides, tmp, command="export"))
    return out


def b_tune(
    dataset: str = "default",
    preset: str = "cpu",
    variant: str = "dpo",
    pairs_suffix: str = "",
    adapter: Path | None = None,
    model: str | None = None,
    run_dir: Path | None = None,
    dataset_info: Path = DATASET_INFO,
    data_root: Path = REPO_ROOT / "data",
    seed: int = 42,
    extra: dict | None = None,
    from_base: bool = False,
) -> Path:
    """Train the B-Tuning adapter; ``adapter=None`` uses the preset's A-Tuning output.

    Outputs go to ``run_dir`` (default ``saves/<dataset>/<preset>``). Returns the
    adapter folder; evaluate it on top of ``<run_dir>/a_merged``. ``from_base``
    trains on the backbone itself (the "w/o A-Tuning" ablation).
    """
    sizes = get_preset(preset)
    model = model or sizes.model
    run_dir = Path(run_dir or REPO_ROOT / "saves" / dataset / preset)
    adapter = Path(adapter or run_dir / "a_tune")
    config, kind = VARIANTS[variant]
    merged = Path(model) if from_base else merge_adapter(model, adapter, sizes.template, run_dir / "a_merged")
    out = run_dir / f"b_tune{'' if variant == 'dpo' else '_' + variant}{pairs_suffix}"
    train_set = f"{dataset}_{kind}{pairs_suffix}"
    overrides = {
        "model_name_or_path": str(merged),
        "template": sizes.template,
        "dataset_dir": str(dataset_info.parent),
        "dataset": train_set,
        "cutoff_len": sizes.cutoff_len,
        "num_train_epochs": sizes.b_num_train_epochs,
        **({"max_samples": sizes.b_max_samples} if sizes.b_max_samples else {}),
        "seed": seed,
        **sizes.llamafactory_overrides,
        **sizes.b_tune_args,
        **(extra or {}),
    }
    inputs = {
        "merged": merged if from_base else merged / "manifest.json",
        "train_set": data_root / dataset / f"{kind}{pairs_suffix}.jsonl",
        "config": config,
    } | code_files("b_tune", "lf_run")
    run_stage(f"b_tune:{variant}", out, inputs, overrides, lambda tmp: run_llamafactory(config, overrides, tmp))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="dpo", help="sft = the w/o DPO ablation")
    parser.add_argument("--pairs-suffix", default="", help="selection variant, e.g. _random or _topk (see select)")
    parser.add_argument("--adapter", type=Path, help="A-Tuning adapter (default: saves/<dataset>/<preset>/a_tune)")
    parser.add_argument("--model", help="base model folder (default: the preset's)")
    parser.add_argument("--run-dir", type=Path, help="default: saves/<dataset>/<preset>")
    parser.add_argument("--merge-only", action="store_true", help="only merge the A-Tuning adapter (make select does)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.merge_only:
        sizes = get_preset(args.preset)
        run_dir = args.run_dir or REPO_ROOT / "saves" / args.dataset / args.preset
        print(merge_adapter(args.model or sizes.model, args.adapter or run_dir / "a_tune", sizes.template, run_dir / "a_merged"))
        return
    print(b_tune(args.dataset, args.preset, args.variant, args.pairs_suffix, args.adapter, args.model, args.run_dir))


if __name__ == "__main__":
    main()
