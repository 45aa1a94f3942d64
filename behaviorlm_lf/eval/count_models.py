"""Counting baselines and the interface every baseline has: popularity, context popularity, a first-order Markov chain.

Each is fit on events and scores every candidate with smoothed probabilities, so an unseen class keeps a small
nonzero score (see :mod:`.baselines` for the stage that fits and evaluates them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .metrics import label_indexes


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
