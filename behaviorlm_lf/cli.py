"""The ``behaviorlm`` command: one subcommand per pipeline stage, the same flags for the same things in all.

    behaviorlm <command> [flags]        (behaviorlm <command> --help for its flags)

Each subcommand is the ``main`` of its module, so ``python -m behaviorlm_lf.<folder>.<module>``
(``behaviorlm_lf.train.a_tune``) runs the same thing.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, function, what it does)
COMMANDS = {
    "models": ("model.backbones", "main", "convert the default backbone (or make the tests' tiny model)"),
    "data": ("data.convert", "main", "turn an event log into LlamaFactory data sets"),
    "a-tune": ("train.a_tune", "main", "first stage: A-Tuning (or full fine-tuning with --first-stage all_train)"),
    "select": ("train.select", "main", "score the pool with the first-stage model and select DPO pairs"),
    "merge": ("train.b_tune", "merge_main", "merge the first-stage adapter into the backbone"),
    "b-tune": ("train.b_tune", "main", "B-Tuning: the second stage on the selection (--variant), its best epoch on validation"),
    "b-tune-study": ("studies.b_tune_study", "main", "every B-Tuning variant from one selection, chosen on validation"),
    "eval": ("eval.evaluate", "main", "score the test sets: the paper's six metrics with intervals"),
    "baseline": ("eval.baselines", "main", "fit and evaluate a non-LLM baseline"),
    "report": ("eval.report", "main", "evaluate a run's models and the baselines side by side"),
    "benchmark": ("studies.benchmark", "main", "every row of the paper's tables over seeds"),
    "predict": ("eval.predict", "main", "top-k next behaviors for users"),
    "learning-curve": ("studies.learning_curve", "main", "first-stage accuracy against training samples"),
    "bench-train": ("studies.bench_train", "main", "training speed against LlamaFactory's defaults"),
    "bench-score": ("studies.bench_score", "main", "scoring speed and agreement against float32"),
    "gpu-bench": ("studies.gpu_bench", "main", "the short one-GPU benchmark"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    return "usage: behaviorlm <command> [flags]\n\ncommands:\n" + "\n".join(
        f"  {name:{width}}  {text}" for name, (_, _, text) in COMMANDS.items()
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    module, function, _ = COMMANDS[argv[0]]
    getattr(importlib.import_module(f"behaviorlm_lf.{module}"), function)(argv[1:])


if __name__ == "__main__":
    main()
