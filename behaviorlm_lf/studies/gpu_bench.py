"""A short benchmark on one GPU: the main rows at sizes a CPU cannot reach, in minutes.

    make gpu-bench                                  # on a GPU machine (the kit installed, see gpu_kit.py)
    make gpu-bench PRESET=smoke DEVICE=cpu DATASET=default    # the same command at smoke size on a CPU (CI)

Foursquare NYC (50 categories) with SmolLM2-135M at the ``gpu-bench`` preset:
4,000 training samples, F = 20, 50 balanced test samples per class and 1,000
natural ones; popularity, Markov and SASRec (fit on the whole training split),
LLM-NT, full fine-tuning and BehaviorLM. A-Tuning mixes in the shared alpaca
corpus (999 conversations; the kit carries it) unless ``--aux`` names another:
epsilon x 4,000 anchor samples needs 200, more than the built-in corpus holds.
Writes the benchmark's ``results.md`` with stage times and GPU memory peaks.
``--study`` then trains every other B-Tuning variant from BehaviorLM's first stage
and selection (``behaviorlm b-tune-study``), for the study at gpu-bench size.
Fails at once where there is no GPU, unless ``--device cpu``.

A 135M model at batch 8 leaves the GPU mostly idle (kernel launches set the
pace), so on a GPU the rows run as two parts side by side, each a
``gpu-bench --only`` process with its own log: BehaviorLM's chain (A-Tuning,
pool scoring, selection, DPO, evaluation) beside everything else. Then one
pass over the stage cache writes the whole report, with the stage times the
parts measured. On a CPU the parts run one after the other.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from ..data.convert import convert, shared_data
from ..extras.errors import UserError
from ..hparams import (
    BenchmarkArguments,
    DataArguments,
    FirstStageArguments,
    GpuBenchArguments,
    RunArguments,
    SelectArguments,
    StudyArguments,
    for_preset,
)
from ..model.backbones import DEFAULT_MODEL_DIR, make_default
from .b_tune_study import study
from .benchmark import benchmark, main_rows, results_dir
from .gpu_kit import ALPACA

logger = logging.getLogger(__name__)

SHORT_BASELINES = ["popularity", "markov", "sasrec"]
LONGEST_CHAIN = ["BehaviorLM"]  # the part that runs beside all other rows


def gpu_bench(run: RunArguments, data: DataArguments, bench: BenchmarkArguments, args: GpuBenchArguments, command: str) -> str | None:
    """The benchmark's main rows in two parts (side by side on a GPU), then the study if asked; returns what it printed."""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("no CUDA GPU on this machine: run `make gpu-bench` on a GPU machine, or DEVICE=cpu for the smoke run")
    started = time.time()
    if run.model and run.model.endswith(DEFAULT_MODEL_DIR.name) and not (run.layout().models_dir / DEFAULT_MODEL_DIR.name).is_dir():
        make_default(run.layout().models_dir / DEFAULT_MODEL_DIR.name)
    bench = dataclasses.replace(bench, rows="main", baselines=SHORT_BASELINES)
    alpaca = shared_data(run.root) / ALPACA
    if bench.aux is None and alpaca.is_file():
        bench = dataclasses.replace(bench, aux=alpaca)
    logger.info("auxiliary corpus: %s", bench.aux or "the built-in corpus")
    flags = shlex.split(command)[2:]  # the user's flags, passed on to the parts
    if bench.only:  # one part, started by the run below
        benchmark(run, data, bench, command)
        return None
    convert(run, data)  # the data stage both parts read, built once
    parts = [dataclasses.replace(bench, only=rows) for rows in ([r for r in main_rows(bench) if r not in LONGEST_CHAIN], LONGEST_CHAIN)]
    run_parts(flags, [(part.only, results_dir(run, part)) for part in parts], side_by_side=args.device == "cuda")
    measured = pd.concat([pd.read_csv(results_dir(run, part) / "stage_times.csv") for part in parts])
    out = benchmark(run, data, bench, command, measured=measured)
    done = f"{out / 'results.md'} ({time.time() - started:.0f} s, device {torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu'})"
    if args.study:  # the benchmark's BehaviorLM row (the root run) is the study's first stage and selection
        folder = study(run, data, for_preset(FirstStageArguments, run.preset, aux=bench.aux), for_preset(SelectArguments, run.preset),
                       StudyArguments(baselines=[]), command)
        done += f"\n{folder / 'study.md'} ({time.time() - started:.0f} s in all)"
    return done


def run_parts(flags: list[str], parts: list[tuple[list[str], Path]], side_by_side: bool) -> None:
    """Run ``gpu-bench <flags> --only <rows>`` for each part, its output in a log beside the part's report."""
    running = []
    for rows, out in parts:
        log = out.with_name(out.name + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info("part %s: log %s", ", ".join(rows), log)
        with open(log, "w", encoding="utf-8") as handle:
            process = subprocess.Popen([sys.executable, "-m", "behaviorlm_lf", "gpu-bench", *flags, "--only", *rows], stdout=handle, stderr=subprocess.STDOUT)
        running.append((rows, log, process, time.time()))
        if not side_by_side:
            process.wait()
    for rows, log, process, started in running:
        process.wait()
        logger.info("part %s: exit %d after %.0f s", ", ".join(rows), process.returncode, time.time() - started)
    failed = [(rows, log, process.returncode) for rows, log, process, _ in running if process.returncode != 0]
    if failed:
        rows, log, code = failed[0]
        raise UserError(f"gpu-bench part {', '.join(rows)} failed with exit {code}: see {log}")

