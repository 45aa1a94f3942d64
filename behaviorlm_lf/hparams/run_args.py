"""Which run a command works on: the data set, preset, seed, root, backbone and chat template."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..extras.layout import RunLayout
from .checks import check_plain_name, check_range


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
        check_range(self, high=2**32 - 1, seed=0)  # numpy's and torch's seeds are 32-bit
        if self.sub_run:
            check_plain_name("--sub_run", self.sub_run)

    def layout(self) -> RunLayout:
        return RunLayout(self.dataset, self.preset, self.seed, Path(self.root), self.sub_run, self.model, self.template)


@dataclass
class ModelsArguments:
    preset_key: ClassVar[str] = "models"
    which: Literal["default", "tiny"] = field(default="default", metadata={"help": "default: SmolLM2-135M-Instruct; tiny: the tests' model"})
