"""Every setting of every command, as typed dataclasses: the one source of flags, YAML files and presets.

Like LlamaFactory's ``hparams`` and TRL's scripts, each command parses a few of
these dataclasses with transformers' ``HfArgumentParser``; the same field means
the same thing and has the same flag (``--per-class``, ``--first-stage``) in every
command. Values come, from weakest to strongest, from the field's default, the
preset's overlay (:mod:`behaviorlm_lf.presets`), a ``--config`` YAML file and the
command line. A ``None`` training hyper-parameter means "the YAML's value" (the
paper's) from ``llamafactory_configs/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import yaml

from .errors import MissingStageError, UserError
from .layout import FIRST_STAGES, RunLayout, Selection
from .presets import DPO_VARIANTS, preset_overlay

MODELS_OF_A_RUN = ("base", "a_tune", "b_tune")
# A name that becomes a folder under data/, saves/ or reports/: no separator, no "..", nothing absolute, so that no
# command writes, or replaces, anything outside its root.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_range(settings, low: float | None = None, high: float | None = None, **fields) -> None:
    """Each of ``fields`` (flag name -> minimum) at least its minimum, or ``low``..``high``; None passes (unset)."""
    for name, minimum in fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        floor = low if minimum is None else minimum
        if (floor is not None and value < floor) or (high is not None and value > high):
            allowed = f"from {floor} to {high}" if high is not None else f"at least {floor}"
            raise UserError(f"--{name} {value}: must be {allowed}")


def check_positive(settings, *names: str) -> None:
    """Each of ``names`` above 0 where it is set."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and not value > 0:
            raise UserError(f"--{name} {value}: must be above 0")


def check_plain_name(flag: str, value: str) -> str:
    if not PLAIN_NAME.fullmatch(value) or ".." in value:
        raise UserError(f"{flag} {value!r} is not a plain folder name (letters, digits, '.', '_', '-'; no '/' or '..')")
    return value


@dataclass
class RunArguments:
    """Which run a command works on."""

    preset_key: ClassVar[str] = "run"
    dataset: str = field(
        default="default",
        metadata={"help": "data set: default (embedded simulator), foursquare-nyc, mit-placelab, or a name given to `data`"},
    )
    preset: str = field(default="cpu", metadata={"help": "sizes and model for the machine: smoke, cpu, gpu, gpu-bench"})
    seed: int = field(default=0, metadata={"help": "seed of the user split, the samples, training and the baselines"})
    root: Path = field(default=Path("."), metadata={"help": "folder holding data/, saves/, reports/ and models/"})
    model: str | None = field(default=None, metadata={"help": "Hugging Face model folder (default: the preset's)"})
    template: str | None = field(
        default=None, metadata={"help": "LlamaFactory chat template (default: inferred from the model folder)"}
    )
    sub_run: str = field(default="", metadata={"help": "name of a sub-run under saves/<data>/<preset>/ (the benchmark's rows)"})

    def __post_init__(self):
        check_plain_name("--dataset", self.dataset)
        check_range(self, seed=0)
        if self.sub_run:
            check_plain_name("--sub_run", self.sub_run)

    def layout(self) -> RunLayout:
        return RunLayout(self.dataset, self.preset, self.seed, Path(self.root), self.sub_run)

    def model_dir(self) -> str:
        """The backbone folder; a relative preset path is found under ``root`` (where `models` converts it)."""
        if self.model is None:
            raise UserError(f"preset {self.preset!r} names no model: pass --model (MODEL=<folder>)")
        path = Path(self.model)
        return str(path if path.is_absolute() or path.exists() else Path(self.root) / path)

    def first_stage_adapter(self, first_stage: str) -> Path:
        """The first stage's adapter folder, or an error saying how to train it."""
        adapter = self.layout().first_stage_dir(first_stage)
        if not (adapter / "adapter_model.safetensors").is_file():
            raise MissingStageError(
                f"the first stage ({first_stage})", adapter,
                f"behaviorlm a-tune --dataset {self.dataset} --preset {self.preset} --first-stage {first_stage}",
            )
        return adapter

    def trained_model(
        self, which: str, first_stage: str = "anchor_train", selection_suffix: str = "", variant: str = "dpo"
    ) -> tuple[str, Path | None]:
        """(model folder, adapter folder or None) of a model of this run: the backbone, first-stage or B-tuned."""
        layout = self.layout()
        if which == "base":
            return self.model_dir(), None
        if which == "a_tune":
            return self.model_dir(), layout.first_stage_dir(first_stage)
        if which == "b_tune":
            base = layout.b_tune_base_dir(first_stage, selection_suffix, variant)
            return str(base), layout.b_tune_dir(first_stage, selection_suffix, variant)
        raise UserError(f"unknown model {which!r}: choose one of {MODELS_OF_A_RUN} or pass --model/--adapter")

    def chat_template(self) -> str:
        from .chat_template import infer_template

        if self.template is None:
            return infer_template(self.model_dir())
        from llamafactory.data.template import TEMPLATES  # checked here, where a stage needs LlamaFactory anyway

        if self.template not in TEMPLATES:
            raise UserError(f"--template {self.template!r}: not a LlamaFactory chat template; for example {sorted(TEMPLATES)[:8]}")
        return self.template


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
    sim_users: int = field(default=300, metadata={"help": "simulated users (default data set)"})
    sim_days: int = field(default=28, metadata={"help": "simulated days (default data set)"})

    def __post_init__(self):
        check_range(self, history_len=1, top_k=1, min_count=1, max_train=1, max_valid=1, max_natural_test=1,
                    balanced_per_class=1, valid_per_class=1, pool_per_class=1, sim_users=3, sim_days=1)
        check_range(self, low=0.0, high=1.0, anchor_threshold=None)


@dataclass
class FirstStageArguments:
    """The first stage: A-Tuning (anchor samples + auxiliary corpus) or another training set (ablations)."""

    preset_key: ClassVar[str] = "first_stage"
    first_stage: str = field(
        default="anchor_train",
        metadata={"help": f"training set of the first stage: {', '.join(FIRST_STAGES)} (full fine-tuning, Fig. 5)"},
    )
    epsilon: float = field(default=0.05, metadata={"help": "auxiliary conversations per behavior sample; 0 = w/o aux"})
    aux: Path | None = field(default=None, metadata={"help": "alpaca or sharegpt file (default: the built-in corpus)"})
    allow_smaller_epsilon: bool = field(default=False, metadata={"help": "take the whole corpus when it is too small"})

    def __post_init__(self):
        if self.first_stage not in FIRST_STAGES:
            raise UserError(f"--first-stage must be one of {FIRST_STAGES}, got {self.first_stage!r}")
        check_range(self, low=0.0, high=1.0, epsilon=None)


EPOCHS_HELP = "epochs at most; the stage keeps its best checkpoint on validation (A-Tuning: lowest loss; B-Tuning: best Overall)"


@dataclass
class TrainingShapeArguments:
    """The adapter's and the batches' sizes, which both training stages take (None: the YAML's)."""

    lora_rank: int | None = field(default=None, metadata={"help": "rank of the LoRA adapter the stage trains"})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha of the adapter the stage trains"})
    cutoff_len: int | None = field(default=None, metadata={"help": "longest training sequence in tokens"})
    per_device_train_batch_size: int | None = field(default=None, metadata={"help": "samples (DPO: pairs) per forward pass"})
    gradient_accumulation_steps: int | None = field(
        default=None, metadata={"help": "forward passes per step; with the batch, the samples per step (the paper's 8)"}
    )

    def __post_init__(self):
        check_range(self, lora_rank=1, lora_alpha=1, cutoff_len=1, per_device_train_batch_size=1, gradient_accumulation_steps=1)


@dataclass
class ATuneArguments(TrainingShapeArguments):
    """First-stage training hyper-parameters (None: the YAML's, i.e. the paper's)."""

    preset_key: ClassVar[str] = "a_tune"
    learning_rate: float | None = field(default=None, metadata={"help": "peak learning rate (cosine to 1e-6 after a 10%% warm-up)"})
    num_train_epochs: float | None = field(default=None, metadata={"help": EPOCHS_HELP})
    eval_steps: int | None = field(default=None, metadata={"help": "steps between validation-loss evaluations (and checkpoints)"})

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "learning_rate", "num_train_epochs")
        check_range(self, eval_steps=1)

    def overrides(self) -> dict:
        found = {key: value for key, value in dataclasses.asdict(self).items() if value is not None}
        if "eval_steps" in found:
            found["save_steps"] = found["eval_steps"]  # the best checkpoint must have been saved
        return found


@dataclass
class SelectArguments:
    """B-Tuning's sample selection (section 3.3)."""

    preset_key: ClassVar[str] = "select"
    per_class: int = field(default=20, metadata={"help": "F, samples selected per behavior"})
    lam: float = field(default=0.5, metadata={"help": "lambda, weight of 1 - p(y|x) in the difficulty"})
    strategy: Literal["dds", "random", "topk"] = field(default="dds", metadata={"help": "random = w/o DDS, topk = w/o KMeans"})
    confusion: Literal["prose", "literal"] = field(default="prose", metadata={"help": "reading of the confusion term"})
    embed: Literal["sample", "last"] = field(default="sample", metadata={"help": "E(x): the sample's tokens or the last one"})
    max_pairs_per_rejected: int | None = field(
        default=None,
        metadata={"help": "cap of the pairs one rejected label may take; a pair over it rejects its next most probable wrong label"},
    )
    default_per_class: int = field(default=20, metadata={"help": "the preset's F, whose variant has no suffix"})

    def __post_init__(self):
        check_range(self, per_class=1, default_per_class=1, max_pairs_per_rejected=1)
        check_range(self, low=0.0, high=1.0, lam=None)

    def selection(self) -> Selection:
        return Selection(self.strategy, self.per_class, self.confusion, self.max_pairs_per_rejected)

    def suffix(self) -> str:
        return self.selection().suffix(self.default_per_class)


# The second stage's variants (section 3.3 and Table 4's "w/o DPO", plus three for small backbones;
# docs/method.md, "B-Tuning variants and model selection").
B_TUNE_VARIANTS = {
    "dpo": "the paper's: LoRA-DPO on the selected pairs, the A-tuned model as the reference",
    "dpo_nll": "DPO plus the chosen answer's likelihood (LlamaFactory's pref_ftx; RPO)",
    "sft": "SFT on the selected samples (Table 4's w/o DPO)",
    "sft_replay": "SFT on the selected samples plus as many anchor samples (keeps the head)",
    "sft_dpo": "the sft variant, then DPO on pairs rebuilt from its own wrong answers, it as the reference",
}
# With TRL 0.24, LlamaFactory 0.9.5 calls TRL's dpo_loss without a loss type, which then defaults to sigmoid: these
# names would silently train sigmoid DPO.
SILENTLY_SIGMOID = ("ipo", "hinge", "kto_pair")


@dataclass
class BTuneArguments(TrainingShapeArguments):
    """B-Tuning training: the variant and its hyper-parameters (None: the variant's YAML value)."""

    preset_key: ClassVar[str] = "b_tune"
    variant: Literal["dpo", "dpo_nll", "sft", "sft_replay", "sft_dpo"] = field(
        default="dpo", metadata={"help": "; ".join(f"{name}: {text}" for name, text in B_TUNE_VARIANTS.items())}
    )
    learning_rate: float | None = field(default=None, metadata={"help": "peak learning rate (cosine to 1e-6 after a 10%% warm-up)"})
    num_train_epochs: float | None = field(default=None, metadata={"help": EPOCHS_HELP})
    pref_beta: float | None = field(default=None, metadata={"help": "DPO beta (DPO variants)"})
    pref_ftx: float | None = field(default=None, metadata={"help": "weight of the chosen answer's NLL added to DPO (dpo_nll)"})
    pref_loss: str | None = field(
        default=None, metadata={"help": "preference loss of the DPO variants: sigmoid (DPO), orpo or simpo"}
    )
    max_samples: int | None = field(default=None, metadata={"help": "cap of the training samples (pairs) per data set"})

    def __post_init__(self):
        if self.variant not in B_TUNE_VARIANTS:
            raise UserError(f"--variant must be one of {list(B_TUNE_VARIANTS)}, got {self.variant!r}")
        if self.pref_loss in SILENTLY_SIGMOID:
            raise UserError(
                f"--pref_loss {self.pref_loss}: LlamaFactory 0.9.5 with TRL 0.24 trains sigmoid DPO under this name "
                "(its trainer calls TRL's dpo_loss without the loss type); use sigmoid, orpo or simpo"
            )
        if self.pref_loss not in (None, "sigmoid", "orpo", "simpo"):
            raise UserError(f"--pref_loss must be sigmoid, orpo or simpo, got {self.pref_loss!r}")
        super().__post_init__()
        check_positive(self, "learning_rate", "pref_beta")
        check_range(self, pref_ftx=0.0, max_samples=1)
        if self.num_train_epochs is not None and (self.num_train_epochs < 1 or self.num_train_epochs != int(self.num_train_epochs)):
            raise UserError(f"--num_train_epochs for B-Tuning is a whole number of epochs (one checkpoint each), got {self.num_train_epochs}")

    @property
    def is_dpo(self) -> bool:
        return self.variant in DPO_VARIANTS

    def overrides(self) -> dict:
        """LlamaFactory settings given (the DPO-only ones only for the DPO variants)."""
        found = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "variant"}
        if not self.is_dpo:
            found = {k: v for k, v in found.items() if not k.startswith("pref_")}
        return found


def _apply(parser: argparse.ArgumentParser, values: dict, known: set[str], source: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {unknown}")
    parser.set_defaults(**values)


def parse(classes: tuple[type, ...], argv: list[str] | None = None, description: str | None = None) -> tuple:
    """Parse ``argv`` into ``classes`` with the preset overlay and an optional ``--config`` YAML file.

    The preset comes from ``--preset`` (or ``PRESET`` in the environment, as the
    Makefile passes it); its overlay of each class sets that class's defaults.
    """
    from transformers import HfArgumentParser


    parser = HfArgumentParser(classes, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file of settings (the command line overrides it)")
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    early.add_argument("--config", type=Path)
    early.add_argument("--variant")
    first, _ = early.parse_known_args(argv)
    from_file = {}
    if first.config is not None:
        if not first.config.is_file():
            raise UserError(f"{first.config}: no such config file")
        try:
            from_file = yaml.safe_load(first.config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            where = f" at line {err.problem_mark.line + 1}" if getattr(err, "problem_mark", None) else ""
            raise UserError(f"{first.config}: not readable YAML{where}") from err
        if not isinstance(from_file, dict):
            raise UserError(f"{first.config}: expected a mapping of setting: value, got a {type(from_file).__name__}")
    preset = from_file.get("preset", first.preset) if "--preset" not in (argv or []) else first.preset
    parser.set_defaults(preset=preset)
    variant = first.variant or from_file.get("variant")  # picks the preset's per-variant overlay
    known = {f.name for cls in classes for f in dataclasses.fields(cls)}
    for cls in classes:
        overlay = preset_overlay(preset, cls.preset_key, variant)
        parser.set_defaults(**{key: value for key, value in overlay.items() if key in {f.name for f in dataclasses.fields(cls)}})
    _apply(parser, from_file, known, str(first.config))
    parsed = parser.parse_args_into_dataclasses(args=argv)
    return tuple(p for p in parsed if not isinstance(p, argparse.Namespace))


def build(cls: type, preset: str, **values):
    """A dataclass for ``preset`` with ``values`` over its overlay: how the benchmark makes each row's settings."""

    names = {f.name for f in dataclasses.fields(cls)}
    overlay = preset_overlay(preset, cls.preset_key, values.get("variant"))
    return cls(**{k: v for k, v in overlay.items() if k in names} | values)


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
