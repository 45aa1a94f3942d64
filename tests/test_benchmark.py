"""A smoke benchmark: every row of the paper's tables, the ablations, the F sweep and the figures."""

from __future__ import annotations

import pandas as pd

from behaviorlm_lf.benchmark import ABLATIONS, MAIN_ROWS, benchmark


def test_smoke_benchmark_writes_results_with_every_row_and_the_figures(tmp_path, tiny_model):
    out = benchmark("default", "smoke", seeds=(0,), root=tmp_path)
    text = (out / "results.md").read_text()
    for row in MAIN_ROWS + ABLATIONS:
        assert f"| {row} |" in text, row
    assert "| 1 |" in text and "| 2 |" in text  # the F sweep of the smoke preset
    table = pd.read_csv(out / "results.csv", header=[0, 1], index_col=0)
    assert set(MAIN_ROWS + ABLATIONS) <= set(table.index)
    assert table[("mean", "rec_w")].between(0, 1).all()
    for figure in ("fig1a_frequency.png", "fig1c_groups.png", "fig3b_tail_vs_F.png"):
        assert (out / figure).stat().st_size > 1000
    times = pd.read_csv(out / "stage_times.csv")
    assert {"a_tune", "select", "b_tune", "eval"} <= set(times["stage"])
    # the per-seed data sets go to a registry beside the data, never the repository's dataset_info.json
    assert not (tmp_path / "dataset_info.json").exists()
    assert "default-seed0_anchor_train" in (tmp_path / "data" / "dataset_info.json").read_text()


def test_report_written_mid_run_marks_rows_not_yet_run_and_partial_seeds(tmp_path):
    """An interrupted benchmark still leaves a readable report of what it measured."""
    from behaviorlm_lf.benchmark import aggregate, write_results
    from behaviorlm_lf.metrics import PAPER_METRICS

    measured = {metric: 0.25 for metric in PAPER_METRICS}
    table = aggregate([{"Popularity": measured, "BehaviorLM": measured, "w/o aux": measured}, {"Popularity": measured}])
    times = pd.DataFrame([{"row": "Popularity", "stage": "fit+eval", "seconds": 1.0, "seed": 0}])
    meta = {"name": "x", "preset": "smoke", "seeds": [0, 1], "model": "m", "command": "c"}
    out = tmp_path / "report"
    write_results(out, table, times, [{"freq": 0.9}, {"freq": 0.1}], 0.01, meta)
    lines = (out / "results.md").read_text().splitlines()
    assert "| Popularity | 25.0 ± 0.0 |" in "\n".join(lines)
    assert any(line.startswith("| BehaviorLM (1 of 2 seeds) | 25.0 |") for line in lines)  # no spread from one seed
    assert any(line.startswith("| SASRec | not run yet |") for line in lines)
    assert any(line.startswith("| w/o aux (1 of 2 seeds) | +0.0 |") for line in lines)
    assert any(line.startswith("| w/o DDS | not run yet |") for line in lines)
