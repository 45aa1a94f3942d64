"""Run a LlamaFactory stage: write the fully resolved YAML into the output folder, then run that file.

Training always goes through LlamaFactory's own CLI, so every stage is exactly
what a LlamaFactory user would run: the stage's YAML from ``llamafactory_configs/``
with the run's values (model, data sets, sizes, the machine's precision) merged
in, written as ``<output>/llamafactory_<command>.yaml``, so a user can read and
rerun exactly what ran (``llamafactory-cli train <that file>``). It runs through
:mod:`behaviorlm_lf.lf.hooks` (same result, faster); this module adds logging, a
copy of the output in ``llamafactory.log`` and the cleanup of intermediate checkpoints.
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

from ..extras.errors import UserError
from ..extras.hardware import llamafactory_precision

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "llamafactory_configs"


def cli_command(config_file: Path, command: str = "train", hooks: bool = True) -> list[str]:
    """The command line that runs a resolved YAML; ``hooks=False`` is the plain ``llamafactory-cli``."""
    if hooks:
        return [sys.executable, "-m", "behaviorlm_lf.lf.hooks", command, str(config_file)]
    cli = Path(sys.executable).with_name("llamafactory-cli")
    return [str(cli if cli.exists() else "llamafactory-cli"), command, str(config_file)]


def resolve(config: Path, overrides: dict) -> dict:
    """The stage's YAML with ``overrides`` merged in (paths made absolute, so the file runs from anywhere)."""
    resolved = yaml.safe_load(Path(config).read_text(encoding="utf-8")) | overrides
    return {key: str(Path(value).resolve()) if isinstance(value, Path) else value for key, value in resolved.items()}


def run_llamafactory(
    config: Path,
    overrides: dict,
    output_dir: Path,
    command: str = "train",
    hooks: bool = True,
    precision: dict | None = None,
    final_dir: Path | None = None,
    keep_checkpoints: bool = False,
) -> dict:
    """Run ``llamafactory-cli train`` (or ``export``); return its final metrics and logged losses.

    Training runs in the machine's precision (``precision`` overrides it, e.g.
    ``{"bf16": False}`` for float32). ``output_dir`` may be a stage's temporary
    folder: the YAML kept in it names ``final_dir``, where the output ends up,
    so that it reruns as written. The output is streamed to the terminal
    (LlamaFactory's progress bars) and kept in ``output_dir/llamafactory.log``.
    Intermediate ``checkpoint-*`` folders are removed once the best model has
    been saved at the top level, unless ``keep_checkpoints`` (B-Tuning scores
    each epoch's checkpoint on validation, then removes them).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    output_key = "export_dir" if command == "export" else "output_dir"
    settings = (llamafactory_precision() if precision is None else precision) if command == "train" else {}
    resolved = resolve(config, {**settings, **overrides, output_key: output_dir.resolve()})
    kept = resolved | {output_key: str(Path(final_dir or output_dir).resolve())}
    (output_dir / f"llamafactory_{command}.yaml").write_text(yaml.safe_dump(kept, sort_keys=False), encoding="utf-8")
    running = output_dir / f".llamafactory_{command}_running.yaml"
    running.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    argv = cli_command(running, command, hooks)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true", "TOKENIZERS_PARALLELISM": "false",
           "BEHAVIORLM_GPU_PEAK_FILE": str((output_dir / "gpu_peak.json").resolve())}
    logger.info("running: %s", " ".join(argv))
    started = time.time()
    with open(output_dir / "llamafactory.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for line in process.stdout:
                log.write(line)
                sys.stderr.write(line)
            _, status, usage = os.wait4(process.pid, 0)  # this process's own resources, for the memory report
        except BaseException:  # Ctrl-C, SIGTERM: the child must stop writing before the stage removes its folder
            end_child(process)
            raise
        returncode = os.waitstatus_to_exitcode(status)
        process.returncode = returncode
    if returncode != 0:  # the stage removes its temporary folder: the log is kept beside the output it was to become
        final = Path(final_dir or output_dir)
        kept_log = final.with_name(f"{final.name}.failed-llamafactory.log")
        shutil.copyfile(output_dir / "llamafactory.log", kept_log)
        raise UserError(f"llamafactory-cli {command} failed with exit code {returncode} (its output is above); its log: {kept_log}")
    running.unlink()
    for checkpoint in [] if keep_checkpoints else output_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    peak_rss = usage.ru_maxrss * 1024  # kilobytes on Linux
    return {"wall_seconds": round(time.time() - started, 1), "peak_rss_bytes": peak_rss, **read_metrics(output_dir)}


def end_child(process: subprocess.Popen, grace_seconds: float = 20.0) -> None:
    """Stop LlamaFactory: SIGTERM, then SIGKILL if it has not exited within ``grace_seconds``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    logger.info("stopped llamafactory-cli (pid %d)", process.pid)


def read_metrics(output_dir: Path) -> dict:
    """Final metrics and the logged train/eval losses of a LlamaFactory output folder."""
    found = {}
    results = output_dir / "all_results.json"
    if results.is_file():
        found["metrics"] = json.loads(results.read_text())
    peak = output_dir / "gpu_peak.json"
    if peak.is_file():
        found |= json.loads(peak.read_text())
    state = output_dir / "trainer_state.json"
    if state.is_file():
        history = json.loads(state.read_text()).get("log_history", [])
        found["train_loss"] = [[h["step"], h["loss"]] for h in history if "loss" in h]
        found["eval_loss"] = [[h["step"], h["eval_loss"]] for h in history if "eval_loss" in h]
    return found
