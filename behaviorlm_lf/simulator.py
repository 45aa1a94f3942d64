"""Seeded simulator of smartphone users' daily routines: the embedded default data set.

The pipeline must run offline on a fresh clone, so the default events are
generated here instead of read from a file. The generative model:

* Each user has a weekday routine (home, morning commute, workplace, evening
  commute, sometimes an evening outing) or, on weekends and for the users
  without a job, a day at home with an optional outing ("other") reached by a
  short commute. Start times, commute lengths and outing odds vary by user.
* Each day holds about 8 to 20 events at minute resolution between 6:00 and
  24:00, denser at breakfast, lunch and in the evening.
* A behavior is drawn with weight popularity x context x user preference x
  transition. Context is place, time of day (morning, midday, evening) and
  weekday or weekend; user preferences are Gamma draws with mean 1 (a scaled
  Dirichlet); transitions favour repeating the last behavior and a few
  habitual follow-ups such as Taxi -> Food delivery or Weather check -> Cycling.
* Popularities give the long tail of the BehaviorLM paper: about 17 "anchor"
  behaviors cover about 97% of events, the top one about 40%, the rarest
  about 0.02%. Each rare "tail" behavior shares the context of a frequent
  neighbour (Taxi with Public transport, Sports match with Short video).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PLACES = ("home", "workplace", "commute", "other")
HOME, WORKPLACE, COMMUTE, OTHER = range(len(PLACES))
# Time-of-day buckets the context weights refer to: [6, 10), [10, 17), [17, 24) h.
TIME_OF_DAY_STARTS_H = (10, 17)

# Frequent behaviors, most frequent first: name, relative popularity, weight by
# place (home, workplace, commute, other), by time of day (morning, midday,
# evening) and on weekends. Popularities are tuned so that the realised global
# shares follow the paper's long tail once context, preferences and transitions
# apply.
_ANCHORS = [
    ("Short video", 100.0, (1.0, 0.5, 1.0, 0.6), (0.7, 1.0, 1.3), 1.0),
    ("Messaging", 26.0, (1.0, 1.5, 1.0, 1.0), (1.0, 1.0, 1.0), 1.0),
    ("Video", 15.0, (1.5, 0.1, 0.6, 0.2), (0.5, 0.8, 1.5), 1.3),
    ("Social media", 17.0, (1.0, 0.6, 1.0, 1.2), (1.0, 1.0, 1.0), 1.0),
    ("Music", 16.0, (0.4, 0.3, 4.0, 1.5), (1.0, 1.0, 1.0), 1.0),
    ("Gaming", 8.1, (1.5, 0.1, 1.0, 0.2), (0.5, 0.8, 1.5), 1.5),
    ("Online shopping", 7.6, (1.0, 0.5, 0.5, 1.5), (0.6, 1.0, 1.3), 1.2),
    ("News", 5.4, (1.0, 0.7, 2.0, 0.5), (2.5, 0.8, 0.7), 1.0),
    ("Email", 3.2, (0.2, 4.0, 0.8, 0.1), (1.2, 1.0, 0.6), 0.3),
    ("Public transport", 13.0, (0.05, 0.05, 8.0, 0.5), (1.0, 1.0, 1.0), 0.7),
    ("Mobile payment", 5.9, (0.3, 0.5, 0.8, 4.0), (0.8, 1.0, 1.0), 1.2),
    ("Navigation", 11.0, (0.1, 0.1, 2.0, 4.0), (1.0, 1.0, 1.0), 1.2),
    ("Weather check", 2.2, (2.0, 0.3, 0.5, 0.5), (4.0, 0.6, 0.5), 1.0),
    ("Food delivery", 1.6, (2.0, 1.5, 0.1, 0.1), (0.2, 1.5, 1.5), 1.2),
    ("Reading", 2.8, (1.5, 0.2, 1.5, 0.5), (0.8, 0.8, 1.4), 1.2),
    ("Calendar", 1.6, (0.3, 4.0, 0.5, 0.3), (1.5, 1.0, 0.6), 0.3),
    ("Exercise", 6.1, (0.15, 0.05, 0.1, 6.0), (1.0, 1.0, 1.0), 1.5),
]

# Rare behaviors, most frequent first: name, relative popularity, and the
# frequent neighbour whose context weights it shares, so that it occurs where
# its neighbour does.
_TAIL = [
    ("Video call", 0.76, "Messaging"),
    ("Podcast", 1.3, "Music"),
    ("Taxi", 2.0, "Public transport"),
    ("Photography", 0.77, "Social media"),
    ("Live streaming", 0.5, "Short video"),
    ("Banking", 0.78, "Mobile payment"),
    ("Fitness tracking", 0.62, "Exercise"),
    ("Note taking", 0.13, "Calendar"),
    ("Alarm", 0.18, "Weather check"),
    ("Ride hailing", 0.68, "Public transport"),
    ("Cycling", 0.4, "Exercise"),
    ("Grocery delivery", 0.078, "Food delivery"),
    ("Animation", 0.086, "Video"),
    ("Audiobook", 0.11, "Reading"),
    ("Sports match", 0.12, "Short video"),
    ("Language learning", 0.072, "Reading"),
    ("Stock trading", 0.061, "News"),
    ("Travel booking", 0.19, "Navigation"),
    ("Parking", 0.091, "Navigation"),
    ("Karaoke", 0.062, "Music"),
]

BEHAVIORS = [name for name, *_ in _ANCHORS] + [name for name, *_ in _TAIL]

# Habitual follow-ups (before, after): right after ``before``, ``after`` weighs
# FOLLOW_UP_BOOST times more; any behavior right after itself weighs
# REPEAT_BOOST times more.
_FOLLOW_UPS = [
    ("Taxi", "Food delivery"),
    ("Ride hailing", "Food delivery"),
    ("Weather check", "Cycling"),
    ("Alarm", "Weather check"),
    ("Online shopping", "Mobile payment"),
    ("Food delivery", "Mobile payment"),
    ("Grocery delivery", "Mobile payment"),
    ("Photography", "Social media"),
    ("Sports match", "Short video"),
    ("Calendar", "Video call"),
    ("Email", "Note taking"),
    ("Exercise", "Fitness tracking"),
    ("Cycling", "Fitness tracking"),
    ("Navigation", "Parking"),
    ("Travel booking", "Navigation"),
    ("News", "Stock trading"),
    ("Banking", "Stock trading"),
    ("Music", "Karaoke"),
    ("Reading", "Language learning"),
    ("Video", "Animation"),
    ("Public transport", "Podcast"),
    ("Gaming", "Live streaming"),
]
FOLLOW_UP_BOOST = 8.0
REPEAT_BOOST = 2.0
# Gamma shape of the per-user preferences: lower means users differ more.
PREFERENCE_SHAPE = 2.0

# Relative event density by hour of day, 6h to 23h.
_HOURLY_ACTIVITY = np.array([0.4, 0.9, 1.2, 0.9, 0.8, 0.9, 1.3, 1.1, 0.8, 0.8, 0.9, 1.1, 1.2, 1.3, 1.5, 1.6, 1.4, 0.8])
FIRST_HOUR = 6
EVENTS_PER_DAY = (8, 20)
# A Monday, so that day d is weekday d % 7.
START_DATE = pd.Timestamp("2024-03-04")


def _behavior_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Popularity (B,), context weights (place, time of day, weekend, B) and transitions (B, B)."""
    index = {name: i for i, name in enumerate(BEHAVIORS)}
    anchor_context = {
        name: np.einsum("p,t,w->ptw", np.array(by_place), np.array(by_time), np.array([1.0, weekend]))
        for name, _, by_place, by_time, weekend in _ANCHORS
    }
    popularity = np.array([row[1] for row in _ANCHORS + _TAIL])
    context = np.stack(
        [anchor_context[name] for name, *_ in _ANCHORS] + [anchor_context[neighbour] for _, _, neighbour in _TAIL],
        axis=-1,
    )
    transition = np.ones((len(BEHAVIORS), len(BEHAVIORS)))
    np.fill_diagonal(transition, REPEAT_BOOST)
    for before, after in _FOLLOW_UPS:
        transition[index[before], index[after]] = FOLLOW_UP_BOOST
    return popularity, context, transition


def _uniform_minutes(rng: np.random.Generator, low_h: float, high_h: float, size) -> np.ndarray:
    """Minutes of day drawn uniformly between two hours."""
    return rng.uniform(low_h * 60, high_h * 60, size)


def _daily_schedules(rng: np.random.Generator, n_users: int, days: int) -> dict[str, np.ndarray]:
    """Minute-of-day bounds of work, commute and outing for each (user, day); NaN when absent."""
    employed = rng.random(n_users) < 0.85
    work_start = _uniform_minutes(rng, 7.5, 10.0, n_users)
    work_length = _uniform_minutes(rng, 8.0, 10.0, n_users)
    commute = rng.uniform(20, 70, n_users)
    evening_outing_odds = rng.uniform(0.1, 0.5, n_users)
    free_day_outing_odds = rng.uniform(0.4, 0.9, n_users)

    shape = (n_users, days)
    weekend = np.broadcast_to(np.arange(days) % 7 >= 5, shape)
    workday = employed[:, None] & ~weekend
    jitter = rng.normal(0, 15, shape)
    start = np.where(workday, work_start[:, None] + jitter, np.nan)
    end = start + work_length[:, None] + rng.normal(0, 20, shape)

    evening_outing = workday & (rng.random(shape) < evening_outing_odds[:, None])
    free_day_outing = ~workday & (rng.random(shape) < free_day_outing_odds[:, None])
    outing_start = np.where(
        evening_outing,
        end + commute[:, None] + rng.uniform(30, 90, shape),
        np.where(free_day_outing, _uniform_minutes(rng, 10.0, 17.0, shape), np.nan),
    )
    outing_end = outing_start + np.where(evening_outing, rng.uniform(60, 150, shape), rng.uniform(90, 300, shape))
    return {
        "weekend": weekend,
        "work_start": start,
        "work_end": end,
        "commute": np.broadcast_to(commute[:, None], shape),
        "outing_start": outing_start,
        "outing_end": outing_end,
    }


def _place_at(minute: np.ndarray, day: dict[str, np.ndarray]) -> np.ndarray:
    """Place code of each event from its minute of day and its day's schedule."""

    def within(low, high):
        return (minute >= low) & (minute < high)

    commute, outing_travel = day["commute"], day["commute"] / 2
    return np.select(
        [
            within(day["work_start"], day["work_end"]),
            within(day["work_start"] - commute, day["work_start"]),
            within(day["work_end"], day["work_end"] + commute),
            within(day["outing_start"], day["outing_end"]),
            within(day["outing_start"] - outing_travel, day["outing_start"]),
            within(day["outing_end"], day["outing_end"] + outing_travel),
        ],
        [WORKPLACE, COMMUTE, COMMUTE, OTHER, COMMUTE, COMMUTE],
        default=HOME,
    )


def _event_times(rng: np.random.Generator, n_users: int, days: int) -> pd.DataFrame:
    """Distinct event minutes per (user, day), sorted; columns user_index, day, minute."""
    daily_rate = rng.uniform(9, 17, n_users)
    n_events = np.clip(rng.poisson(np.repeat(daily_rate, days)), *EVENTS_PER_DAY)
    user_day = np.repeat(np.arange(n_users * days), n_events)
    hour_odds = _HOURLY_ACTIVITY / _HOURLY_ACTIVITY.sum()
    hour = FIRST_HOUR + rng.choice(len(hour_odds), size=len(user_day), p=hour_odds)
    events = pd.DataFrame(
        {
            "user_index": user_day // days,
            "day": user_day % days,
            "minute": hour * 60 + rng.integers(0, 60, len(user_day)),
        }
    )
    # Two events in the same minute would break strictly increasing times.
    return events.drop_duplicates().sort_values(["user_index", "day", "minute"], ignore_index=True)


def _sample_behaviors(
    rng: np.random.Generator,
    user_index: np.ndarray,
    event_weight: np.ndarray,
    transition: np.ndarray,
    n_users: int,
) -> np.ndarray:
    """Draw each user's behaviors in time order; vectorised across users, one step per event rank.

    ``user_index`` must be sorted; ``event_weight`` holds the (events, B)
    popularity x context weights of each event, ``transition`` the (B, B)
    boosts from the previous behavior.
    """
    preference = rng.gamma(PREFERENCE_SHAPE, 1 / PREFERENCE_SHAPE, (n_users, event_weight.shape[1]))

    counts = np.bincount(user_index, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    behavior = np.empty(len(user_index), dtype=np.int64)
    previous = np.full(n_users, -1)
    for rank in range(counts.max(initial=0)):
        users = np.flatnonzero(counts > rank)
        rows = first[users] + rank
        weight = event_weight[rows] * preference[users]
        has_previous = previous[users] >= 0
        weight[has_previous] *= transition[previous[users][has_previous]]
        cumulative = weight.cumsum(axis=1)
        draw = rng.random(len(users)) * cumulative[:, -1]
        chosen = (cumulative < draw[:, None]).sum(axis=1)
        behavior[rows] = chosen
        previous[users] = chosen
    return behavior


def simulate_events(n_users: int = 300, days: int = 28, seed: int = 0) -> pd.DataFrame:
    """Simulate ``days`` days of smartphone events for ``n_users`` users, starting on a Monday.

    Returns columns ``user`` ("u0007"), ``time`` (naive local datetime),
    ``place`` (one of :data:`PLACES`) and ``behavior`` (one of
    :data:`BEHAVIORS`), sorted by user then time. The same arguments always
    give the same frame.
    """
    if n_users < 1 or days < 1:
        raise ValueError(f"n_users and days must be positive, got n_users={n_users}, days={days}")
    rng = np.random.default_rng(seed)
    popularity, context, transition = _behavior_tables()
    schedules = _daily_schedules(rng, n_users, days)
    events = _event_times(rng, n_users, days)
    user_index, day, minute = (events[column].to_numpy() for column in ("user_index", "day", "minute"))

    event_day = {name: bounds[user_index, day] for name, bounds in schedules.items()}
    place = _place_at(minute, event_day)
    time_of_day = np.searchsorted(np.array(TIME_OF_DAY_STARTS_H) * 60, minute, side="right")
    event_weight = popularity * context[place, time_of_day, event_day["weekend"].astype(int)]
    behavior = _sample_behaviors(rng, user_index, event_weight, transition, n_users)

    width = max(4, len(str(n_users - 1)))
    user_ids = np.array([f"u{i:0{width}d}" for i in range(n_users)])
    return pd.DataFrame(
        {
            "user": user_ids[user_index],
            "time": START_DATE + pd.to_timedelta(day * 1440 + minute, unit="min"),
            "place": np.array(PLACES)[place],
            "behavior": np.array(BEHAVIORS)[behavior],
        }
    )
