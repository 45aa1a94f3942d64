"""The general conversation corpus that A-Tuning mixes into the behaviour prompts.

BehaviorLM adds a small share (epsilon) of general instruction data to the
anchor-behaviour prompts as a regulariser, so that the LoRA tuning does not erode
the model's general abilities. This module reads such a corpus in LlamaFactory's
alpaca or sharegpt format, normalises it to alpaca records with a ``history``
column, and draws the auxiliary sample.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..extras.errors import BadInputError, UserError

logger = logging.getLogger(__name__)

# Written for this project, so A-Tuning runs with no download.
BUILTIN_CORPUS = Path(__file__).resolve().parents[1] / "resources" / "general_corpus.json"

_USER_ROLES = {"human", "user"}
_ASSISTANT_ROLES = {"gpt", "assistant"}
_ROLES = _USER_ROLES | _ASSISTANT_ROLES | {"system"}
_SHAREGPT_KEYS = ("conversations", "messages")


def load_corpus(path: str | os.PathLike | None) -> list[dict]:
    """Read an alpaca or sharegpt file into alpaca records.

    Every record becomes ``{"instruction", "input", "output", "history"}``: the
    last user/assistant exchange gives ``instruction``/``output`` and earlier
    ones become ``history`` pairs, so multi-turn conversations survive. System
    prompts are dropped, since the auxiliary records share one column set with
    the behaviour prompts. ``None`` reads :data:`BUILTIN_CORPUS`.

    Raises :class:`~behaviorlm_lf.extras.fileio.BadInputError` naming the file, the
    1-based record (or, for JSON lines that do not parse, the line) and the field.
    """
    path = BUILTIN_CORPUS if path is None else Path(path)
    return [_normalise(path, row, index) for index, row in enumerate(_read_rows(path), start=1)]


class CorpusTooSmallError(UserError):
    """The corpus holds fewer usable conversations than epsilon x anchor samples asks for."""


def select_aux(
    records: list[dict],
    n_anchor: int,
    epsilon: float,
    max_tokens: int,
    count_tokens: Callable[[str], int],
    seed: int,
    allow_smaller: bool = False,
    corpus: str = "the corpus",
) -> tuple[list[dict], dict]:
    """Drop records longer than ``max_tokens``, then draw ``round(epsilon * n_anchor)`` of the rest.

    Long conversations are dropped because the regulariser should look like the
    short behaviour prompts rather than dominate the token budget. The draw is
    without replacement and depends only on ``seed``. When fewer records are
    usable than requested, the achieved ratio would be smaller than epsilon,
    and the epsilon ablation and sweeps would measure something else: that is
    an error unless ``allow_smaller``, which takes all usable records. The stats
    record the achieved epsilon either way.
    """
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be between 0 and 1, got {epsilon}")
    if n_anchor < 0:
        raise ValueError(f"n_anchor must be non-negative, got {n_anchor}")
    kept = [record for record in records if count_tokens(_record_text(record)) <= max_tokens]
    requested = round(epsilon * n_anchor)
    if len(kept) < requested and not allow_smaller:
        raise CorpusTooSmallError(
            f"{corpus}: {len(kept)} of its {len(records)} conversations fit the length filter ({max_tokens} tokens), "
            f"but epsilon={epsilon:g} x {n_anchor} anchor samples needs {requested}; pass a larger corpus (AUX=file), "
            f"a smaller epsilon, or allow the smaller ratio explicitly (--allow-smaller-epsilon, achieved "
            f"{len(kept) / max(n_anchor, 1):.4f})"
        )
    selected = random.Random(seed).sample(kept, min(requested, len(kept)))
    if len(selected) < requested:
        logger.warning("only %d auxiliary records fit in %d tokens; %d were requested, taking all of them", len(kept), max_tokens, requested)
    stats = {
        "available": len(kept),
        "filtered_too_long": len(records) - len(kept),
        "requested": requested,
        "selected": len(selected),
        "epsilon": epsilon,
        "achieved_epsilon": len(selected) / n_anchor if n_anchor else 0.0,
    }
    return selected, stats


def _record_text(record: dict) -> str:
    parts = [record["instruction"], record.get("input", ""), record["output"]]
    parts += [turn for pair in record.get("history") or [] for turn in pair]
    return "\n".join(part for part in parts if part)


def _read_rows(path: Path) -> list[Any]:
    """Parse a JSON list, a single JSON object or JSON lines."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise BadInputError(path, f"cannot read the file: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise BadInputError(path, f"not UTF-8 text (undecodable byte at offset {err.start})") from None
    if not text.strip():
        raise BadInputError(path, "the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("["):
            raise BadInputError(path, f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
        data = _read_json_lines(path, text)
    rows = data if isinstance(data, list) else [data]
    if not rows:
        raise BadInputError(path, "the file holds no records")
    return rows


def _read_json_lines(path: Path, text: str) -> list[Any]:
    rows = []
    # Split on "\n" only: str.splitlines() would also break on U+2028 inside strings.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise BadInputError(path, f"invalid JSON: {err.msg} (column {err.colno})", row=lineno) from None
    return rows


def _normalise(path: Path, row: Any, index: int) -> dict:
    if not isinstance(row, dict):
        raise BadInputError(path, f"expected a JSON object, got {_json_type(row)}", row=index)
    for key in _SHAREGPT_KEYS:
        if key in row:
            return _from_sharegpt(path, row[key], index, key)
    return {
        "instruction": _string(path, row.get("instruction"), index, "instruction", required=True),
        "input": _string(path, row.get("input"), index, "input", required=False),
        "output": _string(path, row.get("output"), index, "output", required=True),
        "history": _history(path, row.get("history"), index),
    }


def _from_sharegpt(path: Path, turns: Any, index: int, key: str) -> dict:
    """Pair user and assistant turns; the last pair is the one to learn."""
    if not isinstance(turns, list) or not turns:
        raise BadInputError(path, "expected a non-empty list of turns", row=index, field=key)
    pairs: list[list[str]] = []
    user = None
    for position, turn in enumerate(turns):
        where = f"{key}[{position}]"
        if not isinstance(turn, dict):
            raise BadInputError(path, f"expected a JSON object, got {_json_type(turn)}", row=index, field=where)
        role_key = "from" if "from" in turn else "role"
        text_key = "value" if "value" in turn else "content"
        role = turn.get(role_key)
        text = _string(path, turn.get(text_key), index, f"{where}.{text_key}", required=True)
        if not isinstance(role, str) or role not in _ROLES:
            raise BadInputError(
                path,
                f"unknown role {role!r} (expected human/user, gpt/assistant, or system as the first turn)",
                row=index,
                field=f"{where}.{role_key}",
            )
        if role == "system" and position == 0:
            continue
        if role in _USER_ROLES and user is None:
            user = text
        elif role in _ASSISTANT_ROLES and user is not None:
            pairs.append([user, text])
            user = None
        else:
            expected = "a user" if user is None else "an assistant"
            raise BadInputError(
                path,
                f"turn out of order: expected {expected} turn, got {role!r}",
                row=index,
                field=f"{where}.{role_key}",
            )
    if user is not None:
        raise BadInputError(
            path, "the conversation ends with a user turn, not an assistant answer", row=index, field=key
        )
    if not pairs:
        raise BadInputError(path, "no user/assistant exchange", row=index, field=key)
    (instruction, output), history = pairs[-1], pairs[:-1]
    return {"instruction": instruction, "input": "", "output": output, "history": history}


def _string(path: Path, value: Any, index: int, field: str, required: bool) -> str:
    if value is not None and not isinstance(value, str):
        raise BadInputError(path, f"expected a string, got {_json_type(value)}", row=index, field=field)
    if required and not (value or "").strip():
        raise BadInputError(path, "missing or empty", row=index, field=field)
    return value or ""


def _history(path: Path, value: Any, index: int) -> list[list[str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(turn, str) for turn in pair) for pair in value
    ):
        raise BadInputError(path, "expected a list of [user, assistant] string pairs", row=index, field="history")
    return [list(pair) for pair in value]


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
