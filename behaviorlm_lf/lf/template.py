"""Which LlamaFactory chat template a model folder needs, from its config and tokenizer files.

Training, scoring, selection and evaluation must wrap prompts the way the model
was instruction-tuned; LlamaFactory asks for the template by name. The model
type and the special tokens of the folder's chat template tell the family:
ChatML (``<|im_start|>``) is SmolLM2's or Qwen's, Llama 3 uses
``<|start_header_id|>``, Mistral and Llama 2 ``[INST]``. ``--template`` (``TEMPLATE=``)
overrides the inference.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..extras.errors import UserError
from ..extras.layout import RunLayout

# model_type (config.json) -> template, where the model type alone decides
BY_MODEL_TYPE = {"qwen2": "qwen", "qwen3": "qwen3", "mistral": "mistral", "llama4": "llama4"}
# markers of the folder's own chat template -> template, for the other model types (most are "llama")
BY_MARKER = (("<|start_header_id|>", "llama3"), ("<|im_start|>", "smollm2"), ("[INST]", "llama2"))
KNOWN = sorted({*BY_MODEL_TYPE.values(), *(name for _, name in BY_MARKER)})


def _chat_template_text(folder: Path) -> str:
    text = ""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        text += jinja.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template") or ""
        text += template if isinstance(template, str) else json.dumps(template)
    return text


def infer_template(model_dir: str | Path) -> str:
    """The LlamaFactory template for ``model_dir``; a clear error naming the choices when it cannot tell."""
    folder = Path(model_dir)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise UserError(f"{folder}: not a Hugging Face model folder (no config.json); pass --model <folder>")
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type", "")
    if model_type in BY_MODEL_TYPE:
        return BY_MODEL_TYPE[model_type]
    text = _chat_template_text(folder)
    for marker, template in BY_MARKER:
        if marker in text:
            return template
    raise UserError(
        f"{folder}: cannot tell the chat template of model type {model_type!r} from its files; "
        f"pass --template (TEMPLATE=) with one of {KNOWN} or any other LlamaFactory template name"
    )


def chat_template(layout: RunLayout) -> str:
    """The run's template: ``--template`` if given (checked against LlamaFactory's), else inferred from its backbone."""
    if layout.template is None:
        return infer_template(layout.model_dir())
    from llamafactory.data.template import TEMPLATES

    if layout.template not in TEMPLATES:
        raise UserError(f"--template {layout.template!r}: not a LlamaFactory chat template; for example {sorted(TEMPLATES)[:8]}")
    return layout.template
