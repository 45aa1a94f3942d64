"""`predict` ranks behaviors for one user or many, and rejects malformed input clearly."""

from __future__ import annotations

import pytest

from behaviorlm_lf.cli import main
from behaviorlm_lf.eval.predict import history_of, parse_day, parse_hour, predict, read_recent_events
from behaviorlm_lf.extras.errors import BadInputError

CANDIDATES = ["Music", "News", "Public transport", "Taxi"]


def test_history_orders_by_time_and_formats_like_prompts(tmp_path):
    path = tmp_path / "recent.csv"
    path.write_text("time,place,behavior\n2024-03-05 08:00,commute,Music\n2024-03-04 07:00,home,News\n")
    frame, source = read_recent_events(str(path))
    assert history_of(frame, source) == ["(Mon,7,home,News)", "(Tue,8,commute,Music)"]


def test_json_lines_with_day_and_hour(tmp_path):
    path = tmp_path / "recent.jsonl"
    path.write_text('{"day": "wed", "hour": 21, "place": "home", "behavior": "Video"}\n')
    frame, source = read_recent_events(str(path))
    assert history_of(frame, source) == ["(Wed,21,home,Video)"]


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("time,place,behavior\nyesterday,home,News\n", "a.csv", "row 1, field 'time'"),
        ("day,place,behavior\nMon,home,News\n", "b.csv", "field 'hour'"),
        ("place,behavior\nhome,News\n", "c.csv", "field 'day'"),
        ('{"day": "Mon"}\nnot json\n', "d.jsonl", "row 2"),
    ],
)
def test_malformed_events_are_located(tmp_path, text, name, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        frame, source = read_recent_events(str(path))
        history_of(frame, source)


def test_day_and_hour_are_checked():
    assert parse_day("sunday") == 6 and parse_day("Sun") == 6 and parse_hour("23") == 23
    for bad in ("Someday", "Monkey", "Mo"):
        with pytest.raises(BadInputError, match="day"):
            parse_day(bad)
    with pytest.raises(BadInputError, match="hour"):
        parse_hour("25")


def test_predict_returns_top_k_probabilities(tiny_model):
    query = {"history": ["(Mon,8,commute,Public transport)"], "dow": 1, "hour": 8, "place": "commute"}
    ranked = predict([query, query], CANDIDATES, str(tiny_model), None, "smollm2", top_k=3)
    assert len(ranked) == 2 and len(ranked[0]) == 3
    probabilities = [p for _, p in ranked[0]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-9
    assert {name for name, _ in ranked[0]} <= set(CANDIDATES)


def test_cli_batch_mode_prints_one_line_per_user(tiny_model, tmp_path, capsys):
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    (data / "behaviors.json").write_text('{"candidates": ["Music", "News", "Taxi"], "history_len": 20}')
    (tmp_path / "events.csv").write_text("user,day,hour,place,behavior\na,Mon,7,home,News\nb,Mon,9,home,Music\n")
    (tmp_path / "next.csv").write_text("user,day,hour,place\na,Tue,8,commute\nb,Wed,21,home\n")
    main(
        ["predict", "--events", str(tmp_path / "events.csv"), "--next", str(tmp_path / "next.csv"), "--dataset", "toy",
         "--root", str(tmp_path), "--model", str(tiny_model), "--run", "base", "--top-k", "2"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["a", "b"]
    assert all(len(line.split("\t")[1].split("  ")) == 2 for line in lines)
