"""Non-LLM baselines: the floors a fine-tuned language model must clear.

    behaviorlm baseline [--dataset default] [--preset cpu] --method popularity|context|markov|sasrec|bert4rec
        [--seed 0] [--epochs N]

Every baseline is fit on the whole training split (``train_events.parquet``: all
events of the training users), as a user who holds the log would fit it, not on
the LLM's capped training sample; the sequence models stop early on the
validation users' events (``valid_events.parquet``). Each scores every candidate;
the CLI evaluates on ``test_natural`` and ``test_balanced`` and writes
``reports/<data>/<preset>/<method>/`` with :func:`behaviorlm_lf.eval.metrics.write_report`,
recording both training sizes (the baseline's events and the LLM's samples).

* ``popularity``: training behavior frequency.
* ``context``: behavior frequency at the next event's (day of week, hour, place),
  backing off to (hour, place), (place), then popularity.
* ``markov``: first-order Markov chain from the last history behavior to the
  next one, over every consecutive pair of a training user's events, add-one
  smoothed; a behavior never seen as a state backs off to popularity.
* ``sasrec``: SASRec (Kang & McAuley, ICDM 2018), see :class:`SASRec`.
* ``bert4rec``: BERT4Rec (Sun et al., CIKM 2019), see :class:`BERT4Rec`.

The sequence models read behavior IDs only, like the paper's traditional rows.
Count models return smoothed probabilities, so an unseen class keeps a small
nonzero score and the metrics' ``p_label`` stays meaningful.
"""


from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..extras.cache import run_stage
from ..extras.errors import BadInputError
from ..extras.layout import TEST_SETS
from ..hparams import BaselineArguments, RunArguments
from ..hparams.eval_args import BASELINE_METHODS
from .count_models import Baseline, Context, Markov, Popularity
from .metrics import PAPER_METRICS, write_report
from .sequence_models import BERT4Rec, SASRec

logger = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("hist_behavior", "dow", "hour", "place", "label")
EVENT_COLUMNS = ("user", "dow", "hour", "place", "behavior")


def make_baseline(
    method: str, candidates: Sequence[str], seed: int = 0, epochs: int | None = None, history_len: int = 20
) -> Baseline:
    """The baseline called ``method``; ``seed``, ``epochs`` and ``history_len`` apply to the sequence models."""
    sequence_models = {"sasrec": SASRec, "bert4rec": BERT4Rec}
    if method in sequence_models:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        kwargs = {"epochs": epochs} if epochs is not None else {}
        return sequence_models[method](candidates, seed=seed, device=device, history_len=history_len, **kwargs)
    classes = {"popularity": Popularity, "context": Context, "markov": Markov}
    if method not in classes:
        raise ValueError(f"method must be one of {BASELINE_METHODS}, got {method!r}")
    return classes[method](candidates)


def read_frame(path: Path, candidates: Sequence[str], columns: Sequence[str], behavior_columns: Sequence[str]) -> pd.DataFrame:
    """A Parquet file, checked: the columns baselines use, and every behavior among the candidates."""
    frame = pd.read_parquet(path)
    for column in columns:
        if column not in frame.columns:
            raise BadInputError(path, "missing column", field=column)
    known = set(candidates)
    for column in behavior_columns:
        if column == "hist_behavior":
            unknown = frame[column].map(lambda history: next((b for b in history if b not in known), None))
        else:
            unknown = frame[column].map(lambda name: None if name in known else name)
        bad = np.flatnonzero(unknown.notna().to_numpy())
        if len(bad):
            raise BadInputError(path, f"behavior {unknown.iloc[bad[0]]!r} is not a candidate", row=int(bad[0]) + 1, field=column)
    return frame


def read_set(path: Path, candidates: Sequence[str]) -> pd.DataFrame:
    """A sample set (``<set>.parquet``)."""
    return read_frame(path, candidates, SAMPLE_COLUMNS, ("label", "hist_behavior"))


def read_events(path: Path, candidates: Sequence[str]) -> pd.DataFrame:
    """A split's events (``<split>_events.parquet``)."""
    return read_frame(path, candidates, EVENT_COLUMNS, ("behavior",))


def run_baseline(run: RunArguments, args: BaselineArguments) -> Path:
    """Fit the baseline on the training split, score both test sets and write the report; returns its folder (cached).

    A cached stage like the LLM's evaluations: ``report`` and ``benchmark`` call this on every run, and SASRec's
    fit alone takes minutes on a CPU, so an unchanged data set, method and seed reuses the report.
    """
    layout = run.layout()
    layout.require_data()
    events = {split: layout.set_file(f"{split}_events", ".parquet") for split in ("train", "valid")}
    inputs = {"behaviors": layout.behaviors_file} | {f"events:{k}": v for k, v in events.items()}
    inputs |= {f"set:{name}": layout.set_file(name, ".parquet") for name in TEST_SETS.values()}

    def build(tmp: Path) -> dict:
        vocabulary = layout.vocabulary()
        candidates, behaviors = vocabulary["candidates"], vocabulary["behaviors"]
        train, valid = (read_events(path, candidates) for path in events.values())
        tests = {name: read_set(layout.set_file(name, ".parquet"), candidates) for name in TEST_SETS.values()}
        logger.info("read %s: %d training events, %d validation events", layout.data_dir, len(train), len(valid))
        model = make_baseline(args.method, candidates, seed=run.seed, epochs=args.epochs, history_len=vocabulary["history_len"])
        fit_started = time.perf_counter()
        model.fit(train, valid)
        fit_seconds = time.perf_counter() - fit_started
        logger.info("fit %s on %d events in %.1fs %s", args.method, len(train), fit_seconds, model.fit_info_)
        scores = {name: (frame["label"].tolist(), model.predict_proba(frame)) for name, frame in tests.items()}
        extra = {
            "dataset": layout.data_name,
            "seed": run.seed,
            "train_events": len(train),
            "llm_train_samples": vocabulary["stats"]["set_sizes"]["all_train"],
            "fit_seconds": round(fit_seconds, 3),
            **model.fit_info_,
        }
        metrics = write_report(tmp, args.method, scores["test_natural"], scores["test_balanced"], candidates, behaviors, extra)
        return {k: metrics[k] for k in PAPER_METRICS}

    out_dir = layout.report_dir(args.method)
    config = {"method": args.method, "epochs": args.epochs, "seed": run.seed}
    run_stage(f"baseline:{args.method}", out_dir, inputs, config, build, code=__name__)
    return out_dir


