"""Evaluate a model on the natural and balanced test sets with the paper's metrics.

    python -m behaviorlm_lf.eval --dataset default --preset cpu --run b_tune     # base | a_tune | b_tune
    python -m behaviorlm_lf.eval --model path/to/model [--adapter path/to/lora] --name mine
    python -m behaviorlm_lf.eval --run a_tune --generate                          # free decoding, as the paper

Predictions come from the exact candidate scorer (constrained to the candidate
set). ``--generate`` decodes freely with LlamaFactory (``predict.yaml``) and
matches each text to a candidate: exact match after trimming case and final
punctuation, else the longest candidate named in the text, else no match
(counted, and always wrong). Reports go to
``reports/<dataset>/<preset>/<name>/`` (see ``behaviorlm_lf.metrics.write_report``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .cache import code_files, run_stage
from .convert import DATASET_INFO, REPO_ROOT
from .fileio import read_jsonl
from .lf_run import CONFIG_DIR, run_llamafactory
from .metrics import write_report
from .predict import resolve_run
from .presets import get_preset

logger = logging.getLogger(__name__)

TEST_SETS = {"natural": "test_natural", "balanced": "test_balanced"}
PREDICT_CONFIG = CONFIG_DIR / "predict.yaml"
NO_MATCH = "(no match)"


def match_candidate(text: str, candidates: list[str]) -> str:
    """The candidate a generated answer names, or NO_MATCH."""
    cleaned = text.strip().strip(".!\"' ").lower()
    by_name = {c.lower(): c for c in candidates}
    if cleaned in by_name:
        return by_name[cleaned]
    named = [c for c in candidates if re.search(rf"(?<!\w){re.escape(c.lower())}(?!\w)", cleaned)]
    return max(named, key=len) if named else NO_MATCH


def generated_scores(
    dataset: str, set_name: str, model: str, adapter: Path | None, template: str, candidates: list[str], work: Path, dataset_info: Path
) -> tuple[np.ndarray, float]:
    """One-hot scores over candidates + NO_MATCH from LlamaFactory's free generation, and the no-match rate."""
    overrides = {
        "model_name_or_path": model,
        "template": template,
        "dataset_dir": str(dataset_info.parent),
        "eval_dataset": f"{dataset}_{set_name}",
    } | ({"adapter_name_or_path": str(adapter)} if adapter else {})
    run_llamafactory(PREDICT_CONFIG, overrides, work)
    texts = [row["predict"] for row in read_jsonl(work / "generated_predictions.jsonl")]
    matched = [match_candidate(t, candidates) for t in texts]
    columns = candidates + [NO_MATCH]
    scores = np.zeros((len(texts), len(columns)))
    scores[np.arange(len(texts)), [columns.index(m) for m in matched]] = 1.0
    return scores, float(np.mean([m == NO_MATCH for m in matched]))


def evaluate_model(
    dataset: str = "default",
    preset: str = "cpu",
    run: str | None = "b_tune",
    model: str | None = None,
    adapter: Path | None = None,
    name: str | None = None,
    generate: bool = False,
    run_dir: Path | None = None,
    reports: Path = REPO_ROOT / "reports",
    data_root: Path = REPO_ROOT / "data",
    dataset_info: Path = DATASET_INFO,
) -> Path:
    """Score both test sets and write the report; returns its folder (cached on model, adapter and data)."""
    sizes = get_preset(preset)
    if model is None:
        model, adapter = resolve_run(run, dataset, preset, run_dir)
    name = (name or run or Path(model).name) + ("_generate" if generate else "")
    out = reports / dataset / preset / name
    data_dir = data_root / dataset
    inputs = {f"set:{s}": data_dir / f"{s}.jsonl" for s in TEST_SETS.values()}
    inputs |= {"behaviors": data_dir / "behaviors.json", "model": Path(model)} | code_files("eval", "metrics", "scorer")
    if adapter is not None:
        inputs["adapter"] = Path(adapter) / "adapter_model.safetensors"

    def build(tmp: Path) -> dict:
        vocabulary = json.loads((data_dir / "behaviors.json").read_text(encoding="utf-8"))
        candidates, behaviors = vocabulary["candidates"], vocabulary["behaviors"]
        records = {key: read_jsonl(data_dir / f"{s}.jsonl") for key, s in TEST_SETS.items()}
        extra = {"model": str(model), "adapter": str(adapter) if adapter else None, "mode": "generate" if generate else "scorer"}
        if generate:
            columns = candidates + [NO_MATCH]
            behaviors = behaviors + [{"name": NO_MATCH, "group": "none", "report_group": "none"}]
            scores = {}
            with tempfile.TemporaryDirectory(prefix="generate_") as work:  # LlamaFactory's prediction folders
                for key, set_name in TEST_SETS.items():
                    scores[key], extra[f"{key}_no_match_rate"] = generated_scores(
                        dataset, set_name, model, adapter, sizes.template, candidates, Path(work) / key, dataset_info
                    )
        else:
            from .scorer import CandidateScorer

            columns = candidates
            scorer = CandidateScorer(model, adapter_dir=adapter, template=sizes.template)
            scores = {key: scorer.score([r["instruction"] for r in rows], candidates).probs for key, rows in records.items()}
        labels = {key: [r["output"] for r in rows] for key, rows in records.items()}
        metrics = write_report(
            tmp, name, (labels["natural"], scores["natural"]), (labels["balanced"], scores["balanced"]),
            columns, behaviors, extra,
        )
        return {k: metrics[k] for k in ("prec_w", "rec_w", "overall", "head", "medium", "tail")}

    run_stage(f"eval:{name}", out, inputs, {"generate": generate, "template": sizes.template}, build)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--run", default="b_tune", help="base, a_tune or b_tune of the pipeline")
    parser.add_argument("--model", help="any Hugging Face model folder instead of a pipeline run")
    parser.add_argument("--adapter", type=Path, help="LoRA adapter for --model")
    parser.add_argument("--name", help="report name (default: the run or the model folder's name)")
    parser.add_argument("--generate", action="store_true", help="free decoding matched to candidates, as the paper")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = evaluate_model(args.dataset, args.preset, None if args.model else args.run, args.model, args.adapter, args.name, args.generate)
    metrics = json.loads((out / "metrics.json").read_text())
    print(out)
    print("  ".join(f"{k}={metrics[k]:.4f}" if metrics[k] is not None else f"{k}=n/a" for k in ("prec_w", "rec_w", "overall", "head", "medium", "tail")))


if __name__ == "__main__":
    main()
