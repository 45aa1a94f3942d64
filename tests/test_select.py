"""Difficulty, the confusion rule, and difficulty-weighted K-means++ selection on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behaviorlm_lf.train.pairs import rejected_candidates
from behaviorlm_lf.train.select import build_selection, difficulty, select_per_class

IS_ANCHOR = np.array([True, True, False, False])


@pytest.mark.parametrize(
    ("label", "pred", "p_true", "literal", "prose"),
    [
        (0, 1, 0.2, 0.5 * 0.8 + 0.0, 0.5 * 0.8 + 0.5),  # wrong, both anchors: within-group confusion, d = 0
        (2, 3, 0.1, 0.5 * 0.9 + 0.0, 0.5 * 0.9 + 0.5),  # wrong, both tail: d = 0
        (0, 2, 0.2, 0.5 * 0.8 + 0.5, 0.5 * 0.8 + 0.0),  # anchor predicted as tail: cross-group, d = 1
        (3, 1, 0.05, 0.5 * 0.95 + 0.5, 0.5 * 0.95 + 0.0),  # tail predicted as anchor: d = 1
        (1, 1, 0.9, 0.5 * 0.1 + 0.5, 0.5 * 0.1 + 0.0),  # right: d = 1 (the rule's "otherwise")
    ],
)
def test_difficulty_both_readings_of_the_confusion_term(label, pred, p_true, literal, prose):
    args = (np.array([p_true]), np.array([pred]), np.array([label]), IS_ANCHOR)
    assert difficulty(*args, lam=0.5, confusion="literal")[0] == pytest.approx(literal)
    assert difficulty(*args, lam=0.5)[0] == pytest.approx(prose)  # the prose reading is the default


def test_prose_reading_ranks_a_within_group_confusion_hardest_at_equal_p():
    """Section 3.3's prose: confusions within a group are the hardest; the literal equation ranks them easiest."""
    p = np.full(3, 0.3)
    label = np.array([0, 0, 0])
    pred = np.array([1, 2, 0])  # within-group confusion, cross-group confusion, correct
    prose = difficulty(p, pred, label, IS_ANCHOR)
    assert prose[0] > prose[1] and prose[0] > prose[2]
    literal = difficulty(p, pred, label, IS_ANCHOR, confusion="literal")
    assert literal[0] < literal[1] and literal[0] < literal[2]
    # the example: a confident correct sample no longer outranks a hopeless within-group confusion
    hopeless = difficulty(np.array([0.01]), np.array([1]), np.array([0]), IS_ANCHOR)[0]
    confident = difficulty(np.array([0.9]), np.array([0]), np.array([0]), IS_ANCHOR)[0]
    assert hopeless > confident


def test_lambda_weighs_the_two_terms():
    args = (np.array([0.2]), np.array([2]), np.array([0]), IS_ANCHOR)
    assert difficulty(*args, lam=1.0)[0] == pytest.approx(0.8)
    assert difficulty(*args, lam=0.0, confusion="literal")[0] == pytest.approx(1.0)
    assert difficulty(*args, lam=0.0)[0] == pytest.approx(0.0)


def clustered_case():
    """Three far-apart clusters of 10 points; cluster A holds the 3 hardest samples, B and C one hard each."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    embeddings = np.concatenate([c + rng.normal(size=(10, 2)) for c in centres])
    weights = np.full(30, 0.01)
    weights[[0, 1, 2]] = [1.0, 0.99, 0.98]
    weights[10], weights[20] = 0.9, 0.9
    return embeddings, weights, np.repeat([0, 1, 2], 10)


def test_weighted_kmeans_pp_prefers_difficult_samples_and_covers_clusters():
    embeddings, weights, cluster = clustered_case()
    covered, hard = [], []
    for seed in range(20):
        picked = select_per_class(embeddings, weights, 3, "dds", np.random.default_rng(seed))
        covered.append(len(set(cluster[picked])))
        hard.append(np.mean(weights[picked] >= 0.9))
    assert np.mean(np.array(covered) == 3) >= 0.9
    assert np.mean(hard) >= 0.9
    top = select_per_class(embeddings, weights, 3, "topk", np.random.default_rng(0))
    assert top.tolist() == [0, 1, 2] and set(cluster[top]) == {0}
    uniform = [select_per_class(embeddings, weights, 3, "random", np.random.default_rng(s)) for s in range(20)]
    assert np.mean([np.mean(weights[p] >= 0.9) for p in uniform]) < 0.5


def test_class_with_fewer_than_f_samples_contributes_all():
    picked = select_per_class(np.eye(2), np.array([0.5, 0.7]), 5, "dds", np.random.default_rng(0))
    assert picked.tolist() == [0, 1]


def test_selection_is_per_class_and_seeded():
    embeddings, weights, _ = clustered_case()
    scored = pd.DataFrame({"label": np.array(["a", "b"])[np.arange(30) % 2], "D": weights})
    first = build_selection(scored, embeddings, 4, "dds", seed=1)
    assert first.groupby("label")["selected"].sum().tolist() == [4, 4]
    assert first["selected"].equals(build_selection(scored, embeddings, 4, "dds", seed=1)["selected"])


def test_rejected_is_prediction_when_wrong_else_runner_up():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    assert rejected_candidates(probs, np.array([0, 0])).tolist() == [1, 1]
