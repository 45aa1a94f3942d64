"""Readers that turn a source log into events: (user, local time, place, behavior).

Every reader returns a frame with exactly :data:`EVENT_COLUMNS`, sorted by user
then time, with ``place`` and ``behavior`` as categoricals so that tens of
millions of events fit in memory. Structural problems (missing column, bad
timestamp, empty value, undecodable text) raise :class:`BadInputError` naming
the file, the 1-based data row and the field.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import re
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..extras.errors import BadInputError

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ["user", "time", "place", "behavior"]
# C0 and C1 controls and the Unicode line and paragraph separators: each would break a prompt's lines
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
CHUNK_ROWS = 1_000_000


COMPRESSION_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _csv_chunks(path: Path, usecols: list[str], dtype: dict | None = None):
    """Stream a CSV (plain or gzip) in chunks, turning parser failures into located errors."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8")
    except pd.errors.EmptyDataError as err:
        raise BadInputError(path, "the file is empty") from err
    except UnicodeDecodeError as err:
        raise BadInputError(path, "not valid UTF-8 text", row=_first_bad_utf8_row(path)) from err
    except COMPRESSION_ERRORS as err:
        raise BadInputError(path, f"not a readable gzip file, truncated or corrupt ({err or type(err).__name__})") from err
    missing = [col for col in usecols if col not in header.columns]
    if missing:
        raise BadInputError(path, f"missing column; the header has {list(header.columns)}", field=missing[0])
    try:
        _check_no_nul(path)
        # No usecols: with it pandas silently accepts rows with extra fields.
        # Only an empty field is missing: "NA", "null" or "None" may be a real place or behavior.
        reader = pd.read_csv(path, dtype=dtype, chunksize=CHUNK_ROWS, encoding="utf-8", keep_default_na=False, na_values=[""])
        first_row = 1
        for chunk in reader:
            short = chunk.columns[-1] in usecols and chunk[chunk.columns[-1]].isna().any()
            if short:  # pandas fills missing trailing fields with NaN: find a row that is really too short
                _check_field_counts(path, first_row, len(chunk), len(header.columns))
            yield first_row, chunk[usecols]
            first_row += len(chunk)
    except pd.errors.ParserError as err:
        raise BadInputError(path, f"malformed row: {err}", row=_parser_error_row(err)) from err
    except UnicodeDecodeError as err:
        raise BadInputError(path, "not valid UTF-8 text", row=_first_bad_utf8_row(path)) from err
    except COMPRESSION_ERRORS as err:
        raise BadInputError(path, f"not a readable gzip file, truncated or corrupt ({err or type(err).__name__})") from err


def _check_no_nul(path: Path, block: int = 1 << 20) -> None:
    """A NUL byte is refused with its row: pandas' parser silently cuts the field there ("ho\\0me" is read "ho")."""
    rows = 0
    with _open_binary(path) as handle:
        while chunk := handle.read(block):
            at = chunk.find(b"\x00")
            if at >= 0:
                raise BadInputError(path, "a NUL byte in the text (a binary file, or a broken export?)", row=rows + chunk.count(b"\n", 0, at))
            rows += chunk.count(b"\n")


def _check_field_counts(path: Path, first_row: int, rows: int, expected: int) -> None:
    """Raise for the first data row in ``[first_row, first_row + rows)`` with fewer fields than the header."""
    with _open_text(path) as handle:
        for number, fields in enumerate(csv.reader(handle)):
            if first_row <= number < first_row + rows and len(fields) < expected:
                raise BadInputError(path, f"malformed row: {len(fields)} fields, the header has {expected}", row=number)
            if number >= first_row + rows:
                return


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
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if str(path).endswith(".gz") else open(path, encoding="utf-8", newline="")


def _check_values(path: Path, first_row: int, frame: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        empty = frame[column].isna().to_numpy()
        if frame[column].dtype == object:
            empty |= frame[column].astype(str).str.strip().eq("").to_numpy()
        if empty.any():
            raise BadInputError(path, "empty value", row=first_row + int(np.argmax(empty)), field=column)


UTC_MARK = re.compile(r"(?:Z|[+-]00:?00)$", re.IGNORECASE)
# A date that starts with day and month in some order (04-03-2024, 4/3/24): pandas reads it month first.
AMBIGUOUS_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.]\d{2,4}\b")
OFFSET_MARK = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
# An offset follows a clock time (08:00-05:00); in 20240304-0800 the "-0800" is the time itself.
CLOCK_TIME = re.compile(r"\d:\d\d")
OFFSET_PARTS = re.compile(r"([+-])(\d{2}):?(\d{2})$")
MIN_OFFSET_MINUTES, MAX_OFFSET_MINUTES = -12 * 60, 14 * 60  # the real time zones run from -12:00 to +14:00


def _parse_time(
    path: Path,
    first_row: int,
    values: pd.Series,
    field: str,
    time_format: str | None,
    time_unit: str | None = None,
    has_offset_column: bool = False,
    assume: str | None = None,
) -> pd.Series:
    """Timestamps as the wall-clock time the user lived, naive.

    * no zone (``2024-03-10 08:00``): taken as local time, as written;
    * a zone offset (``08:00-05:00``, per row, so several zones and DST changes mix
      freely): local time is the written time, the offset dropped;
    * UTC (``Z``, ``+00:00``) or epoch numbers (``--time-unit``): the local time
      needs an offset column (minutes added to UTC) or an explicit ``--assume utc``
      (keep UTC hours) / ``--assume local`` (the marker is wrong: they are local);
    * a mix of zoned and unzoned stamps is an error: the two cannot be told apart.
    """
    text = values.astype(str).str.strip()
    if text.empty:
        return pd.Series([], index=values.index, dtype="datetime64[ns]")
    if time_unit is not None:
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.isna().any():
            at = int(np.argmax(numbers.isna().to_numpy()))
            raise BadInputError(path, f"not an epoch time in {time_unit}: {values.iloc[at]!r}", row=first_row + at, field=field)
        try:
            parsed = pd.to_datetime(numbers, unit=time_unit)
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            per_second = {"s": 1, "ms": 1e3}[time_unit]
            at = int(np.argmax((numbers.abs() / per_second > pd.Timestamp.max.timestamp()).to_numpy()))
            raise BadInputError(path, f"epoch time {values.iloc[at]!r} in {time_unit} is beyond the year 2262"
                                + (" (milliseconds? pass --time-unit ms)" if time_unit == "s" else ""), row=first_row + at, field=field) from None
        return _from_utc(path, parsed, has_offset_column, assume, field, "epoch times are UTC")
    zoned = text.str.contains(OFFSET_MARK) & text.str.contains(CLOCK_TIME)
    if zoned.any() and not zoned.all():
        with_zone, without = int(np.argmax(zoned.to_numpy())), int(np.argmax(~zoned.to_numpy()))
        raise BadInputError(
            path,
            f"timestamps mix zoned ({values.iloc[with_zone]!r}, row {first_row + with_zone}) and unzoned "
            f"({values.iloc[without]!r}) values; give every row a zone or none",
            row=first_row + without, field=field,
        )
    marked_utc = text.str.contains(UTC_MARK)
    if zoned.all() and marked_utc.any() and not marked_utc.all():
        # The rows marked UTC follow the rule of an all-UTC file; an offset column would also shift the other rows.
        z, other = int(np.argmax(marked_utc.to_numpy())), int(np.argmax(~marked_utc.to_numpy()))
        mix = f"timestamps mix UTC ({values.iloc[z]!r}, row {first_row + z}) and local offsets ({values.iloc[other]!r})"
        if has_offset_column:
            raise BadInputError(path, f"{mix}: an offset column applies to UTC times only; give every row the same kind", row=first_row + z, field=field)
        if assume is None:
            raise BadInputError(
                path, f"{mix}, so the UTC rows' local hours are unknown: choose --assume utc (keep their UTC hours) or "
                "--assume local (they are local)", row=first_row + z, field=field,
            )
    utc = bool(zoned.all() and marked_utc.all())
    if zoned.all() and not utc:
        if has_offset_column:
            raise BadInputError(path, f"timestamps carry their own offsets ({values.iloc[0]!r}): an offset column applies to "
                                "UTC times only; drop tz_offset= from --columns", row=first_row, field=field)
        parts = text.str.extract(OFFSET_PARTS)
        minutes = np.where(parts[0] == "-", -1, 1) * (parts[1].astype(float) * 60 + parts[2].astype(float))
        wrong = ((minutes < MIN_OFFSET_MINUTES) | (minutes > MAX_OFFSET_MINUTES) | (parts[2].astype(float) >= 60)).to_numpy()
        if wrong.any():
            at = int(np.argmax(wrong))
            raise BadInputError(path, f"{values.iloc[at]!r}: not a time-zone offset (-12:00 to +14:00)", row=first_row + at, field=field)
        text = text.str.replace(OFFSET_MARK, "", regex=True)  # the written time is the local time
    elif utc:
        text = text.str.replace(OFFSET_MARK, "", regex=True)
    if text.str.fullmatch(r"\d{9,13}(\.\d+)?").all():
        raise BadInputError(
            path, f"timestamps look like epoch times ({values.iloc[0]!r}): pass --time-unit s or ms", row=first_row, field=field
        )
    if time_format is None:
        swappable = text.str.extract(AMBIGUOUS_DATE).astype(float)
        if text.str.match(AMBIGUOUS_DATE).all() and not (swappable > 12).any().any():
            raise BadInputError(
                path, f"{values.iloc[0]!r}: day and month could be either way round in every row; pass --time-format, "
                "e.g. '%d-%m-%Y %H:%M' (day first) or '%m-%d-%Y %H:%M' (month first)", row=first_row, field=field,
            )
        day_first = text.str.match(AMBIGUOUS_DATE).any() and (swappable[0] > 12).any()
        if day_first:
            raise BadInputError(
                path, f"{values.iloc[int(np.argmax((swappable[0] > 12).to_numpy()))]!r}: a day-first date; pass --time-format, "
                "e.g. '%d-%m-%Y %H:%M'", row=first_row + int(np.argmax((swappable[0] > 12).to_numpy())), field=field,
            )
    parsed = pd.to_datetime(text, format=time_format, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        raise BadInputError(path, f"unparsable timestamp {values.iloc[at]!r}", row=first_row + at, field=field)
    parsed = parsed.astype("datetime64[ns]")
    if utc:
        return _from_utc(path, parsed, has_offset_column, assume, field, "timestamps are marked UTC")
    return parsed


def _from_utc(path: Path, parsed: pd.Series, has_offset_column: bool, assume: str | None, field: str, why: str) -> pd.Series:
    """UTC times: fine with an offset column (added later) or an explicit assumption, else an error."""
    if has_offset_column or assume is not None:
        return parsed.astype("datetime64[ns]")
    raise BadInputError(
        path,
        f"{why}, so the users' local hours are unknown: name an offset column (--columns ...,tz_offset=COL) or "
        "choose --assume utc (keep UTC hours) or --assume local (the times are local)",
        field=field,
    )


def finish_events(chunks: list[pd.DataFrame], path: Path, started: float) -> pd.DataFrame:
    """Concatenate reader chunks into the canonical, sorted, categorical event frame."""
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise BadInputError(path, "the file has a header but no events")
    events = pd.concat(chunks, ignore_index=True)
    events["user"] = events["user"].astype(str).astype("category")
    for column in ("place", "behavior"):
        names = events[column].astype(str).str.strip()
        broken = names.str.contains(CONTROL_CHARACTERS).to_numpy()
        if broken.any():  # a newline or tab would break the prompt's lines and the history's format
            at = int(np.argmax(broken))
            raise BadInputError(path, f"name {names.iloc[at]!r} holds a line break or control character", row=at + 1, field=column)
        events[column] = names.astype("category")
    before = len(events)
    events = events.drop_duplicates(subset=EVENT_COLUMNS)
    events = events.sort_values(["user", "time"], kind="stable", ignore_index=True)[EVENT_COLUMNS]
    # An exact duplicate row (same user, time, place and behavior) would double every history it falls in.
    events.attrs["exact_duplicates_dropped"] = before - len(events)
    logger.info(
        "read %s: %d events (%d exact duplicates dropped), %d users, %d behaviors in %.1fs",
        path, len(events), before - len(events), events["user"].nunique(), events["behavior"].nunique(), time.time() - started,
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
    time_unit: str | None = None,
    assume: str | None = None,
) -> pd.DataFrame:
    """Read a user's own CSV (plain or .gz) or Parquet log, given its column names.

    ``time_col`` holds local time (see :func:`_parse_time` for zones and epochs), or
    UTC when ``tz_offset_min`` names a column of minutes to add. ``place=None``
    means the log has no place: every event gets "any".
    """
    path = Path(path)
    started = time.time()
    if path.is_dir():
        raise BadInputError(path, "is a folder, not an event file")
    if not path.is_file():
        raise BadInputError(path, "no such file")
    wanted = [c for c in (user, time_col, place, behavior, tz_offset_min) if c]
    chunks = []
    for first_row, raw in _table_chunks(path, wanted):
        _check_values(path, first_row, raw, wanted)
        local = _parse_time(
            path, first_row, raw[time_col].astype(str), time_col, time_format, time_unit, tz_offset_min is not None, assume
        )
        if tz_offset_min:
            offsets = pd.to_numeric(raw[tz_offset_min], errors="coerce")
            if offsets.isna().any():
                at = int(np.argmax(offsets.isna().to_numpy()))
                raise BadInputError(path, "offset is not a number of minutes", row=first_row + at, field=tz_offset_min)
            beyond = ((offsets < MIN_OFFSET_MINUTES) | (offsets > MAX_OFFSET_MINUTES)).to_numpy()
            if beyond.any():
                at = int(np.argmax(beyond))
                raise BadInputError(path, f"offset {raw[tz_offset_min].iloc[at]!r} minutes is not a time-zone offset "
                                    f"({MIN_OFFSET_MINUTES} to +{MAX_OFFSET_MINUTES})", row=first_row + at, field=tz_offset_min)
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
