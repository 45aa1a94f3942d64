"""Presets: overlays of values on the settings of :mod:`behaviorlm_lf.hparams`, per machine class.

A preset changes sizes, the backbone and the hyper-parameters a backbone of
that size needs; never the method. Each is a dict keyed by a dataclass's
``preset_key``.

``smoke``: the tiny random model and a few dozen samples, for tests (a minute).
``cpu``: SmolLM2-135M on a 2-core CPU, sized so that one A-Tuning epoch over 1,000
samples fits in half an hour (the README's measured demo gives the times and results).
``gpu``: the paper's settings for an 8B-class model folder you provide (``MODEL=``).
``gpu-bench``: SmolLM2-135M at sizes a CPU cannot reach, for one GPU in about ten minutes (``make gpu-bench``).
"""

from __future__ import annotations

from .errors import UserError

SMOLLM2 = "models/SmolLM2-135M-Instruct"
# A 135M backbone learns from a thousand samples only with a learning rate ten times the paper's 1e-4 (which
# is for an 8B model over thousands of steps) and a wider adapter; in bf16, updates at 1e-4 are also partly lost
# to rounding (README, "Speed on this machine").
SMALL_MODEL_A_TUNE = {"learning_rate": 1.0e-3, "lora_rank": 16, "lora_alpha": 32}
# DPO at 2e-4 collapsed the cpu demo's model onto one rare behavior in one epoch; 5e-5 did not (README).
SMALL_MODEL_B_TUNE = {"learning_rate": 5.0e-5, "lora_rank": 16, "lora_alpha": 32}
# On this CPU, half the sequences per forward pass, twice the accumulation: still 8 samples (pairs) per step, the
# paper's batch, with about 40% less resident memory and no loss of speed (README, "Speed on this machine"). On a GPU
# a 135M model is launch-bound, so the gpu presets keep the YAML's larger passes.
CPU_MICRO_BATCHES = {"a_tune": {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2},
                     "b_tune": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}}

PRESETS: dict[str, dict[str, dict]] = {
    "smoke": {
        "run": {"model": "models/tiny-llama"},
        "data": {
            "sim_users": 40, "sim_days": 7, "max_train": 32, "max_valid": 16, "max_natural_test": 32,
            "balanced_per_class": 4, "pool_per_class": 4,
        },
        "a_tune": {"num_train_epochs": 1, "eval_steps": 2},
        "select": {"per_class": 2, "default_per_class": 2},
        "b_tune": {"num_train_epochs": 1, "max_samples": 8},
    },
    "cpu": {
        "run": {"model": SMOLLM2},
        "data": {
            "sim_users": 1500, "sim_days": 28, "max_train": 1000, "max_valid": 64, "max_natural_test": 500,
            "balanced_per_class": 10, "pool_per_class": 20,
        },
        "a_tune": {**SMALL_MODEL_A_TUNE, **CPU_MICRO_BATCHES["a_tune"], "num_train_epochs": 1, "eval_steps": 40},
        "select": {"per_class": 10, "default_per_class": 10},
        "b_tune": {**SMALL_MODEL_B_TUNE, **CPU_MICRO_BATCHES["b_tune"], "num_train_epochs": 1},
    },
    "gpu": {
        "run": {},
        "data": {
            "sim_users": 3000, "sim_days": 60, "max_train": None, "max_valid": 2000, "max_natural_test": None,
            "balanced_per_class": 500, "pool_per_class": 500,
        },
        "a_tune": {"num_train_epochs": 8, "eval_steps": 500, "cutoff_len": 2048},
        "select": {"per_class": 20, "default_per_class": 20},
        "b_tune": {"num_train_epochs": 3, "cutoff_len": 2048},
    },
    # Sized to one 15-minute GPU lease. On an H200 LlamaFactory trains this backbone at 3.6 steps of 8 samples per
    # second (README): at 8,000 samples a first stage took 320 s, and two of them, DPO and four evaluations did not fit.
    "gpu-bench": {
        "run": {"model": SMOLLM2},
        "data": {
            "sim_users": 1500, "sim_days": 28, "max_train": 4000, "max_valid": 200, "max_natural_test": 1000,
            "balanced_per_class": 50, "pool_per_class": 60,
        },
        "a_tune": {**SMALL_MODEL_A_TUNE, "num_train_epochs": 1, "eval_steps": 200},
        "select": {"per_class": 20, "default_per_class": 20},
        "b_tune": {**SMALL_MODEL_B_TUNE, "num_train_epochs": 1},
    },
}


def preset_overlay(preset: str, key: str) -> dict:
    """The values ``preset`` sets on the dataclass whose ``preset_key`` is ``key``."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return dict(PRESETS[preset].get(key, {}))
