"""Speed and agreement of the candidate scorer in this machine's precision against float32, on the same prompts.

    behaviorlm bench-score [--dataset default] [--preset cpu] [--adapter DIR] [--sets test_natural test_balanced] [--n N]

Three timed passes over the same prompts, with the same batches:

1. the scorer in float32 (what every evaluation ran before this machine's bf16 units were used);
2. the scorer in this machine's precision (:mod:`behaviorlm_lf.hardware`), as the stages run it;
3. one forward pass of the decoder over the prompts alone, in the same precision: the
   floor of any exact scorer (and of generation's prompt pass).

The passes take turns chunk by chunk (five batches each) rather than one after the
other: a shared 2-core machine's speed drifts by a third over minutes, and taking turns
gives every pass the same drift, so the ratios hold even where the prompts/s do not.

Prints prompts/s of each, the speed-up of 2 over 1 (and how many near ties 2 scored again in
float32), the ratio of 2 to 3 (also without the near ties' float32 pass), how often the two
scorers' argmax agree and the largest log-probability and probability difference.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import MissingStageError, user_errors_exit
from .fileio import read_jsonl
from .hardware import machine_description, uses_bf16
from .hparams import RunArguments, parse
from .scorer import CandidateScorer, candidate_probs, encode_pair


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


@torch.inference_mode()
def prompt_pass(scorer: CandidateScorer, prompts: list[str], candidate: str) -> None:
    """The decoder over the prompts alone (left-padded, longest first, the scorer's batch size), no LM head."""
    ids = sorted((encode_pair(scorer.template, scorer.tokenizer, p, candidate)[0] for p in prompts), key=len, reverse=True)
    decoder = scorer.model.get_decoder()
    for start in range(0, len(ids), scorer.batch_size):
        batch = ids[start : start + scorer.batch_size]
        width = len(batch[0])
        input_ids = torch.full((len(batch), width), scorer.tokenizer.pad_token_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, tokens in enumerate(batch):
            input_ids[row, width - len(tokens) :] = torch.tensor(tokens)
            mask[row, width - len(tokens) :] = 1
        with scorer.autocast():
            decoder(input_ids=input_ids.to(scorer.device), attention_mask=mask.to(scorer.device))


@dataclass
class BenchScoreArguments:
    preset_key: ClassVar[str] = "bench_score"
    adapter: Path | None = field(default=None, metadata={"help": "LoRA adapter to score with (merged, as evaluation does)"})
    sets: list[str] = field(default_factory=lambda: ["test_natural", "test_balanced"], metadata={"help": "sets to score"})
    n: int | None = field(default=None, metadata={"help": "at most this many prompts per set (default: all)"})
    batch_size: int = field(default=8, metadata={"help": "prompts per forward pass"})


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    run, args = parse((RunArguments, BenchScoreArguments), argv, description=__doc__)
    logging.basicConfig(level=logging.WARNING)
    layout = run.layout()
    if not layout.behaviors_file.is_file():
        raise MissingStageError("the data stage", layout.data_dir, f"behaviorlm data --dataset {run.dataset} --preset {run.preset}")
    candidates = json.loads(layout.behaviors_file.read_text(encoding="utf-8"))["candidates"]
    prompts = [r["instruction"] for s in args.sets for r in read_jsonl(layout.set_file(s))[: args.n]]
    model = run.model_dir()
    n = len(prompts)
    scorers = {
        precision: CandidateScorer(model, args.adapter, run.chat_template(), device="cpu", batch_size=args.batch_size, bf16=bf16)
        for precision, bf16 in (("float32", False), ("ours", None))
    }
    for scorer in scorers.values():
        scorer.score(prompts[:2], candidates, progress=False)  # warm-up, untimed
    passes = {name: (lambda chunk, scorer=scorer: scorer.score(chunk, candidates, progress=False)) for name, scorer in scorers.items()}
    passes["prompt pass"] = lambda chunk: prompt_pass(scorers["ours"], chunk, candidates[0])
    scored = {name: [] for name in scorers}  # ScoreResult per chunk
    seconds = dict.fromkeys(passes, 0.0)
    chunk_size = 5 * args.batch_size
    for start in tqdm(range(0, n, chunk_size), unit="chunk", desc="bench-score"):
        chunk = prompts[start : start + chunk_size]
        for name, run_pass in passes.items():
            result, elapsed = timed(run_pass, chunk)
            seconds[name] += elapsed
            if name in scored:
                scored[name].append(result)
    ours, float32 = (np.concatenate([r.logprobs for r in scored[k]]) for k in ("ours", "float32"))
    near_ties = sum(r.near_ties for r in scored["ours"])
    first_pass = seconds["ours"] - sum(r.near_tie_seconds for r in scored["ours"])

    ours_precision = "bf16 autocast" if scorers["ours"].bf16 else "float32"
    print(f"\n{machine_description()}: {n} prompts of {layout.data_dir}/{{{','.join(args.sets)}}}, {len(candidates)} "
          f"candidates, model {model}{' + ' + str(args.adapter) if args.adapter else ''}; bf16 units: {uses_bf16('cpu')}")
    print(f"  scorer, float32          {n / seconds['float32']:.3f} prompts/s")
    print(f"  scorer, ours ({ours_precision}) {n / seconds['ours']:.3f} prompts/s   speed-up {seconds['float32'] / seconds['ours']:.2f}x"
          f"   (near ties scored again in float32: {near_ties}/{n})")
    print(f"  prompt pass alone (ours) {n / seconds['prompt pass']:.3f} prompts/s   scorer / prompt pass = "
          f"{seconds['ours'] / seconds['prompt pass']:.2f}x ({first_pass / seconds['prompt pass']:.2f}x before the near ties)")
    same = int((ours.argmax(1) == float32.argmax(1)).sum())
    print(f"  argmax identical         {same}/{n} ({same / n:.2%})")
    print(f"  largest |log p| diff     {np.abs(ours - float32).max():.4f} "
          f"(largest |p| diff {np.abs(candidate_probs(ours) - candidate_probs(float32)).max():.4f})")


if __name__ == "__main__":
    main()
