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

from .fileio import atomic_output

logger = logging.getLogger(__name__)

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
AUX_COLUMNS = ALPACA_COLUMNS | {"history": "history"}
PAIR_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}


def read_registry(registry: Path) -> dict:
    return json.loads(Path(registry).read_text(encoding="utf-8")) if Path(registry).is_file() else {}


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
