"""Run a ``llamafactory-cli`` stage as a subprocess: YAML config plus ``key=value`` overrides.

Training always goes through LlamaFactory's own CLI, so every stage is exactly
what a LlamaFactory user would run, with the machine's precision
(:mod:`behaviorlm_lf.hardware`) and the speed hooks of :mod:`behaviorlm_lf.lf_hooks`;
this module only adds logging, a copy of the output in ``llamafactory.log`` and
the cleanup of intermediate checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .hardware import llamafactory_precision

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "llamafactory_configs"


def _format(value) -> str:
    """A value as LlamaFactory's OmegaConf command line reads it back (YAML scalars)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if isinstance(value, str) and yaml.safe_load(text) != value:
        return "'" + text.replace("'", "''") + "'"  # e.g. 'no' would otherwise read as false
    return text


def cli_command(config: Path, overrides: dict, command: str = "train", hooks: bool = True) -> list[str]:
    """The exact command line, for logs and for users who want to rerun a stage by hand.

    ``hooks`` runs LlamaFactory's CLI through :mod:`behaviorlm_lf.lf_hooks` (same
    arguments, same result, faster); without it, the plain ``llamafactory-cli``.
    """
    if hooks:
        launcher = [sys.executable, "-m", "behaviorlm_lf.lf_hooks"]
    else:
        cli = Path(sys.executable).with_name("llamafactory-cli")
        launcher = [str(cli if cli.exists() else "llamafactory-cli")]
    return launcher + [command, str(config)] + [f"{key}={_format(value)}" for key, value in overrides.items()]


def run_llamafactory(
    config: Path, overrides: dict, output_dir: Path, command: str = "train", hooks: bool = True, precision: dict | None = None
) -> dict:
    """Run ``llamafactory-cli train`` (or ``export``); return its final metrics and logged losses.

    Training runs in this machine's mixed precision (``precision`` overrides it,
    e.g. ``{"bf16": False}`` for float32). The output is streamed to the terminal
    (LlamaFactory's progress bars) and kept in ``output_dir/llamafactory.log``.
    Intermediate ``checkpoint-*`` folders are removed once the best model has
    been saved at the top level.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    output_key = "export_dir" if command == "export" else "output_dir"
    if command == "train":
        overrides = {**(llamafactory_precision() if precision is None else precision), **overrides}
    command = cli_command(config, {**overrides, output_key: str(output_dir)}, command, hooks)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true", "TOKENIZERS_PARALLELISM": "false"}
    logger.info("running: %s", " ".join(command))
    started = time.time()
    with open(output_dir / "llamafactory.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            sys.stderr.write(line)
        returncode = process.wait()
    if returncode != 0:
        raise RuntimeError(f"llamafactory-cli failed with exit code {returncode}; see {output_dir / 'llamafactory.log'}")
    for checkpoint in output_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    return {"wall_seconds": round(time.time() - started, 1), **read_metrics(output_dir)}


def read_metrics(output_dir: Path) -> dict:
    """Final metrics and the logged train/eval losses of a LlamaFactory output folder."""
    found = {}
    results = output_dir / "all_results.json"
    if results.is_file():
        found["metrics"] = json.loads(results.read_text())
    state = output_dir / "trainer_state.json"
    if state.is_file():
        history = json.loads(state.read_text()).get("log_history", [])
        found["train_loss"] = [[h["step"], h["loss"]] for h in history if "loss" in h]
        found["eval_loss"] = [[h["step"], h["eval_loss"]] for h in history if "eval_loss" in h]
    return found
