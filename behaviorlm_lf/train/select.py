"""B-Tuning sample selection: score a pool of every class with the A-tuned model, pick hard and diverse
samples per class, and write DPO pairs.

    behaviorlm select [--dataset default] [--preset cpu] [--per-class 20] [--lam 0.5]
        [--strategy dds|random|topk] [--confusion prose|literal] [--first-stage anchor_train]

Two cached steps. **Scoring** (``pool_scores/``): the A-tuned model's exact
log-probability of every candidate for every pool sample, and its embedding
E(x); done once per A-tuned model and shared by every strategy, F and
difficulty variant. **Selection** (``select<variant>/``): the difficulty

    D(x) = lam * (1 - p(y|x)) + (1 - lam) * c(x)

where the confusion term c follows the paper's prose by default
(``--confusion prose``: c = 1 - d, so a wrong prediction within the label's group,
anchor or tail, is the hardest, "mispredicted samples with a lower
distinguishability score"; a confusion across groups and a correct prediction get
c = 0) or equation 2 as printed (``literal``: c = d, 0 for a within-group confusion
and 1 otherwise). Per class, ``dds`` picks F samples by K-means++ seeding on the
L2-normalised E(x) weighted by D / max D; ``random`` (w/o DDS) picks uniformly;
``topk`` (w/o KMeans) takes the F most difficult. Pairs are (x, chosen = y,
rejected = y_hat, or the most probable wrong candidate where the model was right);
``--max_pairs_per_rejected K`` lets no label be the rejected answer of more than K
pairs (a pair over the cap rejects its next most probable wrong label instead).

Besides the pairs, a selection writes the selected samples as SFT data (the
``sft`` variant, Table 4's w/o DPO), as many anchor training samples drawn at
random (``sft_replay`` trains on both), and ``diagnostics.json``: where the
first-stage model ranks the true label of the pool's samples, per report group
(Hit@1/5/10), and how often each label is the rejected answer.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import kmeans_plusplus

from ..extras.cache import run_stage
from ..extras.fileio import atomic_output, read_jsonl, write_json, write_jsonl
from ..extras.layout import RunLayout
from ..hparams import FirstStageArguments, RunArguments, SelectArguments
from ..lf.registry import entry, register
from ..lf.template import chat_template
from .pairs import pair_diagnostics, rank_diagnostics, rejected_candidates

logger = logging.getLogger(__name__)

STRATEGIES = ("dds", "random", "topk")
CONFUSIONS = ("prose", "literal")
KINDS = ("pairs", "selected_sft", "replay")


def difficulty(
    p_true: np.ndarray, pred: np.ndarray, label: np.ndarray, is_anchor: np.ndarray, lam: float = 0.5, confusion: str = "prose"
) -> np.ndarray:
    """D(x) from p(y|x), the predicted and true class indexes and each class's anchor flag (module docstring)."""
    if confusion not in CONFUSIONS:
        raise ValueError(f"confusion must be one of {CONFUSIONS}, got {confusion!r}")
    # The paper's distinguishability d: 0 for a wrong prediction in the label's own group, 1 otherwise.
    d = np.where((pred != label) & (is_anchor[pred] == is_anchor[label]), 0.0, 1.0)
    return lam * (1.0 - p_true) + (1.0 - lam) * (1.0 - d if confusion == "prose" else d)


def select_per_class(
    embeddings: np.ndarray, weights: np.ndarray, per_class: int, strategy: str, rng: np.random.Generator
) -> np.ndarray:
    """Indexes (into this class's samples) of the selected ones; all of them when there are too few."""
    n = len(weights)
    if n <= per_class:
        return np.arange(n)
    if strategy == "random":
        return np.sort(rng.choice(n, size=per_class, replace=False))
    if strategy == "topk":
        return np.sort(np.argsort(-weights, kind="stable")[:per_class])
    if strategy == "dds":
        _, chosen = kmeans_plusplus(
            embeddings, n_clusters=per_class, sample_weight=weights / weights.max(), random_state=int(rng.integers(2**31))
        )
        return np.sort(chosen)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def build_selection(scored: pd.DataFrame, embeddings: np.ndarray, per_class: int, strategy: str, seed: int) -> pd.DataFrame:
    """Mark ``selected`` rows of ``scored`` (columns label, D), class by class."""
    rng = np.random.default_rng(seed)
    scored = scored.assign(selected=False)
    normalised = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(min=1e-12)
    for _, rows in scored.groupby("label", sort=True):
        index = rows.index.to_numpy()
        picked = select_per_class(normalised[index], rows["D"].to_numpy(), per_class, strategy, rng)
        scored.loc[index[picked], "selected"] = True
    return scored


def draw_replay(anchor_samples: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` anchor training samples at random (all when there are fewer): ``sft_replay``'s reminder of the head."""
    rng = np.random.default_rng([seed, len(KINDS)])
    picked = np.sort(rng.choice(len(anchor_samples), size=min(n, len(anchor_samples)), replace=False))
    return [anchor_samples[i] for i in picked]


def score_pool(run: RunArguments, first: FirstStageArguments, embed: str = "sample") -> Path:
    """Score every pool sample against every candidate and embed it, once per first-stage model (cached)."""
    from ..model.scorer import CandidateScorer

    layout = run.layout()
    adapter = run.layout().first_stage_adapter(first.first_stage)
    model = run.layout().model_dir()
    inputs = {
        "pool": layout.set_file("pool"),
        "pool_structure": layout.set_file("pool", ".parquet"),
        "behaviors": layout.behaviors_file,
        "model": Path(model),
        "adapter": adapter / "adapter_model.safetensors",
    }
    out = layout.pool_scores_dir(first.first_stage)

    def build(tmp: Path) -> dict:
        candidates = layout.vocabulary()["candidates"]
        pool = read_jsonl(layout.set_file("pool"))
        spans = pd.read_parquet(layout.set_file("pool", ".parquet"), columns=["sample_spans"])["sample_spans"]
        scorer = CandidateScorer(model, adapter_dir=adapter, template=chat_template(run.layout()))
        result = scorer.score([r["instruction"] for r in pool], candidates, embed=embed, spans=[list(s) for s in spans])
        np.savez(tmp / "scores.npz", logprobs=result.logprobs, embeddings=result.embeddings)
        label = np.array([candidates.index(r["output"]) for r in pool])
        return {"scored": len(pool), "pool_accuracy": float((result.pred == label).mean()), "bf16": scorer.bf16}

    run_stage("score_pool", out, inputs, {"template": chat_template(run.layout()), "embed": embed}, build, code=__name__)
    return out


def select(run: RunArguments, first: FirstStageArguments, sel: SelectArguments) -> Path:
    """Score the pool (once per first-stage model), select, write and register the pairs; returns the folder."""
    layout = run.layout()
    scores = score_pool(run, first, sel.embed)
    suffix = sel.suffix()
    out = layout.select_dir(first.first_stage, suffix)
    replay_source = layout.set_file("anchor_train")
    inputs = {"scores": scores / "scores.npz", "pool": layout.set_file("pool"), "behaviors": layout.behaviors_file,
              "replay_source": replay_source}
    config = {"per_class": sel.per_class, "lam": sel.lam, "strategy": sel.strategy, "confusion": sel.confusion, "seed": run.seed,
              "max_pairs_per_rejected": sel.max_pairs_per_rejected}

    def build(tmp: Path) -> dict:
        vocabulary = layout.vocabulary()
        candidates = vocabulary["candidates"]
        groups = {b["name"]: b for b in vocabulary["behaviors"]}
        is_anchor = np.array([groups[c]["group"] == "anchor" for c in candidates])
        report_group = np.array([groups[c]["report_group"] for c in candidates])
        pool = read_jsonl(layout.set_file("pool"))
        label = np.array([candidates.index(r["output"]) for r in pool])
        saved = np.load(scores / "scores.npz")
        logprobs, embeddings = saved["logprobs"], saved["embeddings"]
        probs = np.exp(logprobs - logprobs.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        pred = probs.argmax(1)
        p_true = probs[np.arange(len(label)), label]
        scored = pd.DataFrame(
            {
                "sample_id": [f"pool-{i}" for i in range(len(pool))],
                "label": np.asarray(candidates)[label],
                "group": np.where(is_anchor[label], "anchor", "tail"),
                "p_true": p_true,
                "y_hat": np.asarray(candidates)[pred],
                "D": difficulty(p_true, pred, label, is_anchor, sel.lam, sel.confusion),
            }
        )
        scored = build_selection(scored, embeddings, sel.per_class, sel.strategy, run.seed)
        chosen_rows = np.flatnonzero(scored["selected"].to_numpy())
        rejected = rejected_candidates(probs, label)
        rejected[chosen_rows] = rejected_candidates(probs[chosen_rows], label[chosen_rows], sel.max_pairs_per_rejected)
        scored["rejected"] = np.asarray(candidates)[rejected]
        pairs = [
            {"instruction": pool[i]["instruction"], "input": "", "chosen": pool[i]["output"], "rejected": candidates[rejected[i]]}
            for i in chosen_rows
        ]
        sft = [{"instruction": pool[i]["instruction"], "input": "", "output": pool[i]["output"]} for i in chosen_rows]
        replay = draw_replay(read_jsonl(replay_source), len(sft), run.seed)
        scored.to_csv(tmp / "scored.csv", index=False)
        for kind, records in (("pairs", pairs), ("selected_sft", sft), ("replay", replay)):
            write_jsonl(tmp / f"{kind}.jsonl", records)
        diagnostics = {"pool_rank_of_true_label": rank_diagnostics(logprobs, label, report_group)} | pair_diagnostics(pairs)
        write_json(tmp / "diagnostics.json", diagnostics)
        counts = scored.groupby("label")["selected"].sum()
        short = sorted(counts[counts < sel.per_class].index)
        if short:
            logger.info("%d classes had fewer than F=%d samples and contribute all they have: %s", len(short), sel.per_class, short)
        logger.info("first-stage model's rank of the true label on the pool: %s", diagnostics["pool_rank_of_true_label"])
        return {"scored": len(scored), "pairs": len(pairs), "replay": len(replay), "pool_accuracy": float((pred == label).mean()),
                "classes_short_of_F": short}

    run_stage(f"select{suffix}", out, inputs, config, build, code=__name__)
    publish(out, layout, first.first_stage, suffix)
    return out


def publish(out: Path, layout: RunLayout, first_stage: str, suffix: str) -> None:
    """Copy the selection beside the data set under its fixed set name (:meth:`RunLayout.selected_set`) and register it."""
    for kind in KINDS:
        set_name = layout.selected_set(first_stage, suffix, kind)
        with atomic_output(layout.set_file(set_name)) as tmp:
            shutil.copyfile(out / f"{kind}.jsonl", tmp)
        register({layout.set_registry_name(set_name): entry(layout.set_file(set_name), layout.registry, pairs=kind == "pairs")}, layout.registry)


