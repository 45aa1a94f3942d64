"""Where everything of a run lives: the one place that joins a path or a registry name.

A run is a data set (converted with a seed), a preset and optionally a named
sub-run (the benchmark's rows that need a first stage of their own). Under ``root`` (the folder
the commands run in):

    dataset_info.json                     LlamaFactory's registry (the YAMLs' dataset_dir is the root); the
                                          repository tracks the default data set's entries
    data/<data name>/<set>.jsonl          the data sets, registered as <data name>_<set>
    saves/<data name>/<preset>[/<sub-run>]/
        a_tune/  a_merged/                 A-Tuning's adapter, and the backbone with it merged
        pool_scores/                       the selection pool scored by the A-tuned model
        select<selection>/                 selected samples, pairs and replayed anchor samples
        b_tune[_<variant>]<selection>/     the B-Tuning adapter (on a_merged), its report
        b_tune_sft<selection>_merged/      sft_dpo: the sft variant merged in (its DPO's model and reference)
        b_tune_sft<selection>_pairs/       sft_dpo: the pairs rebuilt from that model's wrong answers
        sft_<set>/ sft_<set>_merged/ sft_<set>_pool_scores/ ...
                                           the same after another first stage (all_train: full
                                           fine-tuning; tail_train: Fig. 5's tail-first stage)
    reports/<data name>/<preset>[/<sub-run>]/<name>/
    models/                               converted backbones

The data name is the data set's name for seed 0 and ``<name>-seed<k>`` for
another seed, since the seed draws the user split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import MissingStageError, UserError

REGISTRY = "dataset_info.json"
FIRST_STAGES = ("anchor_train", "all_train", "tail_train")
# The paper's two test sets, by the name each report gives them: every evaluation, LLM or baseline, scores both.
TEST_SETS = {"natural": "test_natural", "balanced": "test_balanced"}


WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")
TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json")


def check_model_folder(folder: Path, flag: str = "--model") -> Path:
    """``folder`` if it holds what loading needs (a readable config.json, weights whose header reads, a tokenizer),
    else one line saying what is wrong, before any stage loads it (transformers would fail later with a traceback)."""
    if folder.is_file():
        raise UserError(f"{flag} {folder}: a file, not a model folder")
    missing = [what for what, found in (
        ("config.json", (folder / "config.json").is_file()),
        ("weights (*.safetensors or pytorch_model*.bin)", any(any(folder.glob(pattern)) for pattern in WEIGHTS)),
        ("tokenizer (tokenizer.json, tokenizer.model or vocab.json)", any((folder / name).is_file() for name in TOKENIZER)),
    ) if not found]
    if missing:
        raise UserError(f"{flag} {folder}: not a model folder, it has no {' and no '.join(missing)}")
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{flag} {folder}: config.json is not readable JSON") from None
    for weights in folder.glob("*.safetensors"):
        if not _safetensors_header_reads(weights):
            raise UserError(f"{flag} {folder}: {weights.name} is truncated or not a safetensors file")
    return folder


def _safetensors_header_reads(path: Path) -> bool:
    """Whether the file starts as safetensors does: an 8-byte length, then a JSON header of that length."""
    with path.open("rb") as stream:
        size = int.from_bytes(stream.read(8), "little")
        if not 0 < size <= path.stat().st_size - 8:
            return False
        try:
            return isinstance(json.loads(stream.read(size)), dict)
        except (ValueError, UnicodeDecodeError):
            return False


def _in_hub_cache(name: str) -> bool:
    """Whether ``name`` is a Hugging Face model id whose config.json is in the local cache (loadable offline)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid model id (a path)
        return False


ADAPTER_WEIGHTS = "adapter_model.safetensors"


def check_adapter_folder(folder: Path, flag: str = "--adapter") -> Path:
    """``folder`` if it holds a LoRA adapter (``adapter_model.safetensors``, as a-tune and b-tune write), else one line."""
    if not (Path(folder) / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"{flag} {folder}: no LoRA adapter there ({ADAPTER_WEIGHTS}, which a-tune and b-tune write)")
    return Path(folder)


def _trained(adapter: Path, stage: str, command: str) -> Path:
    """``adapter``, a folder a stage of the run trains, or the error naming that stage and the command that runs it."""
    if not (adapter / ADAPTER_WEIGHTS).is_file():
        raise MissingStageError(stage, adapter, command)
    return adapter

def _check(first_stage: str) -> str:
    if first_stage not in FIRST_STAGES:
        raise ValueError(f"the first stage trains on one of {FIRST_STAGES}, got {first_stage!r}")
    return first_stage


def _prefix(first_stage: str) -> str:
    """"" for A-Tuning (the paper's first stage), "sft_<set>_" for the others."""
    return "" if _check(first_stage) == "anchor_train" else f"sft_{first_stage}_"


@dataclass(frozen=True)
class Selection:
    """A B-Tuning selection variant: strategy, samples per class, the reading of the confusion term and the cap of
    pairs per rejected label."""

    strategy: str = "dds"
    per_class: int = 20
    confusion: str = "prose"
    max_pairs_per_rejected: int | None = None

    def suffix(self, default_per_class: int) -> str:
        """"" for the default (DDS, the preset's F, the prose reading, no cap), else e.g. "_random_F5", "_literal", "_rcap20"."""
        return (
            ("" if self.strategy == "dds" else f"_{self.strategy}")
            + ("" if self.per_class == default_per_class else f"_F{self.per_class}")
            + ("" if self.confusion == "prose" else f"_{self.confusion}")
            + ("" if self.max_pairs_per_rejected is None else f"_rcap{self.max_pairs_per_rejected}")
        )


MODELS_OF_A_RUN = ("base", "a_tune", "b_tune")


@dataclass(frozen=True)
class RunLayout:
    """A run's folders and files, and its models: the backbone (``model``, the ``--model`` flag or the preset's, found
    under ``root`` when relative) and ``template``, the ``--template`` flag (None: inferred from the backbone)."""

    dataset: str
    preset: str
    seed: int = 0
    root: Path = Path(".")
    sub_run: str = ""
    model: str | None = None
    template: str | None = None

    @property
    def data_name(self) -> str:
        return self.dataset if self.seed == 0 else f"{self.dataset}-seed{self.seed}"

    # data sets and LlamaFactory's registry
    @property
    def data_root(self) -> Path:
        return Path(self.root) / "data"

    @property
    def dataset_dir(self) -> Path:
        """LlamaFactory's ``dataset_dir``: the folder of the registry, which its entries' paths are relative to."""
        return Path(self.root)

    @property
    def registry(self) -> Path:
        return self.dataset_dir / REGISTRY

    @property
    def data_dir(self) -> Path:
        return self.data_root / self.data_name

    def set_file(self, set_name: str, suffix: str = ".jsonl") -> Path:
        return self.data_dir / f"{set_name}{suffix}"

    def set_registry_name(self, set_name: str) -> str:
        return f"{self.data_name}_{set_name}"

    @property
    def behaviors_file(self) -> Path:
        return self.data_dir / "behaviors.json"

    def data_command(self) -> str:
        """The command that writes this run's data sets."""
        return f"behaviorlm data --dataset {self.dataset} --preset {self.preset}" + (f" --seed {self.seed}" if self.seed else "")

    def require_data(self, path: Path | None = None) -> Path:
        """``path``, a file the data stage writes (default: behaviors.json), or the error that says how to write it."""
        path = path or self.behaviors_file
        if not path.is_file():
            raise MissingStageError("the data stage", path, self.data_command())
        return path

    def vocabulary(self) -> dict:
        """behaviors.json: the candidates, the groups and anchors, the history length and the sets' sizes."""
        return json.loads(self.require_data().read_text(encoding="utf-8"))

    # stages
    @property
    def run_dir(self) -> Path:
        base = Path(self.root) / "saves" / self.data_name / self.preset
        return base / self.sub_run if self.sub_run else base

    def first_stage_dir(self, first_stage: str = "anchor_train") -> Path:
        return self.run_dir / ("a_tune" if _check(first_stage) == "anchor_train" else f"sft_{first_stage}")

    def merged_dir(self, first_stage: str = "anchor_train") -> Path:
        return self.run_dir / ("a_merged" if _check(first_stage) == "anchor_train" else f"sft_{first_stage}_merged")

    def pool_scores_dir(self, first_stage: str = "anchor_train") -> Path:
        return self.run_dir / f"{_prefix(first_stage)}pool_scores"

    def select_dir(self, first_stage: str, selection_suffix: str) -> Path:
        return self.run_dir / f"{_prefix(first_stage)}select{selection_suffix}"

    def b_tune_dir(self, first_stage: str, selection_suffix: str, variant: str = "dpo") -> Path:
        kind = "b_tune" if variant == "dpo" else f"b_tune_{variant}"
        return self.run_dir / f"{_prefix(first_stage)}{kind}{selection_suffix}"

    def b_tune_base_dir(self, first_stage: str, selection_suffix: str, variant: str = "dpo") -> Path:
        """The model a variant's adapter sits on: the merged first stage, or for ``sft_dpo`` the sft variant merged in."""
        if variant != "sft_dpo":
            return self.merged_dir(first_stage)
        return self.b_tune_dir(first_stage, selection_suffix, "sft").with_name(f"{_prefix(first_stage)}b_tune_sft{selection_suffix}_merged")

    def selection_done(self, first_stage: str, selection: Selection, selection_suffix: str) -> Path:
        """The selection's folder once `select` has finished it, or the error naming the command with its flags."""
        folder = self.select_dir(first_stage, selection_suffix)
        if not (folder / "diagnostics.json").is_file():
            raise MissingStageError(
                f"the selection{selection_suffix}", folder,
                f"behaviorlm select --dataset {self.dataset} --preset {self.preset} --first-stage {first_stage} "
                f"--strategy {selection.strategy} --per-class {selection.per_class} --confusion {selection.confusion}"
                + (f" --max_pairs_per_rejected {selection.max_pairs_per_rejected}" if selection.max_pairs_per_rejected else ""),
            )
        return folder

    def rebuilt_pairs_dir(self, first_stage: str, selection_suffix: str) -> Path:
        """``sft_dpo``'s pairs: the selected samples scored by the sft variant, each against its own wrong answer."""
        return self.run_dir / f"{_prefix(first_stage)}b_tune_sft{selection_suffix}_pairs"

    def selected_set(self, first_stage: str, selection_suffix: str, kind: str) -> str:
        """The set a selection publishes beside the data (``pairs``, ``selected_sft``, ``replay``, ``sft_pairs``), fixed per
        first stage, sub-run and variant so that ``llamafactory_configs/b_tune.yaml`` names ``<data>_pairs``."""
        return f"{_prefix(first_stage)}{self.sub_run + '_' if self.sub_run else ''}{kind}{selection_suffix}"

    # reports
    @property
    def reports_dir(self) -> Path:
        base = Path(self.root) / "reports" / self.data_name / self.preset
        return base / self.sub_run if self.sub_run else base

    def report_dir(self, name: str) -> Path:
        return self.reports_dir / name

    # the backbones `behaviorlm models` converts, and the models of the run
    @property
    def models_dir(self) -> Path:
        return Path(self.root) / "models"

    def model_path(self) -> Path:
        """The backbone's folder, unchecked: ``model`` itself when absolute or present, else under ``root`` (where
        `behaviorlm models` converts the presets' backbones)."""
        if self.model is None:
            raise UserError(f"preset {self.preset!r} names no model: pass --model (MODEL=<folder>)")
        path = Path(self.model)
        return path if path.is_absolute() or path.exists() else Path(self.root) / path

    def model_dir(self) -> str:
        """The backbone folder, checked, or a Hugging Face model id found in the local cache."""
        path = self.model_path()
        if not path.exists() and not path.is_absolute() and _in_hub_cache(self.model):
            return self.model
        if not path.exists():
            raise UserError(f"--model {path}: no such model folder (`behaviorlm models`, or make models, converts the "
                            "presets' backbones; or pass --model <folder>)")
        return str(check_model_folder(path))

    def first_stage_adapter(self, first_stage: str = "anchor_train") -> Path:
        """The first stage's adapter folder, or the error that says how to train it."""
        return _trained(self.first_stage_dir(first_stage), f"the first stage ({first_stage})",
                        f"behaviorlm a-tune --dataset {self.dataset} --preset {self.preset} --first-stage {first_stage}")

    def trained_model(
        self, which: str, first_stage: str = "anchor_train", selection_suffix: str = "", variant: str = "dpo"
    ) -> tuple[str, Path | None]:
        """(model folder, adapter folder or None) of a model of this run: the backbone, the first-stage or the B-tuned
        one; the error that says how to train it when it has not been."""
        if which == "base":
            return self.model_dir(), None
        if which == "a_tune":
            return self.model_dir(), self.first_stage_adapter(first_stage)
        if which == "b_tune":
            adapter = _trained(self.b_tune_dir(first_stage, selection_suffix, variant), f"B-Tuning ({variant})",
                               f"behaviorlm b-tune --dataset {self.dataset} --preset {self.preset} --first-stage {first_stage} "
                               f"--variant {variant} and the selection flags the model was selected with")
            return str(self.b_tune_base_dir(first_stage, selection_suffix, variant)), adapter
        raise UserError(f"unknown model {which!r}: choose one of {MODELS_OF_A_RUN} or pass --model/--adapter")

    def chosen_model(
        self, which: str, adapter: Path | None, first_stage: str, selection_suffix: str, variant: str
    ) -> tuple[str, Path | None]:
        """The model `eval` and `predict` use: the backbone with ``--adapter`` if given, else the run's model ``--run``."""
        if adapter is not None:
            return self.model_dir(), check_adapter_folder(adapter)
        return self.trained_model(which, first_stage, selection_suffix, variant)
