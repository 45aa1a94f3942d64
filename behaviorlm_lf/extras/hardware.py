"""Which number format a machine trains and scores in: bf16 where it has bf16 units, float32 elsewhere.

On a CPU with AVX512_BF16 or AMX-BF16 (Intel Sapphire Rapids and later, AMD Zen 4
and later) a bf16 matmul runs about 3x faster than a float32 one, so training
and scoring use bf16 mixed precision there; a CPU without those units emulates
bf16 and is faster in float32. On CUDA, bf16 where the GPU supports it, as
usual. ``BEHAVIORLM_PRECISION=fp32|bf16`` overrides the detection.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_has_bf16_units(cpuinfo: Path = CPUINFO) -> bool:
    """True when the CPU's flags list a native bf16 instruction set (Linux; False where it cannot tell)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return bool(flags & BF16_CPU_FLAGS)


def uses_bf16(device: str | torch.device) -> bool:
    """Whether training and scoring on ``device`` run in bf16 mixed precision."""
    forced = os.environ.get("BEHAVIORLM_PRECISION", "").lower()
    if forced in ("fp32", "bf16"):
        return forced == "bf16"
    if forced:
        raise SystemExit(f"BEHAVIORLM_PRECISION must be fp32 or bf16, got {forced!r}")
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16_units()


def training_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def llamafactory_precision(device: str | None = None) -> dict:
    """LlamaFactory/transformers settings for mixed precision on ``device`` (default: this machine's).

    transformers accepts ``bf16`` on a CPU only together with ``use_cpu``.
    """
    device = device or training_device()
    bf16 = uses_bf16(device)
    return {"bf16": bf16, **({"use_cpu": True} if device == "cpu" and bf16 else {})}


def machine_description() -> str:
    """CPU model and core count (and the GPU, if any), for the reports that quote timings."""
    name = "unknown CPU"
    try:
        for line in CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{name}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


LARGE_MODEL_PARAMETERS = 1e9


def parameter_count(model_dir: str | Path) -> float:
    """Parameters of a model folder, from its safetensors' size and stored dtype (no loading)."""
    import json

    folder = Path(model_dir)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if (folder / "config.json").is_file() else {}
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    bytes_per = 2 if ("16" in dtype) else 4
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) / bytes_per


def model_training_settings(model_dir: str | Path, device: str | None = None) -> dict:
    """Gradient checkpointing: on for models over about 1B parameters on a GPU (memory), off below and on
    a CPU, where it only recomputes each forward (a third more compute) to save memory a small model
    does not need."""
    device = device or training_device()
    large = device == "cuda" and parameter_count(model_dir) > LARGE_MODEL_PARAMETERS
    return {"disable_gradient_checkpointing": not large}
