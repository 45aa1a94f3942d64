"""The rows of the results tables, as data: which model each row evaluates, trained with which changes.

The demo's report (:mod:`.report`) and the benchmark (:mod:`behaviorlm_lf.studies.benchmark`) declare their rows
here as :class:`Row` records and evaluate them with :func:`evaluate_row`; the benchmark also trains what a row needs
first. A row's evaluation is named by its model (``a_tune``, ``b_tune<selection>``, ``base``, the baseline's method),
whichever table asks, so the demo and the benchmark share their cached evaluations as they share the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..extras.layout import MODELS_OF_A_RUN
from ..hparams import BaselineArguments, BTuneArguments, FirstStageArguments, RunArguments, SelectArguments
from ..hparams.eval_args import BASELINE_METHODS


@dataclass(frozen=True)
class Row:
    """A row: the model evaluated, and for the run's LLMs the sub-run and the changes they are trained with.

    ``model`` is one of the run's LLMs (``base``, ``a_tune``, ``b_tune``, as ``behaviorlm eval --run``) or a baseline
    (its method, as ``behaviorlm baseline --method``, fit on the whole training split). ``sub_run`` "" is the run
    `make demo` trains. ``first``, ``selection`` and ``data`` change the first stage, the selection and the data stage;
    ``variant`` the B-Tuning variant. Rows whose settings resolve to the same ones are one model.
    """

    name: str
    sub_run: str = ""
    model: str = "b_tune"
    first: dict = field(default_factory=dict)
    selection: dict = field(default_factory=dict)
    variant: str | None = None
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.model not in (*MODELS_OF_A_RUN, *BASELINE_METHODS):
            raise ValueError(f"row {self.name!r}: model {self.model!r} is neither one of {MODELS_OF_A_RUN} nor a baseline")

    @property
    def is_baseline(self) -> bool:
        return self.model in BASELINE_METHODS


BASELINE_ROWS = [
    Row("Popularity", model="popularity"),
    Row("Context popularity", model="context"),
    Row("Markov", model="markov"),
    Row("SASRec", model="sasrec"),
    Row("BERT4Rec", model="bert4rec"),
]
A_TUNED = "A-tuned"


def behaviorlm_row(variant: str) -> str:
    """The demo's B-tuned row name, which says the second stage it ran."""
    return f"B-tuned (BehaviorLM, {variant})"


def demo_rows(variant: str) -> list[Row]:
    """What `make demo` ends with: the run's two trained models and the popularity, Markov and SASRec baselines."""
    baselines = [row for row in BASELINE_ROWS if row.model in ("popularity", "markov", "sasrec")]
    return [Row(A_TUNED, model="a_tune"), Row(behaviorlm_row(variant)), *baselines]


def evaluate_row(
    run: RunArguments, row: Row, first: FirstStageArguments | None = None, sel: SelectArguments | None = None,
    hp: BTuneArguments | None = None,
) -> Path:
    """The report folder of ``row`` in ``run`` (its sub-run set): a baseline fit and scored, or the row's LLM, trained
    with ``first``, ``sel`` and ``hp`` (the row's changes applied), scored; each cached."""
    from .baselines import run_baseline
    from .evaluate import evaluate

    if row.is_baseline:
        return run_baseline(run, BaselineArguments(method=row.model))
    model, adapter = run.layout().trained_model(row.model, first.first_stage, sel.suffix(), hp.variant)
    return evaluate(run, model, adapter, adapter.name if adapter else "base")
