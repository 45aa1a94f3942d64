"""B-Tuning sample selection: score a pool of every class with the A-tuned model, pick hard and diverse
samples per class, and write DPO pairs.

    python -m behaviorlm_lf.select --dataset default --preset cpu [--per-class 20] [--lam 0.5]
        [--strategy dds|random|topk]

Difficulty D(x) = lam * (1 - p(y|x)) + (1 - lam) * d, where d = 0 when the
model's prediction y_hat is wrong but in the same group (anchor or tail) as y,
and 1 otherwise (the paper's confusion rule). Per class, ``dds`` picks F samples
by K-means++ seeding on the prompt embeddings weighted by D / max D; ``random``
(w/o DDS) picks uniformly; ``topk`` (w/o KMeans) takes the F most difficult.
Pairs are (x, chosen = y, rejected = y_hat, or the most probable wrong
candidate where the model was right).
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
PAIR_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
SFT_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def difficulty(p_true: np.ndarray, pred: np.ndarray, label: np.ndarray, is_anchor: np.ndarray, lam: float = 0.5) -> np.ndarray:
    """D(x) from p(y|x), the predicted and true class indexes, and each class's anchor flag."""
    same_group_confusion = (pred != label) & (is_anchor[pred] == is_anchor[label])
    return lam * (1.0 - p_true) + (1.0 - lam) * np.where(same_group_confusion, 0.0, 1.0)


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


def variant_suffix(strategy: str, per_class: int, preset_per_class: int) -> str:
    """Name suffix of a selection variant's folder and pairs: "" for DDS at the preset's F, else e.g. "_random_F5"."""
    return ("" if strategy == "dds" else f"_{strategy}") + ("" if per_class == preset_per_class else f"_F{per_class}")


def select(
    dataset: str = "default",
    preset: str = "cpu",
    per_class: int | None = None,
    lam: float = 0.5,
    strategy: str = "dds",
    adapter: Path | None = None,
    model: str | None = None,
    run_dir: Path | None = None,
    data_root: Path = REPO_ROOT / "data",
    dataset_info: Path = DATASET_INFO,
    seed: int = 42,
    from_base: bool = False,
) -> Path:
    """Score the pool, select, and write and register the pairs; returns the output folder.

    Outputs go to ``run_dir`` (default ``saves/<dataset>/<preset>``), which also
    holds the A-Tuning adapter; ``from_base`` scores with the backbone itself
    (the "w/o A-Tuning" ablation).
    """
    from .scorer import CandidateScorer

    sizes = get_preset(preset)
    per_class = per_class or sizes.select_per_class
    model = model or sizes.model
    run_dir = Path(run_dir or REPO_ROOT / "saves" / dataset / preset)
    adapter = adapter or run_dir / "a_tune"
    suffix = variant_suffix(strategy, per_class, sizes.select_per_class)
    out = run_dir / f"select{suffix}"
    data_dir = data_root / dataset
    inputs = {"pool": data_dir / "pool.jsonl", "behaviors": data_dir / "behaviors.json", "model": Path(model)}
    if not from_base:
        inputs["adapter"] = Path(adapter) / "adapter_model.safetensors"
    inputs |= code_files("select", "scorer")
    config = {"per_class": per_class, "lam": lam, "strategy": strategy, "seed": seed, "template": sizes.template, "from_base": from_base}

    def build(tmp: Path) -> dict:
        vocabulary = json.loads((data_dir / "behaviors.json").read_text(encoding="utf-8"))
        candidates = vocabulary["candidates"]
        groups = {b["name"]: b["group"] for b in vocabulary["behaviors"]}
        is_anchor = np.array([groups[c] == "anchor" for c in candidates])
        pool = read_jsonl(data_dir / "pool.jsonl")
        label = np.array([candidates.index(r["output"]) for r in pool])
        scorer = CandidateScorer(model, adapter_dir=None if from_base else adapter, template=sizes.template)
        result = scorer.score([r["instruction"] for r in pool], candidates)
        p_true = result.probs[np.arange(len(label)), label]
        scored = pd.DataFrame(
            {
                "sample_id": [f"pool-{i}" for i in range(len(pool))],
                "label": np.asarray(candidates)[label],
                "group": np.where(is_anchor[label], "anchor", "tail"),
                "p_true": p_true,
                "y_hat": np.asarray(candidates)[result.pred],
                "D": difficulty(p_true, result.pred, label, is_anchor, lam),
            }
        )
        scored = build_selection(scored, result.embeddings, per_class, strategy, seed)
        rejected = np.asarray(candidates)[rejected_candidates(result.probs, label)]
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
            "pool_accuracy": float((result.pred == label).mean()),
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
    parser.add_argument("--adapter", type=Path, help="A-Tuning adapter (default: saves/<dataset>/<preset>/a_tune)")
    parser.add_argument("--model", help="base model folder (default: the preset's)")
    parser.add_argument("--run-dir", type=Path, help="default: saves/<dataset>/<preset>")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(select(args.dataset, args.preset, args.per_class, args.lam, args.strategy, args.adapter, args.model, args.run_dir))


if __name__ == "__main__":
    main()
