"""The packed shared-prefix scorer must give exactly the per-pair reference log-probs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from behaviorlm_lf.data.prompts import PromptRenderer, format_event
from behaviorlm_lf.model.backbones import TINY_MODEL_DIR, make_tiny
from behaviorlm_lf.model.packing import encode_pair, prefix_groups, sample_token_positions, through_stop
from behaviorlm_lf.model.scorer import CandidateScorer, naive_logprobs

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
    return CandidateScorer(tiny_dir, device="cpu", batch_size=3, bf16=False)


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
        # scored as generation emits it: through <|im_end|>, not the newline trained after it
        assert through_stop(answer_ids, scorer.stop_ids) == answer_ids[:-1]


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


def test_probs_and_pred(result):
    np.testing.assert_allclose(result.probs.sum(1), 1.0, atol=1e-9)
    assert np.all(result.probs >= 0)
    np.testing.assert_array_equal(result.pred, result.probs.argmax(1))
    np.testing.assert_array_equal(result.pred, result.logprobs.argmax(1))


@pytest.fixture(scope="session")
def rendered():
    """Prompts with the character spans of their history and next event, as the converter writes them."""
    renderer = PromptRenderer(CANDIDATES)
    history = [format_event(0, 16, "home", "Exercise"), format_event(0, 18, "commute", "Video call")]
    return [renderer.render(history[: n + 1], 1, 8 + n, "commute", n % 3) for n in range(2)] + [
        renderer.render(history, 2, 23, "home", 2)
    ]


def test_sample_positions_are_exactly_the_history_and_next_event_tokens(scorer, rendered):
    for prompt, spans in rendered:
        ids, _ = encode_pair(scorer.template, scorer.tokenizer, prompt, CANDIDATES[0])
        positions = sample_token_positions(scorer.tokenizer, ids, prompt, spans)
        pooled_text = scorer.tokenizer.decode([ids[p] for p in positions])
        # the tokens cover both spans, in order, and nothing else but the separator between them
        history, next_event = (prompt[a:b] for a, b in spans)
        assert history in pooled_text and next_event in pooled_text
        between = prompt[spans[0][1] : spans[1][0]]
        assert len(pooled_text.strip()) <= len(history) + len(next_event) + len(between) + 2
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        assert "Candidate" not in pooled_text and "assistant" not in pooled_text


@torch.inference_mode()
def test_embeddings_pool_the_sample_tokens_or_the_last_prompt_token(scorer, rendered):
    prompts, spans = [p for p, _ in rendered], [s for _, s in rendered]
    sample = scorer.score(prompts, CANDIDATES, progress=False, embed="sample", spans=spans)
    last = scorer.score(prompts, CANDIDATES, progress=False, embed="last")
    assert sample.embeddings.shape == (len(prompts), scorer.model.config.hidden_size)
    assert sample.embeddings.dtype == np.float32
    for prompt, sp, emb_sample, emb_last in zip(prompts, spans, sample.embeddings, last.embeddings):
        ids, _ = encode_pair(scorer.template, scorer.tokenizer, prompt, CANDIDATES[0])
        hidden = scorer.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
        positions = sample_token_positions(scorer.tokenizer, ids, prompt, sp)
        np.testing.assert_allclose(emb_sample, hidden[positions].mean(0).numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(emb_last, hidden[-1].numpy(), atol=1e-5, rtol=0)
    assert scorer.score(prompts, CANDIDATES, progress=False).embeddings is None


def test_shared_prefixes_run_once_and_change_nothing(tiny_dir, scorer):
    """Prompts of the same instruction template share a prefix that runs once; scores and E(x) are as if run whole."""
    renderer = PromptRenderer(CANDIDATES)
    events = [format_event(day, hour, place, behavior) for day, hour, place, behavior in
              [(0, 7, "home", "Weather check"), (0, 8, "commute", "Taxi"), (0, 12, "work", "Video call"), (0, 19, "home", "Video")]]
    rendered = [renderer.render(events[: 1 + n % 4], n % 2, 9 + n, "home", n % 3) for n in range(7)]
    prompts, spans = [p for p, _ in rendered], [s for _, s in rendered]
    prompt_ids = [encode_pair(scorer.template, scorer.tokenizer, p, "")[0] for p in prompts]
    pooled = [sample_token_positions(scorer.tokenizer, ids, p, sp) for ids, p, sp in zip(prompt_ids, prompts, spans)]

    groups = prefix_groups(prompt_ids, range(len(prompts)), pooled)
    common = min(len(os.path.commonprefix([prompt_ids[0], ids])) for ids in prompt_ids)
    assert sorted(i for _, rows in groups for i in rows) == list(range(len(prompts)))
    assert len(groups) == 3  # one per instruction template
    for prefix, rows in groups:
        assert common < prefix <= min(min(pooled[i]) for i in rows)
        assert all(prompt_ids[i][:prefix] == prompt_ids[rows[0]][:prefix] for i in rows)

    whole = CandidateScorer(tiny_dir, device="cpu", batch_size=2, bf16=False, share_prefix=False)
    shared = CandidateScorer(tiny_dir, device="cpu", batch_size=2, bf16=False)
    got, ref = (s.score(prompts, CANDIDATES, progress=False, embed="sample", spans=spans) for s in (shared, whole))
    np.testing.assert_allclose(got.logprobs, ref.logprobs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.embeddings, ref.embeddings, atol=1e-5, rtol=0)
    naive = naive_logprobs(scorer.model, scorer.tokenizer, scorer.template, prompts, CANDIDATES)
    np.testing.assert_allclose(got.logprobs, naive, atol=1e-4, rtol=0)


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

    adapted = CandidateScorer(tiny_dir, adapter_dir=tmp_path / "adapter", device="cpu", batch_size=3, bf16=False)
    got = adapted.score(PROMPTS, CANDIDATES, progress=False)
    ref = naive_logprobs(peft_model.eval(), scorer.tokenizer, scorer.template, PROMPTS, CANDIDATES)
    np.testing.assert_allclose(got.logprobs, ref, atol=1e-4, rtol=0)
    assert np.abs(got.logprobs - result.logprobs).max() > 1e-2


def smoke_test_prompts(smoke) -> tuple[list[str], list[str]]:
    """The smoke data's test prompts and candidates."""
    import json

    from behaviorlm_lf.extras.fileio import read_jsonl

    data = smoke.layout().data_dir
    candidates = json.loads((data / "behaviors.json").read_text())["candidates"]
    return [r["instruction"] for s in ("test_natural", "test_balanced") for r in read_jsonl(data / f"{s}.jsonl")], candidates


def test_bf16_path_gives_the_float32_argmax_on_the_smoke_data(tiny_dir, smoke):
    """The bf16 mixed precision the stages use where the hardware has bf16 units picks the same behaviors."""
    prompts, candidates = smoke_test_prompts(smoke)
    results = {
        bf16: CandidateScorer(tiny_dir, device="cpu", batch_size=8, bf16=bf16).score(prompts, candidates, progress=False)
        for bf16 in (False, True)
    }
    assert len(prompts) > 50
    # The random tiny model scores candidates almost alike: where float32's best two are closer than twice the
    # largest bf16 rounding error, either pick is right; everywhere else the picks must be the same.
    error = np.abs(results[True].logprobs - results[False].logprobs).max()
    assert error < 0.01
    ranked = np.sort(results[False].logprobs, axis=1)
    decided = ranked[:, -1] - ranked[:, -2] > 2 * error
    assert decided.mean() > 0.5
    np.testing.assert_array_equal(results[True].pred[decided], results[False].pred[decided])


@pytest.mark.parametrize("share_prefix", [True, False])
def test_bf16_near_ties_are_rescored_in_float32_and_the_rest_kept(tiny_dir, smoke, monkeypatch, share_prefix):
    """Prompts whose best two bf16 log-probs are within NEAR_TIE get float32's log-probs for their contenders, and
    float32's argmax; the others keep bf16's."""
    from behaviorlm_lf.model import scorer as scorer_module

    prompts, candidates = smoke_test_prompts(smoke)
    float32 = CandidateScorer(tiny_dir, device="cpu", batch_size=8, bf16=False).score(prompts, candidates, progress=False)
    bf16 = CandidateScorer(tiny_dir, device="cpu", batch_size=8, bf16=True)
    assert bf16.autocasts
    bf16.share_prefix = share_prefix
    monkeypatch.setattr(scorer_module, "NEAR_TIE", 0.0)
    unchecked = bf16.score(prompts, candidates, progress=False)
    ranked = np.sort(unchecked.logprobs, axis=1)
    gaps = ranked[:, -1] - ranked[:, -2]
    monkeypatch.setattr(scorer_module, "NEAR_TIE", float(np.median(gaps)))
    checked = bf16.score(prompts, candidates, progress=False)
    near = gaps < scorer_module.NEAR_TIE
    assert 0 < near.sum() < len(prompts)
    assert np.abs(unchecked.logprobs[near] - float32.logprobs[near]).max() > 1e-4  # bf16 alone differs there
    contending = scorer_module.contenders(unchecked.logprobs) & near[:, None]
    np.testing.assert_allclose(checked.logprobs[contending], float32.logprobs[contending], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(checked.pred[near], float32.pred[near])
    # The rest of a near tie's candidates keep bf16's log-prob, unless a prompt batched with it contended for them.
    rescored = np.isclose(checked.logprobs, float32.logprobs, atol=1e-5, rtol=0)
    kept = checked.logprobs == unchecked.logprobs
    assert (rescored | kept)[near].all()
    assert (~rescored)[near].any()  # the float32 pass skipped some candidates
    np.testing.assert_array_equal(checked.logprobs[~near], unchecked.logprobs[~near])
