"""`convert` writes every set, registers it, and LlamaFactory itself loads each registered data set."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from behaviorlm_lf import convert as convert_module
from behaviorlm_lf.convert import SETS, convert
from behaviorlm_lf.fileio import BadInputError
from behaviorlm_lf.simulator import simulate_events


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("convert")
    out = convert("default", preset="smoke", data_root=root / "data", dataset_info=root / "dataset_info.json")
    return root, out


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_set_is_written_and_registered(converted):
    root, out = converted
    registry = json.loads((root / "dataset_info.json").read_text())
    vocabulary = json.loads((out / "behaviors.json").read_text())
    groups = {b["name"]: b["group"] for b in vocabulary["behaviors"]}
    for name in SETS:
        records = read_jsonl(out / f"{name}.jsonl")
        frame = pd.read_parquet(out / f"{name}.parquet")
        assert len(records) == len(frame) == vocabulary["stats"]["set_sizes"][name] > 0
        assert [r["output"] for r in records] == frame["label"].tolist()
        assert registry[f"default_{name}"]["file_name"] == f"data/default/{name}.jsonl"
    assert {groups[r["output"]] for r in read_jsonl(out / "anchor_train.jsonl")} == {"anchor"}
    assert "tail" in {groups[r["output"]] for r in read_jsonl(out / "all_train.jsonl")}
    prompt = read_jsonl(out / "valid.jsonl")[0]["instruction"]
    assert ", ".join(vocabulary["candidates"]) in prompt


def test_rerun_reuses_and_changed_config_rebuilds(converted, caplog):
    root, out = converted
    kwargs = dict(preset="smoke", data_root=root / "data", dataset_info=root / "dataset_info.json")
    before = (out / "manifest.json").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        convert("default", **kwargs)
    assert (out / "manifest.json").stat().st_mtime_ns == before and "reusing" in caplog.text
    convert("default", history_len=10, **kwargs)
    assert json.loads((out / "manifest.json").read_text())["config"]["sample"]["history_len"] == 10
    convert("default", **kwargs)  # back to the fixture's data for the other tests


def test_user_file_with_column_mapping(tmp_path):
    events = simulate_events(n_users=30, days=5, seed=1).rename(columns={"user": "uid", "behavior": "app"})
    events.to_csv(tmp_path / "mine.csv", index=False)
    out = convert(
        str(tmp_path / "mine.csv"), preset="smoke", columns={"user": "uid", "behavior": "app"},
        data_root=tmp_path / "data", dataset_info=tmp_path / "dataset_info.json",
    )
    assert out.name == "mine" and (out / "test_natural.jsonl").stat().st_size > 0


def test_failed_conversion_leaves_no_output(tmp_path):
    (tmp_path / "bad.csv").write_text("user,time,place,behavior\na,not a time,home,Music\n")
    with pytest.raises(BadInputError, match="row 1, field 'time'"):
        convert(str(tmp_path / "bad.csv"), preset="smoke", data_root=tmp_path / "data", dataset_info=tmp_path / "di.json")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
    assert not (tmp_path / "di.json").exists()


def test_llamafactory_loads_each_registered_set_with_the_default_tokenizer(converted, tiny_model, tmp_path):
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    root, out = converted
    for name in SETS:
        model_args, data_args, training_args, _, _ = get_train_args(
            {
                "model_name_or_path": str(tiny_model), "stage": "sft", "do_train": True, "finetuning_type": "lora",
                "dataset": f"default_{name}", "dataset_dir": str(root), "template": "smollm2",
                "cutoff_len": 2048, "output_dir": str(tmp_path / name), "report_to": "none",
            }
        )
        tokenizer_module = load_tokenizer(model_args)
        tokenizer = tokenizer_module["tokenizer"]
        template = get_template_and_fix_tokenizer(tokenizer, data_args)
        dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)["train_dataset"]
        records = read_jsonl(out / f"{name}.jsonl")
        assert len(dataset) == len(records)
        answer = [t for t in dataset[0]["labels"] if t != -100]
        assert tokenizer.decode(answer).strip() == records[0]["output"] + "<|im_end|>"


def test_named_real_source_needs_shared_data(monkeypatch, tmp_path):
    monkeypatch.setattr(convert_module, "SHARED_DATA", tmp_path)
    with pytest.raises(SystemExit, match="foursquare"):
        convert("foursquare-nyc", preset="smoke", data_root=tmp_path / "data", dataset_info=tmp_path / "di.json")
