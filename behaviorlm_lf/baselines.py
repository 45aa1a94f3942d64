"""Non-LLM baselines: the floors a fine-tuned language model must clear.

    behaviorlm baseline [--dataset default] [--preset cpu] --method popularity|context|markov|sasrec|bert4rec
        [--seed 0] [--epochs N]

Every baseline is fit on the whole training split (``train_events.parquet``: all
events of the training users), as a user who holds the log would fit it, not on
the LLM's capped training sample; the sequence models stop early on the
validation users' events (``valid_events.parquet``). Each scores every candidate;
the CLI evaluates on ``test_natural`` and ``test_balanced`` and writes
``reports/<data>/<preset>/<method>/`` with :func:`behaviorlm_lf.metrics.write_report`,
recording both training sizes (the baseline's events and the LLM's samples).

* ``popularity``: training behavior frequency.
* ``context``: behavior frequency at the next event's (day of week, hour, place),
  backing off to (hour, place), (place), then popularity.
* ``markov``: first-order Markov chain from the last history behavior to the
  next one, over every consecutive pair of a training user's events, add-one
  smoothed; a behavior never seen as a state backs off to popularity.
* ``sasrec``: SASRec (Kang & McAuley, ICDM 2018), see :class:`SASRec`.
* ``bert4rec``: BERT4Rec (Sun et al., CIKM 2019), see :class:`BERT4Rec`.

The sequence models read behavior IDs only, like the paper's traditional rows.
Count models return smoothed probabilities, so an unseen class keeps a small
nonzero score and the metrics' ``p_label`` stays meaningful.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .cache import run_stage
from .errors import BadInputError, MissingStageError, user_errors_exit
from .hparams import RunArguments, parse
from .metrics import PAPER_METRICS, label_indexes, write_report

logger = logging.getLogger(__name__)

METHODS = ("popularity", "context", "markov", "sasrec", "bert4rec")
TEST_SETS = ("test_natural", "test_balanced")
SAMPLE_COLUMNS = ("hist_behavior", "dow", "hour", "place", "label")
EVENT_COLUMNS = ("user", "dow", "hour", "place", "behavior")


class Baseline:
    """scikit-learn-style: ``fit`` on events (user, hour, place, behavior, in user and time order),
    ``predict_proba`` on samples (hist_behavior, hour, place) over the candidate list."""

    def __init__(self, candidates: Sequence[str]):
        self.candidates = list(candidates)
        self.fit_info_: dict = {}

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Baseline:
        raise NotImplementedError

    def predict_proba(self, samples: pd.DataFrame) -> np.ndarray:
        """``[len(samples), len(candidates)]`` probabilities, rows summing to 1."""
        raise NotImplementedError

    def _codes(self, events: pd.DataFrame) -> np.ndarray:
        return label_indexes(events["behavior"], self.candidates)

    def _histories(self, samples: pd.DataFrame) -> np.ndarray:
        """``[N, L]`` candidate indexes of the history behaviors, oldest first."""
        lengths = {len(history) for history in samples["hist_behavior"]}
        if len(lengths) != 1:
            raise ValueError(f"histories must all have one length, found lengths {sorted(lengths)}")
        flat = np.concatenate([np.asarray(history, dtype=object) for history in samples["hist_behavior"]])
        return label_indexes(flat, self.candidates).reshape(len(samples), lengths.pop())


def consecutive_pairs(events: pd.DataFrame, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) codes of every pair of consecutive events of the same user."""
    same_user = events["user"].to_numpy()[1:] == events["user"].to_numpy()[:-1]
    return codes[:-1][same_user], codes[1:][same_user]


class Popularity(Baseline):
    """Training behavior frequency, add-one smoothed."""

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Popularity:
        counts = np.bincount(self._codes(train), minlength=len(self.candidates))
        self.probs_ = (counts + 1.0) / (counts.sum() + len(self.candidates))
        return self

    def predict_proba(self, samples: pd.DataFrame) -> np.ndarray:
        return np.tile(self.probs_, (len(samples), 1))


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


def _hour_place(frame: pd.DataFrame) -> pd.Series:
    return frame["hour"].astype(int).astype(str) + "@" + frame["place"].astype(str)


def _day_hour_place(frame: pd.DataFrame) -> pd.Series:
    return frame["dow"].astype(int).astype(str) + ":" + _hour_place(frame)


class Context(Baseline):
    """Behavior frequency at the next event's (day of week, hour, place), backing off to (hour, place), to
    (place), then popularity.

    Each level is the counts of its context plus one pseudo-count spread as the
    level below: ``p = (counts + p_below) / (n + 1)``. Counts are integers and
    ``p_below`` sums to 1, so the argmax is exactly the back-off rule (most
    frequent behavior in the context, ties and unseen contexts resolved by the
    level below).
    """

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Context:
        codes = self._codes(train)
        self.popularity_ = Popularity(self.candidates).fit(train)
        self.levels_ = [
            (key, _count_table(key(train), codes, len(self.candidates)))
            for key in (lambda f: f["place"].astype(str), _hour_place, _day_hour_place)
        ]
        return self

    def predict_proba(self, samples: pd.DataFrame) -> np.ndarray:
        probs = self.popularity_.predict_proba(samples)
        for key, table in self.levels_:  # coarsest first, each level backing off to the one before
            keys = key(samples)
            counts = _lookup(*table, keys)
            probs = (counts + probs) / (counts.sum(axis=1, keepdims=True) + 1.0)
        return probs


class Markov(Baseline):
    """First-order Markov chain last behavior -> next behavior, add-one smoothed, popularity for unseen states."""

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Markov:
        before, after = consecutive_pairs(train, self._codes(train))
        self.transitions_ = np.zeros((len(self.candidates), len(self.candidates)))
        np.add.at(self.transitions_, (before, after), 1.0)
        self.popularity_ = Popularity(self.candidates).fit(train)
        self.fit_info_ = {"transitions": int(self.transitions_.sum())}
        return self

    def predict_proba(self, samples: pd.DataFrame) -> np.ndarray:
        counts = self.transitions_[self._histories(samples)[:, -1]]
        seen = counts.sum(axis=1, keepdims=True)
        smoothed = (counts + 1.0) / (seen + len(self.candidates))
        return np.where(seen > 0, smoothed, self.popularity_.predict_proba(samples))


def user_windows(events: pd.DataFrame, codes: np.ndarray, length: int, pad: int) -> np.ndarray:
    """Each user's behavior sequence cut into ``[n, length]`` windows that overlap by one event.

    Consecutive windows share their boundary event, so every transition of the
    training split is a target exactly once. A user's last, shorter window is
    left-padded with ``pad``, as SASRec and BERT4Rec pad short sequences.
    """
    windows = []
    users = events["user"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(users)]):
        sequence = codes[start:end]
        for first in range(0, max(len(sequence) - 1, 1), length - 1):
            chunk = sequence[first : first + length]
            if len(chunk) >= 2:
                windows.append(np.r_[np.full(length - len(chunk), pad), chunk])
    return np.array(windows, dtype=np.int64).reshape(-1, length)


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

    Item embedding (scaled by sqrt(hidden), the padding item zero) plus a learned
    positional embedding, dropout, then ``blocks`` causal self-attention blocks
    (layer norm on the query, attention, residual; layer norm, point-wise FFN
    with residual), a final layer norm, and logits as dot products with the
    shared item embedding (the padding item is never predicted).
    """

    def __init__(self, n_items: int, max_len: int, hidden: int, blocks: int, heads: int, dropout: float):
        super().__init__()
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=n_items)
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
        return self.last_norm(x) @ self.item_embedding.weight[: self.n_items].T


class BERT4RecNetwork(nn.Module):
    """BERT4Rec (Sun et al. 2019): a bidirectional Transformer encoder over the item sequence.

    Item (plus padding and [mask]) and learned positional embeddings, layer norm
    and dropout, ``blocks`` post-norm Transformer layers with GELU, then the
    output projection of the paper: a GELU feed-forward layer and layer norm,
    and logits as dot products with the shared item embedding plus a bias.
    """

    def __init__(self, n_items: int, max_len: int, hidden: int, blocks: int, heads: int, dropout: float):
        super().__init__()
        self.n_items, self.pad, self.mask = n_items, n_items, n_items + 1
        self.item_embedding = nn.Embedding(n_items + 2, hidden, padding_idx=self.pad)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.projection = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))
        self.bias = nn.Parameter(torch.zeros(n_items))
        for module in self.modules():  # BERT's initialisation: truncated normal, std 0.02
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids (some [mask]) -> ``[B, L, n_items]`` logits of the item at each position."""
        positions = torch.arange(items.shape[1], device=items.device)
        x = self.dropout(self.norm(self.item_embedding(items) + self.position_embedding(positions)))
        x = self.encoder(x, src_key_padding_mask=items == self.pad)
        return self.projection(x) @ self.item_embedding.weight[: self.n_items].T + self.bias


class SequenceModel(Baseline):
    """Shared training of the two sequence recommenders: Adam, early stopping on validation accuracy.

    Training windows are the training users' event sequences cut by
    :func:`user_windows` (length L + 1, L the samples' history length). After each
    epoch the validation accuracy of the windows' targets decides early stopping
    (ties broken by validation loss) and the best epoch's weights are kept.
    Seeded: the same seed and data give the same model.
    """

    network_class: type[nn.Module]

    def __init__(
        self,
        candidates: Sequence[str],
        hidden: int = 64,
        blocks: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        lr: float = 1e-3,
        batch_size: int = 128,
        epochs: int = 100,
        patience: int = 10,
        history_len: int = 20,
        seed: int = 0,
        device: str = "cpu",
    ):
        super().__init__(candidates)
        self.hidden, self.blocks, self.heads, self.dropout = hidden, blocks, heads, dropout
        self.lr, self.batch_size, self.epochs, self.patience = lr, batch_size, epochs, patience
        self.history_len, self.seed, self.device = history_len, seed, device

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> SequenceModel:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        torch.manual_seed(self.seed)
        self.generator_ = torch.Generator().manual_seed(self.seed)
        pad, length = len(self.candidates), self.history_len + 1
        windows = torch.as_tensor(user_windows(train, self._codes(train), length, pad))
        valid_windows = torch.as_tensor(user_windows(valid, self._codes(valid), length, pad)) if valid is not None else None
        self.network_ = self.network_class(
            len(self.candidates), self.max_len, self.hidden, self.blocks, self.heads, self.dropout
        ).to(self.device)
        optimizer = torch.optim.Adam(self.network_.parameters(), lr=self.lr, betas=(0.9, 0.98))
        best, best_state, waited = None, None, 0
        self.fit_info_ = {"train_windows": len(windows), "train_events": len(train)}
        progress = tqdm(range(1, self.epochs + 1), desc=type(self).__name__, unit="epoch")
        for epoch in progress:
            self.network_.train()
            total = 0.0
            for batch in torch.randperm(len(windows), generator=self.generator_).split(self.batch_size):
                loss = self._loss(windows[batch].to(self.device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            self.fit_info_ |= {"epochs_run": epoch, "train_loss": total / len(windows)}
            if valid_windows is None:
                continue
            accuracy, valid_loss = self._validate(valid_windows.to(self.device))
            progress.set_postfix(loss=f"{total / len(windows):.3f}", val_acc=f"{accuracy:.3f}")
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

    def predict_proba(self, samples: pd.DataFrame) -> np.ndarray:
        histories = torch.as_tensor(self._histories(samples))
        if histories.shape[1] != self.history_len:
            raise ValueError(f"histories have length {histories.shape[1]}; the model was trained for {self.history_len}")
        self.network_.eval()
        with torch.no_grad():
            logits = torch.cat([self._next_logits(chunk.to(self.device)) for chunk in histories.split(1024)])
        return torch.softmax(logits.double(), dim=1).cpu().numpy()


class SASRec(SequenceModel):
    """SASRec trained on behavior IDs, the next behavior as target at every position (its own objective).

    A softmax cross-entropy over all candidates replaces the original's one
    sampled negative (common, and exact for a few dozen items); padded positions
    are neither inputs that matter (masked by causality and padding) nor targets.
    """

    network_class = SASRecNetwork

    @property
    def max_len(self) -> int:
        return self.history_len

    def _targets(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = windows[:, :-1], windows[:, 1:].clone()
        targets[inputs == self.network_.n_items] = -100  # no target after a padding input
        targets[targets == self.network_.n_items] = -100
        return inputs, targets

    def _loss(self, windows: torch.Tensor) -> torch.Tensor:
        inputs, targets = self._targets(windows)
        return nn.functional.cross_entropy(self.network_(inputs).flatten(0, 1), targets.flatten(), ignore_index=-100)

    @torch.no_grad()
    def _validate(self, windows: torch.Tensor) -> tuple[float, float]:
        self.network_.eval()
        inputs, targets = self._targets(windows)
        logits = torch.cat([self.network_(chunk) for chunk in inputs.split(1024)]).flatten(0, 1)
        targets = targets.flatten()
        scored = targets != -100
        accuracy = (logits[scored].argmax(dim=1) == targets[scored]).double().mean().item()
        return accuracy, nn.functional.cross_entropy(logits[scored], targets[scored]).item()

    def _next_logits(self, histories: torch.Tensor) -> torch.Tensor:
        return self.network_(histories)[:, -1]


class BERT4Rec(SequenceModel):
    """BERT4Rec trained with its Cloze objective on behavior IDs.

    Each training window has a share ``mask_prob`` of its items (at least one)
    replaced by [mask] and the encoder predicts them from both sides; to predict
    the next behavior, [mask] is appended after the history, as in the paper.
    Validation masks each validation window's last item.
    """

    network_class = BERT4RecNetwork
    mask_prob = 0.2

    @property
    def max_len(self) -> int:
        return self.history_len + 1

    def _loss(self, windows: torch.Tensor) -> torch.Tensor:
        real = windows != self.network_.pad
        draw = torch.rand(windows.shape, generator=self.generator_).to(windows.device)
        masked = real & (draw < self.mask_prob)
        masked[torch.arange(len(windows)), draw.masked_fill(~real, 2.0).argmin(dim=1)] = True  # at least one
        inputs = windows.masked_fill(masked, self.network_.mask)
        targets = windows.masked_fill(~masked, -100)
        return nn.functional.cross_entropy(self.network_(inputs).flatten(0, 1), targets.flatten(), ignore_index=-100)

    @torch.no_grad()
    def _validate(self, windows: torch.Tensor) -> tuple[float, float]:
        self.network_.eval()
        inputs = windows.clone()
        inputs[:, -1] = self.network_.mask
        logits = torch.cat([self.network_(chunk)[:, -1] for chunk in inputs.split(1024)])
        targets = windows[:, -1]
        return (logits.argmax(dim=1) == targets).double().mean().item(), nn.functional.cross_entropy(logits, targets).item()

    def _next_logits(self, histories: torch.Tensor) -> torch.Tensor:
        masked = torch.full((len(histories), 1), self.network_.mask, device=histories.device)
        return self.network_(torch.cat([histories, masked], dim=1))[:, -1]


def make_baseline(
    method: str, candidates: Sequence[str], seed: int = 0, epochs: int | None = None, history_len: int = 20
) -> Baseline:
    """The baseline called ``method``; ``seed``, ``epochs`` and ``history_len`` apply to the sequence models."""
    sequence_models = {"sasrec": SASRec, "bert4rec": BERT4Rec}
    if method in sequence_models:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        kwargs = {"epochs": epochs} if epochs is not None else {}
        return sequence_models[method](candidates, seed=seed, device=device, history_len=history_len, **kwargs)
    classes = {"popularity": Popularity, "context": Context, "markov": Markov}
    if method not in classes:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return classes[method](candidates)


def read_frame(path: Path, candidates: Sequence[str], columns: Sequence[str], behavior_columns: Sequence[str]) -> pd.DataFrame:
    """A Parquet file, checked: the columns baselines use, and every behavior among the candidates."""
    frame = pd.read_parquet(path)
    for column in columns:
        if column not in frame.columns:
            raise BadInputError(path, "missing column", field=column)
    known = set(candidates)
    for column in behavior_columns:
        if column == "hist_behavior":
            unknown = frame[column].map(lambda history: next((b for b in history if b not in known), None))
        else:
            unknown = frame[column].map(lambda name: None if name in known else name)
        bad = np.flatnonzero(unknown.notna().to_numpy())
        if len(bad):
            raise BadInputError(path, f"behavior {unknown.iloc[bad[0]]!r} is not a candidate", row=int(bad[0]) + 1, field=column)
    return frame


def read_set(path: Path, candidates: Sequence[str]) -> pd.DataFrame:
    """A sample set (``<set>.parquet``)."""
    return read_frame(path, candidates, SAMPLE_COLUMNS, ("label", "hist_behavior"))


def read_events(path: Path, candidates: Sequence[str]) -> pd.DataFrame:
    """A split's events (``<split>_events.parquet``)."""
    return read_frame(path, candidates, EVENT_COLUMNS, ("behavior",))


@dataclass
class BaselineArguments:
    """Which baseline to fit and how long the sequence models may train."""

    preset_key: ClassVar[str] = "baseline"
    method: Literal["popularity", "context", "markov", "sasrec", "bert4rec"] = field(
        default="popularity", metadata={"help": "the baseline"}
    )
    epochs: int | None = field(default=None, metadata={"help": "the sequence models' maximum epochs (default 100)"})


def run_baseline(run: RunArguments, args: BaselineArguments) -> Path:
    """Fit the baseline on the training split, score both test sets and write the report; returns its folder (cached).

    A cached stage like the LLM's evaluations: ``report`` and ``benchmark`` call this on every run, and SASRec's
    fit alone takes minutes on a CPU, so an unchanged data set, method and seed reuses the report.
    """
    layout = run.layout()
    if not layout.behaviors_file.is_file():
        raise MissingStageError("the data stage", layout.data_dir, f"behaviorlm data --dataset {run.dataset} --preset {run.preset}")
    events = {split: layout.set_file(f"{split}_events", ".parquet") for split in ("train", "valid")}
    inputs = {"behaviors": layout.behaviors_file} | {f"events:{k}": v for k, v in events.items()}
    inputs |= {f"set:{name}": layout.set_file(name, ".parquet") for name in TEST_SETS}

    def build(tmp: Path) -> dict:
        vocabulary = json.loads(layout.behaviors_file.read_text(encoding="utf-8"))
        candidates, behaviors = vocabulary["candidates"], vocabulary["behaviors"]
        train, valid = (read_events(path, candidates) for path in events.values())
        tests = {name: read_set(layout.set_file(name, ".parquet"), candidates) for name in TEST_SETS}
        logger.info("read %s: %d training events, %d validation events", layout.data_dir, len(train), len(valid))
        model = make_baseline(args.method, candidates, seed=run.seed, epochs=args.epochs, history_len=vocabulary["history_len"])
        fit_started = time.perf_counter()
        model.fit(train, valid)
        fit_seconds = time.perf_counter() - fit_started
        logger.info("fit %s on %d events in %.1fs %s", args.method, len(train), fit_seconds, model.fit_info_)
        scores = {name: (frame["label"].tolist(), model.predict_proba(frame)) for name, frame in tests.items()}
        extra = {
            "dataset": layout.data_name,
            "seed": run.seed,
            "train_events": len(train),
            "llm_train_samples": vocabulary["stats"]["set_sizes"]["all_train"],
            "fit_seconds": round(fit_seconds, 3),
            **model.fit_info_,
        }
        metrics = write_report(tmp, args.method, scores["test_natural"], scores["test_balanced"], candidates, behaviors, extra)
        return {k: metrics[k] for k in PAPER_METRICS}

    out_dir = layout.report_dir(args.method)
    config = {"method": args.method, "epochs": args.epochs, "seed": run.seed}
    run_stage(f"baseline:{args.method}", out_dir, inputs, config, build, code=__name__)
    return out_dir


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    run, args = parse((RunArguments, BaselineArguments), argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(run_baseline(run, args))


if __name__ == "__main__":
    main()
