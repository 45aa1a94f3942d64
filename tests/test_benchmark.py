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
