"""A-Tuning: LoRA SFT on anchor-labelled samples mixed with a general corpus, via ``llamafactory-cli``.

    python -m behaviorlm_lf.a_tune --dataset default --preset cpu [--epsilon 0.05] [--aux FILE]

The auxiliary subset (epsilon x the number of anchor samples, drawn after
dropping conversations longer than the longest behavior sample) is written to
``data/<dataset>/aux_<train set>_eps<epsilon>.jsonl`` and registered beside the behavior
sets; a corpus too small for epsilon is an error unless ``--allow-smaller-epsilon``.
The adapter lands in ``saves/<dataset>/<preset>/a_tune/`` (or ``<--run-dir>/a_tune``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from .aux_corpus import BUILTIN_CORPUS, load_corpus, select_aux
from .cache import code_files, run_stage
from .convert import DATASET_INFO, REPO_ROOT, register, registry_path
from .fileio import atomic_output, read_jsonl
from .lf_run import CONFIG_DIR, run_llamafactory
from .presets import get_preset

logger = logging.getLogger(__name__)

A_TUNE_CONFIG = CONFIG_DIR / "a_tune.yaml"
AUX_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}


def prepare_aux(
    data_dir: Path,
    dataset: str,
    model: str,
    epsilon: float,
    aux_path: Path | None,
    seed: int,
    dataset_info: Path,
    train_set: str = "anchor_train",
    allow_smaller: bool = False,
) -> tuple[str | None, dict]:
    """Draw and register the auxiliary subset; return its registry name (None for epsilon 0) and stats."""
    from transformers import AutoTokenizer

    anchor = read_jsonl(data_dir / f"{train_set}.jsonl")  # epsilon is relative to the behavior samples trained on
    tokenizer = AutoTokenizer.from_pretrained(model)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    longest = max(count_tokens(r["instruction"] + r["output"]) for r in anchor)
    records = load_corpus(aux_path)
    corpus = str(aux_path or BUILTIN_CORPUS)
    selected, stats = select_aux(records, len(anchor), epsilon, longest, count_tokens, seed, allow_smaller, corpus)
    stats |= {"corpus": corpus, "max_tokens": longest, "anchor_samples": len(anchor)}
    logger.info("auxiliary corpus: %s", stats)
    if not selected:
        return None, stats
    name = f"{dataset}_aux_{train_set}_eps{epsilon:g}"
    path = data_dir / f"aux_{train_set}_eps{epsilon:g}.jsonl"
    with atomic_output(path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in selected), encoding="utf-8")
    register({name: {"file_name": registry_path(path, dataset_info), "columns": AUX_COLUMNS}}, dataset_info)
    return name, stats


def a_tune(
    dataset: str = "default",
    preset: str = "cpu",
    epsilon: float = 0.05,
    aux_path: Path | None = None,
    model: str | None = None,
    run_dir: Path | None = None,
    data_root: Path = REPO_ROOT / "data",
    dataset_info: Path = DATASET_INFO,
    seed: int = 42,
    train_set: str = "anchor_train",
    extra: dict | None = None,
    allow_smaller_epsilon: bool = False,
) -> Path:
    """Train the A-Tuning adapter into ``<run_dir>/a_tune``.

    ``train_set="all_train"`` (with the same LoRA budget) is the full fine-tuning
    baseline; ``model`` may be any folder, e.g. a merged model for a curriculum.
    """
    sizes = get_preset(preset)
    model = model or sizes.model
    data_dir = data_root / dataset
    out = Path(run_dir or REPO_ROOT / "saves" / dataset / preset) / "a_tune"
    aux_name, aux_stats = prepare_aux(
        data_dir, dataset, model, epsilon, aux_path, seed, dataset_info, train_set, allow_smaller_epsilon
    )
    overrides = {
        "model_name_or_path": model,
        "template": sizes.template,
        "dataset_dir": str(dataset_info.parent),
        "dataset": [f"{dataset}_{train_set}"] + ([aux_name] if aux_name else []),
        "eval_dataset": f"{dataset}_valid",
        "cutoff_len": sizes.cutoff_len,
        "num_train_epochs": sizes.num_train_epochs,
        "eval_steps": sizes.eval_steps,
        "save_steps": sizes.eval_steps,
        "seed": seed,
        **sizes.llamafactory_overrides,
        **sizes.a_tune_args,
        **(extra or {}),
    }
    inputs = {
        "train_set": data_dir / f"{train_set}.jsonl",
        "valid": data_dir / "valid.jsonl",
        "model": Path(model),
        "config": A_TUNE_CONFIG,
    } | code_files("a_tune", "aux_corpus", "lf_run")
    if aux_name:
        inputs["aux"] = data_dir / f"aux_{train_set}_eps{epsilon:g}.jsonl"

    def build(tmp: Path) -> dict:
        return {"aux": aux_stats, **run_llamafactory(A_TUNE_CONFIG, overrides, tmp)}

    run_stage("a_tune", out, inputs, {"overrides": overrides, "epsilon": epsilon}, build)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--epsilon", type=float, default=0.05, help="auxiliary examples per anchor sample; 0 = w/o aux")
    parser.add_argument("--aux", type=Path, help="alpaca or sharegpt file (default: the built-in corpus)")
    parser.add_argument("--allow-smaller-epsilon", action="store_true", help="take the whole corpus when it is too small for epsilon")
    parser.add_argument("--model", help="Hugging Face model folder (default: the preset's)")
    parser.add_argument("--run-dir", type=Path, help="default: saves/<dataset>/<preset>; the adapter goes to <run-dir>/a_tune")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(a_tune(args.dataset, args.preset, args.epsilon, args.aux, args.model, args.run_dir, allow_smaller_epsilon=args.allow_smaller_epsilon))


if __name__ == "__main__":
    main()
