"""The evidence of a run: its models and the baselines side by side, with intervals, claims and figures.

    behaviorlm report [--dataset default] [--preset cpu]        # what `make demo` ends with

Evaluates the run's A-tuned model and its B-tuned model (the preset's second-stage
variant, or ``--variant``) and the popularity, Markov and SASRec baselines (fit on
the whole training split) on the same test sets (its rows: :func:`.rows.demo_rows`), then writes
``reports/<data>/<preset>/summary/``:
``summary.md`` and ``summary.csv`` (one row per model: the six metrics, each with
its 95% bootstrap interval as ``<metric>_lo``/``<metric>_hi``), the paired
comparisons behind the claims, and the figures. The same table, claims and
figures serve the benchmark (:mod:`behaviorlm_lf.studies.benchmark`). The untuned backbone
(LLM-NT) is the benchmark's row, or ``behaviorlm eval --run base``; the demo leaves
it out for time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..extras.fileio import atomic_output
from ..hparams import BTuneArguments, FirstStageArguments, RunArguments, SelectArguments
from .metrics import PAPER_METRICS, interval, paired_difference
from .rows import A_TUNED, behaviorlm_row, demo_rows, evaluate_row

logger = logging.getLogger(__name__)

NAMES = {"prec_w": "Prec_w", "rec_w": "Rec_w", "overall": "Overall", "head": "Head", "medium": "Medium", "tail": "Tail"}


def replicates_of(report_dirs: Sequence[Path]) -> dict[str, np.ndarray]:
    """Bootstrap replicates of a row; over several seeds, the seed mean of each replicate (same resamples per seed)."""
    loaded = [np.load(Path(d) / "bootstrap.npz") for d in report_dirs]
    return {m: np.mean([r[m] for r in loaded], axis=0) for m in PAPER_METRICS}


def summary_frame(rows: dict[str, Sequence[Path]]) -> pd.DataFrame:
    """One row per model: each metric's mean over its report folders (seeds), interval bounds and seed spread."""
    records = []
    for name, dirs in rows.items():
        metrics = [json.loads((Path(d) / "metrics.json").read_text()) for d in dirs]
        reps = replicates_of(dirs)
        record = {"name": name, "seeds": len(dirs)}
        for m in PAPER_METRICS:
            values = [x[m] for x in metrics if x[m] is not None]
            record[m] = float(np.mean(values)) if values else np.nan
            record[f"{m}_lo"], record[f"{m}_hi"] = interval(reps[m])
            record[f"{m}_std"] = float(np.std(values)) if len(values) > 1 else np.nan
        records.append(record)
    return pd.DataFrame(records)


def cell(row: pd.Series, metric: str) -> str:
    if np.isnan(row[metric]):
        return "n/a"
    text = f"{100 * row[metric]:.1f} [{100 * row[f'{metric}_lo']:.1f}, {100 * row[f'{metric}_hi']:.1f}]"
    return text + (f" ± {100 * row[f'{metric}_std']:.1f}" if row["seeds"] > 1 else "")


def markdown_table(frame: pd.DataFrame, order: Sequence[str] | None = None, missing: str = "not run yet") -> str:
    header = "| Method | " + " | ".join(NAMES.values()) + " |\n|---|" + "---|" * len(NAMES) + "\n"
    by_name = frame.set_index("name") if len(frame) else frame
    lines = []
    for name in order or frame["name"]:
        if name in by_name.index:
            row = by_name.loc[name]
            label = name if row["seeds"] == by_name["seeds"].max() else f"{name} ({row['seeds']} seeds)"
            lines.append(f"| {label} | " + " | ".join(cell(row, m) for m in PAPER_METRICS) + " |\n")
        else:
            lines.append(f"| {name} | " + " | ".join(missing for _ in PAPER_METRICS) + " |\n")
    return header + "".join(lines)


def difference_table(rows: dict[str, Sequence[Path]], names: Sequence[str], reference: str, label: str = "Variant") -> str:
    """Each row's change from ``reference`` in points, with the paired 95% interval."""
    header = f"| {label} | " + " | ".join(NAMES.values()) + " |\n|---|" + "---|" * len(NAMES) + "\n"
    lines = []
    for name in names:
        if name not in rows or reference not in rows:
            lines.append(f"| {name} | " + " | ".join("not run yet" for _ in PAPER_METRICS) + " |\n")
            continue
        a, b = replicates_of(rows[name]), replicates_of(rows[reference])
        cells = []
        for m in PAPER_METRICS:
            mean, low, high = paired_difference(a[m], b[m])
            cells.append("n/a" if np.isnan(mean) else f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |\n")
    return header + "".join(lines)


def claim(rows: dict[str, Sequence[Path]], a: str, b: str, metric: str, margin: float = 0.0) -> tuple[str, str]:
    """Whether ``a``'s metric is above ``b``'s minus ``margin``: holds, does not hold, or inside the intervals.

    The paired bootstrap interval of the difference (same test samples resampled for
    both) decides: above ``-margin`` throughout holds, below throughout does not.
    """
    if a not in rows or b not in rows:
        return "not run yet", ""
    mean, low, high = paired_difference(replicates_of(rows[a])[metric], replicates_of(rows[b])[metric])
    if np.isnan(mean):
        return "n/a", ""
    verdict = "holds" if low > -margin else "does not hold" if high < -margin else "inside the intervals"
    return verdict, f"difference {100 * mean:+.1f} points, 95% paired interval [{100 * low:+.1f}, {100 * high:+.1f}]"


def claims_lines(rows: dict[str, Sequence[Path]], checks: Sequence[tuple[str, str, str, str, float]]) -> list[str]:
    """Claims as checked lines: each (text, row a, row b, metric, margin) through :func:`claim`."""
    lines = []
    for text, a, b, metric, margin in checks:
        verdict, detail = claim(rows, a, b, metric, margin)
        lines.append(f"- **{verdict}**: {text}" + (f" ({detail})" if detail else "") + "\n")
    return lines


def collapse_lines(rows: dict[str, Sequence[Path]], share: float = 0.9) -> list[str]:
    """A warning for each model that gives one answer to ``share`` or more of the balanced test prompts.

    Such a model's per-group accuracies are an artefact (every class but one at 0, that one
    at 100%), so a claim it enters can "hold" without a model that predicts; the line says so.
    """
    lines = []
    for name, dirs in rows.items():
        for folder in dirs:
            predictions = Path(folder) / "predictions_balanced.csv"
            if not predictions.is_file():
                continue
            counts = pd.read_csv(predictions)["prediction"].value_counts(normalize=True)
            if len(counts) and counts.iloc[0] >= share:
                lines.append(
                    f"- **collapsed**: {name} answers {counts.index[0]!r} to {counts.iloc[0]:.0%} of the balanced test "
                    "prompts; its group accuracies, and the claims it enters, describe that one answer\n"
                )
    return lines


def demo_checks(behaviorlm: str) -> list[tuple[str, str, str, str, float]]:
    """What the demo is for: the B-tuned model against the sequence baselines, and what B-Tuning adds to A-Tuning."""
    return [
        (f"{behaviorlm} Overall above SASRec", behaviorlm, "SASRec", "overall", 0.0),
        (f"{behaviorlm} Tail above SASRec", behaviorlm, "SASRec", "tail", 0.0),
        (f"{behaviorlm} Overall above Markov", behaviorlm, "Markov", "overall", 0.0),
        (f"{behaviorlm} Tail at least Markov's", behaviorlm, "Markov", "tail", 0.0),
        (f"{behaviorlm} Tail above {A_TUNED} (what B-Tuning adds)", behaviorlm, A_TUNED, "tail", 0.0),
        (f"{behaviorlm} Head not more than 2 points below {A_TUNED}", behaviorlm, A_TUNED, "head", 0.02),
    ]


def write_figures(folder: Path, frame: pd.DataFrame, behaviors: list[dict], threshold: float, order: Sequence[str]) -> list[str]:
    """Behavior frequencies with the anchor threshold (Fig. 1a) and accuracy by group per model (Fig. 1c)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freq = sorted((b["freq"] for b in behaviors), reverse=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(len(freq)), freq, color=["tab:blue" if f > threshold else "tab:orange" for f in freq])
    ax.axhline(threshold, color="k", linestyle="--", label=f"anchor threshold {threshold:.1%}")
    ax.set(yscale="log", xlabel="behavior (by training frequency)", ylabel="frequency", title="Behavior frequency (Fig. 1a)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "fig1a_frequency.png", dpi=120)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    groups = ["overall", "head", "medium", "tail"]
    shown = [name for name in order if name in set(frame["name"])]
    width = 0.8 / max(len(shown), 1)
    by_name = frame.set_index("name")
    for i, name in enumerate(shown):
        row = by_name.loc[name]
        values = np.array([row[g] for g in groups])
        errors = np.array([[row[g] - row[f"{g}_lo"] for g in groups], [row[f"{g}_hi"] - row[g] for g in groups]])
        ax.bar(np.arange(len(groups)) + i * width, values, width, yerr=np.nan_to_num(errors), capsize=2, label=name)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, ["Overall", "Head", "Medium", "Tail"])
    ax.set(ylabel="balanced accuracy", title="Accuracy by behavior group, 95% intervals (Fig. 1c)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(folder / "fig1c_groups.png", dpi=120)
    plt.close("all")
    return ["fig1a_frequency.png", "fig1c_groups.png"]


def write_summary(
    out: Path, rows: dict[str, Sequence[Path]], order: Sequence[str], behaviors: list[dict], threshold: float, intro: str,
    claims: list[str],
) -> pd.DataFrame:
    """summary.md, summary.csv and the figures, atomically as one folder; returns the table."""
    frame = summary_frame(rows)
    with atomic_output(out) as tmp:
        tmp.mkdir(parents=True)
        figures = write_figures(tmp, frame, behaviors, threshold, order)
        text = intro + "\n## The paper's claims, checked\n\n" + "".join(claims) + "\n## Results\n\n" + markdown_table(frame, order)
        text += "\n" + "".join(f"![]({f})\n" for f in figures)
        (tmp / "summary.md").write_text(text, encoding="utf-8")
        columns = ["name"] + [c for m in PAPER_METRICS for c in (m, f"{m}_lo", f"{m}_hi")]
        frame.set_index("name").loc[[n for n in order if n in set(frame["name"])]].reset_index()[columns].to_csv(tmp / "summary.csv", index=False)
    return frame


def report(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, hp: BTuneArguments) -> Path:
    """Evaluate the run's A- and B-tuned models and the baselines; write the summary; returns its folder."""
    from ..extras.hardware import machine_description
    layout = run.layout()
    behaviorlm = behaviorlm_row(hp.variant)
    table = demo_rows(hp.variant)
    rows = {row.name: [evaluate_row(run, row, first, sel, hp)] for row in table}
    llm_rows = {row.name: rows[row.name] for row in table if not row.is_baseline}
    vocabulary = layout.vocabulary()
    sizes = vocabulary["stats"]["set_sizes"]
    _, adapter = run.layout().trained_model("b_tune", first.first_stage, sel.suffix(), hp.variant)
    second = json.loads((adapter / "diagnostics.json").read_text(encoding="utf-8"))
    intro = (
        f"# {layout.data_name}, {run.preset} preset\n\nModel {run.layout().model_dir()}; machine {machine_description()}. "
        f"Test sets: {sizes['test_natural']} natural samples (Prec_w, Rec_w) and {sizes['test_balanced']} balanced ones "
        f"(up to {max(b['balanced_test'] for b in vocabulary['behaviors'])} per behavior: Overall, Head, Medium, Tail). "
        "Values in %, with 95% bootstrap intervals in brackets. The LLM trained on "
        f"{sizes['anchor_train']} anchor samples (A-Tuning), then on the selected samples with the second-stage variant "
        f"**{hp.variant}** (settings `{second['settings']}`; epoch {second['best_epoch']} kept, the best of "
        f"{len(second['validation'])} on the {sizes['valid_balanced']} balanced validation samples: Overall "
        f"{100 * second['best_validation_overall']:.1f}%; its report: {adapter / 'report.md'}); the baselines on every "
        "event of the training users.\n"
    )
    claims = claims_lines(rows, demo_checks(behaviorlm)) + collapse_lines(llm_rows)
    out = layout.report_dir("summary")
    write_summary(out, rows, list(rows), vocabulary["behaviors"], vocabulary["anchor_threshold"], intro, claims)
    return out


def show_summary(out: Path) -> str:
    """What `behaviorlm report` prints: the summary's table and checked claims, and where the report is."""
    text = (out / "summary.md").read_text(encoding="utf-8")
    return text[text.index("## The paper's claims, checked"):].split("\n![](", 1)[0] + f"\nreport: {out / 'summary.md'}"
