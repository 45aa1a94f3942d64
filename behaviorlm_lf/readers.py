"""Readers that turn a source log into events: (user, local time, place, behavior).

Every reader returns a frame with exactly :data:`EVENT_COLUMNS`, sorted by user
then time, with ``place`` and ``behavior`` as categoricals so that tens of
millions of events fit in memory. Structural problems (missing column, bad
timestamp, empty value, undecodable text) raise :class:`BadInputError` naming
the file, the 1-based data row and the field.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .fileio import BadInputError

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ["user", "time", "place", "behavior"]
CHUNK_ROWS = 1_000_000


def _csv_chunks(path: Path, usecols: list[str], dtype: dict | None = None):
    """Stream a CSV (plain or gzip) in chunks, turning parser failures into located errors."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8")
    except pd.errors.EmptyDataError as err:
        raise BadInputError(path, "the file is empty") from err
    except UnicodeDecodeError as err:
        raise BadInputError(path, "not valid UTF-8 text", row=_first_bad_utf8_row(path)) from err
    missing = [col for col in usecols if col not in header.columns]
    if missing:
        raise BadInputError(path, f"missing column; the header has {list(header.columns)}", field=missing[0])
    try:
        # No usecols: with it pandas silently accepts rows with extra fields.
        reader = pd.read_csv(path, dtype=dtype, chunksize=CHUNK_ROWS, encoding="utf-8")
        first_row = 1
        for chunk in reader:
            yield first_row, chunk[usecols]
            first_row += len(chunk)
    except pd.errors.ParserError as err:
        raise BadInputError(path, f"malformed row: {err}", row=_parser_error_row(err)) from err
    except UnicodeDecodeError as err:
        raise BadInputError(path, "not valid UTF-8 text", row=_first_bad_utf8_row(path)) from err


def _parser_error_row(err: Exception) -> int | None:
    """Data row of a pandas 'Expected N fields in line L' error (line 1 is the header)."""
    text = str(err)
    marker = "in line "
    if marker in text:
        digits = text.split(marker, 1)[1].split(",", 1)[0].split()[0]
        if digits.isdigit():
            return int(digits) - 1
    return None


def _first_bad_utf8_row(path: Path) -> int | None:
    opener = _open_binary(path)
    with opener as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return line_no - 1
    return None


def _open_binary(path: Path):
    if str(path).endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _check_values(path: Path, first_row: int, frame: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        empty = frame[column].isna().to_numpy()
        if frame[column].dtype == object:
            empty |= frame[column].astype(str).str.strip().eq("").to_numpy()
        if empty.any():
            raise BadInputError(path, "empty value", row=first_row + int(np.argmax(empty)), field=column)


def _parse_time(path: Path, first_row: int, values: pd.Series, field: str, time_format: str | None) -> pd.Series:
    parsed = pd.to_datetime(values, format=time_format, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        raise BadInputError(path, f"unparsable timestamp {values.iloc[at]!r}", row=first_row + at, field=field)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def finish_events(chunks: list[pd.DataFrame], path: Path, started: float) -> pd.DataFrame:
    """Concatenate reader chunks into the canonical, sorted, categorical event frame."""
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise BadInputError(path, "the file has a header but no events")
    events = pd.concat(chunks, ignore_index=True)
    events["user"] = events["user"].astype(str).astype("category")
    for column in ("place", "behavior"):
        events[column] = events[column].astype(str).str.strip().astype("category")
    events = events.sort_values(["user", "time"], kind="stable", ignore_index=True)[EVENT_COLUMNS]
    logger.info(
        "read %s: %d events, %d users, %d behaviors in %.1fs",
        path, len(events), events["user"].nunique(), events["behavior"].nunique(), time.time() - started,
    )
    return events


def read_table(
    path: str | os.PathLike,
    user: str = "user",
    time_col: str = "time",
    place: str | None = "place",
    behavior: str = "behavior",
    tz_offset_min: str | None = None,
    time_format: str | None = None,
) -> pd.DataFrame:
    """Read a user's own CSV (plain or .gz) or Parquet log, given its column names.

    ``time_col`` holds local time, or UTC when ``tz_offset_min`` names a column of
    minutes to add. ``place=None`` means the log has no place: every event gets "any".
    """
    path = Path(path)
    started = time.time()
    if not path.is_file():
        raise BadInputError(path, "no such file")
    wanted = [c for c in (user, time_col, place, behavior, tz_offset_min) if c]
    chunks = []
    for first_row, raw in _table_chunks(path, wanted):
        _check_values(path, first_row, raw, wanted)
        local = _parse_time(path, first_row, raw[time_col].astype(str), time_col, time_format)
        if tz_offset_min:
            offsets = pd.to_numeric(raw[tz_offset_min], errors="coerce")
            if offsets.isna().any():
                at = int(np.argmax(offsets.isna().to_numpy()))
                raise BadInputError(path, "offset is not a number of minutes", row=first_row + at, field=tz_offset_min)
            local = local + pd.to_timedelta(offsets, unit="min")
        chunks.append(
            pd.DataFrame(
                {
                    "user": raw[user].astype(str),
                    "time": local,
                    "place": raw[place] if place else "any",
                    "behavior": raw[behavior],
                }
            )
        )
    return finish_events(chunks, path, started)


def _table_chunks(path: Path, columns: list[str]):
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as err:  # pyarrow raises several types for a broken file
            raise BadInputError(path, f"not a readable Parquet file: {err}") from err
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise BadInputError(path, f"missing column; the file has {parquet.schema_arrow.names}", field=missing[0])
        first_row = 1
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
            frame = batch.to_pandas()
            yield first_row, frame
            first_row += len(frame)
        return
    yield from _csv_chunks(path, columns, dtype={c: str for c in columns})


def read_foursquare(path: str | os.PathLike, grid_deg: float | None = 0.05) -> pd.DataFrame:
    """Foursquare TSMC2014 check-ins: behavior = venue category, local time = UTC + offset.

    The place is a coarse area: the ``grid_deg`` x ``grid_deg`` degree cell of the
    venue, named ``area<k>`` with k its rank by check-ins (0.05 deg is about
    5 km in New York, coarse enough not to give the venue away). ``grid_deg=None``
    drops the place: every event gets "any".
    """
    if grid_deg is not None and grid_deg <= 0:
        raise ValueError(f"grid_deg must be positive or None, got {grid_deg}")
    path = Path(path)
    started = time.time()
    columns = ["user", "category_name", "lat", "lon", "utc_offset_min", "utc_date_time"]
    chunks = []
    for first_row, raw in _csv_chunks(path, columns, dtype={c: str for c in columns}):
        _check_values(path, first_row, raw, columns)
        numbers = {}
        for field in ("lat", "lon", "utc_offset_min"):
            numbers[field] = pd.to_numeric(raw[field], errors="coerce")
            if numbers[field].isna().any():
                at = int(np.argmax(numbers[field].isna().to_numpy()))
                raise BadInputError(path, f"not a number: {raw[field].iloc[at]!r}", row=first_row + at, field=field)
        utc = _parse_time(path, first_row, raw["utc_date_time"], "utc_date_time", "%Y-%m-%d %H:%M:%S")
        if grid_deg is None:
            place = "any"
        else:
            place = (
                np.floor(numbers["lat"] / grid_deg).astype(int).astype(str)
                + ":"
                + np.floor(numbers["lon"] / grid_deg).astype(int).astype(str)
            )
        chunks.append(
            pd.DataFrame(
                {
                    "user": raw["user"],
                    "time": utc + pd.to_timedelta(numbers["utc_offset_min"], unit="min"),
                    "place": place,
                    "behavior": raw["category_name"],
                }
            )
        )
    events = finish_events(chunks, path, started)
    if grid_deg is not None:
        by_count = events["place"].value_counts().index
        events["place"] = events["place"].cat.rename_categories({cell: f"area{rank + 1}" for rank, cell in enumerate(by_count)})
    return events


def read_placelab(path: str | os.PathLike) -> pd.DataFrame:
    """MIT PlaceLab home activities: behavior = activity, place = room, time = start."""
    return read_table(
        path, user="user_id", time_col="start_time", place="room", behavior="activity",
        time_format="%Y-%m-%d %H:%M:%S",
    )
