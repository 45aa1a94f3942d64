"""Exact candidate scoring: log p(answer = candidate | prompt) for a whole candidate set.

B-Tuning selection and evaluation need the probability of every behavior, not one
generated string. Scoring each (prompt, candidate) pair with its own forward pass
repeats the long prompt C times; here the prompt runs once and all candidates ride
in the same forward pass, packed as one sequence ``[prompt][cand_1]...[cand_C]``
under a tree-shaped attention mask (each candidate sees the prompt and its own
earlier tokens only) with each candidate's position ids restarting after the
prompt. Every candidate thus gets exactly the logits it would get alone.

Prompts also share a prefix with each other: the chat template's system turn, the
role-play instruction and the opening words of their instruction template (about 85
of a Foursquare prompt's 560 tokens). Causal attention makes those tokens' keys and
values the same in every prompt, so each distinct shared prefix runs once and its
keys and values are reused by every batch of prompts that starts with it.

Tokens are those LlamaFactory trains on (``template.encode_oneturn``), and the answer
is scored as generation yields it: its tokens through the template's stop token
(``<|im_end|>``, which tells a candidate that is a prefix of another, "Video" vs
"Video call", apart). ChatML templates train on a newline after ``<|im_end|>`` too;
generation stops before it, so it is no part of p(y|x), and leaving it out saves
feeding ``<|im_end|>`` to the model once per candidate (77 candidate tokens instead
of 114 on the cpu demo's data).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..extras.hardware import uses_bf16
from .packing import (
    CandidateBlock,
    candidate_ids,
    encode_pair,
    load_template,
    pack,
    prefix_groups,
    sample_token_positions,
    through_stop,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
logger = logging.getLogger(__name__)


POOLINGS = ("sample", "last")
# bf16 moves a candidate's log-prob by up to a few tenths of a nat; where the top two bf16 log-probs are closer than
# this, the prompt is rescored in float32, so that such near ties are ranked as float32 ranks them, against its
# contenders only (`contenders`; docs/performance.md, "Scoring: bench-score").
NEAR_TIE = 0.1


@dataclass
class ScoreResult:
    logprobs: np.ndarray  # [N, C] float64, summed answer-token log-probs
    probs: np.ndarray  # [N, C] softmax over candidates
    pred: np.ndarray  # [N] int, argmax
    embeddings: np.ndarray | None  # [N, H] float32 E(x) (see CandidateScorer.score), None when not asked for
    near_ties: int = 0  # prompts scored again in float32 (see CandidateScorer)
    near_tie_seconds: float = 0.0  # the time that took
    near_tie_candidates: int = 0  # (prompt, candidate) pairs it scored: each batch, its prompts' contenders together




class CandidateScorer:
    """Scores prompts against a candidate set with a (optionally LoRA-merged) causal LM.

    Precision follows :mod:`behaviorlm_lf.extras.hardware` (``bf16=None``) or is forced. On a GPU, bf16
    means bf16 weights. On a CPU it means float32 weights under bf16 autocast: the decoder's matmuls
    run on the bf16 units while norms, residual sums and the log-softmax stay in float32, measured no
    slower than bf16 weights on this project's 2-core CPU. The LM head runs in float32 either way: its
    bf16 output rounds logits of size 20 to steps of 0.125, which flipped argmaxes of a tuned model
    (docs/performance.md, "Scoring: bench-score"). On a CPU, prompts whose best two
    candidates come within ``NEAR_TIE`` in bf16 are scored again in float32 (the same weights), where
    the bf16 decoder's rounding alone can swap them, against their contenders only (:func:`contenders`):
    the float32 pass then costs the prompt and a few candidates rather than all of them.
    ``BEHAVIORLM_PRECISION=fp32`` scores in float32 throughout.
    Each group of prompts with a shared prefix (:func:`prefix_groups`) runs that prefix once.
    """

    def __init__(
        self,
        model_dir,
        adapter_dir=None,
        template: str = "smollm2",
        device=None,
        batch_size: int | None = None,
        bf16: bool | None = None,
        share_prefix: bool = True,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.bf16 = uses_bf16(self.device) if bf16 is None else bf16
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.template = load_template(self.tokenizer, template)
        self.stop_ids = set(self.template.get_stop_token_ids(self.tokenizer))
        # sdpa: transformers' masking_utils passes a user 4D mask through unchanged and sdpa reads a bool
        # mask as True = attend. Eager would add a bool mask to the scores as 0/1; flash-attention kernels
        # take no arbitrary mask.
        weights_bf16 = self.bf16 and self.device.type == "cuda"
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.bfloat16 if weights_bf16 else torch.float32, attn_implementation="sdpa"
        )
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        self.model = model.to(self.device).eval()
        head = self.model.get_output_embeddings()
        # float32 views of the LM head; a copy only where the weights are bf16 (a GPU)
        self.head_weight = head.weight.float()
        self.head_bias = None if getattr(head, "bias", None) is None else head.bias.float()
        self.batch_size = batch_size or self._batch_size_for_device()
        self.share_prefix = share_prefix  # False: every prompt runs whole (the scorer before prefixes were shared)

    def _batch_size_for_device(self) -> int:
        """8 prompts on a CPU (more only adds padding); on a GPU, as many as a third of its free memory holds.

        A prompt's footprint is dominated by its candidate logits in float32 (about 120
        columns that predict an answer token x the vocabulary, x2 for the log-softmax), so the batch is that
        share of free memory over it, between 8 and 256.
        """
        if self.device.type != "cuda":
            return 8
        free, _ = torch.cuda.mem_get_info(self.device)
        per_prompt = 120 * self.model.config.vocab_size * 4 * 2
        return int(min(256, max(8, free / 3 / per_prompt)))

    @property
    def autocasts(self) -> bool:
        """Whether bf16 is autocast over float32 weights (a CPU): then near ties can be rescored in float32."""
        return self.bf16 and self.device.type == "cpu"

    def autocast(self, float32: bool = False):
        """bf16 autocast for CPU mixed precision; nothing to do for float32 or bf16 weights, or when ``float32``."""
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.autocasts and not float32 else contextlib.nullcontext()

    @torch.inference_mode()
    def _prefix_keys_values(self, prefix: list[int], float32: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's keys and values of a shared prefix, computed once for all its batches."""
        with self.autocast(float32):
            cache = self.model.get_decoder()(input_ids=torch.tensor([prefix], device=self.device), use_cache=True).past_key_values
        return [(layer.keys, layer.values) for layer in cache.layers]

    @torch.inference_mode()
    def _decode(self, prompts: list[list[int]], block: CandidateBlock, prefix: int, prefix_kv, float32: bool) -> torch.Tensor:
        """Last hidden states of ``[pad][prompt after the prefix][candidates]`` per prompt, the prefix read from ``prefix_kv``."""
        from transformers import DynamicCache

        tails = [p[prefix:] for p in prompts]
        ids, pos, mask = (x.to(self.device) for x in pack(tails, block, self.tokenizer.pad_token_id, prefix))
        cache = None
        if prefix:
            # Views of the prefix for every row: the cache concatenates the batch's keys onto them into new tensors.
            rows = len(prompts)
            cache = DynamicCache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in prefix_kv])
        with self.autocast(float32):
            return self.model.get_decoder()(
                input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=False
            ).last_hidden_state

    def _batches(self, prompt_ids: list[list[int]], rows, pooled, float32: bool, prefix_kv: dict):
        """``(prefix length, its keys and values, batch rows)`` per batch; a batch never mixes prefix groups."""
        if self.share_prefix:
            groups = prefix_groups(prompt_ids, rows, pooled)
        else:
            groups = [(0, sorted(rows, key=lambda i: -len(prompt_ids[i])))] if len(rows) else []
        for prefix, members in groups:
            key = (tuple(prompt_ids[members[0]][:prefix]), float32)
            if prefix and key not in prefix_kv:
                prefix_kv[key] = self._prefix_keys_values(prompt_ids[members[0]][:prefix], float32)
            for s in range(0, len(members), self.batch_size):
                yield prefix, prefix_kv.get(key), members[s : s + self.batch_size]

    @torch.inference_mode()
    def _score_batch(
        self, prompts: list[list[int]], block: CandidateBlock, pooled: list[list[int]] | None, prefix: int, prefix_kv,
        float32: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self._decode(prompts, block, prefix, prefix_kv, float32)
        start = hidden.shape[1] - len(block)  # first candidate column
        # The LM head in float32, once per column that predicts an answer token (not the whole sequence),
        # then each answer token's log-prob read from its column.
        vocab_lp = F.linear(hidden[:, start - 1 :].float(), self.head_weight, self.head_bias).log_softmax(-1)
        token_lp = vocab_lp[:, block.column.to(self.device), block.targets.to(self.device)]
        lp = torch.zeros(len(prompts), block.num, dtype=torch.float64, device=self.device)
        lp.index_add_(1, block.owner.to(self.device), token_lp.double())
        if pooled is None:
            return lp.cpu(), None
        # Tails are left-padded to end at column `start`, so a prompt's token q (counted from its first token,
        # prefix included) sits in column start - len + q.
        weight = torch.zeros(hidden.shape[:2], device=self.device)
        for row, (tokens, positions) in enumerate(zip(prompts, pooled)):
            weight[row, start - len(tokens) + torch.tensor(positions, device=self.device)] = 1.0
        emb = (hidden.float() * weight[..., None]).sum(1) / weight.sum(1, keepdim=True)
        return lp.cpu(), emb.cpu()

    def prompt_pass(self, prompts: Sequence[str]) -> None:
        """The decoder over the prompts alone, batched (and prefixes shared) as :meth:`score` batches them.

        The part of scoring no exact scorer avoids (generation pays it too): ``bench-score``
        times the scorer against it.
        """
        prompt_ids = [encode_pair(self.template, self.tokenizer, p, "")[0] for p in prompts]
        no_candidates = CandidateBlock([])
        for prefix, kv, idx in self._batches(prompt_ids, range(len(prompts)), None, False, {}):
            self._decode([prompt_ids[i] for i in idx], no_candidates, prefix, kv, False)

    def score(
        self,
        prompts: Sequence[str],
        candidates: Sequence[str],
        progress: bool = True,
        embed: str | None = None,
        spans: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> ScoreResult:
        """Log-probabilities of every candidate for every prompt, and E(x) when ``embed`` is given.

        ``embed="sample"`` averages the last hidden states over the sample's own
        tokens, those overlapping ``spans`` (per prompt, the character spans of its
        history and next event, as :class:`~behaviorlm_lf.data.prompts.PromptRenderer`
        records them): the instruction and candidate list are the same for every
        sample, so they would only add the wording to the embedding.
        ``embed="last"`` takes the last prompt token's hidden state.
        """
        if embed not in (None, *POOLINGS):
            raise ValueError(f"embed must be one of {POOLINGS} or None, got {embed!r}")
        if embed == "sample" and (spans is None or len(spans) != len(prompts)):
            raise ValueError("embed='sample' needs the character spans of every prompt")
        probe = prompts[0] if len(prompts) else ""
        answer_ids = [through_stop(a, self.stop_ids) for a in candidate_ids(self.template, self.tokenizer, candidates, probe)]
        block = CandidateBlock(answer_ids)
        prompt_ids = [encode_pair(self.template, self.tokenizer, p, candidates[0])[0] for p in prompts]
        pooled = None
        if embed == "sample":
            pooled = [sample_token_positions(self.tokenizer, ids, p, sp) for ids, p, sp in zip(prompt_ids, prompts, spans)]
        elif embed == "last":
            pooled = [[len(ids) - 1] for ids in prompt_ids]
        logprobs = np.zeros((len(prompts), len(candidates)))
        embeddings = np.zeros((len(prompts), self.model.config.hidden_size), dtype=np.float32) if embed else None

        prefix_kv = {}  # (prefix, float32) -> its keys and values

        def score_rows(rows, bar, float32=False, columns=None) -> int:
            """Scores ``rows`` against every candidate, or against each batch's ``columns`` (a row mask per candidate)
            only; returns the number of (prompt, candidate) pairs scored."""
            pairs = 0
            for prefix, kv, idx in self._batches(prompt_ids, rows, pooled, float32, prefix_kv):
                cols = np.arange(len(candidates)) if columns is None else np.flatnonzero(columns[idx].any(0))
                batch_block = block if columns is None else CandidateBlock([answer_ids[c] for c in cols])
                batch_pooled = pooled and [pooled[i] for i in idx]
                lp, emb = self._score_batch([prompt_ids[i] for i in idx], batch_block, batch_pooled, prefix, kv, float32)
                logprobs[np.ix_(idx, cols)] = lp.numpy()
                if emb is not None:
                    embeddings[idx] = emb.numpy()
                bar.update(len(idx))
                pairs += len(idx) * len(cols)
            return pairs

        with tqdm(total=len(prompts), unit="prompt", disable=not progress, desc="scoring") as bar:
            score_rows(range(len(prompts)), bar)
        near, near_seconds, near_pairs = [], 0.0, 0
        if self.autocasts and len(candidates) > 1:
            top_two = np.sort(logprobs, axis=1)[:, -2:]
            near = np.flatnonzero(top_two[:, 1] - top_two[:, 0] < NEAR_TIE)
            started = time.perf_counter()
            with tqdm(total=len(near), unit="prompt", disable=not progress or not len(near), desc="near ties, float32") as bar:
                near_pairs = score_rows(near, bar, float32=True, columns=contenders(logprobs))
            near_seconds = time.perf_counter() - started
            logger.info("rescored %d of %d prompts in float32 against %d candidates in all, in %.1f s: their best two "
                        "candidates were within %s nats in bf16", len(near), len(prompts), near_pairs, near_seconds, NEAR_TIE)
        return ScoreResult(
            logprobs, candidate_probs(logprobs), logprobs.argmax(1), embeddings, len(near), near_seconds, near_pairs
        )


def contenders(logprobs: np.ndarray) -> np.ndarray:
    """[N, C] mask of the candidates within ``2 x NEAR_TIE`` of each prompt's best: those that float32 could rank first.

    The probes found bf16 and float32 swapping a pair of candidates by at most 0.15 nats (0.09
    on a Xeon; docs/results/2026-11-27-bench-score-amd-contenders.md); a candidate further than ``2 x NEAR_TIE`` below the best would need
    a larger swap. ``bench-score`` checks the argmax against float32.
    """
    return logprobs >= logprobs.max(1, keepdims=True) - 2 * NEAR_TIE


def candidate_probs(logprobs: np.ndarray) -> np.ndarray:
    """Each prompt's probabilities renormalised over the candidate set (the answer is one of them)."""
    probs = np.exp(logprobs - logprobs.max(1, keepdims=True))
    return probs / probs.sum(1, keepdims=True)


@torch.inference_mode()
def naive_logprobs(model, tokenizer, template, prompts: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
    """Reference: one full forward per (prompt, candidate), summing the answer tokens' log-probs through its stop token."""
    device = next(model.parameters()).device
    stop_ids = set(template.get_stop_token_ids(tokenizer))
    out = np.zeros((len(prompts), len(candidates)))
    for n, prompt in enumerate(prompts):
        for c, cand in enumerate(candidates):
            p, r = encode_pair(template, tokenizer, prompt, cand)
            r = through_stop(r, stop_ids)
            ids = torch.tensor([p + r], device=device)
            # Logits for the last prompt token and all answer tokens but the last: those predicting the answer.
            logits = model(input_ids=ids, logits_to_keep=len(r) + 1).logits[0, :-1].double()
            out[n, c] = logits.log_softmax(-1).gather(-1, torch.tensor(r, device=device)[:, None]).sum().item()
    return out
