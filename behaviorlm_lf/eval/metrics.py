"""Metrics of next-behavior prediction, shared by the LLM evaluation and the baselines.

Every method hands over a score matrix ``[N, C]`` over the candidate list (the
probabilities of the candidates; its row-wise argmax, first on ties, is the
prediction) so that all methods are measured by the same code:

* natural test set: weighted precision and recall, Prec_w and Rec_w, over the
  classes present in the set (scikit-learn, ``average="weighted"``). Weighting
  by support makes Rec_w equal to accuracy (Hit@1).
* balanced test set: Overall, the mean per-class accuracy (recall) over the
  classes present, and Head, Medium, Tail, the same mean within each report
  group of ``behaviors.json`` (NaN where a group has no class present).
* both sets: Hit@k, the share of samples whose label is among the k best scores.

Every paper metric comes with a 95% bootstrap interval (:func:`bootstrap_replicates`):
the natural set is resampled as a whole, the balanced set within each class (its
design: a fixed number of samples per class). The resampled indexes depend only
on the test set and the seed, so two models scored on the same set share them
and the difference of their replicates is a paired interval
(:func:`paired_difference`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..extras.fileio import atomic_output

logger = logging.getLogger(__name__)

KS = (1, 3, 5)
REPORT_GROUPS = ("head", "medium", "tail")
PAPER_METRICS = ("prec_w", "rec_w", "overall", "head", "medium", "tail")
BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0


def label_indexes(labels: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
    """Index of every label in ``candidates``; an unknown label is an error, not a silent miss."""
    position = {name: i for i, name in enumerate(candidates)}
    unknown = sorted({label for label in labels if label not in position})
    if unknown:
        raise ValueError(f"labels not in the candidate list: {unknown}")
    return np.array([position[label] for label in labels], dtype=np.int64)


def top_k_indexes(scores: np.ndarray, k: int) -> np.ndarray:
    """``[N, k]`` candidate indexes by decreasing score; ties go to the lower index, as argmax does."""
    return np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]


def top_k_hits(scores: np.ndarray, label_index: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """``{"hit@k": share of rows whose label is among the k best scores}``."""
    ranked = top_k_indexes(scores, max(ks))
    hits = ranked == label_index[:, None]
    return {f"hit@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}


def weighted_precision_recall(y_true: Sequence[str], y_pred: Sequence[str]) -> tuple[float, float]:
    """(Prec_w, Rec_w) over the classes present in ``y_true``; a class never predicted has precision 0."""
    present = sorted(set(y_true))
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=present, average="weighted", zero_division=0
    )
    return float(precision), float(recall)


def confusion_frame(y_true: Sequence[str], y_pred: Sequence[str], candidates: Sequence[str]) -> pd.DataFrame:
    """Counts with true labels as rows and predictions as columns, over every candidate."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(candidates))
    return pd.DataFrame(
        matrix, index=pd.Index(candidates, name="true/predicted"), columns=pd.Index(candidates, name="predicted")
    )


def per_class_table(
    y_true: Sequence[str], y_pred: Sequence[str], candidates: Sequence[str], behaviors: Sequence[dict]
) -> pd.DataFrame:
    """One row per candidate: groups, support, correct, predicted, accuracy (recall) and precision.

    Accuracy is NaN for a class absent from the set, precision NaN for a class
    never predicted: both are undefined there, not zero.
    """
    matrix = confusion_frame(y_true, y_pred, candidates).to_numpy()
    support, predicted, correct = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    groups = {b["name"]: b for b in behaviors}
    missing = [name for name in candidates if name not in groups]
    if missing:
        raise ValueError(f"candidates without an entry in behaviors: {missing}")
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(support > 0, correct / support, np.nan)
        precision = np.where(predicted > 0, correct / predicted, np.nan)
    return pd.DataFrame(
        {
            "name": list(candidates),
            "group": [groups[name]["group"] for name in candidates],
            "report_group": [groups[name]["report_group"] for name in candidates],
            "support": support,
            "correct": correct,
            "predicted": predicted,
            "accuracy": accuracy,
            "precision": precision,
        }
    )


def group_accuracies(table: pd.DataFrame) -> dict[str, float]:
    """Overall and per-report-group mean accuracy over the classes present (support > 0)."""
    present = table[table["support"] > 0]
    result = {"overall": float(present["accuracy"].mean())}
    for group in REPORT_GROUPS:
        in_group = present.loc[present["report_group"] == group, "accuracy"]
        result[group] = float(in_group.mean()) if len(in_group) else math.nan
    return result


def _check_scores(y_true: Sequence[str], scores: np.ndarray, candidates: Sequence[str]) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    if scores.shape != (len(y_true), len(candidates)):
        raise ValueError(
            f"scores have shape {scores.shape}, expected {(len(y_true), len(candidates))} (samples, candidates)"
        )
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or infinite values")
    return scores


def compute_metrics(
    y_true: Sequence[str], scores: np.ndarray, candidates: Sequence[str], behaviors: Sequence[dict], balanced: bool
) -> dict[str, float]:
    """The metrics of one test set: Prec_w and Rec_w (natural) or Overall/Head/Medium/Tail (balanced), plus Hit@k."""
    scores = _check_scores(y_true, scores, candidates)
    label_index = label_indexes(y_true, candidates)
    y_pred = list(np.asarray(candidates, dtype=object)[top_k_indexes(scores, 1)[:, 0]])
    result: dict[str, float] = {"n": len(y_true)}
    if balanced:
        result |= group_accuracies(per_class_table(y_true, y_pred, candidates, behaviors))
    else:
        result["prec_w"], result["rec_w"] = weighted_precision_recall(y_true, y_pred)
    return result | top_k_hits(scores, label_index)


def bootstrap_replicates(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    candidates: Sequence[str],
    behaviors: Sequence[dict],
    balanced: bool,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, np.ndarray]:
    """The set's paper metrics recomputed on ``replicates`` resamples: ``{metric: array [replicates]}``.

    Natural set: Prec_w and Rec_w on samples drawn with replacement from the whole set.
    Balanced set: Overall and Head/Medium/Tail from per-class accuracies, each class's
    samples drawn with replacement from that class (a group with no class gives NaN).
    """
    rng = np.random.default_rng(seed)
    labels = label_indexes(y_true, candidates)
    correct = labels == label_indexes(y_pred, candidates)
    if not balanced:
        predicted = label_indexes(y_pred, candidates)
        draws = rng.integers(0, len(labels), size=(replicates, len(labels)))
        found = {"prec_w": np.empty(replicates), "rec_w": np.empty(replicates)}
        for r, rows in enumerate(draws):
            found["prec_w"][r], found["rec_w"][r] = _weighted_precision_recall_codes(labels[rows], predicted[rows])
        return found
    group_of = {b["name"]: b["report_group"] for b in behaviors}
    classes = np.unique(labels)
    accuracy = np.empty((replicates, len(classes)))
    for k, c in enumerate(classes):
        hits = correct[labels == c]
        accuracy[:, k] = hits[rng.integers(0, len(hits), size=(replicates, len(hits)))].mean(axis=1)
    groups = np.array([group_of[candidates[c]] for c in classes])
    found = {"overall": accuracy.mean(axis=1)}
    for group in REPORT_GROUPS:
        found[group] = accuracy[:, groups == group].mean(axis=1) if (groups == group).any() else np.full(replicates, math.nan)
    return found


def _weighted_precision_recall_codes(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Prec_w and Rec_w (as :func:`weighted_precision_recall`) on integer codes, fast enough for a bootstrap."""
    present, support = np.unique(labels, return_counts=True)
    hits = np.bincount(labels[labels == predicted], minlength=labels.max() + 1)[present]
    predicted_count = np.bincount(predicted, minlength=max(labels.max(), predicted.max()) + 1)[present]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted_count > 0, hits / predicted_count, 0.0)
    weight = support / support.sum()
    return float((precision * weight).sum()), float((hits / support * weight).sum())


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN when the metric is undefined)."""
    if np.isnan(replicates).all():
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and percentile interval of ``a - b`` over the replicates of two models on the same resamples."""
    diff = np.asarray(a) - np.asarray(b)
    return (float(np.mean(diff)), *interval(diff, level))


def predictions_frame(y_true: Sequence[str], scores: np.ndarray, candidates: Sequence[str]) -> pd.DataFrame:
    """Per sample: its index in the set, label, prediction, the score (probability) of the label, and the top 3."""
    scores = _check_scores(y_true, scores, candidates)
    names = np.asarray(candidates, dtype=object)
    top3 = names[top_k_indexes(scores, 3)]
    return pd.DataFrame(
        {
            "index": np.arange(len(y_true)),
            "label": list(y_true),
            "prediction": top3[:, 0],
            "p_label": scores[np.arange(len(y_true)), label_indexes(y_true, candidates)],
            "top3": ["|".join(row) for row in top3],
        }
    )


def _json_ready(value: Any) -> Any:
    """Plain Python values for JSON; NaN and infinities become null."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(
    out_dir: Path,
    method: str,
    natural: tuple[Sequence[str], np.ndarray] | None,
    balanced: tuple[Sequence[str], np.ndarray] | None,
    candidates: Sequence[str],
    behaviors: Sequence[dict],
    extra: dict | None = None,
) -> dict:
    """Evaluate the given sets and write the report folder atomically; returns what ``metrics.json`` holds.

    Writes ``metrics.json`` (the six paper metrics at the top level, null for a
    set not given, each with its 95% bootstrap interval as ``<metric>_lo`` and
    ``<metric>_hi``; ``<set>_n`` and ``<set>_hit@k``; ``extra``), ``bootstrap.npz``
    (the replicates, for paired comparisons between models), ``per_class.csv``
    (balanced set if given, else natural), and per set ``confusion_<set>.csv``
    and ``predictions_<set>.csv``.
    """
    sets = {name: given for name, given in (("natural", natural), ("balanced", balanced)) if given is not None}
    if not sets:
        raise ValueError("write_report needs the natural or the balanced test set")
    metrics: dict[str, Any] = {"method": method} | dict.fromkeys(PAPER_METRICS)
    predictions, replicates = {}, {}
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for name, (y_true, scores) in sets.items():
            found = compute_metrics(y_true, scores, candidates, behaviors, balanced=name == "balanced")
            for key, value in found.items():
                metrics[key if key in PAPER_METRICS else f"{name}_{key}"] = value
            predictions[name] = predictions_frame(y_true, scores, candidates)
            predictions[name].to_csv(tmp / f"predictions_{name}.csv", index=False)
            replicates |= bootstrap_replicates(y_true, predictions[name]["prediction"], candidates, behaviors, name == "balanced")
            confusion_frame(y_true, predictions[name]["prediction"], candidates).to_csv(tmp / f"confusion_{name}.csv")
        for metric, values in replicates.items():
            metrics[f"{metric}_lo"], metrics[f"{metric}_hi"] = interval(values)
        np.savez(tmp / "bootstrap.npz", **replicates)
        table_set = "balanced" if "balanced" in sets else "natural"
        table = per_class_table(sets[table_set][0], predictions[table_set]["prediction"], candidates, behaviors)
        table.to_csv(tmp / "per_class.csv", index=False)
        metrics["per_class_set"] = table_set
        metrics["extra"] = extra or {}
        metrics = _json_ready(metrics)
        text = json.dumps(metrics, indent=2, ensure_ascii=False, allow_nan=False)
        (tmp / "metrics.json").write_text(text + "\n", encoding="utf-8")
    logger.info("wrote %s: %s", out_dir, {k: metrics[k] for k in PAPER_METRICS})
    return metrics
