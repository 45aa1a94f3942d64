"""The claims lines and the summary table: verdicts from paired intervals, the table with its bounds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from behaviorlm_lf.eval.metrics import PAPER_METRICS
from behaviorlm_lf.eval.report import claim, claims_lines, collapse_lines, markdown_table, summary_frame


def fake_report(folder, tail_replicates, value=None):
    """A report folder whose Tail replicates are given (the other metrics constant 0.5)."""
    folder.mkdir(parents=True)
    reps = {m: np.full(len(tail_replicates), 0.5) for m in PAPER_METRICS} | {"tail": np.asarray(tail_replicates, dtype=float)}
    np.savez(folder / "bootstrap.npz", **reps)
    metrics = {m: 0.5 for m in PAPER_METRICS} | {"tail": float(np.mean(tail_replicates)) if value is None else value}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_claim_verdicts_follow_the_paired_interval(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.2, 1000)
    rows = {
        "base": [fake_report(tmp_path / "base", base)],
        "better": [fake_report(tmp_path / "better", base + 0.05)],  # +5 points in every replicate
        "worse": [fake_report(tmp_path / "worse", base - 0.05)],
        "noisy": [fake_report(tmp_path / "noisy", base + rng.normal(0, 0.05, 1000))],
    }
    assert claim(rows, "better", "base", "tail")[0] == "holds"
    assert claim(rows, "worse", "base", "tail")[0] == "does not hold"
    assert claim(rows, "noisy", "base", "tail")[0] == "inside the intervals"
    # "not more than 2 points below": 5 points below fails, within the margin holds
    assert claim(rows, "worse", "base", "tail", margin=0.02)[0] == "does not hold"
    assert claim(rows, "worse", "base", "tail", margin=0.06)[0] == "holds"
    verdict, detail = claim(rows, "better", "base", "tail")
    assert detail.startswith("difference +5.0 points, 95% paired interval [+5.0, +5.0]")
    assert claim(rows, "better", "missing", "tail") == ("not run yet", "")
    lines = claims_lines(rows, [("better Tail above base", "better", "base", "tail", 0.0)])
    assert lines == ["- **holds**: better Tail above base (difference +5.0 points, 95% paired interval [+5.0, +5.0])\n"]


def test_summary_table_carries_each_metric_with_its_bounds(tmp_path):
    rows = {"one": [fake_report(tmp_path / "one", np.linspace(0.1, 0.3, 1001))]}
    frame = summary_frame(rows)
    assert frame.loc[0, "tail_lo"] == np.percentile(np.linspace(0.1, 0.3, 1001), 2.5)
    table = markdown_table(frame, ["one", "absent"])
    assert "| one | 50.0 [50.0, 50.0] |" in table and "| absent | not run yet |" in table
    assert isinstance(frame, pd.DataFrame)


def test_a_model_giving_one_answer_to_the_balanced_set_is_flagged(tmp_path):
    """The cpu demo's first B-Tuning answered one rare behavior everywhere and its Tail claim still "held"."""
    collapsed, healthy = tmp_path / "collapsed", tmp_path / "healthy"
    for folder, predictions in ((collapsed, ["Alarm"] * 19 + ["Email"]), (healthy, ["Alarm", "Email"] * 10)):
        folder.mkdir()
        pd.DataFrame({"label": ["Alarm", "Email"] * 10, "prediction": predictions}).to_csv(folder / "predictions_balanced.csv")
    lines = collapse_lines({"B": [collapsed], "A": [healthy], "no predictions": [tmp_path]})
    assert lines == [
        "- **collapsed**: B answers 'Alarm' to 95% of the balanced test prompts; its group accuracies, and the claims "
        "it enters, describe that one answer\n"
    ]
