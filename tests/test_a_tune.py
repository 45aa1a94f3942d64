"""A-Tuning through the real `llamafactory-cli train` on the tiny model (PRESET=smoke)."""

from __future__ import annotations

import json

import pytest

from behaviorlm_lf.a_tune import a_tune, prepare_aux
from behaviorlm_lf.aux_corpus import CorpusTooSmallError
from behaviorlm_lf.convert import convert
from behaviorlm_lf.fileio import read_jsonl


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("atune")
    convert("default", preset="smoke", data_root=root / "data", dataset_info=root / "dataset_info.json")
    return root


def test_a_tune_trains_an_adapter_on_anchor_samples_plus_aux(smoke_data, tiny_model, caplog):
    root = smoke_data
    kwargs = dict(preset="smoke", model=str(tiny_model), data_root=root / "data", dataset_info=root / "dataset_info.json")
    out = a_tune("default", run_dir=root / "run", **kwargs)
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert not list(out.glob("checkpoint-*"))

    groups = {b["name"]: b["group"] for b in json.loads((root / "data/default/behaviors.json").read_text())["behaviors"]}
    anchor = read_jsonl(root / "data/default/anchor_train.jsonl")
    aux = read_jsonl(root / "data/default/aux_anchor_train_eps0.05.jsonl")
    assert {groups[r["output"]] for r in anchor} == {"anchor"}
    assert len(aux) == round(0.05 * len(anchor)) > 0
    assert not {r["output"] for r in aux} & set(groups)
    log = (out / "llamafactory.log").read_text()
    assert f"Num examples = {len(anchor) + len(aux):,}" in log

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["result"]["train_loss"] and manifest["result"]["eval_loss"]
    assert (out / "training_loss.png").is_file()

    with caplog.at_level("INFO"):
        a_tune("default", run_dir=root / "run", **kwargs)
    assert "reusing" in caplog.text


def test_epsilon_zero_gives_no_aux_and_long_examples_are_filtered(smoke_data, tiny_model, tmp_path):
    root = smoke_data
    args = dict(data_dir=root / "data/default", dataset="default", model=str(tiny_model), seed=0, dataset_info=root / "dataset_info.json")
    name, stats = prepare_aux(epsilon=0.0, aux_path=None, **args)
    assert name is None and stats["selected"] == 0
    corpus = tmp_path / "corpus.json"
    corpus.write_text(
        json.dumps(
            [{"instruction": "Say hi.", "input": "", "output": "Hi."}] * 5
            + [{"instruction": "Tell a long story.", "input": "", "output": "word " * 5000}]
        )
    )
    name, stats = prepare_aux(epsilon=1.0, aux_path=corpus, allow_smaller=True, **args)
    assert stats["filtered_too_long"] == 1 and stats["available"] == 5 and stats["selected"] == 5
    assert all(len(r["output"]) < 100 for r in read_jsonl(root / "data/default/aux_anchor_train_eps1.jsonl"))
    with pytest.raises(CorpusTooSmallError, match="corpus.json: 5 of its 6 conversations"):
        prepare_aux(epsilon=1.0, aux_path=corpus, **args)
