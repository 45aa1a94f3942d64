"""Samples, the 8:1:1 user split, behavior groups and the two test sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behaviorlm_lf.data.samples import SampleConfig, build_sample_sets, filter_behaviors, sample_frame
from behaviorlm_lf.data.simulator import simulate_events
from behaviorlm_lf.extras.errors import BadInputError


@pytest.fixture(scope="module")
def events():
    return simulate_events(n_users=60, days=10, seed=3)


def users_of(sets, name):
    return set(np.asarray(sets.events.users)[sets.events.user[sets.sets[name]]])


def test_users_split_8_1_1_disjoint_and_seeded(events):
    sets = build_sample_sets(events, SampleConfig(seed=1, natural_test_fraction=1.0))
    train, valid, test = (users_of(sets, n) for n in ("all_train", "valid", "test_natural"))
    assert (len(train), len(valid), len(test)) == (48, 6, 6)
    assert not (train & valid or train & test or valid & test)
    again = build_sample_sets(events, SampleConfig(seed=1, natural_test_fraction=1.0))
    assert all(np.array_equal(sets.sets[k], again.sets[k]) for k in sets.sets)
    other = build_sample_sets(events, SampleConfig(seed=2, natural_test_fraction=1.0))
    assert users_of(other, "test_natural") != test


def test_sample_is_last_history_len_events_and_next_context(events):
    sets = build_sample_sets(events, SampleConfig(history_len=5))
    target = int(sets.sets["valid"][0])
    row = sample_frame(sets.events, np.array([target]), 5).iloc[0]
    user_events = events.iloc[target - 5 : target + 1]
    assert user_events["user"].nunique() == 1
    assert list(row.hist_behavior) == user_events["behavior"].astype(str).tolist()[:5]
    assert row.label == user_events["behavior"].iloc[5]
    assert row.hour == user_events["time"].iloc[5].hour and row.dow == user_events["time"].iloc[5].dayofweek


@pytest.mark.parametrize("threshold", [0.005, 0.01, 0.02])
def test_groups_come_from_training_frequencies(events, threshold):
    sets = build_sample_sets(events, SampleConfig(anchor_threshold=threshold))
    table = sets.behavior_table
    train_users = users_of(sets, "all_train")
    train_events = events[events["user"].astype(str).isin(train_users)]
    freq = train_events["behavior"].astype(str).value_counts(normalize=True)
    expected = {name: freq.get(name, 0.0) for name in table["name"]}
    assert np.allclose(table["freq"], [expected[n] for n in table["name"]])
    assert (table["group"].eq("anchor") == (table["freq"] > threshold)).all()
    report = table.set_index("name")["report_group"]
    assert (report[table.set_index("name")["freq"] > 0.05] == "head").all()
    assert (report[table.set_index("name")["freq"] < 0.01] == "tail").all()
    anchor_labels = sets.events.behavior[sets.sets["anchor_train"]]
    assert table["group"].to_numpy()[anchor_labels].tolist() == ["anchor"] * len(anchor_labels)


def test_balanced_set_caps_per_class_avoids_natural_samples_and_records_shortfalls(events):
    config = SampleConfig(balanced_per_class=6, natural_test_fraction=0.5)
    sets = build_sample_sets(events, config)
    balanced, natural = sets.sets["test_balanced"], sets.sets["test_natural"]
    assert not set(balanced) & set(natural)
    assert users_of(sets, "test_balanced") <= users_of(sets, "test_natural") | users_of(sets, "test_balanced")
    counts = np.bincount(sets.events.behavior[balanced], minlength=len(sets.events.behaviors))
    assert counts.max() <= 6
    short = {name for name, n in zip(sets.events.behaviors, counts) if n < 6}
    assert set(sets.stats["balanced_short_classes"]) == short and short
    assert sets.behavior_table["balanced_test"].tolist() == counts.tolist()


def test_users_with_too_few_events_are_skipped_and_counted(events):
    few = pd.DataFrame(
        {"user": ["zz"] * 3, "time": pd.date_range("2024-01-01", periods=3, freq="h"), "place": "home", "behavior": "Music"}
    )
    sets = build_sample_sets(pd.concat([events, few], ignore_index=True), SampleConfig())
    assert sets.stats["users_skipped_too_few_events"] == 1
    assert "zz" not in set().union(*(users_of(sets, n) for n in sets.sets))


def test_label_cut_keeps_top_k_or_min_count_and_drops_other_events(events):
    counts = events["behavior"].value_counts()
    kept, stats = filter_behaviors(events, top_k=10, min_count=None)
    assert set(kept["behavior"].astype(str)) == set(counts.index[:10])
    assert stats["events_dropped_by_label_cut"] == counts.iloc[10:].sum()
    kept, _ = filter_behaviors(events, top_k=None, min_count=50)
    assert set(kept["behavior"].astype(str)) == set(counts[counts >= 50].index)


def test_label_set_without_tail_or_anchor_is_an_error(events):
    uniform = events.copy()
    uniform["behavior"] = np.array(["A", "B", "C", "D"])[np.arange(len(events)) % 4]
    with pytest.raises(BadInputError, match="no tail behavior") as caught:
        build_sample_sets(uniform, SampleConfig(), source="log.csv")
    assert caught.value.field == "behavior" and "log.csv" in str(caught.value)
    with pytest.raises(BadInputError, match="no anchor behavior"):
        build_sample_sets(events, SampleConfig(anchor_threshold=0.99))


def test_too_few_users_for_a_user_split_suggests_time_split(events):
    two = events[events["user"].isin(["u0000", "u0001"])]
    with pytest.raises(BadInputError, match="--split-by time"):
        build_sample_sets(two, SampleConfig())
    sets = build_sample_sets(two, SampleConfig(split_by="time", anchor_threshold=0.02))
    assert all(len(sets.sets[name]) for name in ("all_train", "valid", "test_natural"))


def test_a_label_cut_that_removes_a_whole_user_leaves_no_gap_in_the_user_codes():
    """Issue 10.8: the split array was filled by position and read by category code; a removed user broke it."""
    rows = []
    for u in range(10):
        for t in range(30):
            behavior = "rare" if u == 3 else ("x" if t % 3 else "y")
            rows.append({"user": f"u{u:02d}", "time": pd.Timestamp("2024-03-04") + pd.Timedelta(hours=t),
                         "place": "home", "behavior": behavior})
    events = pd.DataFrame(rows)
    for column in ("user", "place", "behavior"):
        events[column] = events[column].astype("category")
    sets = build_sample_sets(events, SampleConfig(history_len=5, top_k=2, anchor_threshold=0.4, seed=0))
    users = set(np.asarray(sets.events.users)[sets.events.user])
    assert users == {f"u{u:02d}" for u in range(10)} - {"u03"}
    assert sets.stats["events_dropped_by_label_cut"] == 30
    assert sorted(sets.stats["events_by_split"].values()) == sorted([30 * 7, 30, 30])
