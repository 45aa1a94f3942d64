"""End to end with PRESET=smoke: raw events -> A-Tuning -> selection -> B-Tuning (real llamafactory-cli)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from behaviorlm_lf.a_tune import a_tune
from behaviorlm_lf.b_tune import b_tune
from behaviorlm_lf.convert import convert
from behaviorlm_lf.fileio import read_jsonl
from behaviorlm_lf.scorer import CandidateScorer
from behaviorlm_lf.select import select
from behaviorlm_lf.simulator import simulate_events


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("pipeline")
    simulate_events(n_users=40, days=7, seed=5).to_csv(root / "events.csv", index=False)
    paths = dict(data_root=root / "data", dataset_info=root / "dataset_info.json")
    convert(str(root / "events.csv"), name="raw", preset="smoke", **paths)
    run = dict(preset="smoke", model=str(tiny_model), run_dir=root / "run", **paths)
    a_tune("raw", **run)
    selection = select("raw", **run)
    adapter = b_tune("raw", **{k: v for k, v in run.items() if k != "data_root"}, data_root=root / "data")
    return root, selection, adapter


def test_pipeline_writes_a_b_tuned_adapter_and_inspection_csv(pipeline):
    root, selection, adapter = pipeline
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (root / "run/a_merged/model.safetensors").is_file()
    scored = pd.read_csv(selection / "scored.csv")
    assert {"label", "p_true", "y_hat", "D", "selected"} <= set(scored.columns)
    vocabulary = json.loads((root / "data/raw/behaviors.json").read_text())
    assert set(scored["label"]) == {r["output"] for r in read_jsonl(root / "data/raw/pool.jsonl")}
    assert scored.groupby("label")["selected"].sum().max() == 2  # F = 2 in the smoke preset
    pairs = read_jsonl(root / "data/raw/pairs.jsonl")
    assert len(pairs) == scored["selected"].sum()
    assert all(p["chosen"] != p["rejected"] and p["rejected"] in vocabulary["candidates"] for p in pairs)


def test_first_dpo_step_reference_is_the_a_tuned_model(pipeline, tiny_model):
    """At step 1 the new adapter is zero: policy = reference, and both must equal the scorer's A-tuned log-probs."""
    root, _, adapter = pipeline
    first = json.loads((adapter / "trainer_state.json").read_text())["log_history"][0]
    assert first["step"] == 1
    assert first["rewards/chosen"] == pytest.approx(0.0, abs=1e-6)
    assert first["rewards/rejected"] == pytest.approx(0.0, abs=1e-6)
    batch = read_jsonl(root / "data/raw/pairs.jsonl")[:8]  # smoke: max_samples 8 = one batch of 8
    candidates = json.loads((root / "data/raw/behaviors.json").read_text())["candidates"]
    scores = CandidateScorer(tiny_model, adapter_dir=root / "run/a_tune").score([p["instruction"] for p in batch], candidates)
    rows = np.arange(len(batch))
    chosen = scores.logprobs[rows, [candidates.index(p["chosen"]) for p in batch]].mean()
    rejected = scores.logprobs[rows, [candidates.index(p["rejected"]) for p in batch]].mean()
    assert first["logps/chosen"] == pytest.approx(chosen, abs=1e-3)
    assert first["logps/rejected"] == pytest.approx(rejected, abs=1e-3)
