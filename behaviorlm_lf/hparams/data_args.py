"""How events become samples and sets: the ``data`` stage's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from ..extras.errors import UserError
from .checks import check_range


@dataclass
class DataArguments:
    """How events become samples and sets (``behaviorlm data``)."""

    preset_key: ClassVar[str] = "data"
    source: str | None = field(
        default=None, metadata={"help": "default, foursquare-nyc, mit-placelab or a CSV/Parquet file (default: --dataset)"}
    )
    columns: str | None = field(
        default=None, metadata={"help": "for a file: user=COL,time=COL,place=COL,behavior=COL[,tz_offset=COL]; place= for none"}
    )
    time_unit: Literal["s", "ms"] | None = field(default=None, metadata={"help": "timestamps are epoch seconds or milliseconds"})
    time_format: str | None = field(
        default=None,
        metadata={"help": "strftime format of the timestamps, e.g. '%%d-%%m-%%Y %%H:%%M' (needed where day and month could swap)"},
    )
    assume: Literal["utc", "local"] | None = field(
        default=None, metadata={"help": "timestamps marked UTC ('Z') without an offset column: utc or local wall-clock time"}
    )
    grid_deg: str = field(default="0.05", metadata={"help": "Foursquare place cell size in degrees, or 'none'"})
    history_len: int = field(default=20, metadata={"help": "L, events in a sample's history"})
    anchor_threshold: float = field(default=0.01, metadata={"help": "anchor behaviors: training frequency above this"})
    top_k: int | None = field(default=None, metadata={"help": "keep the K most frequent behaviors (other events are dropped)"})
    min_count: int | None = field(default=None, metadata={"help": "keep behaviors with at least N events"})
    split_by: Literal["user", "time"] | None = field(default=None, metadata={"help": "8:1:1 by user (default) or by time"})
    max_train: int | None = field(default=None, metadata={"help": "cap of each training set"})
    max_valid: int | None = field(default=None, metadata={"help": "cap of the validation set"})
    max_natural_test: int | None = field(default=None, metadata={"help": "cap of the natural test set"})
    balanced_per_class: int = field(default=500, metadata={"help": "balanced test samples per behavior"})
    valid_per_class: int = field(
        default=100, metadata={"help": "balanced validation samples per behavior (B-Tuning keeps its best epoch on them)"}
    )
    pool_per_class: int = field(default=100, metadata={"help": "selection pool samples per behavior"})
    max_prompt_tokens: int | None = field(
        default=None,
        metadata={"help": "longest sample (prompt, answer and chat template) in tokens (default: the preset's A-Tuning cutoff_len)"},
    )
    cut_history: bool = field(
        default=False,
        metadata={"help": "when samples exceed --max-prompt-tokens, shorten every history (L) until all fit, instead of refusing"},
    )
    sim_users: int = field(default=300, metadata={"help": "simulated users (default data set)"})
    sim_days: int = field(default=28, metadata={"help": "simulated days (default data set)"})

    def __post_init__(self):
        check_range(self, max_prompt_tokens=1, history_len=1, top_k=1, min_count=1, max_train=1, max_valid=1, max_natural_test=1,
                    balanced_per_class=1, valid_per_class=1, pool_per_class=1, sim_users=3, sim_days=1)
        check_range(self, low=0.0, high=1.0, anchor_threshold=None)
        if self.grid_deg.lower() != "none":
            try:
                positive = float(self.grid_deg) > 0
            except ValueError:
                positive = False
            if not positive:
                raise UserError(f"--grid-deg {self.grid_deg!r}: must be a cell size in degrees above 0, or 'none'")
        if self.time_format is not None:
            try:  # a format strptime cannot read back what it writes is refused before the file is read
                datetime.strptime(datetime(2024, 3, 4, 8, 5).strftime(self.time_format), self.time_format)
            except ValueError as err:
                raise UserError(f"--time-format {self.time_format!r}: {err}") from None
