"""The ``behaviorlm`` command: one subcommand per pipeline stage or study, the same flags for the same things in all.

    behaviorlm <command> [flags]        (behaviorlm <command> --help for its flags)
    python -m behaviorlm_lf <command> [flags]

A subcommand is one row of :data:`COMMANDS`: the function it runs, the settings
classes (:mod:`behaviorlm_lf.hparams`) parsed from its flags in the order the
function takes them, and how its result is shown. One :func:`main` does the
rest for all of them: parse (preset overlay, ``--config`` YAML, flags), log,
run, print, and turn a user's error into one line (:func:`user_errors_exit`).
"""

from __future__ import annotations

import importlib
import logging
import shlex
import sys
from dataclasses import dataclass

from .extras.errors import user_errors_exit


@dataclass(frozen=True)
class Command:
    """A subcommand: ``module.function(*settings)``; what it returns is printed, through ``module.show`` if named."""

    module: str
    function: str
    settings: tuple[str, ...]
    help: str
    show: str | None = None  # a function of the module turning the result into the text printed
    records_command: bool = False  # studies write the command line they ran under into their report: function(..., command=)
    log_level: int = logging.INFO  # predict and bench-score print only their results
    default_flags: tuple[str, ...] = ()  # parsed before the user's flags, which win


RUN = ("RunArguments",)
FIRST = (*RUN, "FirstStageArguments")
SECOND = (*FIRST, "SelectArguments", "BTuneArguments")

COMMANDS = {
    "models": Command("model.backbones", "make_models", (*RUN, "ModelsArguments"),
                      "convert the default backbone (or make the tests' tiny model)"),
    "data": Command("data.convert", "convert", (*RUN, "DataArguments"), "turn an event log into LlamaFactory data sets"),
    "a-tune": Command("train.a_tune", "a_tune", (*FIRST, "ATuneArguments"),
                      "first stage: A-Tuning (or full fine-tuning with --first-stage all_train)"),
    "select": Command("train.select", "select", (*FIRST, "SelectArguments"),
                      "score the pool with the first-stage model and select DPO pairs"),
    "merge": Command("train.b_tune", "merge", FIRST, "merge the first-stage adapter into the backbone"),
    "b-tune": Command("train.b_tune", "b_tune", SECOND,
                      "B-Tuning: the second stage on the selection (--variant), its best epoch on validation", show="show_report"),
    "b-tune-study": Command("studies.b_tune_study", "study", (*RUN, "DataArguments", "FirstStageArguments", "SelectArguments",
                                                               "StudyArguments"),
                            "every B-Tuning variant from one selection, chosen on validation", show="show_study",
                            records_command=True),
    "eval": Command("eval.evaluate", "evaluate_run", (*SECOND, "EvalArguments"),
                    "score the test sets: the paper's six metrics with intervals", show="show_metrics"),
    "baseline": Command("eval.baselines", "run_baseline", (*RUN, "BaselineArguments"), "fit and evaluate a non-LLM baseline"),
    "report": Command("eval.report", "report", SECOND, "evaluate a run's models and the baselines side by side",
                      show="show_summary"),
    "benchmark": Command("studies.benchmark", "benchmark", (*RUN, "DataArguments", "BenchmarkArguments"),
                         "every row of the paper's tables over seeds", show="show_results", records_command=True),
    "predict": Command("eval.predict", "predict_queries", (*SECOND, "PredictArguments"), "top-k next behaviors for users",
                       log_level=logging.WARNING),
    "learning-curve": Command("studies.learning_curve", "learning_curve", (*RUN, "DataArguments", "CurveArguments"),
                              "first-stage accuracy against training samples", records_command=True),
    "bench-train": Command("studies.bench_train", "bench_train", (*RUN, "BenchTrainArguments"),
                           "training speed against LlamaFactory's defaults"),
    "bench-score": Command("studies.bench_score", "bench_score", (*RUN, "BenchScoreArguments"),
                           "scoring speed and agreement against float32", log_level=logging.WARNING),
    "gpu-bench": Command("studies.gpu_bench", "gpu_bench", (*RUN, "DataArguments", "BenchmarkArguments", "GpuBenchArguments"),
                         "the short one-GPU benchmark", records_command=True,
                         default_flags=("--preset", "gpu-bench", "--dataset", "foursquare-nyc")),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    return "usage: behaviorlm <command> [flags]\n\ncommands:\n" + "\n".join(
        f"  {name:{width}}  {command.help}" for name, command in COMMANDS.items()
    )


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    from . import hparams

    name, flags = argv[0], argv[1:]
    command = COMMANDS[name]
    module = importlib.import_module(f"behaviorlm_lf.{command.module}")
    classes = tuple(getattr(hparams, cls) for cls in command.settings)
    settings = hparams.parse(classes, [*command.default_flags, *flags], description=module.__doc__, prog=f"behaviorlm {name}")
    logging.basicConfig(level=command.log_level, format="%(asctime)s %(name)s %(message)s")
    extra = {"command": shlex.join(["behaviorlm", name, *flags])} if command.records_command else {}
    result = getattr(module, command.function)(*settings, **extra)
    if command.show is not None:
        result = getattr(module, command.show)(result)
    if result is not None:
        print(result)


if __name__ == "__main__":
    main()
