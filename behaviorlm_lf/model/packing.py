"""Prompts and candidates as the tokens LlamaFactory trains on, and packed into the scorer's batches.

One row per prompt: ``[pad][prompt tail][cand_1]...[cand_C]`` under a tree-shaped mask, after a prefix shared by a
group of prompts whose keys and values are computed once (:mod:`.scorer` explains why the logits are exact).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def load_template(tokenizer, name: str = "smollm2"):
    """LlamaFactory's chat template; also fixes the tokenizer's special tokens as training does."""
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments

    return get_template_and_fix_tokenizer(tokenizer, DataArguments(template=name))


def encode_pair(template, tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) exactly as LlamaFactory's supervised processor builds them (default system)."""
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return template.encode_oneturn(tokenizer, messages, system=None)


def sample_token_positions(tokenizer, prompt_ids: list[int], prompt: str, spans: Sequence[Sequence[int]]) -> list[int]:
    """Positions in ``prompt_ids`` (the templated prompt) of the tokens that overlap the character ``spans`` of ``prompt``.

    The user message is tokenised on its own inside the chat template, so its tokens
    appear unchanged in ``prompt_ids``; they are located there and their character
    offsets decide which belong to the spans. A template that tokenises the message
    differently fails loudly rather than pool the wrong tokens.
    """
    encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    content = encoded["input_ids"]
    offset = next((i for i in range(len(prompt_ids) - len(content) + 1) if prompt_ids[i : i + len(content)] == content), None)
    if offset is None:
        raise ValueError("the chat template does not keep the user message's tokens as they are; cannot locate the sample")
    return [
        offset + i
        for i, (start, end) in enumerate(encoded["offset_mapping"])
        if any(start < span_end and end > span_start for span_start, span_end in spans)
    ]


def candidate_ids(template, tokenizer, candidates: Sequence[str], probe_prompt: str) -> list[list[int]]:
    """Answer ids of every candidate, tokenised once for all prompts.

    LlamaFactory encodes each message on its own, so the answer ids cannot depend on
    the prompt. Checked on a real and an empty prompt so that a template that merged
    across the boundary fails loudly instead of scoring the wrong tokens.
    """
    pairs = [encode_pair(template, tokenizer, probe_prompt, c) for c in candidates]
    if any(p != pairs[0][0] for p, _ in pairs) or any(
        r != encode_pair(template, tokenizer, "", c)[1] for c, (_, r) in zip(candidates, pairs)
    ):
        raise ValueError("the template does not split prompt and answer tokens cleanly")
    return [r for _, r in pairs]


def through_stop(answer_ids: list[int], stop_ids) -> list[int]:
    """The answer ids up to and including the first stop token: what generation emits before it stops."""
    stop = next((i for i, token in enumerate(answer_ids) if token in stop_ids), len(answer_ids) - 1)
    return answer_ids[: stop + 1]


class CandidateBlock:
    """The packed candidate tokens, identical for every prompt, with what scoring needs per token.

    A candidate's last token is only ever a target (nothing after it is scored), so it
    is not fed in: the block holds ``cand[:-1]`` for each candidate, about C tokens fewer.
    Every target is predicted by one column of the slice ``[last prompt token][block]``,
    and every column of that slice predicts a target, so the LM head runs on that
    slice once: the last prompt token predicts all C first tokens.
    """

    def __init__(self, cand_ids: list[list[int]]):
        ids, seg, pos, targets, column, owner = [], [], [], [], [], []
        for c, toks in enumerate(cand_ids):
            start = len(ids)
            ids += toks[:-1]
            seg += [c + 1] * (len(toks) - 1)  # 0 is the prompt
            pos += range(len(toks) - 1)  # added to the prompt length
            targets += toks
            # Token k is predicted by its candidate's input k-1, the first by the last prompt token (column 0).
            column += [0] + list(range(start + 1, start + len(toks)))
            owner += [c] * len(toks)
        self.ids, self.seg, self.pos, self.targets, self.column, self.owner = (
            torch.tensor(x, dtype=torch.long) for x in (ids, seg, pos, targets, column, owner)
        )
        self.num = len(cand_ids)

    def __len__(self) -> int:
        return len(self.ids)


def pack(tails: list[list[int]], block: CandidateBlock, pad_id: int, prefix: int = 0):
    """Left-padded rows ``[pad][prompt tail][candidates]`` after a shared prefix of ``prefix`` tokens held in the cache.

    The candidate block sits in the same columns in every row. The mask covers the
    prefix's columns too (every token sees them): ``[rows, 1, columns, prefix + columns]``.
    """
    k = len(block)
    t = max(map(len, tails)) + k
    ids = torch.full((len(tails), t), pad_id)
    seg = torch.full((len(tails), t), -1)  # -1 padding, 0 prompt, c+1 candidate c
    pos = torch.zeros((len(tails), t), dtype=torch.long)
    for b, p in enumerate(tails):
        n = len(p)
        ids[b, t - k - n :] = torch.cat([torch.tensor(p, dtype=torch.long), block.ids])
        seg[b, t - k - n :] = torch.cat([torch.zeros(n, dtype=torch.long), block.seg])
        pos[b, t - k - n :] = prefix + torch.cat([torch.arange(n), n + block.pos])
    i = torch.arange(t)
    valid = seg >= 0
    # Query i sees key j if j <= i, j is a prompt token or in i's own candidate, and neither is padding.
    mask = (i[:, None] >= i[None, :]) & ((seg[:, None, :] == 0) | (seg[:, :, None] == seg[:, None, :]))
    mask &= valid[:, :, None] & valid[:, None, :]
    # Padding attends to itself: some sdpa kernels turn a fully masked row into NaN, and NaN values
    # leak into every row even through zero attention weights.
    mask |= torch.eye(t, dtype=torch.bool)
    mask = torch.cat([torch.ones(len(tails), t, prefix, dtype=torch.bool), mask], dim=-1)
    return ids, pos, mask[:, None]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def prefix_groups(prompt_ids: list[list[int]], rows, pooled: list[list[int]] | None = None) -> list[tuple[int, list[int]]]:
    """``rows`` grouped by the prefix their prompts share, as ``(prefix length, rows longest first)``, longest first.

    Prompts go together when they share more than the prefix common to all of them (for
    this project's prompts: the same instruction template). A group's prefix stops
    before its prompts' last tokens (which predict the candidates' first tokens) and
    before any token pooled into E(x), so that the batch pass computes both.
    """
    rows = list(rows)
    if not rows:
        return []
    first = prompt_ids[rows[0]]
    common = min(_common_length(first, prompt_ids[i]) for i in rows)
    members_by_key: dict[tuple[int, ...], list[int]] = {}
    for i in rows:
        members_by_key.setdefault(tuple(prompt_ids[i][: common + 1]), []).append(i)
    groups = []
    for members in members_by_key.values():
        head = prompt_ids[members[0]]
        length = min(min(_common_length(head, prompt_ids[i]), len(prompt_ids[i]) - 1) for i in members)
        if pooled is not None:
            length = min(length, *(min(pooled[i], default=length) for i in members))
        members.sort(key=lambda i: -len(prompt_ids[i]))
        groups.append((max(length, 0), members))
    # Longest prompts first: memory peaks at once.
    return sorted(groups, key=lambda group: -len(prompt_ids[group[1][0]]))
