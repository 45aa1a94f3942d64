"""A smoke benchmark: every row of the paper's tables, the ablations, Fig. 5, the sweeps, the claims and the figures."""

from __future__ import annotations

import pandas as pd
import pytest

from behaviorlm_lf.hparams import BenchmarkArguments, DataArguments, for_preset
from behaviorlm_lf.studies.benchmark import ABLATIONS, FIG5, MAIN_ROWS, benchmark


@pytest.mark.slow
def test_smoke_benchmark_writes_every_table_with_intervals_claims_and_figures(smoke):
    # sweeps of points that equal another row (F = the preset's 2, epsilon 0 and 0.05) reuse its report; 2% re-converts
    args = BenchmarkArguments(seeds=[0], rows="all", f_values=[2], epsilons=[0.0, 0.05], thresholds=[0.01, 0.02])
    out = benchmark(smoke, for_preset(DataArguments, "smoke"), args)
    text = (out / "results.md").read_text()
    for row in MAIN_ROWS + ABLATIONS + list(FIG5.values()) + ["F=2", "epsilon=0", "epsilon=0.05", "anchor threshold=2.0%"]:
        assert f"| {row} |" in text, row
    assert "not run yet" not in text
    # claims come first, each with a verdict from paired intervals
    claims = text.split("## The paper's claims, checked")[1].split("## Main results")[0]
    assert claims.count("- **") == 3 and all(v in ("holds", "does not hold", "inside the intervals") for v in
                                             [line.split("**")[1] for line in claims.splitlines() if line.startswith("- **")])
    table = pd.read_csv(out / "results.csv")
    assert set(MAIN_ROWS + ABLATIONS) <= set(table["name"])
    assert (table["rec_w_lo"] <= table["rec_w"]).all() and (table["rec_w"] <= table["rec_w_hi"]).all()
    for figure in ("fig1a_frequency.png", "fig1c_groups.png"):
        assert (out / figure).stat().st_size > 1000
    times = pd.read_csv(out / "stage_times.csv")
    assert {"first stage", "select", "b_tune", "eval", "data"} <= set(times["stage"])
    assert (times["peak_rss_gib"] > 0).all()
    # the full fine-tuning row trains without the auxiliary corpus; w/o A-Tuning starts B-Tuning from it
    layout = smoke.layout()
    full = layout.run_dir / "Full_fine-tuning"
    assert (full / "sft_all_train" / "adapter_model.safetensors").is_file() and (full / "sft_all_train_b_tune").is_dir()
    assert not list(layout.data_dir.glob("aux_all_train_*"))
    assert (layout.run_dir / "sft_tail_train").is_dir()  # BehaviorLM's rows train in the run `make demo` trains
    # a sweep point that resolves to another row's settings is that row's model: F=2 and epsilon=0.05 are BehaviorLM
    assert table.set_index("name").loc["F=2", "overall"] == table.set_index("name").loc["BehaviorLM", "overall"]
    assert not (layout.run_dir / "epsilon_0.05").exists()


def test_report_written_mid_run_marks_rows_not_yet_run(tmp_path):
    """An interrupted benchmark still leaves a readable report of what it measured."""
    from behaviorlm_lf.studies.benchmark import write_results

    times = pd.DataFrame([{"row": "Popularity", "stage": "fit+eval", "seconds": 1.0, "seed": 0, "peak_rss_gib": 1.0}])
    meta = {"dataset": "x", "preset": "smoke", "seeds": [0], "model": "m", "command": "c", "machine": "cpu",
            "natural_n": 1, "balanced_n": 1}
    vocabulary = {"behaviors": [{"freq": 0.9}, {"freq": 0.1}], "anchor_threshold": 0.01}
    write_results(tmp_path / "report", {}, times, vocabulary, meta, BenchmarkArguments(rows="all"))
    lines = (tmp_path / "report" / "results.md").read_text().splitlines()
    assert any(line.startswith("| SASRec | not run yet |") for line in lines)
    assert any(line.startswith("| w/o DDS | not run yet |") for line in lines)
    assert any(line.startswith("- **not run yet**: BehaviorLM Tail above full fine-tuning") for line in lines)


def test_only_runs_named_main_rows_and_writes_beside_the_whole_report(tmp_path):
    """``--only`` splits a benchmark into parts (gpu-bench runs two side by side); a typo is one clear line."""
    from behaviorlm_lf.extras.errors import UserError
    from behaviorlm_lf.hparams import RunArguments
    from behaviorlm_lf.studies.benchmark import check_only, main_rows, results_dir

    part = BenchmarkArguments(only=["Full fine-tuning", "BehaviorLM"])
    check_only(part)
    assert main_rows(part) == ["Full fine-tuning", "BehaviorLM"]
    run = RunArguments(root=tmp_path, dataset="x", preset="smoke")
    assert results_dir(run, part) == tmp_path / "reports" / "benchmark" / "x" / "smoke.only-Full_fine-tuning_BehaviorLM"
    assert results_dir(run, BenchmarkArguments()) == tmp_path / "reports" / "benchmark" / "x" / "smoke"
    with pytest.raises(UserError, match=r"unknown row 'Behaviorlm'; the main rows are \['Popularity'"):
        check_only(BenchmarkArguments(only=["Behaviorlm"]))
    with pytest.raises(UserError, match="--rows main"):
        check_only(BenchmarkArguments(only=["BehaviorLM"], rows="all"))


@pytest.mark.slow
def test_smoke_learning_curve_trains_each_point_in_its_own_sub_run_and_writes_under_the_root(tmp_path, tiny_model):
    from conftest import smoke_run

    from behaviorlm_lf.hparams import CurveArguments
    from behaviorlm_lf.studies.learning_curve import learning_curve, preset_learning_rate

    run = smoke_run(tmp_path, tiny_model)
    report = learning_curve(run, for_preset(DataArguments, "smoke"), CurveArguments(sizes=[4, 8]), command="learning-curve")
    assert report == tmp_path / "reports" / "learning_curve" / "learning_curve.md"
    frame = pd.read_csv(report.with_suffix(".csv"))
    assert sorted(zip(frame["method"], frame["samples"])) == [("A-Tuning", 4), ("A-Tuning", 8), ("Full fine-tuning", 4), ("Full fine-tuning", 8)]
    assert (frame["overall_lo"] <= frame["overall"]).all() and (frame["overall"] <= frame["overall_hi"]).all()
    points = sorted(p.parent.parent.name for p in run.layout().run_dir.glob("curve_*/*/adapter_model.safetensors"))
    lr = f"{preset_learning_rate('smoke'):g}"
    assert points == [f"curve_{s}_n{n}_lr{lr}" for s in ("all_train", "anchor_train") for n in (4, 8)], points
