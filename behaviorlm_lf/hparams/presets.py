"""Presets: overlays of values on the settings of :mod:`behaviorlm_lf.hparams`, per machine class.

A preset changes sizes, the backbone and the hyper-parameters a backbone of
that size needs; never the method. Each is a dict keyed by a dataclass's
``preset_key``.

``smoke``: the tiny random model and a few dozen samples, for tests (a minute).
``cpu``: SmolLM2-135M on a 2-core CPU, sized so that one A-Tuning epoch over 1,000
samples fits in half an hour (docs/results/ holds the measured demos, their times and results).
``gpu``: the paper's settings for an 8B-class model folder you provide (``MODEL=``).
``gpu-bench``: SmolLM2-135M at sizes a CPU cannot reach, for one GPU in about ten minutes (``make gpu-bench``).
"""

from __future__ import annotations

from ..extras.errors import UserError

SMOLLM2 = "models/SmolLM2-135M-Instruct"
# A 135M backbone learns from a thousand samples only with a learning rate ten times the paper's 1e-4 (which
# is for an 8B model over thousands of steps) and a wider adapter; in bf16, updates at 1e-4 are also partly lost
# to rounding (docs/performance.md, "Training: bench-train").
SMALL_MODEL_A_TUNE = {"learning_rate": 1.0e-3, "lora_rank": 16, "lora_alpha": 32}
SMALL_MODEL_LORA = {"lora_rank": 16, "lora_alpha": 32}
# The second stage's hyper-parameters per variant for a 135M backbone. DPO at 2e-4 collapsed the cpu demo's model onto
# one rare behavior in one epoch; 5e-5 did not (docs/results/2026-11-26-cpu-demo-xeon.md). The likelihood variants learn at A-Tuning's rate or, for the default, twice it.
SMALL_MODEL_B_TUNE = {
    "dpo": {"learning_rate": 5.0e-5},
    "dpo_nll": {"learning_rate": 5.0e-4, "pref_ftx": 1.0},
    "sft": {"learning_rate": 1.0e-3},
    "sft_replay": {"learning_rate": 2.0e-3},  # 1e-3 was still rising on validation at its last epoch (14.1 -> 15.7 at 2e-3)
    "sft_dpo": {"learning_rate": 5.0e-5},
}
# On this CPU, half the sequences per forward pass, twice the accumulation: still 8 samples (pairs) per step, the
# paper's batch, with about 40% less resident memory and no speed change established (docs/performance.md,
# "Memory"). On a GPU a 135M model is launch-bound, so the gpu presets keep the YAML's larger passes.
CPU_MICRO_BATCHES = {"sft": {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2},
                     "dpo": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}}
DPO_VARIANTS = ("dpo", "dpo_nll", "sft_dpo")


def per_variant(settings: dict[str, dict], epochs: dict[str, int], micro_batches: dict | None = None) -> dict[str, dict]:
    """``b_tune:<variant>`` overlays: each variant's hyper-parameters, epochs and (on a CPU) micro-batches."""
    return {
        f"b_tune:{variant}": {
            **values, "num_train_epochs": epochs[variant],
            **((micro_batches or {}).get("dpo" if variant in DPO_VARIANTS else "sft", {})),
        }
        for variant, values in settings.items()
    }


# The 135M backbone's second stage by default: on the demo data, SFT on the selected samples plus as many anchor
# samples had the best validation Overall of the five variants; the paper's DPO taught the tail nothing
# (docs/results/2026-12-02-b-tune-study-default-cpu-amd.md).
CPU_B_TUNE_VARIANT = "sft_replay"
# Epochs each variant trains at most on a CPU (its best epoch on validation is kept): DPO costs about 2.7 SFT steps.
CPU_B_TUNE_EPOCHS = {"dpo": 2, "dpo_nll": 2, "sft": 3, "sft_replay": 2, "sft_dpo": 2}

PRESETS: dict[str, dict[str, dict]] = {
    "smoke": {
        "run": {"model": "models/tiny-llama"},
        "data": {
            "sim_users": 40, "sim_days": 7, "max_train": 32, "max_valid": 16, "max_natural_test": 32,
            "balanced_per_class": 4, "pool_per_class": 4, "valid_per_class": 2,
        },
        "a_tune": {"num_train_epochs": 1, "eval_steps": 2},
        "select": {"per_class": 2, "default_per_class": 2},
        # two epochs, so that the choice of a checkpoint on validation runs; the paper's DPO, so that the fast tests
        # run the preference path (the tests train every other variant by name)
        "b_tune": {"variant": "dpo", "max_samples": 8},
        **per_variant({v: {} for v in SMALL_MODEL_B_TUNE}, dict.fromkeys(SMALL_MODEL_B_TUNE, 2)),
    },
    "cpu": {
        "run": {"model": SMOLLM2},
        "data": {
            "sim_users": 1500, "sim_days": 28, "max_train": 1000, "max_valid": 64, "max_natural_test": 500,
            "balanced_per_class": 10, "pool_per_class": 20, "valid_per_class": 5,
        },
        "a_tune": {**SMALL_MODEL_A_TUNE, **CPU_MICRO_BATCHES["sft"], "num_train_epochs": 1, "eval_steps": 40},
        "select": {"per_class": 10, "default_per_class": 10},
        # the b-tune-study's winner on validation (docs/results/2026-12-02-b-tune-study-default-cpu-amd.md)
        "b_tune": {"variant": CPU_B_TUNE_VARIANT, **SMALL_MODEL_LORA},
        **per_variant(SMALL_MODEL_B_TUNE, CPU_B_TUNE_EPOCHS, CPU_MICRO_BATCHES),
    },
    "gpu": {
        "run": {},
        "data": {
            "sim_users": 3000, "sim_days": 60, "max_train": None, "max_valid": 2000, "max_natural_test": None,
            "balanced_per_class": 500, "pool_per_class": 500, "valid_per_class": 100,
        },
        "a_tune": {"num_train_epochs": 8, "eval_steps": 500, "cutoff_len": 2048},
        "select": {"per_class": 20, "default_per_class": 20},
        # the paper's setting: its B-Tuning (DPO), up to 8 epochs, the best on validation (section 4.1.4)
        "b_tune": {"variant": "dpo", "cutoff_len": 2048},
        **per_variant({v: {} for v in SMALL_MODEL_B_TUNE}, dict.fromkeys(SMALL_MODEL_B_TUNE, 8)),
    },
    # Sized to one 15-minute GPU lease. On an H200 LlamaFactory trains this backbone at 3.6 steps of 8 samples per
    # second (docs/gpu.md): at 8,000 samples a first stage took 320 s, and two of them, DPO and four evaluations did not fit.
    "gpu-bench": {
        "run": {"model": SMOLLM2},
        "data": {
            "sim_users": 1500, "sim_days": 28, "max_train": 4000, "max_valid": 200, "max_natural_test": 1000,
            "balanced_per_class": 50, "pool_per_class": 60, "valid_per_class": 20,
        },
        "a_tune": {**SMALL_MODEL_A_TUNE, "num_train_epochs": 1, "eval_steps": 200},
        "select": {"per_class": 20, "default_per_class": 20},
        # the cpu study's winner, carried over: no study has run at this size on a GPU yet
        "b_tune": {"variant": CPU_B_TUNE_VARIANT, **SMALL_MODEL_LORA},
        **per_variant(SMALL_MODEL_B_TUNE, dict.fromkeys(SMALL_MODEL_B_TUNE, 2)),
    },
}


def preset_overlay(preset: str, key: str, variant: str | None = None) -> dict:
    """The values ``preset`` sets on the dataclass whose ``preset_key`` is ``key``.

    A key may have per-variant overlays (``b_tune:<variant>``): those of ``variant``, else of the variant the
    preset's own overlay names, go over the common values.
    """
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    overlay = dict(PRESETS[preset].get(key, {}))
    chosen = variant or overlay.get("variant")
    return overlay | PRESETS[preset].get(f"{key}:{chosen}", {}) if chosen else overlay
