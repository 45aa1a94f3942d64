"""The stage cache reuses an unchanged stage, reruns a changed one, and never leaves half an output."""

from __future__ import annotations

import json

import pytest

from behaviorlm_lf.cache import run_stage


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
    run_stage("demo", out, {"input": source}, {"x": 1}, make_build(calls))
    run_stage("demo", out, {"input": source}, {"x": 1}, make_build(calls))
    assert len(calls) == 1
    run_stage("demo", out, {"input": source}, {"x": 2}, make_build(calls))
    assert len(calls) == 2
    source.write_text("b")
    manifest = run_stage("demo", out, {"input": source}, {"x": 2}, make_build(calls))
    assert len(calls) == 3 and manifest["result"] == {"n": 3}
    recorded = json.loads((out / "manifest.json").read_text())
    assert recorded["inputs"]["input"]["path"] == str(source) and "seconds" in recorded and "versions" in recorded


def test_crash_leaves_previous_output_and_no_temporary(tmp_path):
    out = tmp_path / "stage"
    run_stage("demo", out, {}, {"x": 1}, make_build([]))

    def crash(tmp):
        (tmp / "partial.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_stage("demo", out, {}, {"x": 2}, crash)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]
    assert json.loads((out / "manifest.json").read_text())["config"] == {"x": 1}
    assert not (out / "partial.txt").exists()
