"""The training stages' settings: the first stage, the selection and B-Tuning (None: the YAML's value, the paper's)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..extras.errors import UserError
from ..extras.layout import FIRST_STAGES, Selection
from .checks import check_positive, check_range
from .presets import DPO_VARIANTS


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
