"""DPO pairs from scored samples: the rejected answer (with a cap per label), and what a set of pairs says.

Shared by the selection (pairs from the first-stage model) and ``sft_dpo`` (pairs
rebuilt from the sft variant's own wrong answers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..eval.metrics import REPORT_GROUPS, top_k_hits
from ..extras.errors import UserError

RANK_KS = (1, 5, 10)


def rejected_candidates(probs: np.ndarray, label: np.ndarray, cap: int | None = None) -> np.ndarray:
    """y_hat where it is wrong, else the most probable wrong candidate; with ``cap``, no candidate is rejected more
    than ``cap`` times: rows claim their labels in order of how sure the model is of its best wrong one, and a row
    whose best wrong label is taken rejects its next most probable free one."""
    masked = probs.copy()
    masked[np.arange(len(label)), label] = -np.inf
    if cap is None:
        return masked.argmax(axis=1)
    if cap * (probs.shape[1] - 1) < len(label):
        raise UserError(
            f"--max_pairs_per_rejected {cap}: {len(label)} pairs need at least {-(-len(label) // (probs.shape[1] - 1))} "
            f"per label over {probs.shape[1] - 1} wrong candidates"
        )
    taken = np.zeros(probs.shape[1], dtype=int)
    rejected = np.empty(len(label), dtype=int)
    for row in np.argsort(-masked.max(axis=1), kind="stable"):
        candidate = next(c for c in np.argsort(-masked[row], kind="stable") if c != label[row] and taken[c] < cap)
        rejected[row] = candidate
        taken[candidate] += 1
    return rejected


def rank_diagnostics(logprobs: np.ndarray, label: np.ndarray, report_group: np.ndarray) -> dict:
    """Hit@1/5/10 of the true label among the candidates, per report group of the label: whether the model that
    scored these samples gives a group's answers any rank at all (DPO cannot lift what sits at the bottom)."""
    found = {}
    for group in REPORT_GROUPS:
        rows = report_group[label] == group
        if rows.any():
            found[group] = {"n": int(rows.sum())} | top_k_hits(logprobs[rows], label[rows], RANK_KS)
    return found


def pair_diagnostics(pairs: list[dict]) -> dict:
    """How many pairs each label is the rejected answer of, most first; and how many distinct labels are rejected."""
    counts = pd.Series([p["rejected"] for p in pairs], dtype=object).value_counts()
    return {"pairs": len(pairs), "distinct_rejected": len(counts), "rejected_counts": {str(k): int(v) for k, v in counts.items()}}
