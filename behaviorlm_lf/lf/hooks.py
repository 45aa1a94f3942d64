"""``llamafactory-cli`` with two speed hooks: frozen weights in bf16, and the LM head and loss only where labels are.

    python -m behaviorlm_lf.lf.hooks train llamafactory_configs/a_tune.yaml [key=value ...]

Same arguments and behaviour as ``llamafactory-cli``; the stages run every
LlamaFactory command through it. A behavior sample is ~450 prompt tokens and a
3-6 token answer, yet a causal LM computes the 49,152-word logits of every
position and LlamaFactory's SFT and DPO trainers take the log-softmax of all of
them: on a CPU that is about an eighth of the forward FLOPs and most of the
memory traffic (8 x 450 x 49,152 floats per batch, plus their float32 copy).

**Frozen weights in the compute dtype.** LlamaFactory loads a checkpoint in its
stored dtype and, with ``bf16: true``, trains under autocast, which casts every
float32 weight to bf16 again at every matmul of every step. LoRA only trains the
adapter (kept in float32 by LlamaFactory), so the hook stores the frozen base
weights in bf16 once after loading: the matmuls are the same bf16 matmuls,
without the copies (1.3x on this project's 2-core CPU, whose bf16 units run
matmuls about 3x faster than float32).

**Labelled positions only.** The hook asks the model for the logits of the labelled positions only, through
transformers' own ``logits_to_keep`` argument (an index tensor of positions),
and hands the matching targets to the model's own loss (``shift_labels``). The
positions are the union over the batch of those that predict a labelled token,
so every row keeps its own targets and the loss is the same sum over the same
tokens: only the unlabelled logits are never computed. DPO gets the same
treatment in ``concatenated_forward`` (policy and reference alike). Plain
``llamafactory-cli`` with the same YAML trains the same model, only slower;
``tests/test_lf_hooks.py`` checks the losses agree.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

import torch

IGNORE_INDEX = -100


def labelled_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions whose next token is labelled in any row, and the ``[B, K]`` targets they predict."""
    next_labels = labels[:, 1:]
    keep = (next_labels != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    return keep, next_labels[:, keep]


def _load_model_with_frozen_weights_in_compute_dtype(original):
    def load_model(tokenizer, model_args, finetuning_args, is_trainable=False, add_valuehead=False):
        model = original(tokenizer, model_args, finetuning_args, is_trainable, add_valuehead)
        if is_trainable and model_args.compute_dtype == torch.bfloat16 and finetuning_args.finetuning_type != "full":
            for param in model.parameters():
                if not param.requires_grad and param.is_floating_point():
                    param.data = param.data.to(torch.bfloat16)
        return model

    return load_model


def _sft_compute_loss(original):
    def compute_loss(self, model, inputs, *args, **kwargs):
        # Other loss functions (DFT, EAFT, ASFT, label smoothing) and metrics that read logits keep the full path.
        if (
            "labels" not in inputs
            or self.compute_loss_func is not None
            or self.label_smoother is not None
            or self.compute_metrics is not None
            or self.finetuning_args.use_asft_loss
        ):
            return original(self, model, inputs, *args, **kwargs)
        keep, targets = labelled_positions(inputs["labels"])
        return original(self, model, {**inputs, "logits_to_keep": keep, "shift_labels": targets}, *args, **kwargs)

    return compute_loss


def _dpo_concatenated_forward(original):
    def concatenated_forward(self, model, batch, is_ref_model: bool = False):
        if self.ld_alpha is not None:  # LD-DPO reads the positions of every token
            return original(self, model, batch, is_ref_model)
        if self.finetuning_args.use_ref_model:
            from llamafactory.train.trainer_utils import nested_detach

            batch = nested_detach(batch, clone=True)
        batch = dict(batch)
        keep, targets = labelled_positions(batch.pop("labels"))
        logits = model(**batch, return_dict=True, use_cache=False, logits_to_keep=keep).logits.to(torch.float32)
        mask = targets != IGNORE_INDEX
        token_logps = logits.log_softmax(-1).gather(2, targets.clamp(min=0).unsqueeze(2)).squeeze(2)
        all_logps, valid_length = (token_logps * mask).sum(-1), mask.sum(-1)
        if self.loss_type in ["ipo", "orpo", "simpo"]:
            all_logps = all_logps / valid_length
        half = batch["input_ids"].size(0) // 2
        chosen_logps, rejected_logps = all_logps.split(half, dim=0)
        chosen_logits, rejected_logits = logits.split(half, dim=0)
        chosen_length, _ = valid_length.split(half, dim=0)
        return {
            "chosen_logps": chosen_logps,
            "rejected_logps": rejected_logps,
            "chosen_logits": chosen_logits,  # logged as their mean: over the labelled positions here
            "rejected_logits": rejected_logits,
            "chosen_logps_avg": chosen_logps if self.loss_type in ["ipo", "orpo", "simpo"] else chosen_logps / chosen_length,
        }

    return concatenated_forward


def install() -> None:
    """Patch LlamaFactory's SFT and DPO workflows and trainers in this process (idempotent)."""
    from llamafactory.train.dpo import workflow as dpo_workflow
    from llamafactory.train.dpo.trainer import CustomDPOTrainer
    from llamafactory.train.sft import workflow as sft_workflow
    from llamafactory.train.sft.trainer import CustomSeq2SeqTrainer

    for owner, name, wrap in (
        (sft_workflow, "load_model", _load_model_with_frozen_weights_in_compute_dtype),
        (dpo_workflow, "load_model", _load_model_with_frozen_weights_in_compute_dtype),
        (CustomSeq2SeqTrainer, "compute_loss", _sft_compute_loss),
        (CustomDPOTrainer, "concatenated_forward", _dpo_concatenated_forward),
    ):
        original = getattr(owner, name)
        if not getattr(original, "_behaviorlm_hook", False):
            patched = wrap(original)
            patched._behaviorlm_hook = True
            setattr(owner, name, patched)


def record_gpu_peak() -> None:
    """Write the process's GPU memory peak where ``BEHAVIORLM_GPU_PEAK_FILE`` says (the benchmark reports it)."""
    path = os.environ.get("BEHAVIORLM_GPU_PEAK_FILE")
    if path and torch.cuda.is_available():
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"gpu_peak_bytes": torch.cuda.max_memory_allocated()}, handle)


def main() -> None:
    from llamafactory.cli import main as llamafactory_main

    install()
    atexit.register(record_gpu_peak)
    sys.argv[0] = "llamafactory-cli"
    llamafactory_main()


if __name__ == "__main__":
    main()
