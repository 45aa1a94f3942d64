"""Readers turn each source into canonical events; bad input is located by file, row and field."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from conftest import shared_file

from behaviorlm_lf.data.readers import EVENT_COLUMNS, read_foursquare, read_placelab, read_table
from behaviorlm_lf.extras.errors import BadInputError

GOOD_CSV = """uid,ts,loc,app
b,2024-01-02 09:30:00,home,Music
a,2024-01-01 08:00:00,work,Email
a,2024-01-01 07:00:00,home,News
"""


def write(tmp_path, text, name="log.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def read_good(path, **kwargs):
    return read_table(path, user="uid", time_col="ts", place="loc", behavior="app", **kwargs)


def test_generic_csv_maps_columns_and_sorts_by_user_then_time(tmp_path):
    events = read_good(write(tmp_path, GOOD_CSV))
    assert list(events.columns) == EVENT_COLUMNS
    assert events["user"].astype(str).tolist() == ["a", "a", "b"]
    assert events["behavior"].astype(str).tolist() == ["News", "Email", "Music"]
    assert events["time"].iloc[0] == pd.Timestamp("2024-01-01 07:00:00")


def test_generic_reader_applies_time_zone_offset_and_reads_parquet_and_gzip(tmp_path):
    frame = pd.DataFrame({"uid": ["a"], "ts": ["2024-01-01 12:00:00"], "loc": ["x"], "app": ["Taxi"], "off": [-300]})
    frame.to_parquet(tmp_path / "log.parquet")
    events = read_table(tmp_path / "log.parquet", user="uid", time_col="ts", place="loc", behavior="app", tz_offset_min="off")
    assert events["time"].iloc[0] == pd.Timestamp("2024-01-01 07:00:00")
    gz = tmp_path / "log.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write(GOOD_CSV)
    assert len(read_good(gz)) == 3


def test_log_without_place_gets_one_place(tmp_path):
    events = read_table(write(tmp_path, GOOD_CSV), user="uid", time_col="ts", place=None, behavior="app")
    assert set(events["place"].astype(str)) == {"any"}


@pytest.mark.parametrize(
    ("text", "row", "field", "words"),
    [
        ("uid,ts,loc\na,2024-01-01 07:00:00,home\n", None, "app", "missing column"),
        ("uid,ts,loc,app\na,2024-01-01 07:00:00,home,News\nb,yesterday,home,News\n", 2, "ts", "unparsable timestamp"),
        ("uid,ts,loc,app\na,2024-01-01 07:00:00,home,News\na,2024-01-01 08:00:00,home,News,extra\n", 2, None, "malformed row"),
        ("uid,ts,loc,app\na,2024-01-01 07:00:00,,News\n", 1, "loc", "empty value"),
        ("", None, None, "empty"),
        ("uid,ts,loc,app\n", None, None, "no events"),
    ],
    ids=["missing-column", "bad-timestamp", "malformed-row", "empty-value", "empty-file", "header-only"],
)
def test_bad_input_names_file_row_and_field(tmp_path, text, row, field, words):
    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as caught:
        read_good(path)
    message = str(caught.value)
    assert str(path) in message and words in message
    assert caught.value.row == row and caught.value.field == field
    if row is not None:
        assert f"row {row}" in message


def test_non_utf8_file_is_located(tmp_path):
    path = write(tmp_path, "uid,ts,loc,app\na,2024-01-01 07:00:00,home,News\na,2024-01-01 08:00:00,caf\xe9,News\n".encode("latin-1"))
    with pytest.raises(BadInputError, match="UTF-8") as caught:
        read_good(path)
    assert caught.value.row == 2


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        read_good(tmp_path / "absent.csv")


def test_foursquare_real_file():
    path = shared_file("foursquare-nyc/checkins_nyc.csv.gz")
    events = read_foursquare(path)
    # 227,428 check-ins, of which 262 repeat another of the same user, second, area and category exactly
    assert events.attrs["exact_duplicates_dropped"] == 262
    assert len(events) == 227_428 - 262
    assert events["user"].nunique() == 1083
    assert events["behavior"].nunique() == 251
    assert events["place"].astype(str).str.fullmatch(r"area\d+").all()
    # Local time = UTC + offset: the first check-in of user 1 is 23:31 UTC at -240 min.
    first = events[events["user"] == "1"].iloc[0]
    assert first["time"] == pd.Timestamp("2012-04-04 19:31:31")
    assert first["behavior"] == "Seafood Restaurant"
    coarse = read_foursquare(path, grid_deg=0.5)
    assert coarse["place"].nunique() < events["place"].nunique()
    assert set(read_foursquare(path, grid_deg=None)["place"].astype(str)) == {"any"}


def test_placelab_real_file():
    events = read_placelab(shared_file("mit-placelab/mit_placelab_activities.csv"))
    assert len(events) == 503
    assert events["user"].nunique() == 2
    assert events["behavior"].nunique() == 27
    assert "Kitchen" in set(events["place"].astype(str))
    assert events.groupby("user", observed=True)["time"].apply(lambda t: t.is_monotonic_increasing).all()


def test_na_and_null_are_names_not_missing_values(tmp_path):
    """A real place named "NA" was reported as an empty value: only an empty field is missing."""
    events = read_good(write(tmp_path, "uid,ts,loc,app\na,2024-01-01 07:00:00,NA,null\na,2024-01-01 08:00:00,None,News\n"))
    assert events["place"].tolist() == ["NA", "None"] and events["behavior"].tolist() == ["null", "News"]
