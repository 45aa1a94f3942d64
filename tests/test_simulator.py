"""The embedded default data set: schema, determinism and the statistics the experiments rely on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behaviorlm_lf.data import simulator
from behaviorlm_lf.data.simulator import BEHAVIORS, PLACES, simulate_events

# Rare behaviors whose trigger is the next event's context alone (day, hour, place), and those whose trigger
# includes the previous behavior.
CONTEXT_TRIGGERED = ["Alarm", "Animation", "Video call", "Banking", "Travel booking", "Grocery delivery", "Sports match"]
AFTER = {"Fitness tracking": "Exercise", "Note taking": "Calendar", "Parking": "Navigation"}
HABITS = ["Podcast", "Audiobook", "Language learning", "Stock trading"]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return simulate_events()


@pytest.fixture(scope="module")
def shares(events) -> pd.Series:
    return events["behavior"].value_counts(normalize=True)


def _next_behavior(events: pd.DataFrame) -> pd.Series:
    """The same user's next behavior, NaN after a user's last event."""
    same_user = events["user"].eq(events["user"].shift(-1))
    return events["behavior"].shift(-1).where(same_user)


def _mean_pairwise_tv(events: pd.DataFrame) -> float:
    """Mean total-variation distance between the behavior distributions of all pairs of users."""
    per_user = pd.crosstab(events["user"], events["behavior"], normalize="index").to_numpy()
    distance = 0.5 * np.abs(per_user[:, None, :] - per_user[None, :, :]).sum(axis=-1)
    return distance[np.triu_indices(len(per_user), k=1)].mean()


def test_same_seed_same_frame_other_seed_other_frame():
    small = simulate_events(n_users=20, days=7, seed=3)
    pd.testing.assert_frame_equal(small, simulate_events(n_users=20, days=7, seed=3))
    assert not small.equals(simulate_events(n_users=20, days=7, seed=4))


def test_schema_and_order(events):
    assert list(events.columns) == ["user", "time", "place", "behavior"]
    assert isinstance(events.index, pd.RangeIndex) and events.index.start == 0
    assert events["time"].dtype == np.dtype("datetime64[ns]")
    for column in ("user", "place", "behavior"):
        assert pd.api.types.is_string_dtype(events[column])
    assert events["user"].str.fullmatch(r"u\d{4}").all()
    assert events["user"].nunique() == 300
    assert set(events["place"]) <= set(PLACES)
    assert set(events["behavior"]) <= set(BEHAVIORS)
    assert events["user"].is_monotonic_increasing
    assert (events.groupby("user")["time"].diff().dropna() > pd.Timedelta(0)).all()
    assert (events["time"].dt.second == 0).all() and events["time"].dt.hour.between(6, 23).all()


def test_daily_volume(events):
    per_day = events.groupby(["user", events["time"].dt.date]).size()
    assert per_day.between(6, 20).all()
    assert 11 <= per_day.mean() <= 15
    assert events["time"].dt.date.nunique() == 28


def test_behavior_names_render_in_prompts():
    assert 30 <= len(BEHAVIORS) == len(set(BEHAVIORS)) <= 40
    for name in BEHAVIORS:
        assert name[0].isupper() and not set(name) & set(",()"), name


def test_long_tail_like_the_paper(events, shares):
    assert set(shares.index) == set(BEHAVIORS)
    anchors = shares[shares > 0.01]
    assert 0.3 <= shares.max() <= 0.45
    assert 15 <= len(anchors) <= 20
    assert 0.93 <= anchors.sum() <= 0.99
    assert 2e-4 <= shares.min() <= 1e-3
    assert events["behavior"].value_counts().min() >= 5


def test_weekday_routine(events):
    weekend = events["time"].dt.dayofweek >= 5
    hour = events["time"].dt.hour
    assert not (weekend & events["place"].eq("workplace")).any()
    office_hours = ~weekend & hour.between(11, 15)
    assert events.loc[office_hours, "place"].eq("workplace").mean() > 0.6
    assert events.loc[weekend, "place"].eq("other").mean() > events.loc[~weekend, "place"].eq("other").mean()


def _trigger(name: str) -> dict:
    return next(row[2] for row in simulator._TAIL if row[0] == name)


def _in_context(events: pd.DataFrame, trigger: dict) -> pd.Series:
    place = events["place"].map({p: i for i, p in enumerate(PLACES)})
    hour, dow = events["time"].dt.hour, events["time"].dt.dayofweek
    match = pd.Series(True, index=events.index)
    if "place" in trigger:
        match &= place.eq(trigger["place"])
    if "hours" in trigger:
        match &= hour.between(*trigger["hours"])
    if "days" in trigger:
        match &= dow.isin(trigger["days"])
    return match


@pytest.mark.parametrize("rare", CONTEXT_TRIGGERED)
def test_rare_behavior_is_the_most_likely_one_in_its_trigger_context(events, shares, rare):
    """What makes the tail learnable: the next event's day, hour and place point at it."""
    in_context = events.loc[_in_context(events, _trigger(rare)), "behavior"].value_counts(normalize=True)
    assert in_context.index[0] == rare
    assert in_context[rare] > 30 * shares[rare]


@pytest.mark.parametrize("rare", sorted(AFTER))
def test_rare_behavior_follows_its_trigger_behavior(events, shares, rare):
    same_user = events["user"].eq(events["user"].shift(1))
    after = events["behavior"].shift(1).where(same_user).eq(AFTER[rare]) & _in_context(events, _trigger(rare))
    assert events.loc[after, "behavior"].value_counts(normalize=True).index[0] == rare


@pytest.mark.parametrize("rare", HABITS)
def test_habits_recur_so_the_history_shows_them(events, shares, rare):
    """A habit belongs to some users: having done it recently makes it far likelier in its context."""
    did_recently = (
        events["behavior"].eq(rare).astype(int).groupby(events["user"]).transform(lambda s: s.shift(1).rolling(20, min_periods=1).sum())
        > 0
    )
    context = _in_context(events, _trigger(rare))
    rate_with = events.loc[context & did_recently, "behavior"].eq(rare).mean()
    rate_without = events.loc[context & ~did_recently, "behavior"].eq(rare).mean()
    assert rate_with > 3 * rate_without and rate_with > 0.2


def test_previous_behavior_predicts_the_next_among_frequent_ones(events, shares):
    follows = _next_behavior(events)[events["behavior"].eq("Online shopping")]
    assert follows.eq("Mobile payment").mean() > 3 * shares["Mobile payment"]


def test_users_differ_beyond_sampling_noise(events):
    shuffled = events.assign(user=np.random.default_rng(0).permutation(events["user"].to_numpy()))
    assert _mean_pairwise_tv(events) > _mean_pairwise_tv(shuffled) + 0.15


def test_rejects_empty_population():
    with pytest.raises(ValueError):
        simulate_events(n_users=0)
    with pytest.raises(ValueError):
        simulate_events(days=0)
