"""`data` writes every set, registers it, and LlamaFactory itself loads each registered data set."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import convert_smoke, smoke_run

from behaviorlm_lf.data.convert import SETS, convert
from behaviorlm_lf.data.simulator import simulate_events
from behaviorlm_lf.extras.errors import BadInputError, UserError
from behaviorlm_lf.hparams import DataArguments, for_preset
from behaviorlm_lf.lf.registry import read_registry


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_set_is_written_and_registered(smoke):
    layout = smoke.layout()
    registry = read_registry(layout.registry)
    vocabulary = json.loads(layout.behaviors_file.read_text())
    groups = {b["name"]: b["group"] for b in vocabulary["behaviors"]}
    for name in SETS:
        records = read_jsonl(layout.set_file(name))
        frame = pd.read_parquet(layout.set_file(name, ".parquet"))
        assert len(records) == len(frame) == vocabulary["stats"]["set_sizes"][name] > 0
        assert [r["output"] for r in records] == frame["label"].tolist()
        assert registry[f"default_{name}"]["file_name"] == f"data/default/{name}.jsonl"
    assert {groups[r["output"]] for r in read_jsonl(layout.set_file("anchor_train"))} == {"anchor"}
    assert "tail" in {groups[r["output"]] for r in read_jsonl(layout.set_file("all_train"))}
    reports = {b["name"]: b["report_group"] for b in vocabulary["behaviors"]}
    assert {reports[r["output"]] for r in read_jsonl(layout.set_file("tail_train"))} <= {"medium", "tail"}
    assert ", ".join(vocabulary["candidates"]) in read_jsonl(layout.set_file("valid"))[0]["instruction"]
    assert vocabulary["history_len"] == 20


def test_every_registered_file_exists(smoke):
    layout = smoke.layout()
    for name, entry in read_registry(layout.registry).items():
        assert (layout.dataset_dir / entry["file_name"]).is_file(), name


def test_rerun_reuses_and_changed_config_rebuilds(tmp_path, tiny_model, caplog):
    run = smoke_run(tmp_path, tiny_model)
    out = convert_smoke(run)
    before = (out / "manifest.json").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        convert_smoke(run)
    assert (out / "manifest.json").stat().st_mtime_ns == before and "reusing" in caplog.text
    convert_smoke(run, history_len=10)
    assert json.loads((out / "manifest.json").read_text())["config"]["sample"]["history_len"] == 10


def test_user_file_with_column_mapping(tmp_path, tiny_model):
    events = simulate_events(n_users=30, days=5, seed=1).rename(columns={"user": "uid", "behavior": "app"})
    events.to_csv(tmp_path / "mine.csv", index=False)
    run = smoke_run(tmp_path, tiny_model, dataset="mine")
    out = convert(run, for_preset(DataArguments, "smoke", source=str(tmp_path / "mine.csv"), columns="user=uid,behavior=app"))
    assert out == tmp_path / "data" / "mine" and (out / "test_natural.jsonl").stat().st_size > 0
    assert "mine_pool" in read_registry(run.layout().registry)


def test_failed_conversion_leaves_no_output_and_no_registry_entry(tmp_path, tiny_model):
    (tmp_path / "bad.csv").write_text("user,time,place,behavior\na,not a time,home,Music\n")
    run = smoke_run(tmp_path, tiny_model, dataset="bad")
    with pytest.raises(BadInputError, match="row 1, field 'time'"):
        convert(run, for_preset(DataArguments, "smoke", source=str(tmp_path / "bad.csv")))
    assert not (tmp_path / "data" / "bad").exists()
    assert not read_registry(run.layout().registry)


def test_llamafactory_loads_each_registered_set_with_the_default_tokenizer(smoke, tmp_path):
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    layout = smoke.layout()
    for name in SETS:
        model_args, data_args, training_args, _, _ = get_train_args(
            {
                "model_name_or_path": smoke.model, "stage": "sft", "do_train": True, "finetuning_type": "lora",
                "dataset": f"default_{name}", "dataset_dir": str(layout.dataset_dir), "template": "smollm2",
                "cutoff_len": 2048, "output_dir": str(tmp_path / name), "report_to": "none",
            }
        )
        tokenizer_module = load_tokenizer(model_args)
        tokenizer = tokenizer_module["tokenizer"]
        template = get_template_and_fix_tokenizer(tokenizer, data_args)
        dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)["train_dataset"]
        records = read_jsonl(layout.set_file(name))
        assert len(dataset) == len(records)
        answer = [t for t in dataset[0]["labels"] if t != -100]
        assert tokenizer.decode(answer).strip() == records[0]["output"] + "<|im_end|>"


def test_named_real_source_needs_shared_data(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setenv("BEHAVIORLM_SHARED_DATA", str(tmp_path))
    with pytest.raises(UserError, match="foursquare"):
        convert(smoke_run(tmp_path, tiny_model, dataset="foursquare-nyc"), for_preset(DataArguments, "smoke"))
