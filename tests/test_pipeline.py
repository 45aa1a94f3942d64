"""End to end with PRESET=smoke: raw events -> A-Tuning -> selection -> B-Tuning (real llamafactory-cli)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO_ROOT, smoke_run

from behaviorlm_lf.data.convert import convert
from behaviorlm_lf.data.simulator import simulate_events
from behaviorlm_lf.extras.fileio import read_jsonl
from behaviorlm_lf.hparams import (
    ATuneArguments,
    BTuneArguments,
    DataArguments,
    FirstStageArguments,
    SelectArguments,
    for_preset,
)
from behaviorlm_lf.model.packing import encode_pair, through_stop
from behaviorlm_lf.model.scorer import CandidateScorer
from behaviorlm_lf.train.a_tune import a_tune
from behaviorlm_lf.train.b_tune import b_tune
from behaviorlm_lf.train.pairs import rejected_candidates
from behaviorlm_lf.train.select import select

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("pipeline")
    simulate_events(n_users=40, days=7, seed=5).to_csv(root / "events.csv", index=False)
    run = smoke_run(root, tiny_model, dataset="raw")
    convert(run, for_preset(DataArguments, "smoke", source=str(root / "events.csv")))
    first, sel = FirstStageArguments(), for_preset(SelectArguments, "smoke")
    a_tune(run, first, for_preset(ATuneArguments, "smoke"))
    selection = select(run, first, sel)
    adapter = b_tune(run, first, sel, for_preset(BTuneArguments, "smoke"))
    return run, selection, adapter


def test_b_tune_reports_what_it_kept_and_why(pipeline):
    run, _, adapter = pipeline
    diagnostics = json.loads((adapter / "diagnostics.json").read_text())
    assert len(diagnostics["validation"]) == 2  # the smoke preset's two epochs, each scored on validation
    assert diagnostics["best_epoch"] in (1.0, 2.0)
    assert diagnostics["best_validation_overall"] == max(e["overall"] for e in diagnostics["validation"])
    assert {"logps/chosen", "logps/rejected", "rewards/margins"} <= set(diagnostics["training"])
    assert set(diagnostics["pairs"]["pool_rank_of_true_label"]) <= {"head", "medium", "tail"}
    report = (adapter / "report.md").read_text()
    assert "Validation per epoch" in report and "Rejected answers" in report and (adapter / "dpo_logps.png").is_file()
    assert not list(adapter.glob("checkpoint-*"))


def test_sft_dpo_rebuilds_the_pairs_from_the_sft_models_own_wrong_answers(pipeline):
    run, _, _ = pipeline
    layout = run.layout()
    first, sel = FirstStageArguments(), for_preset(SelectArguments, "smoke")
    adapter = b_tune(run, first, sel, for_preset(BTuneArguments, "smoke", variant="sft_dpo"))
    sft_model = layout.b_tune_base_dir("anchor_train", "", "sft_dpo")
    assert yaml.safe_load((adapter / "llamafactory_train.yaml").read_text())["model_name_or_path"] == str(sft_model.resolve())
    assert run.layout().trained_model("b_tune", variant="sft_dpo") == (str(sft_model), adapter)
    selected = read_jsonl(layout.set_file("selected_sft"))
    pairs = read_jsonl(layout.set_file("sft_pairs"))
    assert [p["chosen"] for p in pairs] == [s["output"] for s in selected]
    candidates = json.loads(layout.behaviors_file.read_text())["candidates"]
    scored = CandidateScorer(str(sft_model)).score([s["instruction"] for s in selected], candidates)
    label = np.array([candidates.index(s["output"]) for s in selected])
    assert [p["rejected"] for p in pairs] == [candidates[k] for k in rejected_candidates(scored.probs, label)]
    first_pairs = read_jsonl(layout.set_file("pairs"))
    assert [p["instruction"] for p in first_pairs] == [p["instruction"] for p in pairs]  # the same samples, new answers


def test_pipeline_writes_a_b_tuned_adapter_and_inspection_csv(pipeline):
    run, selection, adapter = pipeline
    layout = run.layout()
    assert (adapter / "adapter_model.safetensors").is_file() and adapter == layout.b_tune_dir("anchor_train", "")
    assert (layout.merged_dir() / "model.safetensors").is_file()
    scored = pd.read_csv(selection / "scored.csv")
    assert {"label", "p_true", "y_hat", "D", "selected"} <= set(scored.columns)
    vocabulary = json.loads(layout.behaviors_file.read_text())
    assert set(scored["label"]) == {r["output"] for r in read_jsonl(layout.set_file("pool"))}
    assert scored.groupby("label")["selected"].sum().max() == 2  # F = 2 in the smoke preset
    pairs = read_jsonl(layout.set_file("pairs"))
    assert len(pairs) == scored["selected"].sum()
    assert all(p["chosen"] != p["rejected"] and p["rejected"] in vocabulary["candidates"] for p in pairs)


@torch.inference_mode()
def after_stop_logprobs(scorer: CandidateScorer, prompts: list[str], answers: list[str]) -> np.ndarray:
    """log p of each answer's tokens after its stop token (ChatML's newline): DPO scores them, the scorer stops before."""
    out = []
    for prompt, answer in zip(prompts, answers):
        prompt_ids, answer_ids = encode_pair(scorer.template, scorer.tokenizer, prompt, answer)
        kept = len(through_stop(answer_ids, scorer.stop_ids))
        logits = scorer.model(input_ids=torch.tensor([prompt_ids + answer_ids]), logits_to_keep=len(answer_ids) + 1).logits
        token_lp = logits[0, :-1].double().log_softmax(-1).gather(-1, torch.tensor(answer_ids)[:, None])[:, 0]
        out.append(token_lp[kept:].sum().item())
    return np.array(out)


def test_first_dpo_step_reference_is_the_a_tuned_model(pipeline):
    """At step 1 the new adapter is zero: policy = reference, and both must equal the scorer's A-tuned log-probs
    (with the tokens after the stop token, which DPO trains on and the scorer leaves out)."""
    run, _, adapter = pipeline
    layout = run.layout()
    first = json.loads((adapter / "trainer_state.json").read_text())["log_history"][0]
    assert first["step"] == 1
    assert first["rewards/chosen"] == pytest.approx(0.0, abs=1e-6)
    assert first["rewards/rejected"] == pytest.approx(0.0, abs=1e-6)
    config = yaml.safe_load((adapter / "llamafactory_train.yaml").read_text())
    # step 1 logs the mean over its micro-batches: the first batch x accumulation pairs, in any order
    step_pairs = config["per_device_train_batch_size"] * config["gradient_accumulation_steps"]
    batch = read_jsonl(layout.set_file("pairs"))[:step_pairs]
    assert len(batch) == step_pairs
    candidates = json.loads(layout.behaviors_file.read_text())["candidates"]
    bf16 = config["bf16"]
    prompts = [p["instruction"] for p in batch]

    def mean_logprob(scorer: CandidateScorer, answer: str) -> float:
        """The batch's mean log p of its ``answer`` candidates over the whole trained turn, as DPO logs it."""
        answers = [p[answer] for p in batch]
        scores = scorer.score(prompts, candidates).logprobs[np.arange(len(batch)), [candidates.index(a) for a in answers]]
        return float((scores + after_stop_logprobs(scorer, prompts, answers)).mean())

    a_tuned = CandidateScorer(run.model, adapter_dir=layout.first_stage_dir(), bf16=bf16)
    chosen = mean_logprob(a_tuned, "chosen")
    # bf16 training (bf16 weights) rounds differently from the scorer's bf16 autocast (float32 weights)
    tolerance = {"rel": 5e-3} if bf16 else {"abs": 1e-3}
    assert first["logps/chosen"] == pytest.approx(chosen, **tolerance)
    assert first["logps/rejected"] == pytest.approx(mean_logprob(a_tuned, "rejected"), **tolerance)
    # and not the backbone's: the A-tuned model is the reference
    base_chosen = mean_logprob(CandidateScorer(run.model, bf16=bf16), "chosen")
    assert abs(first["logps/chosen"] - chosen) < abs(first["logps/chosen"] - base_chosen)


def test_b_tune_with_a_selection_flag_trains_on_that_selection(pipeline):
    """The bug `make b-tune STRATEGY=random` had: select used the flag, b_tune trained on the DDS pairs."""
    run, _, _ = pipeline
    first, sel = FirstStageArguments(), dataclasses.replace(for_preset(SelectArguments, "smoke"), strategy="random")
    select(run, first, sel)
    adapter = b_tune(run, first, sel, for_preset(BTuneArguments, "smoke"))
    assert adapter.name == "b_tune_random"
    assert yaml.safe_load((adapter / "llamafactory_train.yaml").read_text())["dataset"] == "raw_pairs_random"


def test_the_makefile_passes_the_selection_flags_to_select_and_b_tune():
    commands = subprocess.run(
        ["make", "-n", "-B", "b-tune", "STRATEGY=random", "F=5", "PRESET=smoke"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for command in ("behaviorlm select", "behaviorlm b-tune"):
        line = next(c for c in commands if command in c)
        assert "--strategy random" in line and "--per-class 5" in line


def test_the_chat_config_loads_the_b_tuned_model_as_trained(pipeline):
    """llamafactory_configs/chat.yaml is what `llamafactory-cli chat/webchat/api` reads: it loads the run's model."""
    from llamafactory.chat import ChatModel

    from behaviorlm_lf.lf.run import CONFIG_DIR, resolve

    run, _, adapter = pipeline
    layout = run.layout()
    config = resolve(CONFIG_DIR / "chat.yaml", {"model_name_or_path": str(layout.merged_dir()), "adapter_name_or_path": str(adapter)})
    prompt = read_jsonl(layout.set_file("test_natural"))[0]["instruction"]
    answer = ChatModel(config).chat([{"role": "user", "content": prompt}])[0].response_text
    assert isinstance(answer, str)


@pytest.mark.slow
def test_a_second_smoke_demo_reuses_every_stage(tmp_path, tiny_model):
    """`make demo` twice: the second run rebuilds nothing, so the stage cache's identities are stable across runs
    (the code, inputs and config each stage hashes) and every stage of the first run is found again."""
    import re

    def demo() -> str:
        done = subprocess.run(["make", "demo", "PRESET=smoke", f"ROOT={tmp_path}"], cwd=REPO_ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    built = set(re.findall(r"\[([^\]]+)\] wrote ", demo()))
    second = demo()
    assert {"data:default", "first_stage:anchor_train", "score_pool", "select", "b_tune:dpo", "eval:a_tune"} <= built, built
    assert not re.findall(r"\[([^\]]+)\] (?:wrote|inputs, config or code changed)", second)
    assert set(re.findall(r"\[([^\]]+)\] reusing", second)) >= built
    # the benchmark's BehaviorLM row is the demo's model: it trains and evaluates nothing again
    done = subprocess.run([sys.executable, "-m", "behaviorlm_lf", "benchmark", "--preset", "smoke", "--root", str(tmp_path),
                           "--only", "BehaviorLM"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not re.findall(r"\[([^\]]+)\] (?:wrote|inputs, config or code changed)", done.stderr)
    assert {"first_stage:anchor_train", "select", "b_tune:dpo", "eval:b_tune"} <= set(re.findall(r"\[([^\]]+)\] reusing", done.stderr))
