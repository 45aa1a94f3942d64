"""The paper's evidence on one data set: baselines, BehaviorLM, its ablations and sweeps, with intervals.

    behaviorlm benchmark --dataset foursquare-nyc --preset cpu [--seeds 0 1 2] [--rows main|all]

``--rows main`` (the default) runs the main table (Tables 3 and 8): popularity,
context popularity, Markov, SASRec and BERT4Rec fit on the whole training split,
the untuned LLM (LLM-NT), full fine-tuning on all behaviors without the
auxiliary corpus (the TALLRec-style row) and BehaviorLM. ``--rows all`` adds the
ablations (Table 4, section 4.4: w/o aux, w/o DDS, w/o KMeans, w/o DPO, w/o
A-Tuning = full fine-tuning followed by the same B-Tuning, and the confusion term
as printed), Fig. 5's first stages (all behaviors, anchors, medium + tail), the F
sweep (Fig. 3b), and the epsilon (Table 5) and anchor threshold (Table 6) sweeps.

The rows are data (:class:`behaviorlm_lf.eval.rows.Row`: the model evaluated, a
sub-run and the changes to the first stage, selection, variant and data; the
demo's report declares its rows the same way), here :data:`BASELINE_ROWS`,
:data:`LLM_ROWS`, :data:`ABLATION_ROWS` and :func:`sweep_rows`, read by one
executor (:meth:`SeedRunner.run_row`), so an ablation is one line. Each seed converts the data with that seed (another user
split); rows that share a stage share its output (the stage cache), BehaviorLM's
row is the run `make demo` trains, an interrupted benchmark resumes where it
stopped, and the report is rewritten after every row. ``reports/benchmark/<dataset>/<preset>/results.md``
opens with the paper's claims checked against paired bootstrap intervals, then
every table with 95% intervals, the stage times and the figures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..data.convert import convert
from ..eval.report import claims_lines, difference_table, markdown_table, summary_frame, write_figures
from ..eval.rows import BASELINE_ROWS, Row, evaluate_row
from ..extras.errors import UserError
from ..extras.fileio import atomic_output
from ..extras.hardware import machine_description
from ..hparams import (
    ATuneArguments,
    BenchmarkArguments,
    BTuneArguments,
    DataArguments,
    FirstStageArguments,
    RunArguments,
    SelectArguments,
    for_preset,
)
from ..train.a_tune import a_tune
from ..train.b_tune import b_tune
from ..train.select import select

logger = logging.getLogger(__name__)

ALL_BEHAVIORS = {"first_stage": "all_train", "epsilon": 0.0}  # TALLRec-style full fine-tuning: no auxiliary corpus
LLM_ROWS = [
    Row("LLM-NT", "LLM-NT", model="base"),
    Row("Full fine-tuning", "Full_fine-tuning", model="a_tune", first=ALL_BEHAVIORS),
    Row("BehaviorLM"),
]
ABLATION_ROWS = [
    Row("w/o aux", "wo_aux", first={"epsilon": 0.0}),
    Row("w/o DDS", selection={"strategy": "random"}),
    Row("w/o KMeans", selection={"strategy": "topk"}),
    Row("w/o DPO", variant="sft"),
    # section 4.4: fine-tune on all behaviors, then the same B-Tuning from that model (its pool scores, its reference)
    Row("w/o A-Tuning", "Full_fine-tuning", first=ALL_BEHAVIORS),
    Row("Confusion term as printed (eq. 2)", selection={"confusion": "literal"}),
]
TAIL_FIRST = Row("Tail-first stage", first={"first_stage": "tail_train"})  # Fig. 5's third first stage
MAIN_ROWS = [row.name for row in (*BASELINE_ROWS, *LLM_ROWS)]
ABLATIONS = [row.name for row in ABLATION_ROWS]
FIG5 = {"all behaviors": "w/o A-Tuning", "anchor behaviors": "BehaviorLM", "medium + tail behaviors": "Tail-first stage"}


def sweep_rows(args: BenchmarkArguments) -> list[Row]:
    """The F (Fig. 3b), epsilon (Table 5) and anchor threshold (Table 6) sweeps; each epsilon trains its own first
    stage, so it has its own sub-run."""
    return (
        [Row(f"F={f}", selection={"per_class": f}) for f in args.f_values]
        + [Row(f"epsilon={e:g}", slug(f"epsilon={e:g}"), first={"epsilon": e}) for e in args.epsilons]
        + [Row(f"anchor threshold={t:.1%}", data={"anchor_threshold": t}) for t in args.thresholds]
    )


CHECKS = [
    ("BehaviorLM Tail above full fine-tuning", "BehaviorLM", "Full fine-tuning", "tail", 0.0),
    ("BehaviorLM Head within 2 points of full fine-tuning (not more than 2 points below)", "BehaviorLM", "Full fine-tuning", "head", 0.02),
    ("BehaviorLM Overall above SASRec", "BehaviorLM", "SASRec", "overall", 0.0),
]


def slug(row: str) -> str:
    """A row's name as a folder name: "w/o DDS" -> "wo_DDS"."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in row.replace("/", "")).strip("_")


class SeedRunner:
    """Runs the rows of one seed, each in its sub-run, and records stage wall times."""

    def __init__(self, run: RunArguments, data: DataArguments, args: BenchmarkArguments):
        self.run, self.data, self.args = run, data, args
        self.times: list[dict] = []
        self.done: dict[str, Path] = {}  # a model's resolved settings -> its report

    def timed(self, row: str, stage: str, fn: Callable, *args, **kwargs):
        """Run a stage; record its wall time and memory peaks: resident memory (this process so far, or the
        LlamaFactory process that trained) and, on a GPU, GPU memory."""
        import resource

        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.time()
        result = fn(*args, **kwargs)
        record = {"row": row, "stage": stage, "seconds": time.time() - started, "seed": self.run.seed}
        manifest = Path(result) / "manifest.json" if isinstance(result, Path) else None
        built = json.loads(manifest.read_text())["result"] if manifest and manifest.is_file() else {}
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        record["peak_rss_gib"] = max(own, built.get("peak_rss_bytes", 0)) / 2**30
        if torch.cuda.is_available():
            record["gpu_peak_gib"] = max(torch.cuda.max_memory_allocated(), built.get("gpu_peak_bytes", 0)) / 2**30
        self.times.append(record)
        return result

    def wanted(self, row: str) -> bool:
        return not self.args.only or row in self.args.only

    def run_row(self, row: Row) -> Path:
        """Train what ``row``'s model needs (each stage cached) and evaluate it; returns its report folder."""
        if row.is_baseline:
            return self.timed(row.name, "fit+eval", evaluate_row, self.run, row)
        preset = self.run.preset
        data = dataclasses.replace(self.data, **row.data)
        run = dataclasses.replace(self.run, sub_run=row.sub_run)
        first = for_preset(FirstStageArguments, preset, **({"aux": self.args.aux} | row.first))
        sel = for_preset(SelectArguments, preset, **row.selection)
        hp = for_preset(BTuneArguments, preset, **({"variant": row.variant} if row.variant else {}))
        key = repr((row.model, data.anchor_threshold, first, *((sel, hp) if row.model == "b_tune" else ())))
        if key in self.done:
            return self.done[key]
        if data != self.data:  # another data stage: its own data set name
            run = dataclasses.replace(run, dataset=f"{self.run.dataset}-thr{data.anchor_threshold:g}")
            self.timed(row.name, "data", convert, run, dataclasses.replace(data, source=self.data.source or self.run.dataset))
        if row.model != "base":
            self.timed(row.name, "first stage", a_tune, run, first, for_preset(ATuneArguments, preset))
        if row.model == "b_tune":
            self.timed(row.name, "select", select, run, first, sel)
            self.timed(row.name, "b_tune", b_tune, run, first, sel, hp)
        self.done[key] = self.timed(row.name, "eval", evaluate_row, run, row, first, sel, hp)
        return self.done[key]

    def rows(self):
        """Yields (row, report folder) in the order of the report."""
        baselines = [row for row in BASELINE_ROWS if row.model in self.args.baselines]
        llms = LLM_ROWS if self.args.rows == "main" else [*LLM_ROWS, *ABLATION_ROWS, TAIL_FIRST, *sweep_rows(self.args)]
        for row in (*baselines, *llms):
            if self.wanted(row.name):
                yield row.name, self.run_row(row)


def main_rows(args: BenchmarkArguments) -> list[str]:
    rows = [row.name for row in (*BASELINE_ROWS, *LLM_ROWS) if not row.is_baseline or row.model in args.baselines]
    return [row for row in rows if row in args.only] if args.only else rows


def results_dir(run: RunArguments, args: BenchmarkArguments) -> Path:
    """``reports/benchmark/<dataset>/<preset>``; a run of some rows only (``--only``) writes beside it, not over it."""
    out = Path(run.root) / "reports" / "benchmark" / run.dataset / run.preset
    return out.with_name(f"{run.preset}.only-{slug('+'.join(args.only))}") if args.only else out


def check_only(args: BenchmarkArguments) -> None:
    if not args.only:
        return
    if args.rows != "main":
        raise UserError("--only picks main rows: use it with --rows main")
    known = main_rows(dataclasses.replace(args, only=[]))
    unknown = [row for row in args.only if row not in known]
    if unknown:
        raise UserError(f"--only: unknown row {unknown[0]!r}; the main rows are {known}")


def write_results(out: Path, rows: dict[str, list[Path]], times: pd.DataFrame, vocabulary: dict, meta: dict, args: BenchmarkArguments) -> None:
    """results.md, results.csv, stage_times.csv and the figures, atomically as one folder."""
    frame = summary_frame(rows) if rows else pd.DataFrame(columns=["name", "seeds"])
    main = main_rows(args)
    text = [
        f"# Benchmark: {meta['dataset']} ({meta['preset']} preset)\n\n",
        (f"Command `{meta['command']}`; seeds {meta['seeds']}; model {meta['model']}; machine {meta['machine']}. "
        f"Test sets per seed: {meta['natural_n']} natural samples and {meta['balanced_n']} balanced ones. Values in %; "
        "brackets: 95% bootstrap intervals (test samples resampled; over several seeds, of the seed mean), then ± the "
        "spread over seeds. Differences use paired intervals: both models on the same resampled test samples.\n"),
        "\n## The paper's claims, checked\n\n", *claims_lines(rows, CHECKS),
        "\n## Main results (Tables 3 and 8)\n\n", markdown_table(frame, main),
    ]
    if args.rows == "all":
        text += ["\n## Ablations (Table 4): change from BehaviorLM, in points\n\n", difference_table(rows, ABLATIONS, "BehaviorLM")]
        text += ["\n## First stage on all, anchor or medium + tail behaviors, each then B-Tuning (Fig. 5)\n\n",
                 markdown_table(frame[frame["name"].isin(FIG5.values())] if len(frame) else frame, list(FIG5.values()))]
        for title, names in (
            ("Tail accuracy against F (Fig. 3b)", [f"F={f}" for f in args.f_values]),
            ("Auxiliary ratio epsilon (Table 5)", [f"epsilon={e:g}" for e in args.epsilons]),
            ("Anchor threshold (Table 6; report groups stay those of the training frequencies)", [f"anchor threshold={t:.1%}" for t in args.thresholds]),
        ):
            text += [f"\n## {title}\n\n", markdown_table(frame[frame["name"].isin(names)] if len(frame) else frame, names)]
    gpu = "gpu_peak_gib" in times.columns
    columns = ["seconds", "peak_rss_gib"] + (["gpu_peak_gib"] if gpu else [])
    stage_times = times.groupby(["row", "stage"], sort=False)[columns].max().reset_index() if len(times) else times
    text += ["\n## Wall time and memory per stage (seconds: the slowest seed; resident memory of the process that ran "
             "it: this one so far, or LlamaFactory's" + ("; GPU memory" if gpu else "") + ")\n\n",
             "| Row | Stage | Seconds | Peak RSS (GiB) |" + (" GPU peak (GiB) |" if gpu else "") + "\n|---|---|---|---|"
             + ("---|" if gpu else "") + "\n"]
    text += [f"| {r.row} | {r.stage} | {r.seconds:.0f} | {r.peak_rss_gib:.1f} |" + (f" {r.gpu_peak_gib:.1f} |" if gpu else "") + "\n"
             for r in stage_times.itertuples()]
    total = times["seconds"].sum() if len(times) else 0
    text.append(f"\nSum of the stage times: {total:.0f} s (stages run side by side take less wall time).\n\n![](fig1a_frequency.png)\n![](fig1c_groups.png)\n")
    with atomic_output(out) as tmp:
        tmp.mkdir(parents=True)
        write_figures(tmp, frame, vocabulary["behaviors"], vocabulary["anchor_threshold"], main)
        (tmp / "results.md").write_text("".join(text), encoding="utf-8")
        frame.to_csv(tmp / "results.csv", index=False)
        times.to_csv(tmp / "stage_times.csv", index=False)


def benchmark(
    run: RunArguments, data: DataArguments, args: BenchmarkArguments, command: str = "", measured: pd.DataFrame | None = None
) -> Path:
    """Runs the rows for every seed; rewrites the report after each row.

    ``measured``: the stage times of the runs that built the stages (gpu-bench's parts), reported instead of this
    run's, whose stages are then all reused.
    """
    check_only(args)
    out = results_dir(run, args)
    rows: dict[str, list[Path]] = {}
    times: list[dict] = []
    for seed in args.seeds:
        seeded = dataclasses.replace(run, seed=seed)
        convert(seeded, data)
        vocabulary = seeded.layout().vocabulary()
        sizes = vocabulary["stats"]["set_sizes"]
        meta = {
            "dataset": run.dataset, "preset": run.preset, "seeds": args.seeds, "model": run.layout().model_dir(), "command": command,
            "machine": machine_description(), "natural_n": sizes["test_natural"], "balanced_n": sizes["test_balanced"],
        }
        runner = SeedRunner(seeded, data, args)
        for row, report_dir in runner.rows():
            rows.setdefault(row, []).append(report_dir)
            write_results(out, rows, pd.DataFrame(times + runner.times) if measured is None else measured, vocabulary, meta, args)
            logger.info("seed %d: %s done, %s updated", seed, row, out / "results.md")
        times += runner.times
    return out


def show_results(out: Path) -> Path:
    return out / "results.md"
