"""Sample lengths against the training cutoff, checked when the sets are written.

LlamaFactory cuts a training sequence longer than ``cutoff_len`` at the end: a prompt over it loses its next
event, its candidates and its question, and the model trains on a history with no answer to give, without a word.
Long behavior names or thousands of classes make such prompts, so the ``data`` stage counts the tokens of every
sample (prompt, answer and the chat template's own) with the backbone's tokenizer and refuses sets that do not fit.
A data stage run before its backbone was converted could not count them; A-Tuning then counts the sets it trains on
(:func:`check_if_unchecked`), so no stage trains on cut prompts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from ..extras.cache import MANIFEST
from ..extras.errors import UserError
from ..extras.fileio import read_jsonl
from ..extras.layout import RunLayout
from ..lf.run import CONFIG_DIR

logger = logging.getLogger(__name__)

BATCH = 1024


class SamplesTooLongError(UserError):
    """Some samples do not fit the cutoff; ``longest`` is the longest one's tokens."""

    def __init__(self, message: str, longest: int):
        super().__init__(message)
        self.longest = longest


def training_cutoff(preset_cutoff: int | None) -> int:
    """The A-Tuning cutoff a preset trains with: its own, else the YAML's (the paper's setting)."""
    if preset_cutoff is not None:
        return preset_cutoff
    return int(yaml.safe_load((CONFIG_DIR / "a_tune.yaml").read_text(encoding="utf-8"))["cutoff_len"])


def _template_tokens(tokenizer) -> int:
    """Tokens the chat template adds around one prompt and answer (its system turn, role markers)."""
    if not getattr(tokenizer, "chat_template", None):
        return 0
    encoded = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], tokenize=True)
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return max(0, len(ids) - len(tokenizer("x", add_special_tokens=False)["input_ids"]) - len(tokenizer("y", add_special_tokens=False)["input_ids"]))


def check_candidate_list(candidates: list[str], model_dir: str, cutoff: int) -> None:
    """Before any set is rendered: every prompt lists every candidate, so a list over ``cutoff`` alone (thousands of
    behaviors, long names) is refused at once, not after minutes of rendering and counting."""
    from transformers import AutoTokenizer

    from .prompts import PromptRenderer

    tokens = len(AutoTokenizer.from_pretrained(model_dir)(PromptRenderer(candidates).candidates, add_special_tokens=False)["input_ids"])
    if tokens > cutoff:
        raise SamplesTooLongError(
            f"the candidate list of {len(candidates)} behaviors alone is {tokens} tokens, over the training cutoff of "
            f"{cutoff}, and every prompt lists it: keep fewer behaviors (--top-k, --min-count) or shorter names, or a larger "
            "--max-prompt-tokens with the same --cutoff_len for a-tune and b-tune", tokens,
        )


def check_sample_lengths(folder: Path, sets: tuple[str, ...], model_dir: str, cutoff: int, shown_as: Path) -> dict:
    """Tokens of each set's longest sample; a :class:`UserError` naming the count over ``cutoff`` and the longest
    (``folder`` is the stage's temporary folder, ``shown_as`` the data folder it becomes)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    around = _template_tokens(tokenizer)
    longest, over, total = {}, 0, 0
    worst = (0, "", 0)  # tokens, set, row
    for name in sets:
        records = read_jsonl(folder / f"{name}.jsonl")
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            prompts = tokenizer([r["instruction"] for r in batch], add_special_tokens=False)["input_ids"]
            answers = tokenizer([r["output"] for r in batch], add_special_tokens=False)["input_ids"]
            for row, (prompt, answer) in enumerate(zip(prompts, answers), start=start + 1):
                tokens = len(prompt) + len(answer) + around
                longest[name] = max(longest.get(name, 0), tokens)
                over += tokens > cutoff
                worst = max(worst, (tokens, name, row))
        total += len(records)
    if over:
        raise SamplesTooLongError(
            f"{over} of {total} samples are longer than the training cutoff of {cutoff} tokens (the longest, "
            f"{shown_as / worst[1]}.jsonl row {worst[2]}, has {worst[0]}); LlamaFactory would cut them inside the "
            "history, without their question: use a shorter --history-len, fewer behaviors (--top-k) or shorter names, "
            "or --cut-history, or a larger --max-prompt-tokens with the same --cutoff_len for a-tune and b-tune",
            worst[0],
        )
    logger.info("longest sample %d tokens (%s), within the cutoff of %d", worst[0], worst[1], cutoff)
    return {"cutoff_len": cutoff, "longest_sample_tokens": longest}


def check_if_unchecked(layout: RunLayout, sets: tuple[str, ...], model_dir: str, cutoff: int) -> None:
    """Count ``sets`` against ``cutoff`` with ``model_dir``'s tokenizer if the data stage could not (it ran without a
    model folder); the same one-line error when some do not fit."""
    manifest = json.loads((layout.data_dir / MANIFEST).read_text(encoding="utf-8"))
    if manifest["config"].get("lengths", {}).get("tokenizer") is None:
        logger.info("the data stage ran without a model folder: checking %s against the cutoff of %d tokens now", sets, cutoff)
        try:
            check_sample_lengths(layout.data_dir, sets, model_dir, cutoff, layout.data_dir)
        except SamplesTooLongError as err:
            raise SamplesTooLongError(f"the data stage ran without a model folder, counted now: {err}; the flags are "
                                      f"{layout.data_command()}'s", err.longest) from None
