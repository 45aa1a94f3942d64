"""Sizes and model per machine class. A preset never changes the method, only how much of it runs.

``smoke``: the tiny random model and a few dozen samples, for tests (about a minute).
``cpu``: SmolLM2-135M on a 2-core CPU, the whole pipeline in about half an hour.
``gpu``: the paper's settings on an 8B-class model folder you provide (``MODEL=``).
``cpu-benchmark``: SmolLM2-135M at the size the benchmark can afford on a 2-core CPU: it trains
about 14 models per seed, each far smaller than ``cpu``'s (F = 1 per class, one balanced test
sample per class). ``make benchmark PRESET=cpu`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Preset:
    model: str
    template: str
    # embedded simulator size
    sim_users: int
    sim_days: int
    # data caps (None = no cap)
    max_train: int | None
    max_valid: int | None
    max_natural_test: int | None
    balanced_per_class: int
    pool_per_class: int
    # training sizes
    num_train_epochs: float
    eval_steps: int
    select_per_class: int
    b_num_train_epochs: float
    b_max_samples: int | None
    cutoff_len: int
    # LlamaFactory settings that depend on the hardware, not the method
    llamafactory_overrides: dict = field(default_factory=dict)
    # Training hyper-parameters for the backbone's size (the YAML files hold the paper's, for an 8B model):
    # A-Tuning and full fine-tuning, and B-Tuning.
    a_tune_args: dict = field(default_factory=dict)
    b_tune_args: dict = field(default_factory=dict)


# A 135M backbone learns from a thousand samples only with a learning rate ten times the paper's 1e-4 (which is
# for an 8B model over thousands of steps) and a wider adapter; chosen from the measured learning curve
# (docs/learning_curve.md).
SMALL_MODEL_A_TUNE = {"learning_rate": 1.0e-3, "lora_rank": 16, "lora_alpha": 32}
SMALL_MODEL_B_TUNE = {"learning_rate": 2.0e-4, "lora_rank": 16, "lora_alpha": 32}

PRESETS = {
    "smoke": Preset(
        model="models/tiny-llama", template="smollm2", sim_users=40, sim_days=7,
        max_train=32, max_valid=16, max_natural_test=32, balanced_per_class=4, pool_per_class=4,
        num_train_epochs=1, eval_steps=2, select_per_class=2, b_num_train_epochs=1, b_max_samples=8, cutoff_len=1024,
    ),
    "cpu": Preset(
        model="models/SmolLM2-135M-Instruct", template="smollm2", sim_users=1500, sim_days=28,
        max_train=1000, max_valid=64, max_natural_test=400, balanced_per_class=10, pool_per_class=20,
        num_train_epochs=1, eval_steps=40, select_per_class=10, b_num_train_epochs=1, b_max_samples=None, cutoff_len=1024,
        a_tune_args=SMALL_MODEL_A_TUNE, b_tune_args=SMALL_MODEL_B_TUNE,
    ),
    "cpu-benchmark": Preset(
        model="models/SmolLM2-135M-Instruct", template="smollm2", sim_users=300, sim_days=28,
        max_train=32, max_valid=8, max_natural_test=50, balanced_per_class=1, pool_per_class=2,
        num_train_epochs=1, eval_steps=2, select_per_class=1, b_num_train_epochs=1, b_max_samples=None, cutoff_len=1024,
        a_tune_args=SMALL_MODEL_A_TUNE, b_tune_args=SMALL_MODEL_B_TUNE,
    ),
    "gpu": Preset(
        model="models/Meta-Llama-3.1-8B-Instruct", template="llama3", sim_users=3000, sim_days=60,
        max_train=None, max_valid=2000, max_natural_test=None, balanced_per_class=500, pool_per_class=500,
        num_train_epochs=8, eval_steps=500, select_per_class=20, b_num_train_epochs=3, b_max_samples=None, cutoff_len=2048,
        llamafactory_overrides={"disable_gradient_checkpointing": False, "bf16": True},
    ),
}


def get_preset(name: str) -> Preset:
    """The preset, with its model folder resolved against the repo root (where ``make models`` puts it)."""
    if name not in PRESETS:
        raise SystemExit(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    return replace(preset, model=str(REPO_ROOT / preset.model))
