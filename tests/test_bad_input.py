"""Bad input through the real command line, as a hostile new user would try it.

Every case runs ``python -m behaviorlm_lf <command>`` (the ``behaviorlm`` command) in a subprocess and checks the
exit code, one line on stderr naming file, row and field, no traceback, and that
no output folder or registry entry was left behind.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

HEADER = "user,time,place,behavior\n"
def behavior(u: int, d: int, h: int) -> str:
    """Two frequent behaviors and a rare one (Taxi, about 4%), so an anchor threshold of 20% has both groups."""
    return "Taxi" if (u + d * 8 + h) % 25 == 0 else ("Music" if (u + h) % 3 else "News")


GOOD_ROWS = "".join(f"u{u},2024-03-0{4 + d} {8 + h}:00:00,home,{behavior(u, d, h)}\n"
                    for u in range(6) for d in range(3) for h in range(8))


def cli(command: str, *args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BEHAVIORLM_SHARED_DATA": str(cwd / "no-shared-data")}
    return subprocess.run(
        [sys.executable, "-m", "behaviorlm_lf", command, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True
    )


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    """The error line, after checking: exit 2, no traceback, one ``error:`` line (the last; progress logs may
    precede it), every word in it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def nothing_left(root: Path, name: str) -> None:
    assert not (root / "data" / name).exists()
    assert not list((root / "data").glob(f"{name}.tmp-*")) if (root / "data").exists() else True
    registry = root / "dataset_info.json"
    assert not registry.exists() or not any(key.startswith(f"{name}_") for key in json.loads(registry.read_text()))


def convert(tmp_path: Path, text: str | bytes, name: str = "log.csv", *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return cli("data", "--dataset", "mine", "--source", str(path), "--preset", "smoke", *extra, cwd=tmp_path), path


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("user,time,place\nu1,2024-03-04 08:00:00,home\n", ["field 'behavior'", "missing column"]),
        (HEADER + "u1,yesterday,home,News\n", ["row 1", "field 'time'", "unparsable timestamp"]),
        (HEADER + "u1,2024-03-04 08:00:00,,News\n", ["row 1", "field 'place'", "empty value"]),
        (HEADER + "u1,2024-03-04 08:00:00,home,News\nu1,2024-03-04 09:00:00,home,News,extra\n", ["row 2", "malformed row"]),
        (HEADER + "u1,2024-03-04 08:00:00,home,News\nu1,2024-03-04 09:00:00,home\n", ["row 2", "malformed row", "3 fields"]),
        ("", ["the file is empty"]),
        (HEADER, ["header but no events"]),
        (b"user,time,place,behavior\nu1,2024-03-04 08:00:00,h\xe9me,News\n", ["row 1", "UTF-8"]),
        (HEADER + "u1,2024-03-04T08:00:00Z,home,News\n", ["field 'time'", "marked UTC", "--assume"]),
        (HEADER + "u1,1709539200,home,News\n", ["row 1", "field 'time'", "epoch", "--time-unit"]),
        (HEADER + "u1,2024-03-04 08:00:00,home,News\nu1,2024-03-04T09:00:00-05:00,home,News\n", ["mix zoned", "row 1"]),
        (HEADER + 'u1,2024-03-04 08:00:00,home,"Two\nlines"\n', ["row 1", "field 'behavior'", "line break"]),
        (HEADER + "u1,2024-03-04 08:00:00,home,Mu\u2028sic\n", ["row 1", "field 'behavior'", "line break"]),
        (HEADER + "u1,2024-03-04T08:00:00-05:00,home,News\nu1,2024-03-04T14:00:00Z,home,News\n", ["row 2", "mix UTC", "--assume"]),
        (HEADER + "u1,04-03-2024 08:00,home,News\nu1,05-03-2024 08:00,home,News\n", ["row 1", "either way round", "--time-format"]),
        (HEADER + "u1,04-03-2024 08:00,home,News\nu1,25-03-2024 08:00,home,News\n", ["row 2", "day-first", "--time-format"]),
    ],
    ids=["missing-column", "bad-time", "empty-value", "extra-field", "short-row", "empty", "header-only", "not-utf8",
         "utc-marker", "epoch", "zone-mix", "newline-name", "line-separator-name", "utc-and-offsets", "day-month-ambiguous", "day-first"],
)
def test_convert_input_errors_are_one_line_and_leave_nothing(tmp_path, text, words):
    result, path = convert(tmp_path, text)
    line = one_line_error(result, *words)
    assert str(path) in line
    nothing_left(tmp_path, "mine")


@pytest.mark.parametrize(
    ("content", "words"),
    [(gzip.compress((HEADER + GOOD_ROWS).encode())[:60], ["not a readable gzip file", "truncated or corrupt"]),
     (b"plain text, not gzip\n", ["not a readable gzip file"])],
    ids=["truncated", "not-gzip"],
)
def test_broken_gzip_names_the_file(tmp_path, content, words):
    result, path = convert(tmp_path, content, "log.csv.gz")
    assert str(path) in one_line_error(result, *words)
    nothing_left(tmp_path, "mine")


def test_a_folder_an_unknown_source_and_an_escaping_name(tmp_path):
    (tmp_path / "folder").mkdir()
    one_line_error(cli("data", "--dataset", "mine", "--source", str(tmp_path / "folder"), cwd=tmp_path), "is a folder")
    line = one_line_error(cli("data", "--dataset", "foursquare-nyk", cwd=tmp_path), "unknown source")
    assert "foursquare-nyc" in line and "mit-placelab" in line
    (tmp_path / "log.csv").write_text(HEADER + GOOD_ROWS)
    one_line_error(cli("data", "--dataset", "../escaped", "--source", str(tmp_path / "log.csv"), cwd=tmp_path), "plain folder name")
    assert not (tmp_path / "escaped").exists()


def test_columns_are_for_an_event_file_and_the_terminal_width_is_not_a_column_map(tmp_path):
    """`--columns 80` is what the environment's COLUMNS (the terminal width) once passed through the Makefile: the
    built-in data set silently took it into its cache identity. It is refused, and make passes COLUMNS only when it is
    given on make's command line."""
    one_line_error(cli("data", "--preset", "smoke", "--columns", "80", cwd=tmp_path), "--columns", "KEY=COLUMN")
    one_line_error(cli("data", "--preset", "smoke", "--columns", "user=uid", cwd=tmp_path), "--columns", "event file")
    assert not (tmp_path / "data").exists()
    repo = Path(__file__).resolve().parents[1]
    dry = ["make", "-n", "-B", "data", "PRESET=smoke"]
    from_env = subprocess.run(dry, cwd=repo, capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "80"})
    assert "--columns" not in from_env.stdout
    given = subprocess.run([*dry, "COLUMNS=user=uid"], cwd=repo, capture_output=True, text=True, check=True)
    assert "--columns user=uid" in given.stdout


@pytest.mark.parametrize(("flag", "value"), [("--name", "ABSOLUTE"), ("--name", "../../x"), ("--sub_run", "../x"), ("--sub_run", "a/b")])
def test_a_report_or_sub_run_name_outside_its_root_is_refused_and_nothing_is_touched(tmp_path, flag, value):
    """`eval --name /some/folder` once emptied that folder and wrote the report there."""
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    value = str(outside) if value == "ABSOLUTE" else value
    one_line_error(cli("eval", "--preset", "smoke", flag, value, cwd=tmp_path), "plain folder name", flag)
    assert (outside / "keep.txt").read_text() == "mine" and not (tmp_path / "reports").exists()


def immutable(path: Path) -> None:
    """Make ``path`` unwritable even for root (the sandbox and CI run as root), or skip where the file system cannot."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({done.stderr.decode().strip()})")


def writable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_a_registry_that_cannot_be_written_leaves_no_data_folder(tmp_path):
    registry = tmp_path / "dataset_info.json"
    registry.write_text("{}")
    immutable(registry)
    try:
        result, _ = convert(tmp_path, HEADER + GOOD_ROWS, "log.csv", "--anchor-threshold", "0.2")
    finally:
        writable(registry)
    one_line_error(result, "dataset_info.json", "not permitted")
    assert not (tmp_path / "data" / "mine").exists() and not list((tmp_path / "data").glob("mine.tmp-*"))


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    immutable(tmp_path / "data")
    try:
        result, _ = convert(tmp_path, HEADER + GOOD_ROWS, "log.csv", "--anchor-threshold", "0.2")
    finally:
        writable(tmp_path / "data")
    one_line_error(result, "data", "not permitted")


def test_timestamps_with_offsets_that_change_between_rows_give_local_wall_clock_hours(tmp_path):
    """A DST change (-05:00 then -04:00) and several zones in one log: each row's own offset, hours as lived."""
    rows = [f"u{u},2024-03-{9 + d:02d}T{8 + h:02d}:00:00{'-05:00' if d < 1 else '-04:00'},home,{behavior(u, d, h)}\n"
            for u in range(6) for d in range(3) for h in range(8)]
    rows += [f"v{u},2024-03-10T{9 + h:02d}:30:00+09:00,work,News\n" for u in range(3) for h in range(8)]
    result, _ = convert(tmp_path, HEADER + "".join(rows), "dst.csv", "--history-len", "5", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr
    hours = set(pd.read_parquet(tmp_path / "data" / "mine" / "train_events.parquet")["hour"])
    assert hours <= set(range(8, 17))  # the written local hours, never shifted to UTC


def test_utc_timestamps_with_an_offset_column_or_an_assumption(tmp_path):
    rows = "".join(f"u{u},2024-03-0{4 + d}T{12 + h}:00:00Z,home,{behavior(u, d, h)},-300\n"
                   for u in range(6) for d in range(3) for h in range(8))
    result, _ = convert(tmp_path, HEADER.strip() + ",offset\n" + rows, "utc.csv", "--columns",
                        "user=user,time=time,place=place,behavior=behavior,tz_offset=offset", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr
    assert set(pd.read_parquet(tmp_path / "data" / "mine" / "train_events.parquet")["hour"]) <= set(range(7, 15))


def test_a_day_first_log_reads_with_its_time_format_and_month_first_dates_need_none(tmp_path):
    day_first = "".join(f"u{u},{4 + d:02d}-03-2024 {8 + h:02d}:00,home,{behavior(u, d, h)}\n" for u in range(6) for d in range(3) for h in range(8))
    result, _ = convert(tmp_path, HEADER + day_first, "dmy.csv", "--time-format", "%d-%m-%Y %H:%M", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr
    events = pd.read_parquet(tmp_path / "data" / "mine" / "train_events.parquet")
    assert set(events["dow"]) <= {0, 1, 2}  # 4-6 March 2024 (Monday to Wednesday), not 3-5 April
    month_first = "".join(f"u{u},03/{14 + d}/2024 {8 + h:02d}:00,home,{behavior(u, d, h)}\n" for u in range(6) for d in range(3) for h in range(8))
    result, _ = convert(tmp_path, HEADER + month_first, "mdy.csv", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr  # a day above 12 in the second place says which is the month


def test_exact_duplicates_are_dropped_and_counted(tmp_path):
    result, _ = convert(tmp_path, HEADER + GOOD_ROWS + GOOD_ROWS.splitlines(keepends=True)[0] * 3, "dup.csv", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "data" / "mine" / "behaviors.json").read_text())["stats"]
    assert stats["exact_duplicates_dropped"] == 3


def test_stages_that_need_an_earlier_stage_say_which_and_how_to_run_it(tmp_path):
    (tmp_path / "log.csv").write_text(HEADER + GOOD_ROWS)
    assert convert(tmp_path, HEADER + GOOD_ROWS, "log.csv", "--anchor-threshold", "0.2")[0].returncode == 0
    model = Path(__file__).resolve().parents[1] / "models" / "tiny-llama"
    common = ("--dataset", "mine", "--preset", "smoke", "--model", str(model))
    one_line_error(cli("eval", *common, "--run", "b_tune", cwd=tmp_path), "has not run yet", "b_tune")
    one_line_error(cli("b-tune", *common, cwd=tmp_path), "has not run yet", "behaviorlm select")
    one_line_error(cli("select", *common, cwd=tmp_path), "has not run yet", "behaviorlm a-tune")


@pytest.fixture
def predict_root(tmp_path):
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    (data / "behaviors.json").write_text('{"candidates": ["Music", "News", "Taxi"], "history_len": 3}')
    return tmp_path


def predict(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    model = Path(__file__).resolve().parents[1] / "models" / "tiny-llama"
    return cli("predict", "--dataset", "toy", "--run", "base", "--model", str(model), *args, cwd=root, stdin=stdin)


NEXT = ("--day", "Tue", "--hour", "8", "--place", "home")


@pytest.mark.parametrize(
    ("events", "args", "words"),
    [
        (None, ["--events", "missing.csv", *NEXT], ["missing.csv", "no such file"]),
        ("FOLDER", ["--events", "folder", *NEXT], ["folder", "is a folder"]),
        (b"day,hour,place,behavior\nMon,7,h\xe9me,News\n", ["--events", "e.csv", *NEXT], ["e.csv", "UTF-8"]),
        ('{"day": "Mon", "hour": 7, "place": "home", "behavior": "News"}\n[1, 2]\n', ["--events", "e.csv", *NEXT], ["row 2", "JSON object"]),
        ("day,hour,place,behavior\nMon,7,,News\n", ["--events", "e.csv", *NEXT], ["row 1", "field 'place'", "empty value"]),
        ("day,hour,place,behavior\n", ["--events", "e.csv", *NEXT], ["e.csv", "no events"]),
        ("day,hour,place,behavior\nMon,7,home,News\n", ["--events", "e.csv", "--top-k", "0", *NEXT], ["--top-k"]),
        ("day,hour,place,behavior\nMon,7,home,News\n", ["--events", "e.csv", "--top-k", "-2", *NEXT], ["--top-k"]),
        ("day,hour,place,behavior\nMon,7,home,News\n", ["--events", "e.csv", "--day", "Monkey", "--hour", "8", "--place", "home"], ["day", "Monkey"]),
        ("day,hour,place,behavior\nMon,7,home,News,extra\n", ["--events", "e.csv", *NEXT], ["e.csv", "malformed row"]),
        ("day,hour,place,behavior\nMon,7,home,News\n", ["--events", "e.csv", "--dataset", "nope", *NEXT], ["data stage", "nope"]),
        ("day,hour,place,behavior\nMon,7,home,News\n", ["--events", "e.csv", "--adapter", "nowhere", *NEXT], ["--adapter", "no LoRA adapter"]),
        ('day,hour,place,behavior\nMon,7,home,"Mu\nsic"\n', ["--events", "e.csv", *NEXT], ["row 1", "field 'behavior'", "line break"]),
        ("day,hour,place,behavior\nMon,7,home,News\n", ["--events", "e.csv", "--day", "Tue", "--hour", "8", "--place", "ho\nme"], ["--place", "line break"]),
    ],
    ids=["missing", "folder", "not-utf8", "json-not-object", "empty-field", "header-only", "top-k-0", "top-k-negative",
         "bad-day", "extra-field", "unknown-dataset", "missing-adapter", "newline-in-name",
         "newline-in-place-flag"],
)
def test_predict_input_errors_are_one_line(predict_root, events, args, words):
    if events == "FOLDER":
        (predict_root / "folder").mkdir()
    elif events is not None:
        (predict_root / "e.csv").write_bytes(events if isinstance(events, bytes) else events.encode())
    one_line_error(predict(predict_root, *args), *words)


def test_predict_prints_only_the_result_on_stdout_and_warns_about_unknown_behaviors(predict_root):
    (predict_root / "e.csv").write_text("day,hour,place,behavior\nMon,7,home,News\nMon,8,home,Yoga\n")
    result = predict(predict_root, "--events", "e.csv", "--top-k", "2", *NEXT)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and len(result.stdout.split("  ")) == 2
    assert "warning" in result.stderr and "Yoga" in result.stderr


def test_epoch_seconds_are_read_with_time_unit_and_an_offset_column(tmp_path):
    start = 1709539200  # 2024-03-04 08:00 UTC
    rows = "".join(f"u{u},{start + (d * 24 + h) * 3600},home,{behavior(u, d, h)},60\n" for u in range(6) for d in range(3) for h in range(8))
    result, _ = convert(tmp_path, HEADER.strip() + ",offset\n" + rows, "epoch.csv", "--time-unit", "s", "--columns",
                        "user=user,time=time,place=place,behavior=behavior,tz_offset=offset", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr
    assert set(pd.read_parquet(tmp_path / "data" / "mine" / "train_events.parquet")["hour"]) == set(range(9, 17))  # UTC + 1 h


@pytest.mark.parametrize(
    ("command", "flag", "value", "allowed"),
    [("data", "--history_len", "0", "at least 1"), ("data", "--anchor_threshold", "2", "from 0.0 to 1.0"),
     ("a-tune", "--epsilon", "-1", "from 0.0 to 1.0"), ("a-tune", "--num_train_epochs", "-1", "above 0"),
     ("select", "--per_class", "0", "at least 1"), ("select", "--lam", "5", "from 0.0 to 1.0"), ("data", "--seed", "-1", "from 0"),
     ("data", "--seed", "4294967296", "to 4294967295"), ("data", "--grid-deg", "abc", "above 0, or 'none'"),
     ("data", "--time-format", "%Q-%H", "bad directive"), ("baseline", "--epochs", "0", "at least 1"),
     ("benchmark", "--baselines", "lstm", "unknown baseline"), ("b-tune-study", "--baselines", "lstm", "unknown baseline"),
     ("bench-score", "--n", "0", "at least 1"), ("learning-curve", "--sizes", "-5", "at least 1"),
     ("a-tune", "--epsilon", "nan", "not a number"), ("b-tune", "--learning_rate", "inf", "finite number above 0"),
     ("data", "--seed", "abc", "invalid int value"), ("data", "--frobnicate", "1", "unknown flag"),
     ("data", "mine.csv", "--cut-history", "unknown flag or argument")],
)
def test_a_setting_out_of_its_range_is_one_line_before_any_work(tmp_path, command, flag, value, allowed):
    """Checked where the setting is defined, before any model loads (--per_class 0 used to fail after 40 s of scoring)."""
    done = subprocess.run([sys.executable, "-m", "behaviorlm_lf", command, "--preset", "smoke", flag, value], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    one_line_error(done, flag, allowed, *([value] if flag.startswith("-") else []))  # or a stray argument
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "words"),
    [("a: [1,\n", ["not readable YAML", "line 2"]), ("- 1\n- 2\n", ["expected a mapping", "list"]),
     ("nosuch: 1\n", ["unknown setting", "nosuch"]), ("seed: 1.5\n", ["--seed", "invalid int value"]),
     ("seed: [1, 2]\n", ["seed: takes one value, got a list"]), ("preset: bogus\n", ["unknown preset", "bogus"]),
     ("seed: {a: 1}\n", ["seed", "got a mapping"])],
    ids=["malformed", "not-a-mapping", "unknown-key", "wrong-type", "list-for-one", "unknown-preset", "mapping-value"],
)
def test_a_bad_config_file_is_one_line_naming_it(tmp_path, text, words):
    (tmp_path / "run.yaml").write_text(text)
    done = cli("data", "--config", "run.yaml", cwd=tmp_path)
    line = one_line_error(done, *words)
    assert "run.yaml" in line or "unknown preset" in line
    assert [p.name for p in tmp_path.iterdir()] == ["run.yaml"]


@pytest.mark.parametrize(("text", "words"), [("{\"a\": ", ["not readable JSON", "line 1"]), ("[1, 2]", ["expected a JSON object", "list"])],
                         ids=["corrupt", "not-an-object"])
def test_a_broken_registry_is_one_line_and_left_as_it_is(tmp_path, text, words):
    (tmp_path / "dataset_info.json").write_text(text)
    done = cli("data", "--preset", "smoke", cwd=tmp_path)
    assert "dataset_info.json" in one_line_error(done, *words)
    assert (tmp_path / "dataset_info.json").read_text() == text and not (tmp_path / "data" / "default").exists()


def test_an_unknown_chat_template_is_one_line_before_training(tmp_path, tiny_model):
    assert cli("data", "--preset", "smoke", cwd=tmp_path).returncode == 0
    done = cli("a-tune", "--preset", "smoke", "--model", str(tiny_model), "--template", "bogus", cwd=tmp_path)
    assert "not a LlamaFactory chat template" in one_line_error(done, "--template", "bogus")
    assert not (tmp_path / "saves").exists() or not any((tmp_path / "saves").rglob("adapter_model.safetensors"))


@pytest.mark.parametrize("dropped, words", [
    (("model.safetensors",), ["no weights"]),
    (("tokenizer.json", "tokenizer_config.json"), ["no tokenizer"]),
    (("config.json", "model.safetensors"), ["no config.json and no weights"]),
])
def test_a_model_folder_without_weights_or_tokenizer_is_one_line_before_loading(tmp_path, tiny_model, dropped, words):
    import shutil

    folder = shutil.copytree(tiny_model, tmp_path / "half-model")
    for name in dropped:
        (folder / name).unlink()
    assert cli("data", "--preset", "smoke", cwd=tmp_path).returncode == 0
    done = cli("a-tune", "--preset", "smoke", "--model", str(folder), cwd=tmp_path)
    one_line_error(done, "--model", "not a model folder", *words)
    assert not (tmp_path / "saves").exists() or not any((tmp_path / "saves").rglob("adapter_model.safetensors"))


def test_samples_longer_than_the_training_cutoff_are_one_line_and_leave_nothing(tmp_path, tiny_model):
    """LlamaFactory would cut them inside the history; the data stage counts them with the backbone's tokenizer."""
    # 200: above the candidate list's own 104 tokens (a list over the cutoff is refused first), below the samples
    done = cli("data", "--preset", "smoke", "--model", str(tiny_model), "--max-prompt-tokens", "200", cwd=tmp_path)
    line = one_line_error(done, "longer than the training cutoff of 200 tokens", "row", "--history-len", "--cut-history")
    assert "data/default/" in line and ".jsonl row" in line  # the data folder it would have been, not the temporary one
    assert not (tmp_path / "data" / "default").exists() and not list((tmp_path / "data").glob("default.tmp-*"))
    assert cli("data", "--preset", "smoke", "--model", str(tiny_model), cwd=tmp_path).returncode == 0
    lengths = json.loads((tmp_path / "data" / "default" / "manifest.json").read_text())["result"]["lengths"]
    assert lengths["cutoff_len"] == 1024 and 200 < max(lengths["longest_sample_tokens"].values()) <= 1024


def test_a_data_stage_without_a_model_folder_has_its_lengths_checked_by_a_tune(tmp_path, tiny_model):
    """Run before the backbone was converted, the data stage cannot count tokens; A-Tuning counts them before training."""
    done = cli("data", "--preset", "smoke", cwd=tmp_path)  # the preset's model folder is not under this root
    assert done.returncode == 0 and "lengths not checked" in done.stderr, done.stderr
    trained = cli("a-tune", "--preset", "smoke", "--model", str(tiny_model), "--cutoff_len", "100", cwd=tmp_path)
    one_line_error(trained, "without a model folder", "longer than the training cutoff of 100 tokens", ".jsonl row", "behaviorlm data")
    assert not (tmp_path / "saves").exists() or not any((tmp_path / "saves").rglob("adapter_model.safetensors"))


def test_cut_history_shortens_every_history_until_the_samples_fit_and_says_so(tmp_path, tiny_model):
    done = cli("data", "--preset", "smoke", "--model", str(tiny_model), "--max-prompt-tokens", "350", "--cut-history", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "history cut from L=20" in done.stderr
    lengths = json.loads((tmp_path / "data" / "default" / "manifest.json").read_text())["result"]["lengths"]
    assert lengths["history_len_cut_from"] == 20 and 1 <= lengths["history_len"] < 20
    assert max(lengths["longest_sample_tokens"].values()) <= 350
    vocabulary = json.loads((tmp_path / "data" / "default" / "behaviors.json").read_text())
    assert vocabulary["history_len"] == lengths["history_len"]
    samples = pd.read_parquet(tmp_path / "data" / "default" / "test_natural.parquet")
    assert {len(h) for h in samples["hist_behavior"]} == {lengths["history_len"]}  # the baselines need one length


@pytest.mark.parametrize(
    ("rows", "extra", "words"),
    [
        ("".join(f"u{u},{1709539200000 + (d * 24 + h) * 3600000},home,{behavior(u, d, h)}\n" for u in range(6) for d in range(3) for h in range(8)),
         ("--time-unit", "s", "--assume", "utc"), ["row 1", "beyond the year 2262", "--time-unit ms"]),
        ("u1,2024-03-04T08:00:00+25:00,home,News\nu1,2024-03-04T09:00:00+25:00,home,News\n", (), ["row 1", "not a time-zone offset"]),
        ('u1,2024-03-04 08:00:00,ho\0me,News\n', (), ["row 1", "NUL byte"]),
        ("u1,2024-03-04T08:00:00-05:00,home,News,-300\n", ("--columns", "user=user,time=time,place=place,behavior=behavior,tz_offset=off"),
         ["row 1", "carry their own offsets", "tz_offset"]),
        ("u1,2024-03-04T08:00:00Z,home,News,100000\n", ("--columns", "user=user,time=time,place=place,behavior=behavior,tz_offset=off"),
         ["row 1", "field 'off'", "not a time-zone offset"]),
        (GOOD_ROWS, ("--min-count", "100000"), ["--min-count", "keeps 0 of 3 behaviors"]),
        (GOOD_ROWS, ("--columns", "user=,time=time,place=place,behavior=behavior"), ["user= names no column"]),
        (GOOD_ROWS, ("--columns", "user=user,user=time,time=time,place=place,behavior=behavior"), ["names user twice"]),
    ],
    ids=["milliseconds-as-seconds", "offset-25h", "nul-byte", "offsets-and-offset-column", "offset-column-huge",
         "label-cut-keeps-nothing", "empty-column-name", "key-twice"],
)
def test_second_matrix_event_file_cases_are_one_line_and_leave_nothing(tmp_path, rows, extra, words):
    header = HEADER.strip() + (",off\n" if "tz_offset=off" in " ".join(extra) else "\n")
    one_line_error(convert(tmp_path, header + rows, "log.csv", "--anchor-threshold", "0.2", *extra)[0], *words)
    nothing_left(tmp_path, "mine")


def test_a_compact_timestamp_is_a_clock_time_not_an_offset(tmp_path):
    """In 20240304-0800 the "-0800" is 08:00, not a zone offset (it used to be stripped, leaving midnight)."""
    rows = "".join(f"u{u},2024030{4 + d}-{8 + h:02d}00,home,{behavior(u, d, h)}\n" for u in range(6) for d in range(3) for h in range(8))
    result, _ = convert(tmp_path, HEADER + rows, "log.csv", "--anchor-threshold", "0.2")
    assert result.returncode == 0, result.stderr
    assert set(pd.read_parquet(tmp_path / "data" / "mine" / "train_events.parquet")["hour"]) == set(range(8, 16))


def test_a_folder_or_file_in_the_way_of_an_output_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "default").write_text("mine")
    one_line_error(cli("data", "--preset", "smoke", cwd=tmp_path), "data/default", "a file is where")
    assert (tmp_path / "data" / "default").read_text() == "mine" and not (tmp_path / "dataset_info.json").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "data").write_text("mine")
    one_line_error(cli("data", "--preset", "smoke", cwd=other), "data", "a file is where")


@pytest.mark.parametrize("kind, words", [("missing", ["no such model folder", "behaviorlm models"]), ("file", ["a file, not a model folder"]),
                                         ("bad-config", ["config.json is not readable JSON"]), ("bad-weights", ["model.safetensors", "truncated"])])
def test_a_model_that_is_missing_a_file_or_corrupt_is_one_line(tmp_path, tiny_model, kind, words):
    import shutil

    model = tmp_path / "model"
    if kind == "file":
        model.write_text("not a folder")
    elif kind != "missing":
        shutil.copytree(tiny_model, model)
        (model / ("config.json" if kind == "bad-config" else "model.safetensors")).write_bytes(b"{oops" if kind == "bad-config" else b"\xff" * 64)
    one_line_error(cli("eval", "--preset", "smoke", "--run", "base", "--model", str(model), cwd=tmp_path), "--model", *words)


def test_predict_refuses_two_users_as_one_history_and_two_ways_of_giving_the_next_event(predict_root):
    events = predict_root / "e.csv"
    events.write_text("user,day,hour,place,behavior\na,Mon,7,home,News\nb,Mon,8,home,Music\n")
    one_line_error(predict(predict_root, "--events", str(events), *NEXT), "2 users", "--next")
    (predict_root / "next.csv").write_text("user,day,hour,place\na,Tue,8,home\n")
    one_line_error(predict(predict_root, "--events", str(events), "--next", "next.csv", *NEXT), "--next", "--day --hour --place")


def test_a_candidate_list_over_the_cutoff_is_refused_before_any_set_is_rendered(tmp_path, tiny_model):
    """Thousands of behaviors made every prompt over the cutoff; the data stage rendered and counted for minutes first."""
    rows = "".join(f"u{u},2024-03-{4 + i // 24:02d} {i % 24:02d}:00:00,home,{'News' if i % 2 else f'behavior number {(u * 97 + i) % 400}'}\n"
                   for u in range(6) for i in range(200))
    done = convert(tmp_path, HEADER + rows, "log.csv", "--model", str(tiny_model), "--history-len", "5", "--cut-history")[0]
    one_line_error(done, "candidate list of ", " behaviors alone", "over the training cutoff of 1024", "--top-k")
    nothing_left(tmp_path, "mine")
