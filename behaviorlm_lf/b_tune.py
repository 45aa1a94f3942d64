"""B-Tuning: merge the first-stage adapter, then LoRA-DPO on the selected pairs (section 3.3).

    behaviorlm merge  [--dataset default] [--preset cpu] [--first-stage anchor_train]
    behaviorlm b-tune [--dataset default] [--preset cpu] [--variant dpo|sft] [--strategy dds|random|topk] [--per-class F]

``merge`` folds the first-stage adapter into the backbone (``llamafactory-cli
export``, ``a_merged/``); B-Tuning trains a new adapter on it, so DPO's frozen
reference (the model with the new adapter disabled) is the A-tuned model. The
selection flags pick which pairs it trains on, the ones ``select`` wrote with the
same flags. ``--variant sft`` is the "w/o DPO" ablation (SFT on the same samples).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .cache import run_stage
from .errors import MissingStageError, user_errors_exit
from .hardware import model_training_settings
from .hparams import BTuneArguments, FirstStageArguments, RunArguments, SelectArguments, parse
from .lf_run import CONFIG_DIR, run_llamafactory

logger = logging.getLogger(__name__)

MERGE_CONFIG = CONFIG_DIR / "a_merge.yaml"
VARIANTS = {"dpo": (CONFIG_DIR / "b_tune.yaml", "pairs"), "sft": (CONFIG_DIR / "b_tune_sft.yaml", "selected_sft")}


def merge(run: RunArguments, first: FirstStageArguments) -> Path:
    """The backbone with the first-stage adapter merged in (cached)."""
    layout = run.layout()
    adapter = run.first_stage_adapter(first.first_stage)
    model = run.model_dir()
    out = layout.merged_dir(first.first_stage)
    overrides = {"model_name_or_path": model, "adapter_name_or_path": adapter, "template": run.chat_template()}
    inputs = {"model": Path(model), "adapter": adapter / "adapter_model.safetensors", "config": MERGE_CONFIG}
    run_stage(
        "merge", out, inputs, {k: str(v) for k, v in overrides.items()},
        lambda tmp: run_llamafactory(MERGE_CONFIG, overrides, tmp, command="export", final_dir=out), code=__name__,
    )
    return out


def b_tune(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, hp: BTuneArguments) -> Path:
    """Train the B-Tuning adapter on the merged first-stage model; returns the adapter folder."""
    layout = run.layout()
    config, kind = VARIANTS[hp.variant]
    suffix = sel.suffix()
    train_set = layout.selected_set(first.first_stage, suffix, kind)
    if not layout.set_file(train_set).is_file():
        raise MissingStageError(
            f"the selection{suffix or ''}", layout.set_file(train_set),
            f"behaviorlm select --dataset {run.dataset} --preset {run.preset} --first-stage {first.first_stage} "
            f"--strategy {sel.strategy} --per-class {sel.per_class} --confusion {sel.confusion}",
        )
    merged = merge(run, first)
    out = layout.b_tune_dir(first.first_stage, suffix, hp.variant)
    overrides = {
        "model_name_or_path": merged,
        "template": run.chat_template(),
        "dataset_dir": layout.data_root,
        "dataset": layout.set_registry_name(train_set),
        "seed": run.seed,
        **model_training_settings(merged),
        **hp.overrides(),
    }
    inputs = {"merged": merged / "manifest.json", "train_set": layout.set_file(train_set), "config": config}
    run_stage(
        f"b_tune:{hp.variant}{suffix}", out, inputs, {k: str(v) for k, v in overrides.items()},
        lambda tmp: run_llamafactory(config, overrides, tmp, final_dir=out), code=__name__,
    )
    return out


@user_errors_exit
def merge_main(argv: list[str] | None = None) -> None:
    run, first = parse((RunArguments, FirstStageArguments), argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(merge(run, first))


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    run, first, sel, hp = parse((RunArguments, FirstStageArguments, SelectArguments, BTuneArguments), argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(b_tune(run, first, sel, hp))


if __name__ == "__main__":
    main()
