"""The stage cache reuses an unchanged stage, reruns a changed one, and never leaves half an output."""

from __future__ import annotations

import json

import pytest

from behaviorlm_lf.extras.cache import code_closure, run_stage
from behaviorlm_lf.extras.errors import UserError
from behaviorlm_lf.extras.fileio import atomic_output


def make_build(calls):
    def build(tmp):
        calls.append(tmp)
        (tmp / "out.txt").write_text("done")
        return {"n": len(calls)}

    return build


def test_unchanged_stage_is_reused_and_changed_input_or_config_reruns(tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("a")
    calls = []
    out = tmp_path / "stage"
    run_stage("demo", out, {"input": source}, {"x": 1}, make_build(calls), code="extras.fileio")
    run_stage("demo", out, {"input": source}, {"x": 1}, make_build(calls), code="extras.fileio")
    assert len(calls) == 1
    run_stage("demo", out, {"input": source}, {"x": 2}, make_build(calls), code="extras.fileio")
    assert len(calls) == 2
    source.write_text("b")
    manifest = run_stage("demo", out, {"input": source}, {"x": 2}, make_build(calls), code="extras.fileio")
    assert len(calls) == 3 and manifest["result"] == {"n": 3}
    recorded = json.loads((out / "manifest.json").read_text())
    assert recorded["inputs"]["input"]["path"] == str(source) and "seconds" in recorded and "versions" in recorded


def test_crash_leaves_previous_output_and_no_temporary(tmp_path):
    out = tmp_path / "stage"
    run_stage("demo", out, {}, {"x": 1}, make_build([]), code="extras.fileio")

    def crash(tmp):
        (tmp / "partial.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_stage("demo", out, {}, {"x": 2}, crash, code="extras.fileio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]
    assert json.loads((out / "manifest.json").read_text())["config"] == {"x": 1}
    assert not (out / "partial.txt").exists()


def test_a_stage_code_is_what_it_imports_followed_through_imports():
    a_tune = code_closure("behaviorlm_lf.train.a_tune")
    assert {"train.a_tune", "data.aux_corpus", "lf.run", "hparams", "hparams.train_args", "extras.layout", "lf.registry",
            "extras.fileio"} <= set(a_tune)  # hparams/__init__.py's own imports are followed too
    assert not {"studies.benchmark", "eval.baselines", "model.scorer"} & set(a_tune)
    assert "model.scorer" in code_closure("train.select")  # imported inside a function: still its code


def test_a_code_change_reruns_the_stage(tmp_path, monkeypatch):
    from behaviorlm_lf.extras import cache

    calls = []
    out = tmp_path / "stage"
    run_stage("demo", out, {}, {}, make_build(calls), code="extras.fileio")
    real = cache.sha256_path
    monkeypatch.setattr(cache, "sha256_path", lambda p: "edited" if str(p).endswith("fileio.py") else real(p))
    run_stage("demo", out, {}, {}, make_build(calls), code="extras.fileio")
    assert len(calls) == 2


def test_a_missing_input_is_an_error_not_an_empty_hash(tmp_path):
    with pytest.raises(UserError, match="missing input model"):
        run_stage("demo", tmp_path / "stage", {"model": tmp_path / "nowhere"}, {}, make_build([]), code="extras.fileio")
    assert not (tmp_path / "stage").exists()


def test_temporaries_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    dead = tmp_path / "stage.tmp-999999999"  # no such process
    dead.mkdir()
    (dead / "checkpoint-5").mkdir()
    alive = tmp_path / "stage.tmp-1"  # pid 1 runs
    alive.mkdir()
    with atomic_output(tmp_path / "stage") as tmp:
        tmp.mkdir()
    assert not dead.exists() and alive.exists()
