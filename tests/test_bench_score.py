"""bench-score: the five passes, the ratios and the agreement it prints, on the smoke data."""

from __future__ import annotations

import re

from behaviorlm_lf.cli import main


def test_bench_score_pairs_the_scorers_prompt_by_prompt(smoke, capsys, monkeypatch):
    """With this machine's precision forced to float32 the scorers differ only in running shared prefixes once:
    every prompt must agree, to float32's rounding."""
    monkeypatch.setenv("BEHAVIORLM_PRECISION", "fp32")
    main(["bench-score", "--dataset", "default", "--preset", "smoke", "--root", str(smoke.root), "--model", smoke.model, "--n", "6", "--batch-size", "2"])
    out = capsys.readouterr().out
    assert int(re.search(r": (\d+) prompts of", out).group(1)) == 12  # six of each set, over two chunks of five batches
    assert len(re.findall(r"speed-up \d+\.\d\dx", out)) == 2
    for floor in ("prompt pass, whole", "prompt pass, shared prefixes once"):
        ratios = re.search(re.escape(floor) + r" +[\d.]+ prompts/s +scorer \(ours\) / it = (\d+\.\d\d)x \((\d+\.\d\d)x before", out)
        assert ratios and ratios.group(1) == ratios.group(2)  # nothing was scored again
    assert out.count("near ties scored again in float32: 0/12") == 2  # float32 has no bf16 near ties to check
    assert re.search(r"argmax identical, ours and float32: 12/12 ", out)
    assert float(re.search(r"largest \|log p\| diff\s+([\d.]+)", out).group(1)) < 1e-4
