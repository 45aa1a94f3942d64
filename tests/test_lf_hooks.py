"""The speed hooks change how much is computed, not what: same losses as plain llamafactory-cli (float32)."""

from __future__ import annotations

import pytest
import torch

from behaviorlm_lf.lf.hooks import IGNORE_INDEX, labelled_positions
from behaviorlm_lf.lf.run import CONFIG_DIR, run_llamafactory
from behaviorlm_lf.studies.bench_train import write_pool_pairs


def test_labelled_positions_are_the_union_of_the_rows_answer_positions():
    labels = torch.full((2, 8), IGNORE_INDEX)
    labels[0, 5:7] = torch.tensor([11, 12])  # predicted by positions 4 and 5
    labels[1, 3] = 13  # predicted by position 2
    keep, targets = labelled_positions(labels)
    assert keep.tolist() == [2, 4, 5]
    assert targets.tolist() == [[IGNORE_INDEX, 11, 12], [13, IGNORE_INDEX, IGNORE_INDEX]]


FLOAT32 = {"bf16": False}
STEPS = {"max_steps": 3, "logging_steps": 1, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "dataset"), [("a_tune.yaml", "default_anchor_train"), ("b_tune.yaml", "bench_pairs")], ids=["sft", "dpo"]
)
def test_hooked_run_logs_the_same_losses_as_plain_llamafactory(smoke, tmp_path, config, dataset):
    layout = smoke.layout()
    dataset_dir = layout.dataset_dir if dataset.startswith("default") else write_pool_pairs(layout.set_file("pool"), tmp_path)
    common = {"model_name_or_path": smoke.model, "dataset_dir": str(dataset_dir), "dataset": dataset, **STEPS}
    losses = {}
    for hooks in (False, True):
        found = run_llamafactory(CONFIG_DIR / config, common, tmp_path / f"hooks{hooks}", hooks=hooks, precision=FLOAT32)
        losses[hooks] = [loss for _, loss in found["train_loss"]]
    assert len(losses[True]) == 3
    assert losses[True] == pytest.approx(losses[False], abs=1e-4)
