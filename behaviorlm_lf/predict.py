"""Top-k next behaviors for users, from a trained model.

    python -m behaviorlm_lf.predict --events recent.csv --day Tue --hour 8 --place commute
    cat recent.jsonl | python -m behaviorlm_lf.predict --events - --day Tue --hour 8 --place commute --top-k 3
    python -m behaviorlm_lf.predict --events many_users.csv --next next.csv        # batch: one row per user

Events (CSV or JSON lines) have ``behavior``, ``place`` and either ``time`` (a
timestamp) or ``day`` (Mon..Sun) and ``hour``; ``user`` is needed in batch mode.
The last ``--history-len`` events of each user, in file order (or by time when
given), form the history. ``--next`` (batch) holds ``user, day, hour, place``.
The model is a run of the pipeline (``--run b_tune`` by default) or any
``--model`` folder with an optional ``--adapter``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .convert import REPO_ROOT
from .fileio import BadInputError
from .presets import get_preset
from .prompts import PromptRenderer, format_event
from .samples import DAYS

logger = logging.getLogger(__name__)

RUNS = ("base", "a_tune", "b_tune")


def resolve_run(run: str, dataset: str, preset: str, run_dir: Path | None = None) -> tuple[str, Path | None]:
    """(model folder, adapter folder or None) of a pipeline run: the backbone, A-tuned or B-tuned."""
    sizes = get_preset(preset)
    run_dir = Path(run_dir or REPO_ROOT / "saves" / dataset / preset)
    if run == "base":
        return sizes.model, None
    if run == "a_tune":
        return sizes.model, run_dir / "a_tune"
    if run.startswith("b_tune"):
        return str(run_dir / "a_merged"), run_dir / run
    raise ValueError(f"unknown run {run!r}: choose one of {RUNS} or pass --model/--adapter")


def read_events(source: str) -> tuple[pd.DataFrame, str]:
    """Events from a CSV or JSON-lines file, or stdin ('-'), with located errors."""
    name = "<stdin>" if source == "-" else source
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    if not text.strip():
        raise BadInputError(name, "no events")
    if text.lstrip().startswith("{"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise BadInputError(name, f"not JSON: {err.msg}", row=number) from err
        frame = pd.DataFrame(rows)
    else:
        frame = pd.read_csv(io.StringIO(text), dtype=str)
    return frame, name


def history_of(events: pd.DataFrame, source: str) -> list[str]:
    """Events of one user formatted like the prompts, oldest first."""
    for field in ("behavior", "place"):
        if field not in events.columns:
            raise BadInputError(source, "missing column", field=field)
    if "time" in events.columns:
        times = pd.to_datetime(events["time"], errors="coerce")
        if times.isna().any():
            row = int(np.argmax(times.isna().to_numpy())) + 1
            raise BadInputError(source, f"unparsable timestamp {events['time'].iloc[row - 1]!r}", row=row, field="time")
        events = events.assign(dow=times.dt.dayofweek, hour=times.dt.hour).iloc[np.argsort(times.to_numpy(), kind="stable")]
    else:
        for field in ("day", "hour"):
            if field not in events.columns:
                raise BadInputError(source, "missing column: give 'time', or 'day' and 'hour'", field=field)
        events = events.assign(dow=[parse_day(d, source, i + 1) for i, d in enumerate(events["day"])])
        events = events.assign(hour=[parse_hour(h, source, i + 1) for i, h in enumerate(events["hour"])])
    return [format_event(int(d), int(h), str(p), str(b)) for d, h, p, b in zip(events["dow"], events["hour"], events["place"], events["behavior"])]


def parse_day(value, source: str = "<args>", row: int | None = None) -> int:
    text = str(value).strip()[:3].title()
    if text not in DAYS:
        raise BadInputError(source, f"day must be one of {DAYS}, got {value!r}", row=row, field="day")
    return DAYS.index(text)


def parse_hour(value, source: str = "<args>", row: int | None = None) -> int:
    try:
        hour = int(str(value).strip())
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise BadInputError(source, f"hour must be an integer 0-23, got {value!r}", row=row, field="hour")
    return hour


def predict(queries: list[dict], candidates: list[str], model: str, adapter: Path | None, template: str, top_k: int, seed: int = 0):
    """Rank candidates for each query ({"history": [...], "dow", "hour", "place"}); template 0 for every query."""
    from .scorer import CandidateScorer

    renderer = PromptRenderer(candidates)
    prompts = [renderer.render(q["history"], q["dow"], q["hour"], q["place"], template=0)[0] for q in queries]
    result = CandidateScorer(model, adapter_dir=adapter, template=template).score(prompts, candidates, progress=len(prompts) > 8)
    order = np.argsort(-result.probs, axis=1, kind="stable")[:, :top_k]
    return [[(candidates[j], float(result.probs[i, j])) for j in row] for i, row in enumerate(order)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", required=True, help="CSV or JSON-lines file of recent events, or - for stdin")
    parser.add_argument("--day", help="day of week of the next event (Mon..Sun)")
    parser.add_argument("--hour", help="hour of the next event (0-23)")
    parser.add_argument("--place", help="place of the next event")
    parser.add_argument("--next", help="batch mode: CSV with user, day, hour, place of each user's next event")
    parser.add_argument("--dataset", default="default", help="data set whose behaviors are the candidates")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--run", default="b_tune", help="base, a_tune or b_tune of the pipeline")
    parser.add_argument("--model", help="any Hugging Face model folder instead of a pipeline run")
    parser.add_argument("--adapter", type=Path, help="LoRA adapter for --model")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--history-len", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        frame, source = read_events(args.events)
        if args.next:
            next_rows = pd.read_csv(args.next, dtype=str)
            missing = [c for c in ("user", "day", "hour", "place") if c not in next_rows.columns]
            if missing or "user" not in frame.columns:
                raise BadInputError(args.next if missing else source, "missing column", field=(missing or ["user"])[0])
            queries = []
            for row_number, row in enumerate(next_rows.itertuples(index=False), start=1):
                events = frame[frame["user"] == row.user]
                if events.empty:
                    raise BadInputError(args.next, f"user {row.user!r} has no events in {source}", row=row_number, field="user")
                queries.append(
                    {"user": row.user, "history": history_of(events, source)[-args.history_len :],
                     "dow": parse_day(row.day, args.next, row_number), "hour": parse_hour(row.hour, args.next, row_number),
                     "place": row.place}
                )
        else:
            if args.day is None or args.hour is None or args.place is None:
                parser.error("give --day, --hour and --place of the next event (or --next FILE for batch mode)")
            queries = [{"user": None, "history": history_of(frame, source)[-args.history_len :],
                        "dow": parse_day(args.day), "hour": parse_hour(args.hour), "place": args.place}]
    except BadInputError as err:
        raise SystemExit(f"error: {err}") from None
    vocabulary = json.loads((REPO_ROOT / "data" / args.dataset / "behaviors.json").read_text(encoding="utf-8"))
    if args.model:
        model, adapter = args.model, args.adapter
    else:
        model, adapter = resolve_run(args.run, args.dataset, args.preset)
    ranked = predict(queries, vocabulary["candidates"], model, adapter, get_preset(args.preset).template, args.top_k)
    for query, top in zip(queries, ranked):
        prefix = f"{query['user']}\t" if query["user"] is not None else ""
        print(prefix + "  ".join(f"{name} {p:.3f}" for name, p in top))


if __name__ == "__main__":
    main()
