"""Speed and agreement of the candidate scorer in this machine's precision against float32, on the same prompts.

    behaviorlm bench-score [--dataset default] [--preset cpu] [--adapter DIR] [--sets test_natural test_balanced] [--n N]

Five timed passes over the same prompts:

1. the scorer in float32, every prompt run whole: the scorer as it was before this machine's
   bf16 units were used and prompts' shared prefixes were run once;
2. the scorer as the stages run it: this machine's precision (:mod:`behaviorlm_lf.extras.hardware`),
   each shared prefix run once;
3. the same in this machine's precision with every prompt run whole (what precision alone gives);
4. the decoder over the prompts alone, run whole, in the same precision: what any scorer that
   runs every prompt whole pays (and generation's prompt pass);
5. the same with each shared prefix run once: what an exact scorer pays at least.

The passes take turns chunk by chunk (five batches each) rather than one after the
other: a shared 2-core machine's speed drifts by a third over minutes, and taking turns
gives every pass the same drift, so the ratios hold even where the prompts/s do not.

Prints prompts/s of each, the speed-ups of 2 and 3 over 1 (and how many near ties 2 scored again
in float32, against how many of their candidates), the ratios of 2 to 4 and to 5 (also without the
near ties' float32 pass), how often 2's and 1's argmax agree and the largest log-probability and
probability difference.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from ..extras.fileio import read_jsonl
from ..extras.hardware import machine_description, uses_bf16
from ..hparams import BenchScoreArguments, RunArguments
from ..lf.template import chat_template
from ..model.scorer import CandidateScorer, candidate_probs


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def bench_score(run: RunArguments, args: BenchScoreArguments) -> str:
    """Time the passes over ``args.n`` prompts of each set; returns the printed comparison."""
    layout = run.layout()
    candidates = layout.vocabulary()["candidates"]
    prompts = [r["instruction"] for s in args.sets for r in read_jsonl(layout.set_file(s))[: args.n]]
    model = run.layout().model_dir()
    n = len(prompts)
    settings = {"float32, whole prompts": (False, False), "ours": (None, True), "ours, whole prompts": (None, False)}
    scorers = {
        name: CandidateScorer(model, args.adapter, chat_template(run.layout()), device="cpu", batch_size=args.batch_size, bf16=bf16,
                              share_prefix=share)
        for name, (bf16, share) in settings.items()
    }
    for scorer in scorers.values():
        scorer.score(prompts[:2], candidates, progress=False)  # warm-up, untimed
    passes = {name: (lambda chunk, scorer=scorer: scorer.score(chunk, candidates, progress=False)) for name, scorer in scorers.items()}
    passes["prompt pass, whole"] = scorers["ours, whole prompts"].prompt_pass
    passes["prompt pass, shared prefixes once"] = scorers["ours"].prompt_pass
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
    ours, float32 = (np.concatenate([r.logprobs for r in scored[k]]) for k in ("ours", "float32, whole prompts"))
    near_ties = {name: sum(r.near_ties for r in results) for name, results in scored.items()}
    near_pairs = {name: sum(r.near_tie_candidates for r in results) for name, results in scored.items()}
    first_pass = seconds["ours"] - sum(r.near_tie_seconds for r in scored["ours"])

    precision = "bf16 autocast" if scorers["ours"].bf16 else "float32"
    lines = [(f"\n{machine_description()}: {n} prompts of {layout.data_dir}/{{{','.join(args.sets)}}}, {len(candidates)} "
          f"candidates, model {model}{' + ' + str(args.adapter) if args.adapter else ''}; bf16 units: {uses_bf16('cpu')}")]
    baseline = seconds["float32, whole prompts"]
    for name in scorers:
        line = f"  scorer, {name:<23} {n / seconds[name]:.3f} prompts/s"
        if name != "float32, whole prompts":
            line += f"   speed-up {baseline / seconds[name]:.2f}x ({precision}; near ties scored again in float32: {near_ties[name]}/{n}"
            if near_ties[name]:
                line += f", {near_pairs[name] / near_ties[name]:.1f} of {len(candidates)} candidates each"
            line += ")"
        lines.append(line)
    for name in ("prompt pass, whole", "prompt pass, shared prefixes once"):
        lines.append(f"  {name:<31} {n / seconds[name]:.3f} prompts/s   scorer (ours) / it = {seconds['ours'] / seconds[name]:.2f}x "
              f"({first_pass / seconds[name]:.2f}x before the near ties)")
    same = int((ours.argmax(1) == float32.argmax(1)).sum())
    lines.append(f"  argmax identical, ours and float32: {same}/{n} ({same / n:.2%})")
    lines.append(f"  largest |log p| diff     {np.abs(ours - float32).max():.4f} "
                 f"(largest |p| diff {np.abs(candidate_probs(ours) - candidate_probs(float32)).max():.4f})")
    return "\n".join(lines)

