"""Shared fixtures: the tiny model, the shared real data (skipped when absent), offline mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BEHAVIORLM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    """A file under ../shared/data, or skip: a user's fresh clone has no ../shared."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data exists only beside the project's own checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """models/tiny-llama, made once (seconds) from the default model's tokenizer."""
    from behaviorlm_lf.models import TINY_MODEL_DIR, make_tiny

    return make_tiny(REPO_ROOT / TINY_MODEL_DIR)
