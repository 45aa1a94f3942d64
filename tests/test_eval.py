"""`eval` scores both test sets with the exact scorer (or free generation) and writes the paper's metrics."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from behaviorlm_lf.convert import convert
from behaviorlm_lf.eval import NO_MATCH, evaluate_model, match_candidate

CANDIDATES = ["Video", "Video call", "Music", "Short video"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Video call", "Video call"),
        ("music.", "Music"),
        ("The next behavior is Short video.", "Short video"),
        ("I think a video call", "Video call"),
        ("Sleep", NO_MATCH),
    ],
)
def test_generated_text_is_matched_to_a_candidate(text, expected):
    assert match_candidate(text, CANDIDATES) == expected


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    convert("default", preset="smoke", data_root=root / "data", dataset_info=root / "dataset_info.json")
    return root


@pytest.mark.parametrize("generate", [False, True], ids=["scorer", "generate"])
def test_report_holds_the_six_metrics_and_per_sample_predictions(smoke_data, tiny_model, generate):
    root = smoke_data
    out = evaluate_model(
        "default", "smoke", run=None, model=str(tiny_model), name="tiny", generate=generate,
        reports=root / "reports", data_root=root / "data", dataset_info=root / "dataset_info.json",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("prec_w", "rec_w", "overall"):
        assert 0.0 <= metrics[key] <= 1.0
    natural = pd.read_csv(out / "predictions_natural.csv")
    expected_n = len((root / "data/default/test_natural.jsonl").read_text().splitlines())
    assert len(natural) == expected_n == metrics["natural_n"]
    assert metrics["rec_w"] == pytest.approx((natural["label"] == natural["prediction"]).mean())
    assert (out / "per_class.csv").is_file() and (out / "confusion_balanced.csv").is_file()
    if generate:
        assert 0.0 <= metrics["extra"]["natural_no_match_rate"] <= 1.0
        assert out.name == "tiny_generate"
