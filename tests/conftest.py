"""Shared fixtures: the tiny model, the smoke data set converted once, the shared real data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_DISABLED", "true")

from behaviorlm_lf.data.convert import convert, shared_data
from behaviorlm_lf.hparams import DataArguments, RunArguments, for_preset

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_file(relative: str) -> Path:
    """A file under ../shared/data, or skip: a user's fresh clone has no ../shared."""
    path = shared_data(REPO_ROOT) / relative
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data exists only beside the project's own checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """models/tiny-llama, made once (seconds) from the default model's tokenizer."""
    from behaviorlm_lf.model.backbones import TINY_MODEL_DIR, make_tiny

    return make_tiny(REPO_ROOT / TINY_MODEL_DIR)


def smoke_run(root: Path, model: Path, **changes) -> RunArguments:
    """The smoke preset's run of the embedded data set under ``root``, with the tiny model."""
    return RunArguments(**({"dataset": "default", "preset": "smoke", "root": Path(root), "model": str(model)} | changes))


def convert_smoke(run: RunArguments, **data_changes) -> Path:
    return convert(run, for_preset(DataArguments, "smoke", **data_changes))


@pytest.fixture(scope="session")
def smoke(tmp_path_factory, tiny_model) -> RunArguments:
    """The smoke data set, converted once for every test that reads it (tests that change it make their own)."""
    run = smoke_run(tmp_path_factory.mktemp("smoke"), tiny_model)
    convert_smoke(run)
    return run
