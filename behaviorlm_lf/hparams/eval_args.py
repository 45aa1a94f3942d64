"""Which model the ``eval`` stage scores on the test sets, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from .checks import check_plain_name, check_range

# The non-LLM baselines (eval/count_models.py, eval/sequence_models.py), by the name --method takes.
BASELINE_METHODS = ("popularity", "context", "markov", "sasrec", "bert4rec")


@dataclass
class EvalArguments:
    """Which model to score on the test sets, and how."""

    preset_key: ClassVar[str] = "eval"
    run: Literal["base", "a_tune", "b_tune"] = field(
        default="b_tune", metadata={"help": "the run's backbone, first-stage or B-tuned model (the selection flags pick the B-tuned one)"}
    )
    adapter: Path | None = field(default=None, metadata={"help": "a LoRA adapter on --model instead of a model of the run"})
    name: str | None = field(default=None, metadata={"help": "report name (default: --run, or the model folder's name)"})
    generate: bool = field(default=False, metadata={"help": "free decoding matched to candidates, as the paper, instead of exact scoring"})

    def __post_init__(self):
        if self.name is not None:
            check_plain_name("--name", self.name)


@dataclass
class BaselineArguments:
    """Which baseline to fit and how long the sequence models may train."""

    preset_key: ClassVar[str] = "baseline"
    method: Literal["popularity", "context", "markov", "sasrec", "bert4rec"] = field(
        default="popularity", metadata={"help": "the baseline"}
    )
    epochs: int | None = field(default=None, metadata={"help": "the sequence models' maximum epochs (default 100)"})

    def __post_init__(self):
        check_range(self, epochs=1)


@dataclass
class PredictArguments:
    preset_key: ClassVar[str] = "predict"
    events: str = field(metadata={"help": "CSV or JSON-lines file of recent events, or - for stdin"})
    day: str | None = field(default=None, metadata={"help": "day of the next event (Mon..Sun)"})
    hour: str | None = field(default=None, metadata={"help": "hour of the next event (0-23)"})
    place: str | None = field(default=None, metadata={"help": "place of the next event"})
    next: str | None = field(default=None, metadata={"help": "batch mode: CSV with user, day, hour, place of each user's next event"})
    top_k: int = field(default=5, metadata={"help": "behaviors to print per query"})
    run: Literal["base", "a_tune", "b_tune"] = field(default="b_tune", metadata={"help": "the run's model to predict with"})
    adapter: Path | None = field(default=None, metadata={"help": "a LoRA adapter on --model instead of a model of the run"})
