"""Sequence baselines over behavior IDs: SASRec (Kang & McAuley, ICDM 2018) and BERT4Rec (Sun et al., CIKM 2019).

Trained on every training user's event sequence, stopped early on the validation users' (see :mod:`.baselines`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .count_models import Baseline

logger = logging.getLogger(__name__)


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
