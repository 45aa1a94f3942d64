"""The studies' settings: the benchmark, the B-Tuning study, the learning curve, the speed benches and the GPU run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..extras.errors import UserError
from .checks import check_range
from .eval_args import BASELINE_METHODS
from .train_args import B_TUNE_VARIANTS, BTuneArguments


@dataclass
class BenchmarkArguments:
    preset_key: ClassVar[str] = "benchmark"
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "one user split and training seed each"})
    rows: Literal["main", "all"] = field(default="main", metadata={"help": "main table only, or with ablations and sweeps"})
    baselines: list[str] = field(default_factory=lambda: list(BASELINE_METHODS), metadata={"help": "the baselines to run"})
    # gpu-bench runs its rows as two such parts side by side; a later run without --only reuses their stages
    only: list[str] = field(default_factory=list, metadata={"help": "run only these main rows (names as in the report)"})
    f_values: list[int] = field(default_factory=lambda: [5, 10, 20], metadata={"help": "the F sweep (Fig. 3b)"})
    epsilons: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2], metadata={"help": "Table 5's sweep"})
    thresholds: list[float] = field(default_factory=lambda: [0.005, 0.01, 0.02], metadata={"help": "Table 6's sweep"})
    # the corpus of every row that mixes one in; the same flag and meaning as a-tune's
    aux: Path | None = field(default=None, metadata={"help": "alpaca or sharegpt file (default: the built-in corpus)"})

    def __post_init__(self):
        check_baselines(self.baselines)
        if not self.seeds or min(self.seeds) < 0 or max(self.seeds) >= 2**32:
            raise UserError(f"--seeds {self.seeds}: each seed from 0 to 2**32 - 1")
        if min(self.f_values, default=1) < 1:
            raise UserError(f"--f-values {self.f_values}: each F is at least 1")
        if not all(0 <= e <= 1 for e in self.epsilons):
            raise UserError(f"--epsilons {self.epsilons}: each from 0 to 1")
        if not all(0 < t < 1 for t in self.thresholds):
            raise UserError(f"--thresholds {self.thresholds}: each above 0 and below 1")


def check_baselines(baselines: list[str]) -> None:
    unknown = [b for b in baselines if b not in BASELINE_METHODS]
    if unknown:
        raise UserError(f"--baselines: unknown baseline {unknown[0]!r}; choose from {list(BASELINE_METHODS)}")


@dataclass
class StudyArguments:
    preset_key: ClassVar[str] = "b_tune_study"
    variants: list[str] = field(default_factory=lambda: list(B_TUNE_VARIANTS), metadata={"help": f"the variants to train: {list(B_TUNE_VARIANTS)}"})
    baselines: list[str] = field(
        default_factory=lambda: ["markov", "sasrec"], metadata={"help": "baselines shown beside them (none: --baselines)"}
    )
    settings: list[str] = field(
        default_factory=list, metadata={"help": "VARIANT:KEY=VALUE over the preset's settings of a variant, e.g. sft_replay:num_train_epochs=4"}
    )

    def __post_init__(self):
        unknown = [v for v in self.variants if v not in B_TUNE_VARIANTS]
        if unknown:
            raise UserError(f"--variants: unknown variant {unknown[0]!r}; choose from {list(B_TUNE_VARIANTS)}")
        check_baselines(self.baselines)
        self.changes()

    def changes(self) -> dict[str, dict]:
        """``--settings`` as {variant: {field: value}}, each value typed as its field."""
        names = {f.name: f for f in dataclasses.fields(BTuneArguments)}
        found: dict[str, dict] = {}
        for item in self.settings:
            variant, _, assignment = item.partition(":")
            key, _, value = assignment.partition("=")
            if variant not in B_TUNE_VARIANTS or key not in names or key == "variant" or not value:
                raise UserError(f"--settings {item!r}: expected VARIANT:KEY=VALUE with a variant of {list(B_TUNE_VARIANTS)} and a b-tune setting")
            found.setdefault(variant, {})[key] = _number(value)
        return found

def _number(text: str) -> int | float | str:
    """A flag's value as the command line would type it: an int, else a float (1e-4), else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass
class CurveArguments:
    preset_key: ClassVar[str] = "learning_curve"
    sizes: list[int] = field(default_factory=lambda: [250, 500, 1000, 2000], metadata={"help": "training samples per point"})
    learning_rates: list[float] = field(default_factory=list, metadata={"help": "extra A-Tuning peak learning rates"})
    lr_size: int = field(default=500, metadata={"help": "the size the extra learning rates train at"})
    out: Path = field(default=Path("reports/learning_curve"), metadata={"help": "folder of learning_curve.{md,csv,png} (under --root when relative)"})

    def __post_init__(self):
        if not self.sizes or min(self.sizes) < 1:
            raise UserError(f"--sizes {self.sizes}: each size is at least 1 training sample")
        check_range(self, lr_size=1)
        if any(lr <= 0 for lr in self.learning_rates):
            raise UserError(f"--learning-rates {self.learning_rates}: each must be above 0")


@dataclass
class BenchTrainArguments:
    preset_key: ClassVar[str] = "bench_train"
    sft_steps: int = field(default=10, metadata={"help": "A-Tuning steps per run"})
    dpo_steps: int = field(default=6, metadata={"help": "B-Tuning steps per run"})

    def __post_init__(self):
        check_range(self, sft_steps=1, dpo_steps=1)


@dataclass
class BenchScoreArguments:
    preset_key: ClassVar[str] = "bench_score"
    adapter: Path | None = field(default=None, metadata={"help": "LoRA adapter to score with (merged, as evaluation does)"})
    sets: list[str] = field(default_factory=lambda: ["test_natural", "test_balanced"], metadata={"help": "sets to score"})
    n: int | None = field(default=None, metadata={"help": "at most this many prompts per set (default: all)"})
    batch_size: int = field(default=8, metadata={"help": "prompts per forward pass"})

    def __post_init__(self):
        check_range(self, n=1, batch_size=1)


@dataclass
class GpuBenchArguments:
    preset_key: ClassVar[str] = "gpu_bench"
    device: Literal["cuda", "cpu"] = field(default="cuda", metadata={"help": "cpu runs the same command without a GPU (smoke)"})
    study: bool = field(default=False, metadata={"help": "then every B-Tuning variant from BehaviorLM's first stage (b-tune-study)"})
