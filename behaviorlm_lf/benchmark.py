"""The paper's evidence on one data set: baselines, BehaviorLM and its ablations over seeds, as tables and figures.

    python -m behaviorlm_lf.benchmark --source default --preset smoke --seeds 0 1 2
    python -m behaviorlm_lf.benchmark --source foursquare-nyc --preset cpu

Each seed converts the data with that seed (another user split), runs every row
below with the same splits and metrics, and evaluates it with the exact
candidate scorer. ``results.md`` (in ``reports/benchmark/<name>/<preset>/``)
holds the main table (like the paper's Tables 3 and 8), the ablation table (like
Table 4, as drops from BehaviorLM), the wall time of each stage and three figures:
the behavior frequency distribution with the anchor threshold (Fig. 1a), accuracy
by group per method (Fig. 1c), and Tail accuracy against F (Fig. 3b).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .a_tune import a_tune
from .b_tune import b_tune, merge_adapter
from .baselines import run_baseline
from .convert import KNOWN_SOURCES, REPO_ROOT, convert
from .eval import evaluate_model
from .fileio import atomic_output
from .metrics import PAPER_METRICS
from .presets import get_preset
from .select import select, variant_suffix

logger = logging.getLogger(__name__)

BASELINES = {"Popularity": "popularity", "Context popularity": "context", "Markov": "markov", "SASRec": "sasrec"}
MAIN_ROWS = [*BASELINES, "LLM-NT", "Full fine-tuning", "BehaviorLM"]
ABLATIONS = ["w/o aux", "w/o DDS", "w/o KMeans", "w/o DPO", "w/o A-Tuning", "Tail-first curriculum"]
F_SWEEP = {"smoke": (1, 2), "cpu": (1, 2, 3), "cpu-benchmark": (1, 2), "gpu": (5, 10, 20)}
# The benchmark trains about 14 models per seed; on a CPU it runs them at a smaller size than a single run.
BENCHMARK_PRESET = {"cpu": "cpu-benchmark"}


def _slug(row: str) -> str:
    """A row's name as a folder name: "w/o DDS" -> "wo_DDS"."""
    return row.replace("/", "").replace(" ", "_")


class Runner:
    """Runs the rows of one seed, each in its own run folder, and records stage wall times."""

    def __init__(self, name: str, preset: str, root: Path, dataset_info: Path, seed: int):
        self.name, self.preset, self.root, self.seed = name, preset, root, seed
        self.paths = {"data_root": root / "data", "dataset_info": dataset_info}
        self.sizes = get_preset(preset)
        self.times: list[dict] = []

    def timed(self, row: str, stage: str, fn, *args, **kwargs):
        started = time.time()
        result = fn(*args, **kwargs)
        self.times.append({"row": row, "stage": stage, "seconds": time.time() - started, "seed": self.seed})
        return result

    def run_dir(self, row: str) -> Path:
        return self.root / "runs" / self.name / self.preset / _slug(row)

    def evaluate(self, row: str, model: str, adapter: Path | None) -> dict:
        out = self.timed(
            row, "eval", evaluate_model, self.name, self.preset, run=None, model=model, adapter=adapter,
            name=_slug(row), reports=self.root / "reports", **self.paths,
        )
        return json.loads((out / "metrics.json").read_text())

    def behaviorlm(self, row: str, epsilon: float = 0.05, strategy: str = "dds", variant: str = "dpo", per_class=None):
        """A-Tuning, selection and B-Tuning; returns the metrics of the B-tuned model.

        Rows that differ only after A-Tuning share the BehaviorLM run folder, so
        its A-Tuning adapter is trained once (the stage cache reuses it).
        """
        run_dir = self.run_dir("BehaviorLM" if epsilon == 0.05 else row)
        common = dict(preset=self.preset, run_dir=run_dir, seed=self.seed, **self.paths)
        self.timed(row, "a_tune", a_tune, self.name, epsilon=epsilon, **common)
        self.timed(row, "select", select, self.name, strategy=strategy, per_class=per_class, **common)
        suffix = variant_suffix(strategy, per_class or self.sizes.select_per_class, self.sizes.select_per_class)
        adapter = self.timed(row, "b_tune", b_tune, self.name, variant=variant, pairs_suffix=suffix, **common)
        return self.evaluate(row, str(run_dir / "a_merged"), adapter)

    def rows(self):
        """Yields (row, metrics) in the order of the report: the main table first, then ablations, then the F sweep."""
        for row, method in BASELINES.items():
            out = self.timed(
                row, "fit+eval", run_baseline, self.name, method, seed=self.seed,
                reports=self.root / "reports", data_root=self.paths["data_root"],
            )
            yield row, json.loads((out / "metrics.json").read_text())
        yield "LLM-NT", self.evaluate("LLM-NT", self.sizes.model, None)
        full = self.run_dir("Full fine-tuning")
        self.timed(
            "Full fine-tuning", "sft", a_tune, self.name, preset=self.preset, run_dir=full, train_set="all_train",
            seed=self.seed, **self.paths,
        )
        yield "Full fine-tuning", self.evaluate("Full fine-tuning", self.sizes.model, full / "a_tune")
        behaviorlm = self.behaviorlm("BehaviorLM")
        yield "BehaviorLM", behaviorlm
        yield "w/o aux", self.behaviorlm("w/o aux", epsilon=0.0)
        yield "w/o DDS", self.behaviorlm("w/o DDS", strategy="random")
        yield "w/o KMeans", self.behaviorlm("w/o KMeans", strategy="topk")
        yield "w/o DPO", self.behaviorlm("w/o DPO", variant="sft")
        yield "w/o A-Tuning", self.without_a_tuning()
        yield "Tail-first curriculum", self.tail_first()  # reuses the w/o A-Tuning adapter
        for f in F_SWEEP[self.preset]:
            # the preset's own F is the BehaviorLM row itself
            yield f"BehaviorLM F={f}", behaviorlm if f == self.sizes.select_per_class else self.behaviorlm(f"BehaviorLM F={f}", per_class=f)

    def without_a_tuning(self) -> dict:
        row, run_dir = "w/o A-Tuning", self.run_dir("w/o A-Tuning")
        common = dict(preset=self.preset, run_dir=run_dir, from_base=True, seed=self.seed, **self.paths)
        self.timed(row, "select", select, self.name, **common)
        adapter = self.timed(row, "b_tune", b_tune, self.name, **common)
        return self.evaluate(row, self.sizes.model, adapter)

    def tail_first(self) -> dict:
        """Fig. 5's reversed curriculum: the balanced (B) stage on the backbone first, then anchor SFT on top.

        Its B stage is exactly the "w/o A-Tuning" model (same pool, seed and
        selection from the backbone), so it merges that adapter instead of training it again.
        """
        row, run_dir = "Tail-first curriculum", self.run_dir("Tail-first curriculum")
        b_adapter = self.run_dir("w/o A-Tuning") / "b_tune"
        merged = self.timed(row, "merge", merge_adapter, self.sizes.model, b_adapter, self.sizes.template, run_dir / "b_merged")
        self.timed(row, "a_tune", a_tune, self.name, model=str(merged), preset=self.preset, run_dir=run_dir, seed=self.seed, **self.paths)
        return self.evaluate(row, str(merged), run_dir / "a_tune")


def aggregate(per_seed: list[dict[str, dict]]) -> pd.DataFrame:
    """Mean and standard deviation of the six paper metrics per row."""
    records = [{"row": row, "seed": seed, **{m: r[m] for m in PAPER_METRICS}} for seed, rows in enumerate(per_seed) for row, r in rows.items()]
    frame = pd.DataFrame(records).set_index(["row", "seed"]).astype(float)
    grouped = frame.groupby("row", sort=False)
    table = pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=0)}, axis=1)
    table[("seeds", "n")] = grouped.size()
    return table


def _cell(table: pd.DataFrame, row: str, metric: str) -> str:
    if row not in table.index:
        return "not run yet"
    mean, std = table.loc[row, ("mean", metric)], table.loc[row, ("std", metric)]
    if np.isnan(mean):
        return "n/a"
    # one seed has no spread to report
    return f"{100 * mean:.1f}" if table.loc[row, ("seeds", "n")] == 1 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _label(table: pd.DataFrame, row: str, meta: dict) -> str:
    """The row name, with how many seeds it has while the benchmark is still running."""
    n, total = int(table.loc[row, ("seeds", "n")]) if row in table.index else 0, len(meta["seeds"])
    return row if n in (0, total) else f"{row} ({n} of {total} seeds)"


def write_results(out: Path, table: pd.DataFrame, times: pd.DataFrame, behaviors: list[dict], threshold: float, meta: dict) -> None:
    """results.md and the three figures, atomically as one folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["Prec_w", "Rec_w", "Overall", "Head", "Medium", "Tail"]
    header = "| Method | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    intro = (
        f"Seeds: {meta['seeds']}; model: {meta['model']}; command: `{meta['command']}`. Values are % (mean ± std "
        "over seeds, the mean alone for one seed); Prec_w and Rec_w on the natural test set, "
        "Overall/Head/Medium/Tail (mean per-class accuracy) on the balanced test set.\n"
    )
    lines = [f"# Benchmark: {meta['name']} ({meta['preset']} preset)\n\n", intro, "\n## Main results (Tables 3 and 8)\n\n", header]
    lines += [f"| {_label(table, row, meta)} | " + " | ".join(_cell(table, row, m) for m in PAPER_METRICS) + " |\n" for row in MAIN_ROWS]
    lines += ["\n## Ablations (Table 4): change from BehaviorLM, in points\n\n", header]
    for row in ABLATIONS:
        if row not in table.index or "BehaviorLM" not in table.index:
            lines.append(f"| {row} | " + " | ".join("not run yet" for _ in PAPER_METRICS) + " |\n")
            continue
        drops = [table.loc[row, ("mean", m)] - table.loc["BehaviorLM", ("mean", m)] for m in PAPER_METRICS]
        lines.append(f"| {_label(table, row, meta)} | " + " | ".join("n/a" if np.isnan(d) else f"{100 * d:+.1f}" for d in drops) + " |\n")
    sweep = [r for r in table.index if r.startswith("BehaviorLM F=")]
    lines += ["\n## Tail accuracy against F (Fig. 3b)\n\n", "| F | Tail | Overall |\n|---|---|---|\n"]
    lines += [f"| {r.split('=')[1]} | {_cell(table, r, 'tail')} | {_cell(table, r, 'overall')} |\n" for r in sweep]
    stage_times = times.groupby(["row", "stage"], sort=False)["seconds"].mean().reset_index()
    lines += ["\n## Wall time per stage (seconds, mean over seeds)\n\n", "| Row | Stage | Seconds |\n|---|---|---|\n"]
    lines += [f"| {r.row} | {r.stage} | {r.seconds:.0f} |\n" for r in stage_times.itertuples()]
    lines.append(f"\nTotal: {times['seconds'].sum():.0f} s.\n\n![](fig1a_frequency.png)\n![](fig1c_groups.png)\n![](fig3b_tail_vs_F.png)\n")
    with atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "results.md").write_text("".join(lines), encoding="utf-8")
        table.to_csv(tmp / "results.csv")
        times.to_csv(tmp / "stage_times.csv", index=False)
        freq = sorted((b["freq"] for b in behaviors), reverse=True)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(range(len(freq)), freq, color=["tab:blue" if f > threshold else "tab:orange" for f in freq])
        ax.axhline(threshold, color="k", linestyle="--", label=f"anchor threshold {threshold:.1%}")
        ax.set(yscale="log", xlabel="behavior (by training frequency)", ylabel="frequency", title="Behavior frequency (Fig. 1a)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(tmp / "fig1a_frequency.png", dpi=120)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        groups = ["head", "medium", "tail"]
        measured = [row for row in MAIN_ROWS if row in table.index]
        width = 0.8 / len(MAIN_ROWS)
        for i, row in enumerate(measured):
            ax.bar(np.arange(3) + i * width, [table.loc[row, ("mean", g)] for g in groups], width, label=row)
        ax.set_xticks(np.arange(3) + 0.4 - width / 2, ["Head", "Medium", "Tail"])
        ax.set(ylabel="balanced accuracy", title="Accuracy by behavior group (Fig. 1c)")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(tmp / "fig1c_groups.png", dpi=120)
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        f_values = [int(r.split("=")[1]) for r in sweep]
        ax.errorbar(f_values, [table.loc[r, ("mean", "tail")] for r in sweep], yerr=[table.loc[r, ("std", "tail")] for r in sweep], marker="o")
        ax.set(xlabel="F (samples per class)", ylabel="Tail accuracy", title="Tail accuracy vs F (Fig. 3b)")
        fig.tight_layout()
        fig.savefig(tmp / "fig3b_tail_vs_F.png", dpi=120)
        plt.close("all")


def benchmark(source: str = "default", preset: str = "smoke", seeds=(0, 1, 2), root: Path = REPO_ROOT, command: str = "") -> Path:
    """Runs every row for every seed; rewrites the report after each row, so an interrupted run still reports what it measured."""
    preset = BENCHMARK_PRESET.get(preset, preset)
    name = source if source == "default" or source in KNOWN_SOURCES else Path(source).stem
    # the per-seed data sets are registered beside the (untracked) data, not in the repository's registry
    dataset_info = root / "data" / "dataset_info.json"
    dataset_info.parent.mkdir(parents=True, exist_ok=True)
    out = root / "reports" / "benchmark" / name / preset
    meta = {"name": name, "preset": preset, "seeds": list(seeds), "model": get_preset(preset).model, "command": command}
    per_seed, times = [], []
    for seed in seeds:
        seeded = f"{name}-seed{seed}"
        convert(source, name=seeded, preset=preset, data_root=root / "data", dataset_info=dataset_info, seed=seed)
        vocabulary = json.loads((root / "data" / seeded / "behaviors.json").read_text())
        runner = Runner(seeded, preset, root, dataset_info, seed)
        per_seed.append({})
        for row, metrics in runner.rows():
            per_seed[-1][row] = metrics
            stage_times = pd.DataFrame(times + runner.times)
            write_results(out, aggregate(per_seed), stage_times, vocabulary["behaviors"], vocabulary["anchor_threshold"], meta)
            logger.info("seed %d: %s done, %s updated", seed, row, out / "results.md")
        times += runner.times
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="default", help="default, foursquare-nyc, mit-placelab or a file")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = f"python -m behaviorlm_lf.benchmark --source {args.source} --preset {args.preset} --seeds {' '.join(map(str, args.seeds))}"
    print(benchmark(args.source, args.preset, tuple(args.seeds), command=command) / "results.md")


if __name__ == "__main__":
    main()
