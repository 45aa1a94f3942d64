"""bench-score: the three passes, the ratios and the agreement it prints, on the smoke data."""

from __future__ import annotations

import re

from behaviorlm_lf.bench_score import main


def test_bench_score_pairs_the_two_scorers_prompt_by_prompt(smoke, capsys, monkeypatch):
    """With this machine's precision forced to float32 both scorers are the same: every prompt must agree exactly."""
    monkeypatch.setenv("BEHAVIORLM_PRECISION", "fp32")
    main(["--dataset", "default", "--preset", "smoke", "--root", str(smoke.root), "--model", smoke.model, "--n", "6", "--batch-size", "2"])
    out = capsys.readouterr().out
    assert int(re.search(r": (\d+) prompts of", out).group(1)) == 12  # six of each set, over two chunks of five batches
    assert re.search(r"speed-up \d+\.\d\dx", out)
    ratios = re.search(r"scorer / prompt pass = (\d+\.\d\d)x \((\d+\.\d\d)x before the near ties\)", out)
    assert ratios and ratios.group(1) == ratios.group(2)  # nothing was scored again
    assert "near ties scored again in float32: 0/12" in out  # float32 has no bf16 near ties to check
    assert re.search(r"argmax identical\s+12/12 ", out)
    assert float(re.search(r"largest \|log p\| diff\s+([\d.]+)", out).group(1)) == 0.0
