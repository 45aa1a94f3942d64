"""The first stage: A-Tuning, LoRA SFT on anchor-labelled samples mixed with a general corpus (section 3.2).

    behaviorlm a-tune [--dataset default] [--preset cpu] [--epsilon 0.05] [--aux FILE]
    behaviorlm a-tune --first-stage all_train --epsilon 0       # full fine-tuning (TALLRec-style row)

The auxiliary subset (epsilon x the number of behavior samples, drawn after
dropping conversations longer than the longest behavior sample) is written
beside the data set and registered. ``--first-stage`` trains on another set
with the same LoRA budget: ``all_train`` (every behavior: the full fine-tuning
baseline, and the first stage of "w/o A-Tuning") or ``tail_train`` (medium and
tail behaviors: Fig. 5's reversed curriculum).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..data.aux_corpus import BUILTIN_CORPUS, load_corpus, select_aux
from ..data.lengths import check_if_unchecked, training_cutoff
from ..extras.cache import run_stage
from ..extras.fileio import read_jsonl, write_jsonl
from ..extras.hardware import model_training_settings
from ..extras.layout import RunLayout
from ..hparams import ATuneArguments, FirstStageArguments, RunArguments
from ..lf.registry import AUX_COLUMNS, entry, register
from ..lf.run import CONFIG_DIR, run_llamafactory
from ..lf.template import chat_template

logger = logging.getLogger(__name__)

A_TUNE_CONFIG = CONFIG_DIR / "a_tune.yaml"


def prepare_aux(layout: RunLayout, first: FirstStageArguments, model: str, train_set: str) -> tuple[str | None, dict]:
    """Draw and register the auxiliary subset for ``train_set``; return its registry name (None for epsilon 0) and stats."""
    from transformers import AutoTokenizer

    behavior = read_jsonl(layout.set_file(train_set))  # epsilon is relative to the behavior samples
    tokenizer = AutoTokenizer.from_pretrained(model)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    longest = max(count_tokens(r["instruction"] + r["output"]) for r in behavior)
    corpus = str(first.aux or BUILTIN_CORPUS)
    records = load_corpus(first.aux)
    selected, stats = select_aux(
        records, len(behavior), first.epsilon, longest, count_tokens, layout.seed, first.allow_smaller_epsilon, corpus
    )
    stats |= {"corpus": corpus, "max_tokens": longest, "behavior_samples": len(behavior)}
    logger.info("auxiliary corpus: %s", stats)
    if not selected:
        return None, stats
    set_name = f"aux_{train_set}_eps{first.epsilon:g}"
    path = layout.set_file(set_name)
    write_jsonl(path, selected)
    name = layout.set_registry_name(set_name)
    register({name: entry(path, layout.registry, columns=AUX_COLUMNS)}, layout.registry)
    return name, stats


def a_tune(run: RunArguments, first: FirstStageArguments, hp: ATuneArguments, train_set: str | None = None) -> Path:
    """Train the first-stage adapter into its run folder (cached); returns the folder.

    ``train_set`` trains on another set of the data folder in the first stage's
    place (the learning curve's nested subsets).
    """
    layout = run.layout()
    train_set = train_set or first.first_stage
    layout.require_data(layout.set_file(train_set))
    model = run.layout().model_dir()
    check_if_unchecked(layout, (train_set, "valid"), model, training_cutoff(hp.cutoff_len))
    out = layout.first_stage_dir(first.first_stage)
    aux_name, aux_stats = prepare_aux(layout, first, model, train_set)
    overrides = {
        "model_name_or_path": model,
        "template": chat_template(run.layout()),
        "dataset_dir": layout.dataset_dir,
        "dataset": [layout.set_registry_name(train_set)] + ([aux_name] if aux_name else []),
        "eval_dataset": layout.set_registry_name("valid"),
        "seed": run.seed,
        **model_training_settings(model),
        **hp.overrides(),
    }
    inputs = {
        "train_set": layout.set_file(train_set),
        "valid": layout.set_file("valid"),
        "model": Path(model),
        "config": A_TUNE_CONFIG,
    }
    if aux_name:
        inputs["aux"] = layout.set_file(f"aux_{train_set}_eps{first.epsilon:g}")
    config = {"overrides": {k: str(v) for k, v in overrides.items()}, "epsilon": first.epsilon}

    def build(tmp: Path) -> dict:
        return {"aux": aux_stats, **run_llamafactory(A_TUNE_CONFIG, overrides, tmp, final_dir=out)}

    run_stage(f"first_stage:{first.first_stage}", out, inputs, config, build, code=__name__)
    return out


