"""A-Tuning through the real `llamafactory-cli train` on the tiny model (PRESET=smoke)."""

from __future__ import annotations

import json

import pytest
import yaml

from behaviorlm_lf.data.aux_corpus import CorpusTooSmallError
from behaviorlm_lf.extras.fileio import read_jsonl
from behaviorlm_lf.hparams import ATuneArguments, FirstStageArguments, for_preset
from behaviorlm_lf.train.a_tune import a_tune, prepare_aux


@pytest.mark.slow
def test_a_tune_trains_an_adapter_on_anchor_samples_plus_aux(smoke, caplog):
    layout = smoke.layout()
    out = a_tune(smoke, FirstStageArguments(), for_preset(ATuneArguments, "smoke"))
    assert out == layout.first_stage_dir() and (out / "adapter_model.safetensors").is_file()
    assert not list(out.glob("checkpoint-*")) and not list(out.glob(".llamafactory_*"))

    groups = {b["name"]: b["group"] for b in json.loads(layout.behaviors_file.read_text())["behaviors"]}
    anchor = read_jsonl(layout.set_file("anchor_train"))
    aux = read_jsonl(layout.set_file("aux_anchor_train_eps0.05"))
    assert {groups[r["output"]] for r in anchor} == {"anchor"}
    assert len(aux) == round(0.05 * len(anchor)) > 0
    assert not {r["output"] for r in aux} & set(groups)
    assert f"Num examples = {len(anchor) + len(aux):,}" in (out / "llamafactory.log").read_text()

    # the stage keeps the fully resolved YAML it ran, naming the final folder, so it reruns as written
    resolved = yaml.safe_load((out / "llamafactory_train.yaml").read_text())
    assert resolved["output_dir"] == str(out.resolve()) and resolved["dataset"] == ["default_anchor_train", "default_aux_anchor_train_eps0.05"]
    assert resolved["lora_dropout"] == 0.0 and resolved["template"] == "smollm2"

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["result"]["train_loss"] and manifest["result"]["eval_loss"]
    assert manifest["result"]["aux"]["achieved_epsilon"] == pytest.approx(len(aux) / len(anchor))
    assert (out / "training_loss.png").is_file()
    with caplog.at_level("INFO"):
        a_tune(smoke, FirstStageArguments(), for_preset(ATuneArguments, "smoke"))
    assert "reusing" in caplog.text


def test_epsilon_zero_gives_no_aux_and_a_too_small_corpus_is_an_error(smoke, tmp_path):
    layout = smoke.layout()
    name, stats = prepare_aux(layout, FirstStageArguments(epsilon=0.0), smoke.model, "anchor_train")
    assert name is None and stats["selected"] == 0
    corpus = tmp_path / "corpus.json"
    corpus.write_text(
        json.dumps(
            [{"instruction": "Say hi.", "input": "", "output": "Hi."}] * 5
            + [{"instruction": "Tell a long story.", "input": "", "output": "word " * 5000}]
        )
    )
    allowed = FirstStageArguments(epsilon=1.0, aux=corpus, allow_smaller_epsilon=True)
    name, stats = prepare_aux(layout, allowed, smoke.model, "anchor_train")
    assert stats["filtered_too_long"] == 1 and stats["available"] == 5 and stats["selected"] == 5
    assert all(len(r["output"]) < 100 for r in read_jsonl(layout.set_file("aux_anchor_train_eps1")))
    with pytest.raises(CorpusTooSmallError, match="corpus.json: 5 of its 6 conversations"):
        prepare_aux(layout, FirstStageArguments(epsilon=1.0, aux=corpus), smoke.model, "anchor_train")


def test_every_preset_keeps_the_papers_8_samples_per_step():
    """Presets may split a step into micro-batches for memory (the cpu preset does), never change its size."""
    from behaviorlm_lf.hparams import BTuneArguments
    from behaviorlm_lf.hparams.presets import PRESETS
    from behaviorlm_lf.lf.run import CONFIG_DIR
    from behaviorlm_lf.train.b_tune import VARIANTS

    for preset in PRESETS:
        stages = [(CONFIG_DIR / "a_tune.yaml", for_preset(ATuneArguments, preset))]
        stages += [(v.config, for_preset(BTuneArguments, preset, variant=name)) for name, v in VARIANTS.items()]
        for config, hp in stages:
            resolved = yaml.safe_load(config.read_text()) | hp.overrides()
            assert resolved["per_device_train_batch_size"] * resolved["gradient_accumulation_steps"] == 8, (preset, config)
    assert for_preset(ATuneArguments, "cpu").per_device_train_batch_size == 4


def _processes_naming(text: str) -> list[int]:
    """Pids of the running processes whose command line contains ``text``."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C"])
def test_a_stop_ends_the_llamafactory_child_removes_the_temporary_folder_and_a_rerun_resumes(tmp_path, tiny_model, stop):
    """SIGTERM to the stage, or Ctrl-C (SIGINT to the terminal's whole process group, the child included)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    common = ["--preset", "smoke", "--model", str(tiny_model), "--root", str(tmp_path)]
    subprocess.run([sys.executable, "-m", "behaviorlm_lf", "data", *common], env=env, check=True, capture_output=True)
    stage = subprocess.Popen([sys.executable, "-m", "behaviorlm_lf", "a-tune", *common], env=env, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    for line in stage.stderr:  # LlamaFactory has started once the stage logs its command line
        if "running:" in line:
            break
    time.sleep(5)
    assert _processes_naming(str(tmp_path / "saves")), "no LlamaFactory child to stop"
    sent = signal.SIGTERM if stop == "SIGTERM" else signal.SIGINT
    if stop == "SIGTERM":
        stage.send_signal(sent)
    else:
        os.killpg(stage.pid, sent)
    rest = stage.stderr.read()
    assert stage.wait(timeout=60) == 128 + sent
    assert f"error: stopped by {sent.name}" in rest and "Traceback" not in rest
    assert not _processes_naming(str(tmp_path / "saves")), "the LlamaFactory child outlived its stage"
    saves = tmp_path / "saves" / "default" / "smoke"
    assert not list(saves.glob("*.tmp-*")) and not (saves / "a_tune").exists()
    rerun = subprocess.run([sys.executable, "-m", "behaviorlm_lf", "a-tune", *common], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (saves / "a_tune" / "adapter_model.safetensors").is_file()
