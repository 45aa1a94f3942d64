"""Stage cache: reuse a finished output when its inputs, config and versions are unchanged.

Each stage writes ``manifest.json`` inside its output folder. The folder is
built under a temporary name and renamed only when the stage succeeds, so a
crash never leaves an output that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from .fileio import atomic_output, sha256_path, write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PACKAGE_DIR = Path(__file__).resolve().parent
VERSIONED = ("behaviorlm-lf", "llamafactory", "transformers", "peft", "trl", "torch")


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def code_files(*modules: str) -> dict[str, Path]:
    """The package's own source files a stage depends on, as cache inputs."""
    return {f"code:{name}": PACKAGE_DIR / f"{name}.py" for name in modules}


def run_stage(
    name: str,
    output: Path,
    inputs: dict[str, Path],
    config: dict,
    build: Callable[[Path], dict | None],
) -> dict:
    """Build ``output`` with ``build(tmp_dir)`` unless a finished one matches; return its manifest.

    ``inputs`` are files or folders whose content is hashed; ``config`` is any
    JSON-able dict. ``build`` may return extra facts to record in the manifest.
    """
    hashed = {key: {"path": str(path), "sha256": sha256_path(path)} for key, path in sorted(inputs.items())}
    identity = {"stage": name, "inputs": hashed, "config": config, "versions": versions()}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    manifest_path = Path(output) / MANIFEST
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        if previous.get("key") == key:
            logger.info("[%s] reusing %s (inputs and config unchanged)", name, output)
            return previous
        logger.info("[%s] inputs or config changed: rebuilding %s", name, output)
    started = time.time()
    with atomic_output(output) as tmp:
        tmp.mkdir(parents=True)
        extra = build(tmp) or {}
        manifest = {**identity, "key": key, "seconds": round(time.time() - started, 2), "result": extra}
        write_json(tmp / MANIFEST, manifest)
    logger.info("[%s] wrote %s in %.1fs", name, output, manifest["seconds"])
    return manifest
