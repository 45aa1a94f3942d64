"""Stage cache: reuse a finished output when its inputs, config, code and versions are unchanged.

Each stage writes ``manifest.json`` inside its output folder. The folder is
built under a temporary name and renamed only when the stage succeeds, so a
crash never leaves an output that looks finished. A stage's code is every
module of this package it imports, followed through the imports, so an edit
anywhere in what a stage runs rebuilds it and an edit elsewhere does not.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from .errors import UserError
from .fileio import atomic_output, sha256_path, write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PACKAGE = __name__.split(".", 1)[0]
PACKAGE_DIR = Path(__file__).resolve().parents[1]
VERSIONED = ("behaviorlm-lf", "llamafactory", "transformers", "peft", "trl", "torch")


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _source(module: str) -> Path | None:
    """The file of package module ``module`` ("train.a_tune", "hparams"), or None if it is not one."""
    base = PACKAGE_DIR.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def _imported_modules(module: str) -> frozenset[str]:
    """Modules of this package that ``module`` imports anywhere in its source (function-level imports too)."""
    path = _source(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y, from ..x.y import z, from . import x
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith(PACKAGE + "."):
                target = node.module.split(".")[1:]
            else:
                continue
            found.add(".".join(target))
            found.update(".".join([*target, alias.name]) for alias in node.names)  # a submodule imported by name
        elif isinstance(node, ast.Import):
            found.update(".".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith(PACKAGE + "."))
    return frozenset(name for name in found if name and _source(name) is not None)


def code_closure(module: str) -> list[str]:
    """``module`` ("behaviorlm_lf.train.a_tune" or "train.a_tune") and every package module it reaches, sorted."""
    module = module.removeprefix(PACKAGE + ".")
    if _source(module) is None:
        raise ValueError(f"{module!r} is not a module of {PACKAGE}")
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(_imported_modules(current))
    return sorted(seen)


def run_stage(
    name: str,
    output: Path,
    inputs: dict[str, Path],
    config: dict,
    build: Callable[[Path], dict | None],
    code: str,
) -> dict:
    """Build ``output`` with ``build(tmp_dir)`` unless a finished one matches; return its manifest.

    ``inputs`` are files or folders whose content is hashed (each must exist);
    ``config`` is any JSON-able dict; ``code`` is the stage's module name, whose
    import closure is hashed. ``build`` may return extra facts for the manifest.
    """
    missing = [f"{key} ({path})" for key, path in inputs.items() if not Path(path).exists()]
    if missing:
        raise UserError(f"stage {name} cannot run: missing input {', '.join(missing)}")
    if Path(output).exists() and not Path(output).is_dir():
        raise UserError(f"{output}: a file is where the stage {name} writes its folder; move it away")
    hashed = {key: {"path": str(path), "sha256": sha256_path(path)} for key, path in sorted(inputs.items())}
    hashed |= {f"code:{m}": {"sha256": sha256_path(_source(m))} for m in code_closure(code)}
    identity = {"stage": name, "inputs": hashed, "config": config, "versions": versions()}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    manifest_path = Path(output) / MANIFEST
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        if previous.get("key") == key:
            logger.info("[%s] reusing %s (inputs, config and code unchanged)", name, output)
            return previous
        logger.info("[%s] inputs, config or code changed: rebuilding %s", name, output)
    logger.info("[%s] reading %s", name, ", ".join(str(path) for path in inputs.values()))
    started = time.time()
    with atomic_output(output) as tmp:
        tmp.mkdir(parents=True)
        extra = build(tmp) or {}
        manifest = {**identity, "key": key, "seconds": round(time.time() - started, 2), "result": extra}
        write_json(tmp / MANIFEST, manifest)
    logger.info("[%s] wrote %s in %.1fs", name, output, manifest["seconds"])
    return manifest
