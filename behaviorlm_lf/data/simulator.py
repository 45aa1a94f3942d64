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
    ("Short video", 100.0, (1.3, 0.15, 0.5, 0.3), (0.3, 0.8, 1.6), 1.2),
    ("Messaging", 30.0, (0.7, 1.8, 0.8, 0.8), (0.8, 1.3, 0.8), 0.8),
    ("Video", 18.0, (1.4, 0.05, 0.3, 0.1), (0.2, 0.6, 2.2), 1.3),
    ("Social media", 19.0, (0.8, 0.4, 1.5, 2.0), (1.0, 1.0, 1.0), 1.2),
    ("Music", 16.0, (0.2, 0.2, 7.0, 1.0), (0.8, 0.8, 1.4), 1.0),
    ("Gaming", 9.0, (1.5, 0.05, 0.8, 0.1), (0.2, 0.7, 2.2), 1.5),
    ("Online shopping", 7.0, (1.1, 0.4, 0.5, 2.5), (0.4, 1.0, 1.6), 1.3),
    ("News", 5.5, (1.6, 0.4, 1.5, 0.2), (5.0, 0.4, 0.4), 1.0),
    ("Email", 5.0, (0.05, 7.0, 0.5, 0.05), (3.0, 0.9, 0.2), 0.1),
    ("Public transport", 14.0, (0.02, 0.02, 14.0, 0.3), (1.5, 1.0, 0.6), 0.6),
    ("Mobile payment", 5.0, (0.1, 0.4, 0.3, 9.0), (0.6, 1.3, 1.0), 1.2),
    ("Navigation", 9.0, (0.02, 0.02, 2.5, 7.0), (1.0, 1.0, 1.0), 1.3),
    ("Weather check", 3.0, (3.0, 0.1, 0.3, 0.3), (8.0, 0.2, 0.2), 1.0),
    ("Food delivery", 2.5, (2.0, 3.0, 0.02, 0.02), (0.02, 3.0, 1.2), 1.2),
    ("Reading", 3.5, (2.0, 0.05, 2.0, 0.2), (0.3, 0.4, 2.2), 1.2),
    ("Calendar", 2.2, (0.1, 7.0, 0.2, 0.1), (1.5, 1.5, 0.2), 0.1),
    ("Exercise", 6.0, (0.05, 0.02, 0.05, 10.0), (1.3, 0.8, 1.0), 1.6),
]

# Rare behaviors, each with the trigger that makes it predictable from what a sample shows: the next event's
# day, hour and place, the behavior right before it, or a habit of the user that recurs in their history.
# Every trigger is one a person would guess (an alarm at six at home on a workday, parking right after
# navigating to a place, karaoke on a Saturday night out), so an LLM's world knowledge helps.
# Fields: name, share of the events in the trigger context it takes (before users' preferences), the
# condition on (place, hour, day of week 0=Mon, previous behavior), and whether it is a habit that only
# some users have. Outside its trigger a rare behavior only happens as background noise (BACKGROUND).
WEEKDAY, FRIDAY, SATURDAY, SUNDAY = range(5), (4,), (5,), (6,)
WEEKEND = (5, 6)
_TAIL = [
    ("Alarm", 0.45, dict(place=HOME, hours=(6, 6), days=WEEKDAY)),
    ("Fitness tracking", 0.45, dict(place=OTHER, previous="Exercise")),
    ("Note taking", 0.3, dict(place=WORKPLACE, previous="Calendar")),
    ("Animation", 0.5, dict(place=HOME, hours=(8, 8), days=SATURDAY)),
    ("Video call", 0.45, dict(place=HOME, hours=(19, 19), days=SUNDAY)),
    ("Podcast", 0.45, dict(place=COMMUTE, hours=(7, 8), days=WEEKDAY), True),
    ("Audiobook", 0.45, dict(place=HOME, hours=(23, 23), days=(6, 0, 1, 2, 3)), True),
    ("Language learning", 0.45, dict(place=HOME, hours=(7, 7), days=WEEKDAY), True),
    ("Banking", 0.4, dict(place=WORKPLACE, hours=(12, 12), days=FRIDAY)),
    ("Stock trading", 0.45, dict(place=WORKPLACE, hours=(9, 9), days=WEEKDAY), True),
    ("Travel booking", 0.5, dict(place=HOME, hours=(22, 22), days=FRIDAY)),
    ("Grocery delivery", 0.45, dict(place=HOME, hours=(10, 10), days=SUNDAY)),
    ("Parking", 0.4, dict(place=OTHER, previous="Navigation")),
    ("Sports match", 0.5, dict(place=HOME, hours=(15, 15), days=SUNDAY)),
    ("Photography", 0.45, dict(place=OTHER, hours=(15, 16), days=SATURDAY)),
    ("Live streaming", 0.45, dict(place=HOME, hours=(23, 23), previous="Gaming")),
    ("Ride hailing", 0.35, dict(place=COMMUTE, hours=(19, 21), days=(4, 5))),
    ("Taxi", 0.45, dict(place=COMMUTE, hours=(22, 23))),
    ("Karaoke", 0.5, dict(place=OTHER, hours=(19, 23), days=WEEKEND)),
    ("Cycling", 0.45, dict(place=OTHER, hours=(10, 10), days=SUNDAY)),
]
# Share of users who have each habit behavior.
HABIT_SHARE = 0.25
# Share of the events outside its trigger a rare behavior takes (noise: the trigger explains most of it).
BACKGROUND = 0.0003

BEHAVIORS = [name for name, *_ in _ANCHORS] + [name for name, *_ in _TAIL]

# Habitual follow-ups among frequent behaviors (before, after): right after ``before``, ``after`` weighs
# FOLLOW_UP_BOOST times more; any behavior right after itself weighs REPEAT_BOOST times more.
_FOLLOW_UPS = [
    ("Online shopping", "Mobile payment"),
    ("Food delivery", "Mobile payment"),
    ("Weather check", "Public transport"),
    ("News", "Email"),
    ("Gaming", "Short video"),
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


def _anchor_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequent behaviors' popularity (A,) and context weights (place, time of day, weekend, A); transitions (B, B)."""
    index = {name: i for i, name in enumerate(BEHAVIORS)}
    popularity = np.array([row[1] for row in _ANCHORS])
    context = np.stack(
        [np.einsum("p,t,w->ptw", np.array(by_place), np.array(by_time), np.array([1.0, weekend])) for _, _, by_place, by_time, weekend in _ANCHORS],
        axis=-1,
    )
    transition = np.ones((len(BEHAVIORS), len(_ANCHORS)))
    transition[np.arange(len(_ANCHORS)), np.arange(len(_ANCHORS))] = REPEAT_BOOST
    for before, after in _FOLLOW_UPS:
        transition[index[before], index[after]] = FOLLOW_UP_BOOST
    return popularity, context, transition


def _trigger_context(place: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    """(events, T) whether each event is in each rare behavior's trigger context (previous behavior aside)."""
    match = np.ones((len(place), len(_TAIL)), dtype=bool)
    for t, (_, _, trigger, *_) in enumerate(_TAIL):
        if "place" in trigger:
            match[:, t] &= place == trigger["place"]
        if "hours" in trigger:
            low, high = trigger["hours"]
            match[:, t] &= (hour >= low) & (hour <= high)
        if "days" in trigger:
            match[:, t] &= np.isin(dow, trigger["days"])
    return match


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
    rng: np.random.Generator, user_index: np.ndarray, anchor_weight: np.ndarray, in_trigger: np.ndarray, n_users: int
) -> np.ndarray:
    """Draw each user's behaviors in time order; vectorised across users, one step per event rank.

    ``user_index`` must be sorted; ``anchor_weight`` holds the (events, A) popularity x context
    weights of the frequent behaviors, ``in_trigger`` the (events, T) static trigger matches of the
    rare ones. At each event a frequent behavior weighs its popularity x context x the user's
    preference x the transition boost from the previous behavior; a rare behavior in its trigger
    (previous behavior and habit included) takes about its trigger share of the event, scaled by the
    user's preference, and BACKGROUND of it elsewhere.
    """
    n_anchor, n_tail = anchor_weight.shape[1], in_trigger.shape[1]
    _, _, transition = _anchor_tables()
    preference = rng.gamma(PREFERENCE_SHAPE, 1 / PREFERENCE_SHAPE, (n_users, n_anchor + n_tail))
    habit = np.array([len(row) > 3 and row[3] for row in _TAIL])
    has_habit = ~habit | (rng.random((n_users, n_tail)) < HABIT_SHARE)
    share = np.array([row[1] for row in _TAIL])
    index = {name: i for i, name in enumerate(BEHAVIORS)}
    needs_previous = np.array([index.get(row[2].get("previous"), -1) for row in _TAIL])

    counts = np.bincount(user_index, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    behavior = np.empty(len(user_index), dtype=np.int64)
    previous = np.full(n_users, -1)
    for rank in range(counts.max(initial=0)):
        users = np.flatnonzero(counts > rank)
        rows = first[users] + rank
        prev = previous[users]
        weight = anchor_weight[rows] * preference[users, :n_anchor]
        weight[prev >= 0] *= transition[prev[prev >= 0]]
        total = weight.sum(axis=1, keepdims=True)
        triggered = in_trigger[rows] & has_habit[users] & ((needs_previous < 0) | (prev[:, None] == needs_previous))
        tail = total * np.where(triggered, share / (1 - share), BACKGROUND) * preference[users, n_anchor:]
        cumulative = np.concatenate([weight, tail], axis=1).cumsum(axis=1)
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
    popularity, context, _ = _anchor_tables()
    schedules = _daily_schedules(rng, n_users, days)
    events = _event_times(rng, n_users, days)
    user_index, day, minute = (events[column].to_numpy() for column in ("user_index", "day", "minute"))

    event_day = {name: bounds[user_index, day] for name, bounds in schedules.items()}
    place = _place_at(minute, event_day)
    time_of_day = np.searchsorted(np.array(TIME_OF_DAY_STARTS_H) * 60, minute, side="right")
    anchor_weight = popularity * context[place, time_of_day, event_day["weekend"].astype(int)]
    in_trigger = _trigger_context(place, minute // 60, day % 7)
    behavior = _sample_behaviors(rng, user_index, anchor_weight, in_trigger, n_users)

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
