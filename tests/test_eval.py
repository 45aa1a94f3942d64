"""`eval` scores both test sets with the exact scorer (or free generation) and writes the paper's metrics."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from behaviorlm_lf.eval.evaluate import NO_MATCH, evaluate, match_candidate

CANDIDATES = ["Video", "Video call", "Music", "Short video", "Yahoo!"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Video call", "Video call"),
        ("music.", "Music"),
        ("The next behavior is Short video.", "Short video"),
        ("I think a video call", "Video call"),
        ("Sleep", NO_MATCH),
        ("Yahoo!", "Yahoo!"),  # a name ending in punctuation matches when generated verbatim
        ("yahoo", "Yahoo!"),
        ("I would open Yahoo! now", "Yahoo!"),
    ],
)
def test_generated_text_is_matched_to_a_candidate(text, expected):
    assert match_candidate(text, CANDIDATES) == expected


@pytest.mark.parametrize("generate", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["scorer", "generate"])
def test_report_holds_the_six_metrics_with_intervals_and_per_sample_predictions(smoke, generate):
    layout = smoke.layout()
    out = evaluate(smoke, smoke.model, None, "tiny", generate=generate)
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("prec_w", "rec_w", "overall"):
        assert 0.0 <= metrics[f"{key}_lo"] <= metrics[key] <= metrics[f"{key}_hi"] <= 1.0
    natural = pd.read_csv(out / "predictions_natural.csv")
    expected_n = len(layout.set_file("test_natural").read_text().splitlines())
    assert len(natural) == expected_n == metrics["natural_n"]
    assert metrics["rec_w"] == pytest.approx((natural["label"] == natural["prediction"]).mean())
    assert (out / "per_class.csv").is_file() and (out / "confusion_balanced.csv").is_file()
    if generate:
        assert 0.0 <= metrics["extra"]["natural_no_match_rate"] <= 1.0
        assert out.name == "tiny_generate"


def test_an_edited_predict_yaml_reruns_the_generate_evaluation(smoke, tmp_path, monkeypatch, caplog):
    """The generate report used to be reused after predict.yaml changed: the file is an input of the stage."""
    import numpy as np

    from behaviorlm_lf.eval import evaluate as eval_module

    def every_answer_the_first_candidate(run, set_name, model, adapter, candidates, work):
        n = len(run.layout().set_file(set_name).read_text().splitlines())
        scores = np.zeros((n, len(candidates) + 1))
        scores[:, 0] = 1.0
        return scores, 0.0

    monkeypatch.setattr(eval_module, "generated_scores", every_answer_the_first_candidate)
    evaluate(smoke, smoke.model, None, "edited", generate=True)
    edited = tmp_path / "predict.yaml"
    edited.write_text(eval_module.PREDICT_CONFIG.read_text().replace("max_new_tokens: 16", "max_new_tokens: 8"))
    monkeypatch.setattr(eval_module, "PREDICT_CONFIG", edited)
    with caplog.at_level("INFO"):
        evaluate(smoke, smoke.model, None, "edited", generate=True)
    assert "changed: rebuilding" in caplog.text
