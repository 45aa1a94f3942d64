"""The GPU path checked on the CPU: template inference, the kit, the runner's install, DeepSpeed configs, the smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO_ROOT

from behaviorlm_lf.extras.errors import UserError
from behaviorlm_lf.lf.template import infer_template


def make_tiny_model(folder: Path, architecture: str) -> Path:
    """A random model of a few layers with SmolLM2's ChatML tokenizer, of the given architecture."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(REPO_ROOT / "models" / "tiny-llama")
    kinds = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}
    config_class, model_class = kinds[architecture]
    config = config_class(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model_class(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_template_is_inferred_from_the_model_folder(tmp_path, tiny_model):
    assert infer_template(tiny_model) == "smollm2"
    assert infer_template(tiny_model_of(tmp_path, "qwen2")) == "qwen"
    llama3 = tmp_path / "llama3"
    llama3.mkdir()
    (llama3 / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (llama3 / "chat_template.jinja").write_text("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}")
    assert infer_template(llama3) == "llama3"
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"model_type": "gpt_neox"}))
    with pytest.raises(UserError, match="--template.*llama3"):
        infer_template(unknown)


def tiny_model_of(root: Path, architecture: str) -> Path:
    folder = root / f"tiny-{architecture}"
    return folder if (folder / "config.json").is_file() else make_tiny_model(folder, architecture)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_scorer_tokens_are_those_training_sees_with_the_inferred_template(tmp_path, architecture):
    """Training (LlamaFactory's processor) and the scorer wrap prompts with the same template, for either model."""
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.hparams import DataArguments

    from behaviorlm_lf.model.packing import encode_pair
    from behaviorlm_lf.model.scorer import CandidateScorer

    folder = tiny_model_of(tmp_path, architecture)
    template = infer_template(folder)
    scorer = CandidateScorer(folder, template=template, device="cpu", bf16=False)
    processor = SupervisedDatasetProcessor(scorer.template, scorer.tokenizer, None, DataArguments(template=template, cutoff_len=4096))
    examples = {
        "_prompt": [[{"role": "user", "content": "Next?"}]],
        "_response": [[{"role": "assistant", "content": "Video call"}]],
        **{key: [None] for key in ("_system", "_tools", "_images", "_videos", "_audios")},
    }
    batch = processor.preprocess_dataset(examples)
    prompt_ids, answer_ids = encode_pair(scorer.template, scorer.tokenizer, "Next?", "Video call")
    assert batch["input_ids"][0] == prompt_ids + answer_ids
    scores = scorer.score(["Next?"], ["Video", "Video call"], progress=False)
    assert scores.probs.shape == (1, 2)


@pytest.mark.parametrize("zero", ["deepspeed_z2.json", "deepspeed_z3.json"])
@pytest.mark.parametrize("stage", ["a_tune.yaml", "b_tune.yaml"])
def test_multi_gpu_configs_parse_with_llamafactorys_own_parser(stage, zero, tmp_path):
    """FORCE_TORCHRUN=1 with DeepSpeed ZeRO-2/3: the resolved config of each stage passes LlamaFactory's argument parser."""
    import yaml

    from behaviorlm_lf.lf.run import CONFIG_DIR, resolve

    deepspeed = json.loads((CONFIG_DIR / zero).read_text())
    assert deepspeed["zero_optimization"]["stage"] == (2 if "z2" in zero else 3)
    resolved = resolve(CONFIG_DIR / stage, {"deepspeed": str(CONFIG_DIR / zero), "output_dir": str(tmp_path / "out"), "bf16": False})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(resolved))
    code = (
        "import sys, yaml; from llamafactory.hparams.parser import _parse_train_args; "
        "m, d, t, f, g = _parse_train_args(yaml.safe_load(open(sys.argv[1]))); "
        "print(t.deepspeed, f.stage, f.finetuning_type)"
    )
    # DeepSpeed itself needs CUDA to install: a stand-in distribution lets transformers read and check the JSON
    # against the training arguments (its "auto" values and batch sizes), which is what a config can get wrong.
    stand_in = tmp_path / "stand_in"
    (stand_in / "deepspeed").mkdir(parents=True)
    (stand_in / "deepspeed" / "__init__.py").write_text("__version__ = '0.16.4'\n")
    (stand_in / "deepspeed-0.16.4.dist-info").mkdir()
    (stand_in / "deepspeed-0.16.4.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: deepspeed\nVersion: 0.16.4\n")
    env = {**os.environ, "PYTHONPATH": str(stand_in), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert zero in done.stdout and ("dpo" in done.stdout) == (stage == "b_tune.yaml")


def test_a_dequantized_gguf_model_that_still_carries_its_quantizer_saves_as_a_plain_checkpoint(tmp_path, tiny_model):
    """transformers 5.17 (the GPU image's) keeps its GGUF quantizer on a model it dequantized at load, and
    save_pretrained refuses such a model; the conversion drops it and saves the same weights."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.quantizers.base import HfQuantizer

    from behaviorlm_lf.model.backbones import _drop_dequantized_gguf_quantizer

    class DequantizedGguf(HfQuantizer):  # what the GPU image attaches: not serializable
        def is_serializable(self, safe_serialization=None):
            return False

        @property
        def is_trainable(self):
            return False

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model.hf_quantizer = DequantizedGguf(type("GgufConfig", (), {"quant_method": "gguf"})())
    with pytest.raises(ValueError, match="not serializable"):
        model.save_pretrained(tmp_path / "refused")
    _drop_dequantized_gguf_quantizer(model)
    model.save_pretrained(tmp_path / "saved")
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    for (name, weight), (_, again) in zip(model.state_dict().items(), saved.state_dict().items(), strict=True):
        assert torch.equal(weight, again), name

    packed = AutoModelForCausalLM.from_pretrained(tiny_model)
    packed.hf_quantizer = model_quantizer = DequantizedGguf(type("GgufConfig", (), {"quant_method": "gguf"})())
    packed.model.norm.weight = torch.nn.Parameter(torch.zeros(32, dtype=torch.uint8), requires_grad=False)
    with pytest.raises(UserError, match="still packed"):
        _drop_dequantized_gguf_quantizer(packed)
    assert packed.hf_quantizer is model_quantizer


@pytest.mark.slow
def test_the_kit_builds_and_its_install_step_works_for_the_gpu_python(tmp_path):
    """The kit's build (pip download for Python 3.12) and the runner's offline install, on a few packages."""
    from behaviorlm_lf.studies import gpu_kit

    shared = tmp_path / "shared"
    for name in gpu_kit.SHARED_FILES:
        (shared / name).parent.mkdir(parents=True)
        (shared / name).write_bytes(name.name.encode())
    manifest = gpu_kit.build_kit(tmp_path / "kit", shared, packages=["gguf", "einops"])
    for name in gpu_kit.SHARED_FILES:  # the check-ins and gpu-bench's auxiliary corpus travel in the kit
        assert (tmp_path / "kit" / "data" / name).read_bytes() == name.name.encode()
    assert {w.split("-")[0] for w in manifest["wheels"]} == {"gguf", "einops"}
    plan = gpu_kit.carry_plan(tmp_path / "kit")
    for carry in plan:  # each call stays under the 64 MiB a call may carry
        size = sum(f.stat().st_size for c in carry for f in ([Path(c)] if Path(c).is_file() else Path(c).rglob("*")) if f.is_file())
        assert size < 60 * 2**20
    installed = gpu_kit.install(tmp_path / "kit", for_python=gpu_kit.GPU_PYTHON)
    assert len(installed) == 2
    site = tmp_path / "kit" / "site"
    assert (site / "gguf").is_dir() and (site / "einops").is_dir()
    from behaviorlm_lf.model.backbones import gguf_location

    folder, name = gguf_location()
    assert (site / gpu_kit.GGUF_PACKAGE_DIR / name).read_bytes() == (folder / name).read_bytes()


def test_a_kit_for_another_python_skips_what_is_installed_and_names_what_is_missing_in_one_line(tmp_path):
    """The runner's install on a machine whose Python differs from the kit's: no pip traceback, one line."""
    from behaviorlm_lf.studies import gpu_kit

    kit = tmp_path / "kit"
    (kit / "wheels").mkdir(parents=True)
    (kit / "manifest.json").write_text(json.dumps({"python": "2.7", "wheels": [], "gguf": {}}))
    (kit / "wheels" / "torch-9.9-cp27-none-any.whl").write_bytes(b"")  # installed here: skipped, whatever the kit's Python
    (kit / "wheels" / "not_a_distribution-1.0-cp27-none-any.whl").write_bytes(b"")
    with pytest.raises(SystemExit, match=r"Python 2\.7 .* lacks not_a_distribution: install those here") as raised:
        gpu_kit.install(kit)
    assert "torch" not in str(raised.value) and "\n" not in str(raised.value)
    # a distribution the kit's site already holds (an earlier call's install) counts as installed
    (kit / "site" / "not_a_distribution-1.0.dist-info").mkdir(parents=True)
    (kit / "site" / "not_a_distribution-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: not_a_distribution\nVersion: 1.0\n")
    (kit / "manifest.json").write_text(json.dumps({"python": "2.7", "wheels": [], "gguf": {"name": "m.gguf", "parts": ["m.gguf.part00"]}}))
    with pytest.raises(SystemExit, match="the kit lacks"):
        gpu_kit.install(kit)


@pytest.mark.slow
def test_gpu_bench_fails_fast_without_a_gpu_and_runs_at_smoke_size_on_cpu(tmp_path):
    import torch

    if not torch.cuda.is_available():
        done = subprocess.run([sys.executable, "-m", "behaviorlm_lf", "gpu-bench"], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 2 and "no CUDA GPU" in done.stderr
    done = subprocess.run(
        ["make", "-C", str(REPO_ROOT), "gpu-bench", "PRESET=smoke", "DEVICE=cpu", "DATASET=default", f"ROOT={tmp_path}", "STUDY=1"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "reports" / "benchmark" / "default" / "smoke" / "results.md").read_text()
    for row in ("Popularity", "Markov", "SASRec", "LLM-NT", "Full fine-tuning", "BehaviorLM"):
        assert f"| {row} |" in text
    assert "| Context popularity |" not in text
    # the rows ran as two parts (one after the other on a CPU), each with its report and log; the whole report
    # gives the stage times the parts measured, not those of its own pass, which reused every stage
    reports = tmp_path / "reports" / "benchmark" / "default"
    for part in ("smoke.only-BehaviorLM", "smoke.only-Popularity_Markov_SASRec_LLM-NT_Full_fine-tuning"):
        assert (reports / part / "results.md").is_file() and (reports / f"{part}.log").is_file()
    times = pd.read_csv(reports / "smoke" / "stage_times.csv")
    assert times.loc[(times["row"] == "BehaviorLM") & (times["stage"] == "b_tune"), "seconds"].item() > 1
    # STUDY=1: every other variant from the BehaviorLM row's first stage and selection (the root run, as make demo)
    study = (tmp_path / "reports" / "default" / "smoke" / "b_tune_study" / "study.md").read_text()
    assert all(f"| {row} |" in study for row in ("dpo (the paper's)", "dpo_nll", "sft", "sft_replay", "sft_dpo"))
    assert "Best on validation" in study
    # A-Tuning mixes in the shared alpaca corpus where there is one (the kit's data where the kit was built, as the
    # Makefile picks, else the shared folder beside ROOT), else the built-in corpus
    from behaviorlm_lf.data.aux_corpus import BUILTIN_CORPUS
    from behaviorlm_lf.data.convert import shared_data
    from behaviorlm_lf.studies.gpu_kit import ALPACA, KIT

    kit_data = REPO_ROOT / KIT / "data"
    alpaca = (kit_data if kit_data.is_dir() else shared_data(tmp_path)) / ALPACA
    a_tune = json.loads((tmp_path / "saves" / "default" / "smoke" / "a_tune" / "manifest.json").read_text())
    assert a_tune["result"]["aux"]["corpus"] == str(alpaca if alpaca.is_file() else BUILTIN_CORPUS)
