"""Which run a command works on: the data set, preset, seed, root, backbone and chat template."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..extras.errors import MissingStageError, UserError
from ..extras.layout import RunLayout, check_model_folder
from .checks import check_plain_name, check_range

MODELS_OF_A_RUN = ("base", "a_tune", "b_tune")


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
        return str(check_model_folder(path if path.is_absolute() or path.exists() else Path(self.root) / path))

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
        from ..lf.template import infer_template

        if self.template is None:
            return infer_template(self.model_dir())
        from llamafactory.data.template import TEMPLATES  # checked here, where a stage needs LlamaFactory anyway

        if self.template not in TEMPLATES:
            raise UserError(f"--template {self.template!r}: not a LlamaFactory chat template; for example {sorted(TEMPLATES)[:8]}")
        return self.template


@dataclass
class ModelsArguments:
    preset_key: ClassVar[str] = "models"
    which: Literal["default", "tiny"] = field(default="default", metadata={"help": "default: SmolLM2-135M-Instruct; tiny: the tests' model"})
