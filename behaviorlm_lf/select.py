"""B-Tuning sample selection: score a pool of every class with the A-tuned model, pick hard and diverse
samples per class, and write DPO pairs.

    python -m behaviorlm_lf.select --dataset default --preset cpu [--per-class 20] [--lam 0.5]
        [--strategy dds|random|topk] [--confusion prose|literal]

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
rejected = y_hat, or the most probable wrong candidate where the model was right).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import kmeans_plusplus

from .cache import code_files, run_stage
from .convert import DATASET_INFO, REPO_ROOT, register, registry_path
from .fileio import atomic_output, read_jsonl
from .presets import get_preset

logger = logging.getLogger(__name__)

STRATEGIES = ("dds", "random", "topk")
CONFUSIONS = ("prose", "literal")
PAIR_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
SFT_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


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


def rejected_candidates(probs: np.ndarray, label: np.ndarray) -> np.ndarray:
    """y_hat where it is wrong, else the most probable wrong candidate."""
    masked = probs.copy()
    masked[np.arange(len(label)), label] = -np.inf
    return masked.argmax(axis=1)


def variant_suffix(strategy: str, per_class: int, preset_per_class: int, confusion: str = "prose") -> str:
    """Name suffix of a selection variant's folder and pairs: "" for the default, else e.g. "_random_F5" or "_literal"."""
    return (
        ("" if strategy == "dds" else f"_{strategy}")
        + ("" if per_class == preset_per_class else f"_F{per_class}")
        + ("" if confusion == "prose" else f"_{confusion}")
    )


def score_pool(
    data_dir: Path, model: str, adapter: Path | None, template: str, out: Path, embed: str = "sample"
) -> Path:
    """Score every pool sample against every candidate and embed it, once per model (cached in ``out``)."""
    from .scorer import CandidateScorer

    inputs = {
        "pool": data_dir / "pool.jsonl",
        "pool_structure": data_dir / "pool.parquet",
        "behaviors": data_dir / "behaviors.json",
        "model": Path(model),
    } | code_files("select", "scorer", "hardware")
    if adapter is not None:
        inputs["adapter"] = Path(adapter) / "adapter_model.safetensors"

    def build(tmp: Path) -> dict:
        candidates = json.loads((data_dir / "behaviors.json").read_text(encoding="utf-8"))["candidates"]
        pool = read_jsonl(data_dir / "pool.jsonl")
        spans = pd.read_parquet(data_dir / "pool.parquet", columns=["sample_spans"])["sample_spans"]
        scorer = CandidateScorer(model, adapter_dir=adapter, template=template)
        result = scorer.score([r["instruction"] for r in pool], candidates, embed=embed, spans=[list(s) for s in spans])
        np.savez(tmp / "scores.npz", logprobs=result.logprobs, embeddings=result.embeddings)
        label = np.array([candidates.index(r["output"]) for r in pool])
        return {"scored": len(pool), "pool_accuracy": float((result.pred == label).mean()), "bf16": scorer.bf16}

    config = {"template": template, "embed": embed}
    run_stage("score_pool", out, inputs, config, build)
    return out


def select(
    dataset: str = "default",
    preset: str = "cpu",
    per_class: int | None = None,
    lam: float = 0.5,
    strategy: str = "dds",
    confusion: str = "prose",
    adapter: Path | None = None,
    model: str | None = None,
    run_dir: Path | None = None,
    data_root: Path = REPO_ROOT / "data",
    dataset_info: Path = DATASET_INFO,
    seed: int = 42,
    from_base: bool = False,
) -> Path:
    """Score the pool (once per model), select, and write and register the pairs; returns the output folder.

    Outputs go to ``run_dir`` (default ``saves/<dataset>/<preset>``), which also
    holds the A-Tuning adapter; ``from_base`` scores with the backbone itself.
    """
    sizes = get_preset(preset)
    per_class = per_class or sizes.select_per_class
    model = model or sizes.model
    run_dir = Path(run_dir or REPO_ROOT / "saves" / dataset / preset)
    adapter = None if from_base else Path(adapter or run_dir / "a_tune")
    suffix = variant_suffix(strategy, per_class, sizes.select_per_class, confusion)
    out = run_dir / f"select{suffix}"
    data_dir = data_root / dataset
    scores = score_pool(data_dir, model, adapter, sizes.template, run_dir / "pool_scores")
    inputs = {"scores": scores / "scores.npz", "pool": data_dir / "pool.jsonl", "behaviors": data_dir / "behaviors.json"}
    inputs |= code_files("select")
    config = {"per_class": per_class, "lam": lam, "strategy": strategy, "confusion": confusion, "seed": seed}

    def build(tmp: Path) -> dict:
        vocabulary = json.loads((data_dir / "behaviors.json").read_text(encoding="utf-8"))
        candidates = vocabulary["candidates"]
        groups = {b["name"]: b["group"] for b in vocabulary["behaviors"]}
        is_anchor = np.array([groups[c] == "anchor" for c in candidates])
        pool = read_jsonl(data_dir / "pool.jsonl")
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
                "D": difficulty(p_true, pred, label, is_anchor, lam, confusion),
            }
        )
        scored = build_selection(scored, embeddings, per_class, strategy, seed)
        rejected = np.asarray(candidates)[rejected_candidates(probs, label)]
        chosen_rows = np.flatnonzero(scored["selected"].to_numpy())
        pairs = [
            {"instruction": pool[i]["instruction"], "input": "", "chosen": pool[i]["output"], "rejected": rejected[i]}
            for i in chosen_rows
        ]
        sft = [{"instruction": pool[i]["instruction"], "input": "", "output": pool[i]["output"]} for i in chosen_rows]
        scored.to_csv(tmp / "scored.csv", index=False)
        for name, records in (("pairs.jsonl", pairs), ("selected_sft.jsonl", sft)):
            (tmp / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        counts = scored.groupby("label")["selected"].sum()
        short = sorted(counts[counts < per_class].index)
        if short:
            logger.info("%d classes had fewer than F=%d samples and contribute all they have: %s", len(short), per_class, short)
        return {
            "scored": len(scored),
            "pairs": len(pairs),
            "pool_accuracy": float((pred == label).mean()),
            "classes_short_of_F": short,
        }

    run_stage(f"select:{strategy}", out, inputs, config, build)
    publish(out, data_dir, dataset, suffix, dataset_info)
    return out


def publish(out: Path, data_dir: Path, dataset: str, suffix: str, dataset_info: Path) -> None:
    """Copy the selection next to the data set under a name fixed per data set and variant, and register it.

    The registry entries then never change with the preset or the run, so
    ``llamafactory_configs/b_tune.yaml`` can name them as written.
    """
    for kind, extra in (("pairs", {"ranking": True, "columns": PAIR_COLUMNS}), ("selected_sft", {"columns": SFT_COLUMNS})):
        target = data_dir / f"{kind}{suffix}.jsonl"
        with atomic_output(target) as tmp:
            shutil.copyfile(out / f"{kind}.jsonl", tmp)
        register({f"{dataset}_{kind}{suffix}": {"file_name": registry_path(target, dataset_info), **extra}}, dataset_info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--per-class", type=int, help="F, samples selected per class (default: the preset's)")
    parser.add_argument("--lam", type=float, default=0.5, help="lambda, weight of 1 - p(y|x) in the difficulty")
    parser.add_argument("--strategy", choices=STRATEGIES, default="dds", help="random = w/o DDS, topk = w/o KMeans")
    parser.add_argument("--confusion", choices=CONFUSIONS, default="prose", help="reading of the confusion term (see above)")
    parser.add_argument("--adapter", type=Path, help="A-Tuning adapter (default: saves/<dataset>/<preset>/a_tune)")
    parser.add_argument("--model", help="base model folder (default: the preset's)")
    parser.add_argument("--run-dir", type=Path, help="default: saves/<dataset>/<preset>")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(select(args.dataset, args.preset, args.per_class, args.lam, args.strategy, args.confusion, args.adapter, args.model, args.run_dir))


if __name__ == "__main__":
    main()
