"""B-Tuning: the second stage on the selected samples (section 3.3), keeping its best epoch on validation.

    behaviorlm merge  [--dataset default] [--preset cpu] [--first-stage anchor_train]
    behaviorlm b-tune [--dataset default] [--preset cpu] [--variant dpo|dpo_nll|sft|sft_replay|sft_dpo]
                      [--strategy dds|random|topk] [--per-class F] [--max_pairs_per_rejected K]

``merge`` folds the first-stage adapter into the backbone (``llamafactory-cli
export``, ``a_merged/``); B-Tuning trains a new adapter on it, so DPO's frozen
reference (the model with the new adapter disabled) is the A-tuned model. The
selection flags pick the samples it trains on, those ``select`` wrote with the
same flags. Each variant is one LlamaFactory YAML (``llamafactory_configs/``):

    dpo         b_tune.yaml             the paper's: DPO on (x, y, y_hat)
    dpo_nll     b_tune_dpo_nll.yaml     DPO plus pref_ftx x the chosen answer's NLL (RPO, arXiv 2404.19733)
    sft         b_tune_sft.yaml         SFT on the selected samples (Table 4's "w/o DPO")
    sft_replay  b_tune_sft_replay.yaml  SFT on the selected samples and as many anchor training samples
    sft_dpo     b_tune_sft_dpo.yaml     the sft variant merged in, then DPO on the selected samples against that
                                        model's own wrong answers, it as the reference (SPRec, arXiv 2412.09243)

**Model selection** (section 4.1.4, "selecting the best-performing model on the
validation set", for every experiment): LlamaFactory saves each epoch's adapter;
each is scored with the exact scorer on ``valid_balanced`` (the same number of
samples per behavior, from the validation users), and the one with the best
Overall, the paper's balanced metric, is kept (the earlier on a tie). The test
sets choose nothing.

**Report.** ``report.md`` and ``diagnostics.json`` in the adapter's folder show
whether the stage taught the rare behaviors or only pushed answers down: per
epoch the validation accuracies and the mean log p(y|x) of the true label per
group; for the DPO variants the chosen and rejected log-probabilities and their
margin over the steps (LlamaFactory's log); and from the selection, where the
model that made the pairs ranks the true label (Hit@1/5/10 per group) and how
many pairs each label is the rejected answer of.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..eval.metrics import REPORT_GROUPS, compute_metrics
from ..extras.cache import run_stage
from ..extras.fileio import read_jsonl, write_json, write_jsonl
from ..extras.hardware import model_training_settings
from ..extras.layout import RunLayout
from ..hparams import BTuneArguments, FirstStageArguments, RunArguments, SelectArguments, for_preset
from ..lf.registry import entry, register
from ..lf.run import CONFIG_DIR, run_llamafactory
from ..lf.template import chat_template
from .pairs import pair_diagnostics, rank_diagnostics, rejected_candidates

logger = logging.getLogger(__name__)

MERGE_CONFIG = CONFIG_DIR / "a_merge.yaml"
VALIDATION_SET = "valid_balanced"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


@dataclass(frozen=True)
class Variant:
    """A second-stage variant: its LlamaFactory YAML and the sets (``RunLayout.selected_set`` kinds) it trains on."""

    config: Path
    train_sets: tuple[str, ...]


VARIANTS = {
    "dpo": Variant(CONFIG_DIR / "b_tune.yaml", ("pairs",)),
    "dpo_nll": Variant(CONFIG_DIR / "b_tune_dpo_nll.yaml", ("pairs",)),
    "sft": Variant(CONFIG_DIR / "b_tune_sft.yaml", ("selected_sft",)),
    "sft_replay": Variant(CONFIG_DIR / "b_tune_sft_replay.yaml", ("selected_sft", "replay")),
    "sft_dpo": Variant(CONFIG_DIR / "b_tune_sft_dpo.yaml", ("sft_pairs",)),
}


def merge_adapter(run: RunArguments, model: str | Path, adapter: Path, out: Path, stage: str) -> Path:
    """``model`` with ``adapter`` folded in (``llamafactory-cli export``), cached in ``out``."""
    overrides = {"model_name_or_path": Path(model), "adapter_name_or_path": adapter, "template": chat_template(run.layout())}
    inputs = {"model": Path(model), "adapter": adapter / "adapter_model.safetensors", "config": MERGE_CONFIG}
    run_stage(
        stage, out, inputs, {k: str(v) for k, v in overrides.items()},
        lambda tmp: run_llamafactory(MERGE_CONFIG, overrides, tmp, command="export", final_dir=out), code=__name__,
    )
    return out


def merge(run: RunArguments, first: FirstStageArguments) -> Path:
    """The backbone with the first-stage adapter merged in (cached)."""
    adapter = run.layout().first_stage_adapter(first.first_stage)
    return merge_adapter(run, run.layout().model_dir(), adapter, run.layout().merged_dir(first.first_stage), "merge")


def choose_epoch(scores: list[dict]) -> int:
    """Index of the checkpoint with the best validation Overall; the earlier one on a tie (fewer updates)."""
    best = max(score["overall"] for score in scores)
    return next(i for i, score in enumerate(scores) if score["overall"] == best)


def validation_metrics(layout: RunLayout, model: str | Path, adapter: Path | None, template: str) -> dict:
    """Balanced validation accuracies of ``model`` (+ ``adapter``) and the mean log p(y|x) of the true label per group."""
    from ..model.scorer import CandidateScorer

    vocabulary = layout.vocabulary()
    candidates, behaviors = vocabulary["candidates"], vocabulary["behaviors"]
    records = read_jsonl(layout.set_file(VALIDATION_SET))
    labels = [r["output"] for r in records]
    result = CandidateScorer(str(model), adapter_dir=adapter, template=template).score([r["instruction"] for r in records], candidates)
    found = compute_metrics(labels, result.probs, candidates, behaviors, balanced=True)
    group_of = {b["name"]: b["report_group"] for b in behaviors}
    log_p = np.log(result.probs[np.arange(len(labels)), [candidates.index(y) for y in labels]].clip(min=1e-300))
    groups = np.array([group_of[y] for y in labels])
    found["mean_log_p_true"] = {g: float(log_p[groups == g].mean()) for g in REPORT_GROUPS if (groups == g).any()}
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in found.items()}


def checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))


def keep_best_epoch(tmp: Path, layout: RunLayout, base: Path, template: str) -> dict:
    """Score every epoch's checkpoint on validation, put the best one's adapter at the top of ``tmp``, remove them."""
    found = checkpoints(tmp)
    if not found:
        raise RuntimeError(f"LlamaFactory saved no epoch checkpoint in {tmp}")
    epochs = []
    for checkpoint in found:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        scores = validation_metrics(layout, base, checkpoint, template)
        epochs.append({"epoch": round(state["epoch"], 2), "step": state["global_step"], **scores})
        logger.info("epoch %s: validation Overall %.4f (Head %s, Medium %s, Tail %s)", epochs[-1]["epoch"], scores["overall"],
                    *(f"{scores[g]:.4f}" if scores[g] is not None else "n/a" for g in REPORT_GROUPS))
    best = choose_epoch(epochs)
    for name in ADAPTER_FILES:
        shutil.copyfile(found[best] / name, tmp / name)
    for checkpoint in found:
        shutil.rmtree(checkpoint)
    logger.info("kept epoch %s of %d (validation Overall %.4f)", epochs[best]["epoch"], len(epochs), epochs[best]["overall"])
    return {"validation": epochs, "best_epoch": epochs[best]["epoch"], "best_validation_overall": epochs[best]["overall"]}


def rebuild_pairs(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, model: Path) -> str:
    """``sft_dpo``'s pairs: the selected samples, each against ``model``'s own wrong answer; returns the set's name."""
    from ..model.scorer import CandidateScorer

    layout = run.layout()
    suffix = sel.suffix()
    samples = layout.set_file(layout.selected_set(first.first_stage, suffix, "selected_sft"))
    out = layout.rebuilt_pairs_dir(first.first_stage, suffix)
    inputs = {"model": model / "manifest.json", "samples": samples, "behaviors": layout.behaviors_file}

    def build(tmp: Path) -> dict:
        vocabulary = layout.vocabulary()
        candidates = vocabulary["candidates"]
        report_group = np.array([next(b["report_group"] for b in vocabulary["behaviors"] if b["name"] == c) for c in candidates])
        records = read_jsonl(samples)
        label = np.array([candidates.index(r["output"]) for r in records])
        result = CandidateScorer(str(model), template=chat_template(run.layout())).score([r["instruction"] for r in records], candidates)
        rejected = rejected_candidates(result.probs, label, sel.max_pairs_per_rejected)
        pairs = [{"instruction": r["instruction"], "input": "", "chosen": r["output"], "rejected": candidates[k]}
                 for r, k in zip(records, rejected)]
        write_jsonl(tmp / "pairs.jsonl", pairs)
        diagnostics = {"selected_rank_of_true_label": rank_diagnostics(result.logprobs, label, report_group)} | pair_diagnostics(pairs)
        write_json(tmp / "diagnostics.json", diagnostics)
        return {"pairs": len(pairs), "accuracy_on_selected": float((result.pred == label).mean())}

    run_stage(f"sft_dpo_pairs{suffix}", out, inputs, {"max_pairs_per_rejected": sel.max_pairs_per_rejected,
                                                      "template": chat_template(run.layout())}, build, code=__name__)
    set_name = layout.selected_set(first.first_stage, suffix, "sft_pairs")
    write_jsonl(layout.set_file(set_name), read_jsonl(out / "pairs.jsonl"))
    register({layout.set_registry_name(set_name): entry(layout.set_file(set_name), layout.registry, pairs=True)}, layout.registry)
    return set_name


def b_tune(run: RunArguments, first: FirstStageArguments, sel: SelectArguments, hp: BTuneArguments) -> Path:
    """Train the variant's adapter, keep its best epoch on validation and write its report; returns the adapter folder."""
    layout = run.layout()
    variant = VARIANTS[hp.variant]
    suffix = sel.suffix()
    selection = layout.selection_done(first.first_stage, sel.selection(), suffix)
    layout.require_data(layout.set_file(VALIDATION_SET))
    base = merge(run, first)
    pairs_report = selection / "diagnostics.json"
    if hp.variant == "sft_dpo":
        sft = b_tune(run, first, sel, for_preset(BTuneArguments, run.preset, variant="sft"))
        base = merge_adapter(run, base, sft, layout.b_tune_base_dir(first.first_stage, suffix, "sft_dpo"), f"merge:b_tune_sft{suffix}")
        rebuild_pairs(run, first, sel, base)
        pairs_report = layout.rebuilt_pairs_dir(first.first_stage, suffix) / "diagnostics.json"
    train_sets = [layout.selected_set(first.first_stage, suffix, kind) for kind in variant.train_sets]
    out = layout.b_tune_dir(first.first_stage, suffix, hp.variant)
    template = chat_template(run.layout())
    overrides = {
        "model_name_or_path": base,
        "template": template,
        "dataset_dir": layout.dataset_dir,
        "dataset": ",".join(layout.set_registry_name(s) for s in train_sets),
        "seed": run.seed,
        **model_training_settings(base),
        **hp.overrides(),
    }
    inputs = {"base": base / "manifest.json", "config": variant.config, "validation": layout.set_file(VALIDATION_SET),
              "pairs_report": pairs_report} | {f"train:{s}": layout.set_file(s) for s in train_sets}

    def build_stage(tmp: Path) -> dict:
        trained = run_llamafactory(variant.config, overrides, tmp, final_dir=out, keep_checkpoints=True)
        chosen = keep_best_epoch(tmp, layout, base, template)
        diagnostics = {"variant": hp.variant, "settings": hp.overrides(), **chosen,
                       "training": training_curves(tmp / "trainer_state.json"),
                       "pairs": json.loads(pairs_report.read_text(encoding="utf-8"))}
        write_json(tmp / "diagnostics.json", diagnostics)
        write_report(tmp, diagnostics)
        return {"wall_seconds": trained["wall_seconds"], "peak_rss_bytes": trained["peak_rss_bytes"],
                "train_loss": trained.get("train_loss"), **{k: chosen[k] for k in ("best_epoch", "best_validation_overall")}}

    run_stage(f"b_tune:{hp.variant}{suffix}", out, inputs, {k: str(v) for k, v in overrides.items()}, build_stage, code=__name__)
    return out


DPO_LOGGED = ("logps/chosen", "logps/rejected", "rewards/margins")


def training_curves(state_file: Path) -> dict:
    """Per logged step: the loss, and for DPO the chosen and rejected log-probabilities and their reward margin."""
    history = json.loads(state_file.read_text(encoding="utf-8")).get("log_history", [])
    logged = [h for h in history if "loss" in h]
    curves = {"step": [h["step"] for h in logged], "epoch": [h["epoch"] for h in logged], "loss": [h["loss"] for h in logged]}
    for key in DPO_LOGGED:
        if logged and key in logged[0]:
            curves[key] = [h[key] for h in logged]
    return curves


def _mean_by_epoch(curves: dict, key: str) -> list[tuple[int, float]]:
    """(epoch, mean of ``key`` over that epoch's logged steps), the first logged step as epoch 0."""
    epochs = np.ceil(np.asarray(curves["epoch"]) - 1e-9).astype(int)
    values = np.asarray(curves[key])
    return [(0, float(values[0]))] + [(int(e), float(values[epochs == e].mean())) for e in np.unique(epochs)]


def write_report(folder: Path, diagnostics: dict) -> None:
    """``report.md`` (and ``dpo_logps.png`` for the DPO variants) from the stage's diagnostics."""
    lines = [f"# B-Tuning: {diagnostics['variant']}\n\n", f"Settings over the variant's YAML: `{diagnostics['settings']}`.\n\n",
             f"Kept: epoch {diagnostics['best_epoch']} (balanced validation Overall {100 * diagnostics['best_validation_overall']:.1f}%).\n\n",
             "## Validation per epoch (balanced validation set; %, and the mean log p(y|x) of the true label)\n\n",
             "| Epoch | Overall | Head | Medium | Tail | log p Head | log p Medium | log p Tail |\n|---|---|---|---|---|---|---|---|\n"]
    for row in diagnostics["validation"]:
        cells = [f"{100 * row[k]:.1f}" if row.get(k) is not None else "n/a" for k in ("overall", *REPORT_GROUPS)]
        cells += [f"{row['mean_log_p_true'][g]:.2f}" if g in row["mean_log_p_true"] else "n/a" for g in REPORT_GROUPS]
        lines.append(f"| {row['epoch']} | " + " | ".join(cells) + " |\n")
    curves = diagnostics["training"]
    lines.append("\n## Training (mean over each epoch's logged steps; epoch 0 is the first step)\n\n")
    keys = ["loss"] + [k for k in DPO_LOGGED if k in curves]
    lines.append("| Epoch | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n")
    by_key = {k: _mean_by_epoch(curves, k) for k in keys} if curves["step"] else {}
    for i, (epoch, _) in enumerate(by_key.get("loss", [])):
        lines.append(f"| {epoch} | " + " | ".join(f"{by_key[k][i][1]:.3f}" for k in keys) + " |\n")
    if "logps/chosen" in curves:
        chosen, rejected = by_key["logps/chosen"], by_key["logps/rejected"]
        chosen_start, chosen_end, rejected_start, rejected_end = chosen[0][1], chosen[-1][1], rejected[0][1], rejected[-1][1]
        moved = f"chosen log p {chosen_start:.2f} -> {chosen_end:.2f}, rejected {rejected_start:.2f} -> {rejected_end:.2f}"
        if abs(chosen_end - chosen_start) < 0.01 and abs(rejected_end - rejected_start) < 0.01:
            verdict = f"moved neither answer ({moved})"
        elif chosen_end > chosen_start:
            verdict = f"raised the chosen answers ({moved})"
        else:
            verdict = f"lowered the chosen answers too, and the margin grew only as the rejected ones fell faster ({moved})"
        lines.append(f"\nFrom the first step to the last epoch, DPO {verdict}.\n")
        _plot_dpo(folder / "dpo_logps.png", curves)
        lines.append("\n![](dpo_logps.png)\n")
    pairs = diagnostics["pairs"]
    ranks = pairs.get("pool_rank_of_true_label") or pairs.get("selected_rank_of_true_label")
    where = "pool" if "pool_rank_of_true_label" in pairs else "selected samples"
    lines.append(f"\n## Where the model that made the pairs ranks the true label ({where}, %)\n\n| Group | n | Hit@1 | Hit@5 | Hit@10 |\n|---|---|---|---|---|\n")
    for group, row in ranks.items():
        lines.append(f"| {group} | {row['n']} | {100 * row['hit@1']:.1f} | {100 * row['hit@5']:.1f} | {100 * row['hit@10']:.1f} |\n")
    top = ", ".join(f"{name} {count}" for name, count in list(pairs["rejected_counts"].items())[:8])
    lines.append(f"\nRejected answers: {pairs['distinct_rejected']} labels over {pairs['pairs']} pairs; most often {top}.\n")
    (folder / "report.md").write_text("".join(lines), encoding="utf-8")


def _plot_dpo(path: Path, curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(curves["step"], curves["logps/chosen"], label="chosen log p")
    ax.plot(curves["step"], curves["logps/rejected"], label="rejected log p")
    ax.plot(curves["step"], curves["rewards/margins"], label="reward margin", linestyle="--")
    ax.set(xlabel="step", title="DPO: chosen and rejected answers over the steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def show_report(out: Path) -> str:
    """What `behaviorlm b-tune` prints: the adapter's folder and its report."""
    return f"{out}\n{(out / 'report.md').read_text(encoding='utf-8')}"
