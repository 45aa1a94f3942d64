"""Metrics against hand-computed cases: a class never predicted, a class absent from the set, group means, top-k."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from behaviorlm_lf.eval.metrics import (
    PAPER_METRICS,
    compute_metrics,
    confusion_frame,
    per_class_table,
    top_k_hits,
    weighted_precision_recall,
    write_report,
)

CANDIDATES = ["a", "b", "c", "d"]
BEHAVIORS = [
    {"name": "a", "group": "anchor", "report_group": "head"},
    {"name": "b", "group": "anchor", "report_group": "medium"},
    {"name": "c", "group": "tail", "report_group": "tail"},
    {"name": "d", "group": "tail", "report_group": "tail"},
]
# c is in the set but never predicted; d is predicted once but absent from the set.
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "d", "b", "a", "b"]
CONFUSION = [  # rows true a..d, columns predicted a..d
    [2, 0, 0, 1],
    [1, 1, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 0, 0],
]


def scores_for(predictions: list[str], second: list[str] | None = None) -> np.ndarray:
    """Probabilities whose argmax is ``predictions`` (and runner-up ``second``)."""
    scores = np.full((len(predictions), len(CANDIDATES)), 0.1)
    for row, name in enumerate(predictions):
        scores[row, CANDIDATES.index(name)] = 0.6
        if second is not None:
            scores[row, CANDIDATES.index(second[row])] = 0.2
    return scores / scores.sum(axis=1, keepdims=True)


def test_confusion_matrix_by_hand():
    frame = confusion_frame(Y_TRUE, Y_PRED, CANDIDATES)
    assert frame.to_numpy().tolist() == CONFUSION
    assert frame.index.tolist() == frame.columns.tolist() == CANDIDATES


def test_weighted_precision_and_recall_by_hand():
    precision, recall = weighted_precision_recall(Y_TRUE, Y_PRED)
    # per present class (a, b, c; support 3, 2, 1): precision 2/3, 1/2, 0 (never predicted); recall 2/3, 1/2, 0
    assert precision == pytest.approx((3 * 2 / 3 + 2 * 1 / 2 + 1 * 0) / 6)
    assert recall == pytest.approx(3 / 6)


def test_per_class_table_by_hand():
    table = per_class_table(Y_TRUE, Y_PRED, CANDIDATES, BEHAVIORS).set_index("name")
    assert table["support"].tolist() == [3, 2, 1, 0]
    assert table["correct"].tolist() == [2, 1, 0, 0]
    assert table["predicted"].tolist() == [3, 2, 0, 1]
    assert table.loc[["a", "b", "c"], "accuracy"].tolist() == pytest.approx([2 / 3, 1 / 2, 0.0])
    assert math.isnan(table.loc["d", "accuracy"])  # absent from the set: undefined, not 0
    assert table.loc[["a", "b", "d"], "precision"].tolist() == pytest.approx([2 / 3, 1 / 2, 0.0])
    assert math.isnan(table.loc["c", "precision"])  # never predicted
    assert table["report_group"].tolist() == ["head", "medium", "tail", "tail"]


def test_balanced_group_means_by_hand():
    result = compute_metrics(Y_TRUE, scores_for(Y_PRED), CANDIDATES, BEHAVIORS, balanced=True)
    assert result["overall"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert result["head"] == pytest.approx(2 / 3)
    assert result["medium"] == pytest.approx(1 / 2)
    assert result["tail"] == pytest.approx(0.0)  # c only: d is absent and does not count


def test_group_without_a_present_class_is_nan():
    result = compute_metrics(["a", "c", "c"], scores_for(["a", "c", "a"]), CANDIDATES, BEHAVIORS, balanced=True)
    assert math.isnan(result["medium"])
    assert result["overall"] == pytest.approx((1.0 + 0.5) / 2)
    assert result["tail"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_weighted_recall_is_accuracy_and_overall_is_balanced_accuracy(seed):
    rng = np.random.default_rng(seed)
    names = [f"class{i}" for i in range(12)]
    behaviors = [{"name": n, "group": "anchor", "report_group": "head"} for n in names]
    y_true = list(rng.choice(names, size=200, p=np.r_[0.5, np.full(11, 0.5 / 11)]))
    scores = rng.random((200, len(names)))
    y_pred = [names[i] for i in scores.argmax(axis=1)]
    natural = compute_metrics(y_true, scores, names, behaviors, balanced=False)
    assert natural["rec_w"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert natural["rec_w"] == pytest.approx(natural["hit@1"])
    with warnings.catch_warnings():  # sklearn warns when a predicted class is absent from y_true, as here it may be
        warnings.simplefilter("ignore", UserWarning)
        reference = balanced_accuracy_score(y_true, y_pred)
    balanced = compute_metrics(y_true, scores, names, behaviors, balanced=True)
    assert balanced["overall"] == pytest.approx(reference)


def test_top_k_by_hand():
    scores = np.array(
        [
            [0.4, 0.3, 0.2, 0.1],  # label a: rank 1
            [0.4, 0.3, 0.2, 0.1],  # label c: rank 3
            [0.1, 0.2, 0.3, 0.4],  # label a: rank 4
            [0.25, 0.25, 0.25, 0.25],  # label a, all tied: ties go to the lower index, rank 1
        ]
    )
    labels = np.array([0, 2, 0, 0])
    assert top_k_hits(scores, labels) == {"hit@1": 0.5, "hit@3": 0.75, "hit@5": 1.0}  # k = 5 > C covers all


def test_bad_scores_and_labels_are_refused():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(Y_TRUE, np.zeros((len(Y_TRUE), 3)), CANDIDATES, BEHAVIORS, balanced=False)
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(Y_TRUE, np.full((len(Y_TRUE), 4), np.nan), CANDIDATES, BEHAVIORS, balanced=False)
    with pytest.raises(ValueError, match="not in the candidate list"):
        compute_metrics(["a", "zebra"], np.zeros((2, 4)), CANDIDATES, BEHAVIORS, balanced=False)


def test_write_report_files_and_json(tmp_path):
    # runner-ups put every label but the last (c) in its top 3
    natural = (Y_TRUE, scores_for(Y_PRED, second=["b", "b", "a", "a", "b", "d"]))
    balanced = (["a", "c", "c"], scores_for(["a", "c", "a"]))
    out = tmp_path / "reports" / "toy"
    metrics = write_report(out, "toy", natural, balanced, CANDIDATES, BEHAVIORS, extra={"seed": np.int64(3)})
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "metrics.json",
            "bootstrap.npz",
            "per_class.csv",
            "confusion_natural.csv",
            "confusion_balanced.csv",
            "predictions_natural.csv",
            "predictions_balanced.csv",
        ]
    )
    stored = json.loads((out / "metrics.json").read_text())
    assert stored == metrics
    assert set(PAPER_METRICS) <= set(stored)
    assert stored["medium"] is None  # NaN -> null
    assert stored["rec_w"] == pytest.approx(0.5) and stored["overall"] == pytest.approx(0.75)
    assert stored["natural_hit@1"] == pytest.approx(0.5) and stored["natural_hit@3"] == pytest.approx(5 / 6)
    assert stored["extra"] == {"seed": 3}
    assert stored["rec_w_lo"] <= stored["rec_w"] <= stored["rec_w_hi"] and stored["medium_lo"] is None
    assert set(np.load(out / "bootstrap.npz").files) == set(PAPER_METRICS)
    confusion = pd.read_csv(out / "confusion_natural.csv", index_col=0)
    assert confusion.to_numpy().tolist() == CONFUSION
    predictions = pd.read_csv(out / "predictions_natural.csv")
    assert predictions.columns.tolist() == ["index", "label", "prediction", "p_label", "top3"]
    assert predictions["prediction"].tolist() == Y_PRED
    assert predictions["top3"].iloc[0] == "a|b|c"
    assert predictions["p_label"].tolist() == pytest.approx(natural[1][np.arange(6), [0, 0, 0, 1, 1, 2]])
    per_class = pd.read_csv(out / "per_class.csv")
    assert stored["per_class_set"] == "balanced" and per_class["support"].tolist() == [1, 0, 2, 0]


def test_write_report_natural_only_and_failure_keeps_previous(tmp_path):
    out = tmp_path / "report"
    metrics = write_report(out, "toy", (Y_TRUE, scores_for(Y_PRED)), None, CANDIDATES, BEHAVIORS)
    assert metrics["overall"] is None and metrics["prec_w"] == pytest.approx(0.5)
    assert not (out / "predictions_balanced.csv").exists()
    before = (out / "metrics.json").read_text()
    with pytest.raises(ValueError):
        write_report(out, "toy", (Y_TRUE, scores_for(Y_PRED)), (["a"], np.zeros((1, 2))), CANDIDATES, BEHAVIORS)
    assert (out / "metrics.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_bootstrap_interval_of_a_class_all_right_and_a_class_all_wrong_is_exact():
    """Within-class resampling cannot change a class whose samples all agree: Overall is 0.5 in every replicate."""
    from behaviorlm_lf.eval.metrics import bootstrap_replicates, interval

    reps = bootstrap_replicates(["a"] * 5 + ["c"] * 5, ["a"] * 5 + ["b"] * 5, CANDIDATES, BEHAVIORS, balanced=True)
    assert interval(reps["overall"]) == (0.5, 0.5)
    assert interval(reps["head"]) == (1.0, 1.0) and interval(reps["tail"]) == (0.0, 0.0)
    assert np.isnan(reps["medium"]).all() and all(math.isnan(x) for x in interval(reps["medium"]))


def test_bootstrap_interval_of_one_right_in_two_by_hand():
    """Two samples, one right: a resample has 0, 1 or 2 right with odds 1/4, 1/2, 1/4, so the 95% interval is [0, 1]."""
    from behaviorlm_lf.eval.metrics import bootstrap_replicates, interval

    reps = bootstrap_replicates(["a", "a"], ["a", "b"], CANDIDATES, BEHAVIORS, balanced=False, replicates=4000)
    assert interval(reps["rec_w"]) == (0.0, 1.0)
    assert np.mean(reps["rec_w"] == 0.5) == pytest.approx(0.5, abs=0.03)
    assert np.mean(reps["rec_w"] == 0.0) == pytest.approx(0.25, abs=0.03)


def test_bootstrap_interval_matches_the_binomial_width_and_the_point_metrics():
    from behaviorlm_lf.eval.metrics import bootstrap_replicates, interval

    rng = np.random.default_rng(1)
    y_true = list(rng.choice(CANDIDATES, size=400))
    y_pred = [y if rng.random() < 0.5 else "a" for y in y_true]
    reps = bootstrap_replicates(y_true, y_pred, CANDIDATES, BEHAVIORS, balanced=False)
    accuracy = np.mean(np.array(y_true) == np.array(y_pred))
    low, high = interval(reps["rec_w"])
    half = 1.96 * math.sqrt(accuracy * (1 - accuracy) / 400)  # the normal approximation of the binomial
    assert low == pytest.approx(accuracy - half, abs=0.015) and high == pytest.approx(accuracy + half, abs=0.015)
    # each replicate is the point metric of its resample: the mean sits on the point value
    precision, recall = weighted_precision_recall(y_true, y_pred)
    assert np.mean(reps["rec_w"]) == pytest.approx(recall, abs=0.01)
    assert np.mean(reps["prec_w"]) == pytest.approx(precision, abs=0.02)


def test_paired_difference_of_a_model_with_itself_is_zero_and_same_seed_pairs_the_resamples():
    from behaviorlm_lf.eval.metrics import bootstrap_replicates, paired_difference

    y_true = ["a", "b", "c", "a", "b", "c"] * 10
    better = list(y_true)
    worse = ["a"] * len(y_true)
    a = bootstrap_replicates(y_true, better, CANDIDATES, BEHAVIORS, balanced=True)["overall"]
    b = bootstrap_replicates(y_true, worse, CANDIDATES, BEHAVIORS, balanced=True)["overall"]
    assert paired_difference(a, a) == (0.0, 0.0, 0.0)
    mean, low, high = paired_difference(a, b)  # 1 - 1/3 in every replicate: a is always right, b only on class a
    assert mean == pytest.approx(2 / 3) and low == pytest.approx(2 / 3) and high == pytest.approx(2 / 3)
