"""The embedded default data set: schema, determinism and the statistics the experiments rely on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behaviorlm_lf.simulator import BEHAVIORS, PLACES, simulate_events

# Rare behavior -> its frequent neighbour and the place where both mostly occur.
RARE_NEIGHBOURS = {
    "Taxi": ("Public transport", "commute"),
    "Ride hailing": ("Public transport", "commute"),
    "Cycling": ("Exercise", "other"),
    "Fitness tracking": ("Exercise", "other"),
    "Note taking": ("Calendar", "workplace"),
    "Travel booking": ("Navigation", "other"),
}


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
    assert 0.35 <= shares.max() <= 0.45
    assert 15 <= len(anchors) <= 20
    assert 0.95 <= anchors.sum() <= 0.99
    assert 1e-4 <= shares.min() <= 1e-3
    assert events["behavior"].value_counts().min() >= 5


def test_weekday_routine(events):
    weekend = events["time"].dt.dayofweek >= 5
    hour = events["time"].dt.hour
    assert not (weekend & events["place"].eq("workplace")).any()
    office_hours = ~weekend & hour.between(11, 15)
    assert events.loc[office_hours, "place"].eq("workplace").mean() > 0.6
    assert events.loc[weekend, "place"].eq("other").mean() > events.loc[~weekend, "place"].eq("other").mean()


@pytest.mark.parametrize("rare", sorted(RARE_NEIGHBOURS))
def test_rare_behavior_occurs_where_its_frequent_neighbour_does(events, rare):
    neighbour, place = RARE_NEIGHBOURS[rare]
    at_place = events["place"].eq(place)
    chance = at_place.mean()
    rare_share = at_place[events["behavior"].eq(rare)].mean()
    neighbour_share = at_place[events["behavior"].eq(neighbour)].mean()
    assert rare_share > 3 * chance
    assert rare_share > 0.5 * neighbour_share


def test_rare_place_profiles_are_closer_to_neighbour_than_to_all_events(events):
    by_behavior = pd.crosstab(events["behavior"], events["place"], normalize="index")
    overall = events["place"].value_counts(normalize=True).reindex(by_behavior.columns)
    to_neighbour, to_overall = [], []
    for rare, (neighbour, _) in RARE_NEIGHBOURS.items():
        to_neighbour.append(0.5 * (by_behavior.loc[rare] - by_behavior.loc[neighbour]).abs().sum())
        to_overall.append(0.5 * (by_behavior.loc[rare] - overall).abs().sum())
    assert np.mean(to_neighbour) < 0.3 * np.mean(to_overall)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (("Taxi", "Ride hailing"), "Food delivery"),
        (("Exercise",), "Fitness tracking"),
        (("Online shopping",), "Mobile payment"),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, tuple) else value,
)
def test_previous_behavior_predicts_the_next(events, shares, before, after):
    follows = _next_behavior(events)[events["behavior"].isin(before)]
    assert follows.eq(after).mean() > 3 * shares[after]


def test_users_differ_beyond_sampling_noise(events):
    shuffled = events.assign(user=np.random.default_rng(0).permutation(events["user"].to_numpy()))
    assert _mean_pairwise_tv(events) > _mean_pairwise_tv(shuffled) + 0.15


def test_rejects_empty_population():
    with pytest.raises(ValueError):
        simulate_events(n_users=0)
    with pytest.raises(ValueError):
        simulate_events(days=0)
