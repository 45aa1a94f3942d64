"""From events to samples, splits, behavior groups and the two test sets.

A sample is a user's last ``history_len`` events plus the next event's day,
hour and place; its label is the next behavior. Samples are held as indexes of
their target event into the sorted event arrays, so no history is copied until
a split is rendered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..extras.errors import BadInputError, UserError

logger = logging.getLogger(__name__)

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SPLITS = ("train", "valid", "test")
# The sets written for every data set: A-Tuning's anchor-labelled training samples, the full fine-tuning set,
# the medium+tail set of Fig. 5's reversed curriculum (labels below 5%), validation, the two test sets, B-Tuning's
# selection pool and the balanced validation set B-Tuning keeps its best epoch on (the same number of samples per
# behavior from the validation users: the paper's "best-performing model on the validation set" for a balanced goal).
SETS = ("anchor_train", "all_train", "tail_train", "valid", "test_natural", "test_balanced", "pool", "valid_balanced")
HEAD_MIN, TAIL_MAX = 0.05, 0.01  # reporting groups: head > 5%, medium 1-5%, tail < 1%


@dataclass
class SampleConfig:
    """What defines the samples and sets; presets only change the caps."""

    history_len: int = 20
    anchor_threshold: float = 0.01
    top_k: int | None = None
    min_count: int | None = None
    split_by: str = "user"
    seed: int = 0
    max_train: int | None = None
    max_valid: int | None = None
    natural_test_fraction: float = 0.5
    max_natural_test: int | None = None
    balanced_per_class: int = 500
    pool_per_class: int = 100
    valid_per_class: int = 100


@dataclass
class EventArrays:
    """Events as integer codes, sorted by user then time."""

    user: np.ndarray
    dow: np.ndarray
    hour: np.ndarray
    place: np.ndarray
    behavior: np.ndarray
    places: list[str]
    behaviors: list[str]
    users: list[str]

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> EventArrays:
        # Unused categories (a user or place whose events a label cut removed) would leave gaps in the codes.
        places, behaviors, users = (
            events[column].astype("category").cat.remove_unused_categories() for column in ("place", "behavior", "user")
        )
        return cls(
            user=users.cat.codes.to_numpy(np.int64),
            dow=events["time"].dt.dayofweek.to_numpy(np.int8),
            hour=events["time"].dt.hour.to_numpy(np.int8),
            place=places.cat.codes.to_numpy(np.int32),
            behavior=behaviors.cat.codes.to_numpy(np.int32),
            places=[str(p) for p in places.cat.categories],
            behaviors=[str(b) for b in behaviors.cat.categories],
            users=[str(u) for u in users.cat.categories],
        )


@dataclass
class SampleSets:
    """Target-event indexes of every set, each event's split, and what it took to build them."""

    events: EventArrays
    sets: dict[str, np.ndarray]
    behavior_table: pd.DataFrame
    split: np.ndarray  # per event: 0 train, 1 valid, 2 test
    stats: dict = field(default_factory=dict)

    def split_events(self, split: str) -> pd.DataFrame:
        """The events of one split as a frame (user, dow, hour, place, behavior), in user and time order.

        The baselines fit on the whole training split from these, as a user would,
        rather than on the LLM's capped sample.
        """
        rows = np.flatnonzero(self.split == SPLITS.index(split))
        arrays = self.events
        return pd.DataFrame(
            {
                "user": np.asarray(arrays.users, dtype=object)[arrays.user[rows]],
                "dow": arrays.dow[rows],
                "hour": arrays.hour[rows],
                "place": np.asarray(arrays.places, dtype=object)[arrays.place[rows]],
                "behavior": np.asarray(arrays.behaviors, dtype=object)[arrays.behavior[rows]],
            }
        )


def filter_behaviors(events: pd.DataFrame, top_k: int | None, min_count: int | None) -> tuple[pd.DataFrame, dict]:
    """Keep the ``top_k`` most frequent behaviors and/or those with at least ``min_count`` events.

    Events of the other behaviors are removed from the log, so histories hold
    only kept behaviors; the count of removed events is reported.
    """
    counts = events["behavior"].value_counts()
    keep = counts.index
    if min_count is not None:
        keep = counts[counts >= min_count].index
    if top_k is not None:
        keep = keep[:top_k]
    if len(keep) < 2 <= len(counts):  # a next-behavior task needs two candidates at least
        cut = " and ".join(flag for flag, value in (("--min-count", min_count), ("--top-k", top_k)) if value is not None)
        raise UserError(f"the label cut ({cut}) keeps {len(keep)} of {len(counts)} behaviors; the most frequent has "
                        f"{counts.iloc[0]} events and a prediction needs two candidates at least")
    kept = events[events["behavior"].isin(keep)].reset_index(drop=True)
    kept["behavior"] = kept["behavior"].astype(str).astype("category")
    stats = {
        "behaviors_in": len(counts),
        "behaviors_kept": len(keep),
        "events_in": len(events),
        "events_dropped_by_label_cut": int(len(events) - len(kept)),
    }
    if len(keep) < len(counts):
        logger.info("label cut kept %d of %d behaviors; dropped %d events", len(keep), len(counts), stats["events_dropped_by_label_cut"])
    return kept, stats


def build_sample_sets(events: pd.DataFrame, config: SampleConfig, source: str = "<events>") -> SampleSets:
    """Split, group behaviors by training frequency, and draw every set."""
    duplicates = int(events.attrs.get("exact_duplicates_dropped", 0))
    events, stats = filter_behaviors(events, config.top_k, config.min_count)
    stats["exact_duplicates_dropped"] = duplicates
    arrays = EventArrays.from_frame(events)
    n_events = len(arrays.user)
    starts = np.flatnonzero(np.r_[True, arrays.user[1:] != arrays.user[:-1]])
    lengths = np.diff(np.r_[starts, n_events])
    position = np.arange(n_events) - np.repeat(starts, lengths)
    short_users = int((lengths <= config.history_len).sum())
    stats.update(users_in=len(starts), users_skipped_too_few_events=short_users)
    if short_users:
        logger.info("skipped %d users with %d or fewer events (need history_len + 1)", short_users, config.history_len)
    targets = np.flatnonzero(position >= config.history_len)
    if len(targets) == 0:
        raise BadInputError(source, f"no user has more than history_len={config.history_len} events", field="user")

    event_split = _split_events(arrays.user, position, lengths, starts, config, source)
    behavior_table = _behavior_table(arrays, event_split, config.anchor_threshold, source)
    by_split = {name: targets[event_split[targets] == i] for i, name in enumerate(SPLITS)}
    is_anchor = behavior_table["group"].eq("anchor").to_numpy()
    below_head = behavior_table["report_group"].ne("head").to_numpy()

    def rng(set_name: str) -> np.random.Generator:
        """Each set its own stream, so that changing one set's size or threshold leaves the others as they are."""
        return np.random.default_rng([config.seed, SETS.index(set_name)])

    train = by_split["train"]
    test = rng("test_natural").permutation(by_split["test"])
    n_natural = int(round(len(test) * config.natural_test_fraction))
    if config.max_natural_test is not None:
        n_natural = min(n_natural, config.max_natural_test)
    sets = {
        "anchor_train": _cap(train[is_anchor[arrays.behavior[train]]], config.max_train, rng("anchor_train")),
        "all_train": _cap(train, config.max_train, rng("all_train")),
        "tail_train": _cap(train[below_head[arrays.behavior[train]]], config.max_train, rng("tail_train")),
        "valid": _cap(by_split["valid"], config.max_valid, rng("valid")),
        "test_natural": np.sort(test[:n_natural]),
        "test_balanced": _per_class(test[n_natural:], arrays.behavior, config.balanced_per_class, rng("test_balanced")),
        "pool": _per_class(train, arrays.behavior, config.pool_per_class, rng("pool")),
        "valid_balanced": _per_class(by_split["valid"], arrays.behavior, config.valid_per_class, rng("valid_balanced")),
    }
    balanced_counts = np.bincount(arrays.behavior[sets["test_balanced"]], minlength=len(arrays.behaviors))
    behavior_table["balanced_test"] = balanced_counts
    short = behavior_table.loc[balanced_counts < config.balanced_per_class, "name"].tolist()
    stats.update(
        events_by_split={name: int((event_split == i).sum()) for i, name in enumerate(SPLITS)},
        samples_by_split={name: len(idx) for name, idx in by_split.items()},
        set_sizes={name: len(idx) for name, idx in sets.items()},
        balanced_short_classes=short,
    )
    if short:
        logger.info("balanced test set: %d classes have fewer than %d samples", len(short), config.balanced_per_class)
    return SampleSets(arrays, sets, behavior_table, event_split, stats)


def _split_events(user, position, lengths, starts, config: SampleConfig, source: str) -> np.ndarray:
    """Split code (0 train, 1 valid, 2 test) of every event.

    By user (the paper's 8:1:1), or, for logs with too few users, by time within
    each user: the first 80% of a user's samples train, the next 10% validate.
    """
    n_users = len(starts)
    if config.split_by == "user":
        eligible = np.flatnonzero(lengths > config.history_len)
        if len(eligible) < 3:
            raise BadInputError(
                source, f"only {len(eligible)} users have enough events to split 8:1:1 by user; split by time instead (--split-by time)", field="user"
            )
        order = np.random.default_rng(config.seed).permutation(eligible)
        n_train = max(1, int(round(0.8 * len(order))))
        n_valid = max(1, int(round(0.1 * len(order))))
        n_train = min(n_train, len(order) - 2)
        user_split = np.zeros(n_users, dtype=np.int8)
        user_split[order[n_train : n_train + n_valid]] = 1
        user_split[order[n_train + n_valid :]] = 2
        return user_split[user]
    if config.split_by == "time":
        n_samples = np.maximum(np.repeat(lengths, lengths) - config.history_len, 1)
        rank = (position - config.history_len) / n_samples
        return np.select([rank < 0.8, rank < 0.9], [0, 1], 2).astype(np.int8)
    raise ValueError(f"split_by must be 'user' or 'time', got {config.split_by!r}")


def _behavior_table(arrays: EventArrays, event_split: np.ndarray, threshold: float, source: str) -> pd.DataFrame:
    """Frequencies on training events; anchor above ``threshold``; head/medium/tail for reporting."""
    counts = np.bincount(arrays.behavior[event_split == 0], minlength=len(arrays.behaviors))
    freq = counts / counts.sum()
    table = pd.DataFrame({"name": arrays.behaviors, "train_count": counts, "freq": freq})
    table["group"] = np.where(freq > threshold, "anchor", "tail")
    table["report_group"] = np.select([freq > HEAD_MIN, freq >= TAIL_MAX], ["head", "medium"], "tail")
    for group in ("anchor", "tail"):
        if not table["group"].eq(group).any():
            raise BadInputError(
                source,
                f"the label set has no {group} behavior at anchor threshold {threshold:.2%} "
                f"(frequencies {freq.min():.2%} to {freq.max():.2%}); BehaviorLM needs both",
                field="behavior",
            )
    return table


def _cap(indexes: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or len(indexes) <= limit:
        return indexes
    return np.sort(rng.choice(indexes, size=limit, replace=False))


def _per_class(indexes: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``per_class`` random indexes of each label."""
    shuffled = rng.permutation(indexes)
    frame = pd.DataFrame({"index": shuffled, "label": labels[shuffled]})
    picked = frame.groupby("label", sort=False).head(per_class)["index"].to_numpy()
    return np.sort(picked)


def sample_frame(arrays: EventArrays, targets: np.ndarray, history_len: int) -> pd.DataFrame:
    """Structured samples (history lists and next-event context) for the given target events."""
    history = targets[:, None] + np.arange(-history_len, 0)[None, :]
    places = np.asarray(arrays.places, dtype=object)
    behaviors = np.asarray(arrays.behaviors, dtype=object)
    return pd.DataFrame(
        {
            "user": np.asarray(arrays.users, dtype=object)[arrays.user[targets]],
            "hist_dow": list(arrays.dow[history]),
            "hist_hour": list(arrays.hour[history]),
            "hist_place": list(places[arrays.place[history]]),
            "hist_behavior": list(behaviors[arrays.behavior[history]]),
            "dow": arrays.dow[targets],
            "hour": arrays.hour[targets],
            "place": places[arrays.place[targets]],
            "label": behaviors[arrays.behavior[targets]],
        }
    )
