"""Non-LLM baselines: the floors a fine-tuned language model must clear.

    python -m behaviorlm_lf.baselines --dataset default --method popularity|context|markov|sasrec
        [--seed 0] [--epochs N] [--reports reports]

Every baseline is fit on ``all_train.parquet`` only, the samples the LLM's full
fine-tuning sees (SASRec also reads ``valid.parquet`` for early stopping), and
scores every candidate; the CLI evaluates on ``test_natural`` and
``test_balanced`` and writes ``reports/<dataset>/<method>/`` with
:func:`behaviorlm_lf.metrics.write_report`.

* ``popularity``: training label frequency.
* ``context``: label frequency at the next event's (hour, place), backing off
  to (place), then to popularity.
* ``markov``: first-order Markov chain from the last history behavior to the
  next one, add-one smoothed; a behavior never seen as a state backs off to
  popularity. It is fit on every consecutive pair of the training sequences
  (each sample's history followed by its label), the same transitions SASRec
  learns from.
* ``sasrec``: SASRec (Kang & McAuley, ICDM 2018), see :class:`SASRec`.

Count models return smoothed probabilities, so an unseen class keeps a small
nonzero score and the metrics' ``p_label`` stays meaningful.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .convert import REPO_ROOT
from .fileio import BadInputError
from .metrics import label_indexes, write_report

logger = logging.getLogger(__name__)

METHODS = ("popularity", "context", "markov", "sasrec")
TEST_SETS = ("test_natural", "test_balanced")
REQUIRED_COLUMNS = ("hist_behavior", "hour", "place", "label")


class Baseline:
    """Scores every candidate for a sample frame (the Parquet sets' columns); scikit-learn-style fit/predict_proba."""

    def __init__(self, candidates: Sequence[str]):
        self.candidates = list(candidates)
        self.fit_info_: dict = {}

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Baseline:
        raise NotImplementedError

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """``[len(frame), len(candidates)]`` probabilities, rows summing to 1."""
        raise NotImplementedError

    def _labels(self, frame: pd.DataFrame) -> np.ndarray:
        return label_indexes(frame["label"], self.candidates)

    def _histories(self, frame: pd.DataFrame) -> np.ndarray:
        """``[N, L]`` candidate indexes of the history behaviors, oldest first."""
        lengths = {len(history) for history in frame["hist_behavior"]}
        if len(lengths) != 1:
            raise ValueError(f"histories must all have one length, found lengths {sorted(lengths)}")
        flat = np.concatenate([np.asarray(history, dtype=object) for history in frame["hist_behavior"]])
        return label_indexes(flat, self.candidates).reshape(len(frame), lengths.pop())


class Popularity(Baseline):
    """Training label frequency, add-one smoothed."""

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Popularity:
        counts = np.bincount(self._labels(train), minlength=len(self.candidates))
        self.probs_ = (counts + 1.0) / (counts.sum() + len(self.candidates))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile(self.probs_, (len(frame), 1))


def _count_table(keys: pd.Series, labels: np.ndarray, n_classes: int) -> tuple[pd.Index, np.ndarray]:
    """Distinct keys and the ``[keys, classes]`` label counts of each."""
    codes, uniques = pd.factorize(keys)
    counts = np.zeros((len(uniques), n_classes))
    np.add.at(counts, (codes, labels), 1.0)
    return pd.Index(uniques), counts


def _lookup(index: pd.Index, counts: np.ndarray, keys: pd.Series) -> np.ndarray:
    """Counts of each key's row; zeros for a key unseen in training."""
    rows = index.get_indexer(keys)
    found = np.zeros((len(keys), counts.shape[1]))
    found[rows >= 0] = counts[rows[rows >= 0]]
    return found


class Context(Baseline):
    """Label frequency at the next event's (hour, place), backing off to (place), then popularity.

    Each level is the counts of its context plus one pseudo-count spread as the
    level below: ``p = (counts + p_below) / (n + 1)``. Counts are integers and
    ``p_below`` sums to 1, so the argmax is exactly the back-off rule (most
    frequent label in the context, ties and unseen contexts resolved by the
    level below).
    """

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Context:
        labels = self._labels(train)
        self.popularity_ = Popularity(self.candidates).fit(train)
        self.places_ = _count_table(train["place"].astype(str), labels, len(self.candidates))
        self.hour_places_ = _count_table(_hour_place(train), labels, len(self.candidates))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        probs = self.popularity_.predict_proba(frame)
        for table, keys in ((self.places_, frame["place"].astype(str)), (self.hour_places_, _hour_place(frame))):
            counts = _lookup(*table, keys)
            probs = (counts + probs) / (counts.sum(axis=1, keepdims=True) + 1.0)
        return probs


def _hour_place(frame: pd.DataFrame) -> pd.Series:
    return frame["hour"].astype(int).astype(str) + "@" + frame["place"].astype(str)


class Markov(Baseline):
    """First-order Markov chain last behavior -> next behavior, add-one smoothed, popularity for unseen states."""

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Markov:
        sequences = np.column_stack([self._histories(train), self._labels(train)])
        self.transitions_ = np.zeros((len(self.candidates), len(self.candidates)))
        np.add.at(self.transitions_, (sequences[:, :-1].ravel(), sequences[:, 1:].ravel()), 1.0)
        self.popularity_ = Popularity(self.candidates).fit(train)
        self.fit_info_ = {"transitions": int(self.transitions_.sum())}
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        counts = self.transitions_[self._histories(frame)[:, -1]]
        seen = counts.sum(axis=1, keepdims=True)
        smoothed = (counts + 1.0) / (seen + len(self.candidates))
        return np.where(seen > 0, smoothed, self.popularity_.predict_proba(frame))


class PointWiseFeedForward(nn.Module):
    """SASRec's FFN: two position-wise linear maps with ReLU and dropout, and a residual connection."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden), nn.Dropout(dropout), nn.ReLU(), nn.Linear(hidden, hidden), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SASRecNetwork(nn.Module):
    """Self-attentive sequential recommender (Kang & McAuley 2018), laid out as the authors' code.

    Item embedding (scaled by sqrt(hidden)) plus a learned positional embedding,
    dropout, then ``blocks`` causal self-attention blocks (layer norm on the
    query, attention, residual; layer norm, point-wise FFN with residual), a
    final layer norm, and logits as dot products with the shared item embedding.
    """

    def __init__(self, n_items: int, max_len: int, hidden: int, blocks: int, heads: int, dropout: float):
        super().__init__()
        self.item_embedding = nn.Embedding(n_items, hidden)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.dropout = nn.Dropout(dropout)
        self.attention_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(blocks))
        self.attentions = nn.ModuleList(
            nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True) for _ in range(blocks)
        )
        self.forward_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(blocks))
        self.forwards = nn.ModuleList(PointWiseFeedForward(hidden, dropout) for _ in range(blocks))
        self.last_norm = nn.LayerNorm(hidden, eps=1e-8)
        causal = torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids -> ``[B, L, n_items]`` logits of the item following each position."""
        length = items.shape[1]
        positions = torch.arange(length, device=items.device)
        x = self.item_embedding(items) * self.item_embedding.embedding_dim**0.5 + self.position_embedding(positions)
        x = self.dropout(x)
        mask = self.causal_mask[:length, :length]
        for norm, attention, forward_norm, feed_forward in zip(
            self.attention_norms, self.attentions, self.forward_norms, self.forwards
        ):
            query = norm(x)
            attended, _ = attention(query, x, x, attn_mask=mask, need_weights=False)
            x = feed_forward(forward_norm(query + attended))
        return self.last_norm(x) @ self.item_embedding.weight.T


class SASRec(Baseline):
    """SASRec trained on the behavior sequences alone, the next behavior as target.

    Input is the history's behavior IDs only (no day, hour or place): the paper's
    SASRec baseline is a sequential recommender without side features. Every
    position of a training sequence (history followed by label) predicts the
    behavior after it, SASRec's own objective, with a softmax cross-entropy over
    all candidates in place of the original's one sampled negative (common, and
    exact for a few dozen items). Histories all have the data set's length L, so
    ``max_len = L`` and no padding is needed. Adam; after each epoch the
    validation accuracy decides early stopping (ties broken by validation loss)
    and the best epoch's weights are kept. Validation accuracy is taken at every
    position of the validation users' sequences, as the loss is: the last
    position alone is too few predictions on a small validation set (48 in the
    cpu preset), where a lucky first epoch would stop training. Seeded: the same
    seed and data give the same model.
    """

    def __init__(
        self,
        candidates: Sequence[str],
        hidden: int = 64,
        blocks: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        lr: float = 1e-3,
        batch_size: int = 128,
        epochs: int = 200,
        patience: int = 20,
        seed: int = 0,
        device: str = "cpu",
    ):
        super().__init__(candidates)
        self.hidden, self.blocks, self.heads, self.dropout = hidden, blocks, heads, dropout
        self.lr, self.batch_size, self.epochs, self.patience = lr, batch_size, epochs, patience
        self.seed, self.device = seed, device

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> SASRec:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        sequences = torch.as_tensor(np.column_stack([self._histories(train), self._labels(train)]))
        inputs, targets = sequences[:, :-1], sequences[:, 1:]
        self.network_ = SASRecNetwork(
            len(self.candidates), inputs.shape[1], self.hidden, self.blocks, self.heads, self.dropout
        ).to(self.device)
        optimizer = torch.optim.Adam(self.network_.parameters(), lr=self.lr, betas=(0.9, 0.98))
        loss_fn = nn.CrossEntropyLoss()
        if valid is not None:
            valid_sequences = torch.as_tensor(np.column_stack([self._histories(valid), self._labels(valid)]))
            valid_inputs, valid_targets = (
                valid_sequences[:, :-1].to(self.device),
                valid_sequences[:, 1:].to(self.device),
            )
        best, best_state, waited = None, None, 0
        self.fit_info_ = {"train_sequences": len(inputs)}
        progress = tqdm(range(1, self.epochs + 1), desc="sasrec", unit="epoch")
        for epoch in progress:
            train_loss = self._train_epoch(optimizer, loss_fn, inputs, targets, generator)
            self.fit_info_ |= {"epochs_run": epoch, "train_loss": train_loss}
            if valid is None:
                progress.set_postfix(loss=f"{train_loss:.3f}")
                continue
            accuracy, valid_loss = self._validate(valid_inputs, valid_targets, loss_fn)
            progress.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{accuracy:.3f}")
            if best is None or (accuracy, -valid_loss) > best:
                best, waited = (accuracy, -valid_loss), 0
                best_state = copy.deepcopy(self.network_.state_dict())
                self.fit_info_ |= {"best_epoch": epoch, "valid_accuracy": accuracy, "valid_loss": valid_loss}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        progress.close()
        if best_state is not None:
            self.network_.load_state_dict(best_state)
        return self

    def _train_epoch(self, optimizer, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, generator) -> float:
        """One pass over the sequences in a seeded random order; returns the mean loss."""
        self.network_.train()
        total = 0.0
        for batch in torch.randperm(len(inputs), generator=generator).split(self.batch_size):
            logits = self.network_(inputs[batch].to(self.device))
            loss = loss_fn(logits.flatten(0, 1), targets[batch].to(self.device).flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / len(inputs)

    @torch.no_grad()
    def _validate(self, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> tuple[float, float]:
        """Accuracy and loss of the next-behavior predictions at every position of the validation sequences."""
        self.network_.eval()
        logits = torch.cat([self.network_(chunk) for chunk in inputs.split(1024)]).flatten(0, 1)
        targets = targets.flatten()
        return (logits.argmax(dim=1) == targets).double().mean().item(), loss_fn(logits, targets).item()

    @torch.no_grad()
    def _last_logits(self, histories: torch.Tensor) -> torch.Tensor:
        self.network_.eval()
        return torch.cat([self.network_(chunk)[:, -1] for chunk in histories.split(1024)])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        histories = torch.as_tensor(self._histories(frame)).to(self.device)
        max_len = self.network_.position_embedding.num_embeddings
        if histories.shape[1] != max_len:
            raise ValueError(f"histories have length {histories.shape[1]}; the model was trained on length {max_len}")
        return torch.softmax(self._last_logits(histories).double(), dim=1).cpu().numpy()


def make_baseline(method: str, candidates: Sequence[str], seed: int = 0, epochs: int | None = None) -> Baseline:
    """The baseline called ``method``; ``seed`` and ``epochs`` apply to SASRec (the count models are exact)."""
    if method == "sasrec":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return SASRec(candidates, seed=seed, device=device, **({"epochs": epochs} if epochs is not None else {}))
    classes = {"popularity": Popularity, "context": Context, "markov": Markov}
    if method not in classes:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return classes[method](candidates)


def read_set(path: Path, candidates: Sequence[str]) -> pd.DataFrame:
    """A Parquet set, checked: the columns baselines use, and labels and history behaviors among the candidates."""
    frame = pd.read_parquet(path)
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            raise BadInputError(path, "missing column", field=column)
    known = set(candidates)
    unknown = {
        "label": frame["label"].map(lambda label: None if label in known else label),
        "hist_behavior": frame["hist_behavior"].map(lambda history: next((b for b in history if b not in known), None)),
    }
    for column, values in unknown.items():
        bad = np.flatnonzero(values.notna().to_numpy())
        if len(bad):
            raise BadInputError(
                path, f"behavior {values.iloc[bad[0]]!r} is not a candidate", row=int(bad[0]) + 1, field=column
            )
    return frame


def run_baseline(
    dataset: str = "default",
    method: str = "popularity",
    seed: int = 0,
    epochs: int | None = None,
    reports: Path = REPO_ROOT / "reports",
    data_root: Path = REPO_ROOT / "data",
) -> Path:
    """Fit ``method`` on the training set, score both test sets and write the report; returns its folder."""
    data_dir = data_root / dataset
    vocabulary = json.loads((data_dir / "behaviors.json").read_text(encoding="utf-8"))
    candidates, behaviors = vocabulary["candidates"], vocabulary["behaviors"]
    started = time.perf_counter()
    frames = {name: read_set(data_dir / f"{name}.parquet", candidates) for name in ("all_train", "valid", *TEST_SETS)}
    logger.info("read %s: %s", data_dir, {name: len(frame) for name, frame in frames.items()})
    model = make_baseline(method, candidates, seed=seed, epochs=epochs)
    fit_started = time.perf_counter()
    model.fit(frames["all_train"], frames["valid"])
    fit_seconds = time.perf_counter() - fit_started
    logger.info("fit %s on %d samples in %.1fs %s", method, len(frames["all_train"]), fit_seconds, model.fit_info_)
    scores = {name: (frames[name]["label"].tolist(), model.predict_proba(frames[name])) for name in TEST_SETS}
    manifest = data_dir / "manifest.json"
    extra = {
        "dataset": dataset,
        "data_key": json.loads(manifest.read_text(encoding="utf-8")).get("key") if manifest.is_file() else None,
        "seed": seed,
        "train_samples": len(frames["all_train"]),
        "fit_seconds": round(fit_seconds, 3),
        **model.fit_info_,
    }
    out_dir = reports / dataset / method
    write_report(out_dir, method, scores["test_natural"], scores["test_balanced"], candidates, behaviors, extra)
    logger.info("%s done in %.1fs", method, time.perf_counter() - started)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epochs", type=int, help="SASRec's maximum epochs (default 200; early stopping usually ends sooner)"
    )
    parser.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    parser.add_argument("--data-root", type=Path, default=REPO_ROOT / "data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(run_baseline(args.dataset, args.method, args.seed, args.epochs, args.reports, args.data_root))


if __name__ == "__main__":
    main()
