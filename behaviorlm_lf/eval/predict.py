"""Top-k next behaviors for users, from a trained model.

    behaviorlm predict --events recent.csv --day Tue --hour 8 --place commute
    cat recent.jsonl | behaviorlm predict --events - --day Tue --hour 8 --place commute --top-k 3
    behaviorlm predict --events many_users.csv --next next.csv        # batch: one row per user

Events (CSV or JSON lines) have ``behavior``, ``place`` and either ``time`` (a
timestamp) or ``day`` (Mon..Sun or Monday..Sunday) and ``hour`` (0-23); ``user``
is needed in batch mode. The last L events of each user (L: the data set's
history length), in file order or by time when given, form the history.
``--next`` (batch) holds ``user, day, hour, place``. A behavior that is not one
of the data set's candidates is kept in the history as written (the model reads
it as text) and named in a warning on stderr. The model is a model of the run
(``--run b_tune`` by default, with the same selection flags as ``b-tune``) or any
``--model`` folder with an optional ``--adapter``. Only the predictions go to
stdout: one line per query, ``name probability`` pairs (``user<TAB>`` first in batch mode).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.prompts import PromptRenderer, format_event
from ..data.readers import CONTROL_CHARACTERS
from ..data.samples import DAYS
from ..extras.errors import BadInputError, UserError
from ..hparams import BTuneArguments, FirstStageArguments, PredictArguments, RunArguments, SelectArguments
from ..lf.template import chat_template

logger = logging.getLogger(__name__)

DAY_NAMES = {name.lower(): i for i, name in enumerate(DAYS)} | {
    name.lower(): i for i, name in enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))
}


def read_recent_events(source: str) -> tuple[pd.DataFrame, str]:
    """Events from a CSV or JSON-lines file, or stdin ('-'), with located errors."""
    name = "<stdin>" if source == "-" else source
    if source != "-":
        path = Path(source)
        if path.is_dir():
            raise BadInputError(name, "is a folder, not an events file")
        if not path.is_file():
            raise BadInputError(name, "no such file")
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadInputError(name, f"not UTF-8 text (undecodable byte at offset {err.start})") from None
    if not text.strip():
        raise BadInputError(name, "no events")
    if text.lstrip().startswith("{"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise BadInputError(name, f"not JSON: {err.msg}", row=number) from None
                if not isinstance(row, dict):
                    raise BadInputError(name, f"expected a JSON object, got {type(row).__name__}", row=number)
                rows.append(row)
        frame = pd.DataFrame(rows, dtype=str)
    else:
        rows = list(csv.reader(io.StringIO(text)))
        for number, fields in enumerate(rows[1:], start=1):  # pandas would shift or drop an extra field silently
            if fields and len(fields) != len(rows[0]):
                raise BadInputError(name, f"malformed row: {len(fields)} fields, the header has {len(rows[0])}", row=number)
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    if frame.empty:
        raise BadInputError(name, "the file has a header but no events")
    return frame, name


def _check_values(events: pd.DataFrame, source: str, fields: tuple[str, ...]) -> None:
    for column in fields:
        values = events[column].astype(str).str.strip()
        empty = (values.eq("") | events[column].isna() | values.str.lower().eq("nan")).to_numpy()
        if empty.any():
            raise BadInputError(source, "empty value", row=int(np.argmax(empty)) + 1, field=column)
        broken = values.str.contains(CONTROL_CHARACTERS).to_numpy()
        if column in ("behavior", "place") and broken.any():  # would break the prompt's lines, as in the data stage
            at = int(np.argmax(broken))
            raise BadInputError(source, f"name {values.iloc[at]!r} holds a line break or control character", row=at + 1, field=column)


def history_of(events: pd.DataFrame, source: str) -> list[str]:
    """Events of one user formatted like the prompts, oldest first."""
    for column in ("behavior", "place"):
        if column not in events.columns:
            raise BadInputError(source, "missing column", field=column)
    _check_values(events, source, ("behavior", "place"))
    if "time" in events.columns:
        _check_values(events, source, ("time",))
        times = pd.to_datetime(events["time"], errors="coerce")
        if times.isna().any():
            row = int(np.argmax(times.isna().to_numpy())) + 1
            raise BadInputError(source, f"unparsable timestamp {events['time'].iloc[row - 1]!r}", row=row, field="time")
        events = events.assign(dow=times.dt.dayofweek, hour=times.dt.hour).iloc[np.argsort(times.to_numpy(), kind="stable")]
    else:
        for column in ("day", "hour"):
            if column not in events.columns:
                raise BadInputError(source, "missing column: give 'time', or 'day' and 'hour'", field=column)
        events = events.assign(dow=[parse_day(d, source, i + 1) for i, d in enumerate(events["day"])])
        events = events.assign(hour=[parse_hour(h, source, i + 1) for i, h in enumerate(events["hour"])])
    return [format_event(int(d), int(h), str(p), str(b)) for d, h, p, b in zip(events["dow"], events["hour"], events["place"], events["behavior"])]


def parse_day(value, source: str = "<args>", row: int | None = None) -> int:
    text = str(value).strip().lower()
    if text not in DAY_NAMES:
        raise BadInputError(source, f"day must be one of {DAYS} (or the full name), got {value!r}", row=row, field="day")
    return DAY_NAMES[text]


def parse_hour(value, source: str = "<args>", row: int | None = None) -> int:
    try:
        hour = int(str(value).strip())
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise BadInputError(source, f"hour must be an integer 0-23, got {value!r}", row=row, field="hour")
    return hour


def predict(queries: list[dict], candidates: list[str], model: str, adapter: Path | None, template: str, top_k: int):
    """Rank candidates for each query ({"history": [...], "dow", "hour", "place"}); template 0 for every query."""
    from ..model.scorer import CandidateScorer

    renderer = PromptRenderer(candidates)
    prompts = [renderer.render(q["history"], q["dow"], q["hour"], q["place"], template=0)[0] for q in queries]
    with contextlib.redirect_stdout(sys.stderr):  # LlamaFactory logs to stdout; stdout carries only the result
        result = CandidateScorer(model, adapter_dir=adapter, template=template).score(prompts, candidates, progress=len(prompts) > 8)
    order = np.argsort(-result.probs, axis=1, kind="stable")[:, :top_k]
    return [[(candidates[j], float(result.probs[i, j])) for j in row] for i, row in enumerate(order)]


def queries_from(args: PredictArguments, history_len: int) -> tuple[list[dict], pd.DataFrame]:
    """The queries to rank, and the events they were read from."""
    frame, source = read_recent_events(args.events)
    given = [flag for flag, value in (("--day", args.day), ("--hour", args.hour), ("--place", args.place)) if value is not None]
    if args.next is not None and given:
        raise UserError(f"--next gives each user's next event; {' '.join(given)} would be ignored: give one or the other")
    if args.next is None:
        if len(given) < 3:
            raise UserError("give --day, --hour and --place of the next event (or --next FILE for batch mode)")
        users = frame["user"].astype(str).str.strip().unique() if "user" in frame.columns else []
        if len(users) > 1:
            raise UserError(f"{source} holds the events of {len(users)} users, which would make one history: give one "
                            "user's events, or --next FILE (user,day,hour,place) for one line per user")
        if CONTROL_CHARACTERS.search(args.place):
            raise UserError(f"--place {args.place!r}: a line break or control character would break the prompt")
        if not args.place.strip():
            raise UserError("--place is empty")
        history = history_of(frame, source)[-history_len:]
        return [{"user": None, "history": history, "dow": parse_day(args.day), "hour": parse_hour(args.hour), "place": args.place}], frame
    next_rows, next_source = read_recent_events(args.next)
    missing = [c for c in ("user", "day", "hour", "place") if c not in next_rows.columns]
    if missing or "user" not in frame.columns:
        raise BadInputError(next_source if missing else source, "missing column", field=(missing or ["user"])[0])
    _check_values(next_rows, next_source, ("user", "day", "hour", "place"))
    queries = []
    for row_number, row in enumerate(next_rows.itertuples(index=False), start=1):
        events = frame[frame["user"] == row.user]
        if events.empty:
            raise BadInputError(next_source, f"user {row.user!r} has no events in {source}", row=row_number, field="user")
        queries.append(
            {"user": row.user, "history": history_of(events, source)[-history_len:],
             "dow": parse_day(row.day, next_source, row_number), "hour": parse_hour(row.hour, next_source, row_number),
             "place": row.place}
        )
    return queries, frame


def warn_unknown_behaviors(events: pd.DataFrame, candidates: list[str]) -> None:
    unknown = sorted(set(events["behavior"].astype(str).str.strip()) - set(candidates))
    if unknown:
        print(f"warning: behaviors not among the data set's candidates, kept as written: {unknown}", file=sys.stderr)


def predict_queries(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, hp: BTuneArguments,
                    args: PredictArguments) -> str:
    """`behaviorlm predict`: the lines it prints, one per query."""
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}")
    layout = run.layout()
    vocabulary = layout.vocabulary()
    queries, events = queries_from(args, vocabulary["history_len"])
    warn_unknown_behaviors(events, vocabulary["candidates"])
    model, adapter = layout.chosen_model(args.run, args.adapter, first.first_stage, sel.suffix(), hp.variant)
    ranked = predict(queries, vocabulary["candidates"], model, adapter, chat_template(run.layout()), min(args.top_k, len(vocabulary["candidates"])))
    return "\n".join(
        (f"{query['user']}\t" if query["user"] is not None else "") + "  ".join(f"{name} {p:.3f}" for name, p in top)
        for query, top in zip(queries, ranked)
    )
