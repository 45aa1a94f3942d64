"""Evaluate a model on the natural and balanced test sets with the paper's metrics.

    behaviorlm eval [--dataset default] [--preset cpu] --run b_tune     # base | a_tune | b_tune of the run
    behaviorlm eval --model path/to/model [--adapter path/to/lora] --name mine
    behaviorlm eval --run a_tune --generate                              # free decoding, as the paper

Predictions come from the exact candidate scorer (constrained to the candidate
set). ``--generate`` decodes freely with LlamaFactory (``predict.yaml``) and
matches each text to a candidate: exact match after trimming case, spaces and
final punctuation on both sides, else the longest candidate named in the text,
else no match (counted, and always wrong). Reports go to
``reports/<data>/<preset>/<name>/`` (see ``behaviorlm_lf.eval.metrics.write_report``).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path

import numpy as np

from ..extras.cache import run_stage
from ..extras.fileio import read_jsonl
from ..extras.layout import TEST_SETS
from ..hparams import BTuneArguments, EvalArguments, FirstStageArguments, RunArguments, SelectArguments
from ..lf.run import CONFIG_DIR, run_llamafactory
from ..lf.template import chat_template
from .metrics import PAPER_METRICS, write_report

logger = logging.getLogger(__name__)

# What B-Tuning chooses its epoch on (its Overall, Head, Medium, Tail), for a model's validation report.
VALIDATION_SETS = {"balanced": "valid_balanced"}
PREDICT_CONFIG = CONFIG_DIR / "predict.yaml"
NO_MATCH = "(no match)"
FINAL_PUNCTUATION = ".!?\"' "


def match_candidate(text: str, candidates: list[str]) -> str:
    """The candidate a generated answer names, or NO_MATCH."""
    cleaned = text.strip().strip(FINAL_PUNCTUATION).lower()
    by_name = {c.strip(FINAL_PUNCTUATION).lower(): c for c in candidates}
    if cleaned in by_name:
        return by_name[cleaned]
    named = [c for c in candidates if re.search(rf"(?<!\w){re.escape(c.strip(FINAL_PUNCTUATION).lower())}(?!\w)", cleaned)]
    return max(named, key=len) if named else NO_MATCH


def generated_scores(
    run: RunArguments, set_name: str, model: str, adapter: Path | None, candidates: list[str], work: Path
) -> tuple[np.ndarray, float]:
    """One-hot scores over candidates + NO_MATCH from LlamaFactory's free generation, and the no-match rate."""
    layout = run.layout()
    overrides = {
        "model_name_or_path": model,
        "template": chat_template(run.layout()),
        "dataset_dir": layout.dataset_dir,
        "eval_dataset": layout.set_registry_name(set_name),
    } | ({"adapter_name_or_path": adapter} if adapter else {})
    run_llamafactory(PREDICT_CONFIG, overrides, work)
    texts = [row["predict"] for row in read_jsonl(work / "generated_predictions.jsonl")]
    matched = [match_candidate(t, candidates) for t in texts]
    columns = candidates + [NO_MATCH]
    scores = np.zeros((len(texts), len(columns)))
    scores[np.arange(len(texts)), [columns.index(m) for m in matched]] = 1.0
    return scores, float(np.mean([m == NO_MATCH for m in matched]))


def evaluate(
    run: RunArguments, model: str, adapter: Path | None, name: str, generate: bool = False, sets: dict[str, str] = TEST_SETS
) -> Path:
    """Score ``sets`` (the two test sets; or ``VALIDATION_SETS``) with ``model`` (+ ``adapter``) and write the report
    ``name``; returns its folder (cached)."""
    layout = run.layout()
    name = name + ("_generate" if generate else "")
    out = layout.report_dir(name)
    inputs = {f"set:{s}": layout.set_file(s) for s in sets.values()} | {"behaviors": layout.behaviors_file, "model": Path(model)}
    if adapter is not None:
        inputs["adapter"] = Path(adapter) / "adapter_model.safetensors"
    if generate:
        inputs["predict_config"] = PREDICT_CONFIG

    def build(tmp: Path) -> dict:
        vocabulary = layout.vocabulary()
        candidates, behaviors = vocabulary["candidates"], vocabulary["behaviors"]
        records = {key: read_jsonl(layout.set_file(s)) for key, s in sets.items()}
        extra = {"model": str(model), "adapter": str(adapter) if adapter else None, "mode": "generate" if generate else "scorer"}
        if generate:
            columns = candidates + [NO_MATCH]
            behaviors = behaviors + [{"name": NO_MATCH, "group": "none", "report_group": "none"}]
            scores = {}
            with tempfile.TemporaryDirectory(prefix="generate_") as work:  # LlamaFactory's prediction folders
                for key, set_name in sets.items():
                    scores[key], extra[f"{key}_no_match_rate"] = generated_scores(run, set_name, model, adapter, candidates, Path(work) / key)
        else:
            from ..model.scorer import CandidateScorer

            columns = candidates
            scorer = CandidateScorer(model, adapter_dir=adapter, template=chat_template(run.layout()))
            scores = {key: scorer.score([r["instruction"] for r in rows], candidates).probs for key, rows in records.items()}
            extra["bf16"] = scorer.bf16
        given = {key: ([r["output"] for r in rows], scores[key]) for key, rows in records.items()}
        metrics = write_report(tmp, name, given.get("natural"), given.get("balanced"), columns, behaviors, extra)
        return {k: metrics[k] for k in PAPER_METRICS}

    run_stage(f"eval:{name}", out, inputs, {"generate": generate, "template": chat_template(run.layout())}, build, code=__name__)
    return out


def evaluate_run(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, hp: BTuneArguments, ev: EvalArguments) -> Path:
    """Evaluate ``--model``/``--adapter`` if given, else the run's model named by ``--run``."""
    model, adapter = run.layout().chosen_model(ev.run, ev.adapter, first.first_stage, sel.suffix(), hp.variant)
    default_name = Path(ev.adapter).name if ev.adapter is not None else ev.run if ev.run != "b_tune" else adapter.name
    return evaluate(run, model, adapter, ev.name or default_name, ev.generate)


def show_metrics(out: Path) -> str:
    """What `behaviorlm eval` prints: the report's folder and the six metrics."""
    metrics = json.loads((out / "metrics.json").read_text())
    return f"{out}\n" + "  ".join(f"{k}={metrics[k]:.4f}" if metrics[k] is not None else f"{k}=n/a" for k in PAPER_METRICS)
