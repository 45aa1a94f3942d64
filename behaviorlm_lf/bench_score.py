"""Benchmark exact candidate scoring against the two obvious alternatives, on the same prompts in one run.

1. shared-prefix scorer (``scorer.CandidateScorer``): the prompt once, all candidates packed after it;
2. naive per-candidate scoring (``scorer.naive_logprobs``): one forward per (prompt, candidate),
   timed on the first ``--naive-n`` prompts (it is slow) and reported per prompt;
3. LlamaFactory's own generate-based prediction: ``llamafactory-cli train`` with ``do_predict`` and
   ``predict_with_generate`` on the same prompts, as a subprocess.

    python -m behaviorlm_lf.bench_score --model models/SmolLM2-135M-Instruct \\
        --prompts data/default/test_natural.jsonl --behaviors data/default/behaviors.json --n 16
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from .eval import PREDICT_CONFIG
from .fileio import read_jsonl
from .lf_run import run_llamafactory
from .scorer import CandidateScorer, encode_pair, naive_logprobs


def prompt_text(record: dict) -> str:
    """The user message LlamaFactory's alpaca converter builds: instruction, then input on a new line."""
    return "\n".join(part for part in (record["instruction"], record.get("input", "")) if part)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    """Result, wall seconds and CPU seconds (all threads): CPU time is less skewed when others share the machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_llamafactory_predict(model: Path, records: list[dict], batch_size: int, max_new_tokens: int) -> dict:
    """Wall and CPU seconds of ``llamafactory-cli`` with ``predict.yaml``, its own ``predict_runtime`` and the texts."""
    with tempfile.TemporaryDirectory(prefix="bench_lf_") as tmp:
        tmp = Path(tmp)
        with open(tmp / "prompts.jsonl", "w", encoding="utf-8") as f:
            keys = ("instruction", "input", "output")
            f.writelines(json.dumps({k: r.get(k, "") for k in keys}) + "\n" for r in records)
        (tmp / "dataset_info.json").write_text(json.dumps({"bench": {"file_name": "prompts.jsonl"}}))
        overrides = {
            "model_name_or_path": str(model.resolve()),
            "dataset_dir": str(tmp),
            "eval_dataset": "bench",
            "cutoff_len": 4096,
            "max_new_tokens": max_new_tokens,
            "per_device_eval_batch_size": batch_size,
        }
        cpu_before = _children_cpu()
        start = time.perf_counter()
        run_llamafactory(PREDICT_CONFIG, overrides, tmp / "out")
        wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
        metrics = json.loads((tmp / "out" / "predict_results.json").read_text())
        generated = [row["predict"] for row in read_jsonl(tmp / "out" / "generated_predictions.jsonl")]
    return {"wall": wall, "cpu": cpu, "predict_runtime": metrics["predict_runtime"], "generated": generated}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/SmolLM2-135M-Instruct"))
    parser.add_argument("--prompts", type=Path, required=True, help="alpaca JSON lines: instruction, input, output")
    parser.add_argument("--behaviors", type=Path, required=True, help='JSON {"behaviors": [{"name": ...}, ...]}')
    parser.add_argument("--n", type=int, default=16, help="prompts (the first n of the file)")
    parser.add_argument("--naive-n", type=int, default=2, help="prompts timed with naive scoring (the first ones)")
    parser.add_argument("--batch-size", type=int, default=8, help="shared-prefix scorer and LlamaFactory batch size")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--skip-llamafactory", action="store_true")
    args = parser.parse_args(argv)

    records = read_jsonl(args.prompts)[: args.n]
    prompts = [prompt_text(r) for r in records]
    candidates = [b["name"] for b in json.loads(args.behaviors.read_text())["behaviors"]]
    n, naive_n = len(prompts), min(args.naive_n, len(prompts))

    scorer, load, _ = timed(lambda: CandidateScorer(args.model, batch_size=args.batch_size))
    scorer.score(prompts[:1], candidates, progress=False)  # warm-up, untimed
    prompt_len = np.mean([len(encode_pair(scorer.template, scorer.tokenizer, p, "")[0]) for p in prompts])
    answer_len = sum(len(encode_pair(scorer.template, scorer.tokenizer, "", c)[1]) for c in candidates)
    print(
        f"model {args.model} on {scorer.device} ({scorer.model.dtype}), {n} prompts (mean {prompt_len:.0f} "
        f"prompt tokens), {len(candidates)} candidates ({answer_len} answer tokens in all); scorer load "
        f"{load:.1f}s (not counted). Rates: prompts per wall second, and per CPU second (all threads).",
        flush=True,
    )

    shared, wall, cpu = timed(lambda: scorer.score(prompts, candidates, progress=False))
    shared_rate = (n / wall, n / cpu)
    print(f"shared-prefix scorer   : {shared_rate[0]:.4f} /s, {shared_rate[1]:.4f} /CPU-s ({n} prompts)", flush=True)

    naive, wall, cpu = timed(
        lambda: naive_logprobs(scorer.model, scorer.tokenizer, scorer.template, prompts[:naive_n], candidates)
    )
    naive_rate = (naive_n / wall, naive_n / cpu)
    print(
        f"naive per-candidate    : {naive_rate[0]:.4f} /s, {naive_rate[1]:.4f} /CPU-s (timed on the first "
        f"{naive_n} of {n} prompts, {naive_n * len(candidates)} forwards; per-prompt rate extrapolated)",
        flush=True,
    )
    agree = int((naive.argmax(1) == shared.pred[:naive_n]).sum())
    max_diff = np.abs(naive - shared.logprobs[:naive_n]).max()

    lines = [
        f"speed-up vs naive      : {shared_rate[0] / naive_rate[0]:.1f}x wall, {shared_rate[1] / naive_rate[1]:.1f}x CPU"
    ]
    if not args.skip_llamafactory:
        lf = run_llamafactory_predict(args.model, records, args.batch_size, args.max_new_tokens)
        lf_rate = (n / lf["wall"], n / lf["cpu"])
        loop_rate = n / lf["predict_runtime"]
        print(
            f"LlamaFactory predict   : whole subprocess {lf_rate[0]:.4f} /s, {lf_rate[1]:.4f} /CPU-s ({lf['wall']:.1f}s "
            f"wall, start-up, model load and tokenising included); prediction loop only {loop_rate:.4f} /s (its "
            f"predict_runtime {lf['predict_runtime']:.1f}s); greedy, max_new_tokens {args.max_new_tokens}, "
            f"batch {args.batch_size}"
        )
        lines.append(
            f"speed-up vs LlamaFactory: whole subprocess {shared_rate[0] / lf_rate[0]:.1f}x wall, "
            f"{shared_rate[1] / lf_rate[1]:.1f}x CPU; prediction loop only {shared_rate[0] / loop_rate:.1f}x wall"
        )
        hits = sum(g.strip() == candidates[p] for g, p in zip(lf["generated"], shared.pred))
        lines.append(f"LlamaFactory generations equal to the shared-prefix label: {hits}/{n}")
    lines.append(f"labels shared == naive : {agree}/{naive_n} prompts; max |log-prob difference| {max_diff:.2e}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
