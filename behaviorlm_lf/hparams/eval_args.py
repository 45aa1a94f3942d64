"""Which model the ``eval`` stage scores on the test sets, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from .checks import check_plain_name


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
