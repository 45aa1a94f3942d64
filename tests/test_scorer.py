"""The packed shared-prefix scorer must give exactly the per-pair reference log-probs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from behaviorlm_lf.models import TINY_MODEL_DIR, make_tiny
from behaviorlm_lf.scorer import CandidateScorer, encode_pair, naive_logprobs

PROMPTS = [
    "Next?",
    (
        "Here are the user's last events, each (day, hour, place, behavior): (Mon,16,home,Exercise), "
        "(Mon,18,commute,Music), (Mon,21,home,Video). The next event is on Tue at 8 at commute. Which comes next?"
    ),
    "(Tue,7,home,Weather check), (Tue,8,commute,Public transport). What next?",
    "Candidates: Video, Video call, Taxi. Answer with one candidate.",
]
# Different token lengths; "Video" is a prefix of "Video call".
CANDIDATES = ["Video", "Video call", "Online shopping", "Taxi", "Public transport", "Weather check"]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    repo_copy = Path(__file__).resolve().parents[1] / TINY_MODEL_DIR
    if (repo_copy / "config.json").is_file():
        return repo_copy
    return make_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def scorer(tiny_dir) -> CandidateScorer:
    return CandidateScorer(tiny_dir, device="cpu", batch_size=3)


@pytest.fixture(scope="session")
def result(scorer):
    return scorer.score(PROMPTS, CANDIDATES, progress=False)


def test_tokens_are_those_training_sees(scorer):
    """LlamaFactory's supervised processor builds prompt + answer ids with the prompt masked out."""
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.hparams import DataArguments

    processor = SupervisedDatasetProcessor(
        scorer.template, scorer.tokenizer, None, DataArguments(template="smollm2", cutoff_len=4096)
    )
    examples = {
        "_prompt": [[{"role": "user", "content": p}] for p in PROMPTS],
        "_response": [[{"role": "assistant", "content": "Video call"}] for _ in PROMPTS],
        **{key: [None] * len(PROMPTS) for key in ("_system", "_tools", "_images", "_videos", "_audios")},
    }
    batch = processor.preprocess_dataset(examples)
    for prompt, input_ids, labels in zip(PROMPTS, batch["input_ids"], batch["labels"]):
        prompt_ids, answer_ids = encode_pair(scorer.template, scorer.tokenizer, prompt, "Video call")
        assert input_ids == prompt_ids + answer_ids
        assert labels == [IGNORE_INDEX] * len(prompt_ids) + answer_ids
        assert answer_ids[-2:] == scorer.tokenizer.encode("<|im_end|>\n", add_special_tokens=False)


def test_matches_naive(scorer, result):
    ref = naive_logprobs(scorer.model, scorer.tokenizer, scorer.template, PROMPTS, CANDIDATES)
    assert result.logprobs.shape == (len(PROMPTS), len(CANDIDATES))
    np.testing.assert_allclose(result.logprobs, ref, atol=1e-4, rtol=0)
    video, video_call = CANDIDATES.index("Video"), CANDIDATES.index("Video call")
    assert np.all(np.abs(result.logprobs[:, video] - result.logprobs[:, video_call]) > 1e-3)


def test_batch_size_invariant(scorer, result):
    scorer.batch_size = 1
    try:
        single = scorer.score(PROMPTS, CANDIDATES, progress=False)
    finally:
        scorer.batch_size = 3
    np.testing.assert_allclose(single.logprobs, result.logprobs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(single.embeddings, result.embeddings, atol=1e-5, rtol=0)


def test_probs_and_pred(result):
    np.testing.assert_allclose(result.probs.sum(1), 1.0, atol=1e-9)
    assert np.all(result.probs >= 0)
    np.testing.assert_array_equal(result.pred, result.probs.argmax(1))
    np.testing.assert_array_equal(result.pred, result.logprobs.argmax(1))


@torch.inference_mode()
def test_embeddings_are_prompt_mean_of_last_hidden(scorer, result):
    assert result.embeddings.shape == (len(PROMPTS), scorer.model.config.hidden_size)
    assert result.embeddings.dtype == np.float32
    for prompt, emb in zip(PROMPTS, result.embeddings):
        ids, _ = encode_pair(scorer.template, scorer.tokenizer, prompt, CANDIDATES[0])
        hidden = scorer.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1]
        np.testing.assert_allclose(emb, hidden[0].mean(0).numpy(), atol=1e-5, rtol=0)


def test_lora_adapter(tiny_dir, scorer, result, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # zero at init: randomise so the adapter changes the outputs
            torch.nn.init.normal_(param, std=0.5)
    peft_model.save_pretrained(tmp_path / "adapter")

    adapted = CandidateScorer(tiny_dir, adapter_dir=tmp_path / "adapter", device="cpu", batch_size=3)
    got = adapted.score(PROMPTS, CANDIDATES, progress=False)
    ref = naive_logprobs(peft_model.eval(), scorer.tokenizer, scorer.template, PROMPTS, CANDIDATES)
    np.testing.assert_allclose(got.logprobs, ref, atol=1e-4, rtol=0)
    assert np.abs(got.logprobs - result.logprobs).max() > 1e-2
