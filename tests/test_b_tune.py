"""B-Tuning's variants, their LlamaFactory configs, the refused losses, the rejected-label cap and the epoch choice."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import REPO_ROOT

from behaviorlm_lf.extras.errors import UserError
from behaviorlm_lf.hparams import BTuneArguments, RunArguments, for_preset, parse
from behaviorlm_lf.lf.run import resolve
from behaviorlm_lf.train import b_tune as b_tune_module
from behaviorlm_lf.train.b_tune import VARIANTS, choose_epoch, keep_best_epoch
from behaviorlm_lf.train.pairs import pair_diagnostics, rank_diagnostics, rejected_candidates


def test_the_best_validation_epoch_is_kept_not_the_last():
    scores = [{"overall": 0.10}, {"overall": 0.31}, {"overall": 0.22}]
    assert choose_epoch(scores) == 1
    assert choose_epoch([{"overall": 0.2}, {"overall": 0.2}]) == 0  # a tie keeps the earlier (fewer updates)


def _checkpoint(folder, step, epoch, content):
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(content)
    (folder / "adapter_config.json").write_text(json.dumps({"step": step}))
    (folder / "trainer_state.json").write_text(json.dumps({"epoch": epoch, "global_step": step}))


def test_the_chosen_epochs_adapter_replaces_the_last_one(tmp_path, monkeypatch):
    """Three epochs whose validation Overall peaks at the second: its adapter ends on top, the checkpoints go."""
    for epoch in (1, 2, 3):
        _checkpoint(tmp_path / f"checkpoint-{5 * epoch}", 5 * epoch, float(epoch), f"weights of epoch {epoch}".encode())
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights of epoch 3")  # LlamaFactory saves the last on top
    overall = {"checkpoint-5": 0.2, "checkpoint-10": 0.4, "checkpoint-15": 0.3}

    def fake_validation(layout, model, adapter, template):
        return {"overall": overall[adapter.name], "head": 0.5, "medium": None, "tail": 0.1, "mean_log_p_true": {}}

    monkeypatch.setattr(b_tune_module, "validation_metrics", fake_validation)
    chosen = keep_best_epoch(tmp_path, layout=None, base=tmp_path, template="smollm2")
    assert (tmp_path / "adapter_model.safetensors").read_bytes() == b"weights of epoch 2"
    assert json.loads((tmp_path / "adapter_config.json").read_text()) == {"step": 10}
    assert not list(tmp_path.glob("checkpoint-*"))
    assert chosen["best_epoch"] == 2.0 and chosen["best_validation_overall"] == 0.4
    assert [e["epoch"] for e in chosen["validation"]] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_is_a_config_llamafactorys_own_parser_accepts(variant, tiny_model, tmp_path):
    from llamafactory.hparams import get_train_args

    hp = for_preset(BTuneArguments, "cpu", variant=variant)
    config = resolve(VARIANTS[variant].config, {"model_name_or_path": str(tiny_model), "output_dir": str(tmp_path)} | hp.overrides())
    _, data_args, training_args, finetuning_args, _ = get_train_args(config)
    assert finetuning_args.stage == ("dpo" if hp.is_dpo else "sft")
    assert training_args.save_strategy == "epoch"  # one checkpoint an epoch, for the choice on validation
    assert training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps == 8
    assert training_args.learning_rate == hp.learning_rate and training_args.num_train_epochs == hp.num_train_epochs
    assert finetuning_args.pref_ftx == (1.0 if variant == "dpo_nll" else 0.0)
    sets = {"dpo": ["default_pairs"], "dpo_nll": ["default_pairs"], "sft": ["default_selected_sft"],
            "sft_replay": ["default_selected_sft", "default_replay"], "sft_dpo": ["default_sft_pairs"]}
    assert data_args.dataset == sets[variant]


def test_each_variant_has_its_own_preset_settings_and_the_command_line_wins():
    _, dpo = parse((RunArguments, BTuneArguments), ["--preset", "cpu", "--variant", "dpo"])
    _, sft = parse((RunArguments, BTuneArguments), ["--preset", "cpu", "--variant", "sft"])
    assert dpo.learning_rate == 5e-5 and sft.learning_rate == 1e-3
    assert (dpo.per_device_train_batch_size, sft.per_device_train_batch_size) == (2, 4)
    _, mine = parse((RunArguments, BTuneArguments), ["--preset", "cpu", "--variant", "sft", "--learning_rate", "2e-4"])
    assert mine.learning_rate == 2e-4
    assert "pref_ftx" not in for_preset(BTuneArguments, "cpu", variant="sft", pref_ftx=1.0).overrides()


@pytest.mark.parametrize("loss", ["ipo", "hinge", "kto_pair"])
def test_losses_the_stack_silently_trains_as_sigmoid_are_refused(loss):
    with pytest.raises(UserError, match=f"--pref_loss {loss}: .* trains sigmoid DPO"):
        parse((RunArguments, BTuneArguments), ["--preset", "cpu", "--pref_loss", loss])


@pytest.mark.parametrize("loss", ["sigmoid", "orpo", "simpo"])
def test_losses_llamafactory_trains_as_named_pass_through(loss):
    _, hp = parse((RunArguments, BTuneArguments), ["--preset", "cpu", "--variant", "dpo", "--pref_loss", loss])
    assert hp.overrides()["pref_loss"] == loss


def test_a_refused_loss_is_one_line_on_the_command_line():
    done = subprocess.run([sys.executable, "-m", "behaviorlm_lf", "b-tune", "--pref_loss", "ipo"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "sigmoid" in done.stderr and "Traceback" not in done.stderr


def test_the_cap_spreads_the_rejected_answers_over_labels():
    # every row's most probable wrong answer is label 1; the surest two keep it, the others take their next one
    probs = np.array([[0.1, 0.8, 0.05, 0.05], [0.2, 0.7, 0.06, 0.04], [0.3, 0.5, 0.15, 0.05], [0.5, 0.4, 0.04, 0.06]])
    label = np.array([0, 0, 0, 0])
    assert rejected_candidates(probs, label).tolist() == [1, 1, 1, 1]
    assert rejected_candidates(probs, label, cap=2).tolist() == [1, 1, 2, 3]
    assert np.bincount(rejected_candidates(probs, label, cap=2), minlength=4).max() == 2
    with pytest.raises(UserError, match="need at least 2 per label"):
        rejected_candidates(probs, label, cap=1)


def test_pair_diagnostics_count_rejected_labels_and_ranks_per_group():
    pairs = [{"rejected": "a"}, {"rejected": "b"}, {"rejected": "a"}]
    assert pair_diagnostics(pairs) == {"pairs": 3, "distinct_rejected": 2, "rejected_counts": {"a": 2, "b": 1}}
    logprobs = np.log(np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]))
    found = rank_diagnostics(logprobs, np.array([0, 2, 2]), np.array(["head", "medium", "tail"]))
    assert found["head"]["hit@1"] == 1.0 and found["tail"] == {"n": 2, "hit@1": 0.5, "hit@5": 1.0, "hit@10": 1.0}


def test_the_study_refuses_an_unknown_variant():
    from behaviorlm_lf.hparams import StudyArguments

    with pytest.raises(UserError, match="unknown variant 'ipo'"):
        StudyArguments(variants=["sft", "ipo"])


def test_every_yaml_names_the_set_the_selection_publishes():
    """The YAMLs run as written after `make select` (sft_dpo: after its SFT model and pairs): their data sets exist."""
    from behaviorlm_lf.extras.layout import RunLayout

    layout = RunLayout("default", "cpu")
    for variant in VARIANTS.values():
        written = yaml.safe_load(variant.config.read_text())["dataset"].split(",")
        assert written == [layout.set_registry_name(layout.selected_set("anchor_train", "", kind)) for kind in variant.train_sets]
