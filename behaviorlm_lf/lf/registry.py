"""LlamaFactory's dataset registry (``dataset_info.json``): read, and merge entries into it atomically.

The registry is ``dataset_info.json`` at the root the commands run in (the
``dataset_dir`` of ``llamafactory_configs/*.yaml``), as LlamaFactory's own
``data/dataset_info.json`` is the registry its users extend. The repository tracks
the entries of the default data set's sets, which ``make data`` writes; every other
set (the auxiliary subset, a selection's pairs, another data set) is added to it
when its file is written, right after the file, so every registered file exists.
An entry is added or replaced, never removed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..extras.errors import UserError
from ..extras.fileio import atomic_output

logger = logging.getLogger(__name__)

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
AUX_COLUMNS = ALPACA_COLUMNS | {"history": "history"}
PAIR_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}


def read_registry(registry: Path) -> dict:
    """The registry's entries ({} before the first); a file that is not a JSON object is the user's to fix, not ours to replace."""
    path = Path(registry)
    if path.is_dir():
        raise UserError(f"{path}: a folder where the dataset registry (a JSON file) belongs")
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = f" at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else ""
        raise UserError(f"{path}: not readable JSON{where}; fix it, or remove it and rerun the data stage, which writes its entries again") from err
    if not isinstance(entries, dict):
        raise UserError(f"{path}: expected a JSON object of data set entries, got a {type(entries).__name__}")
    return entries


def entry(path: Path, registry: Path, pairs: bool = False, columns: dict | None = None) -> dict:
    """A registry entry for an alpaca file (or DPO pairs), its path relative to the registry's folder."""
    file_name = Path(os.path.relpath(path, Path(registry).parent)).as_posix()
    if pairs:
        return {"file_name": file_name, "ranking": True, "columns": PAIR_COLUMNS}
    return {"file_name": file_name, "columns": columns or ALPACA_COLUMNS}


def register(entries: dict, registry: Path) -> None:
    """Merge ``entries`` into the registry, atomically, keeping the other entries."""
    current = read_registry(registry)
    if all(current.get(key) == value for key, value in entries.items()):
        return
    current.update(entries)
    with atomic_output(registry) as tmp:
        tmp.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n", encoding="utf-8")
    logger.info("registered %s in %s", ", ".join(sorted(entries)), registry)
