"""The calendar facts agree with their plain definitions, computed day by day with zoneinfo.

``strata.engine.facts`` counts active days with bisection on the sorted days and a few
precomputed day offsets, instead of measuring every day's distance from today. These properties
check every calendar fact against the definition written the obvious way (``astimezone`` for
local days, ``(today - day).days`` for every day), over instants around DST transitions, far in
the past and the future, and in zones with odd offsets.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from strata.engine.facts import DERIVED_FACTS, Clock

ZONES = [
    "UTC",
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # +10:30, a 30-minute DST shift
    "America/St_Johns",  # -03:30 with DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Kiritimati",  # +14
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Europe/Dublin",  # negative DST in the tz database
    "America/New_York",
    "Asia/Shanghai",
]
DST_EDGES = [  # instants around transitions (UTC), where local days are shortest or longest
    dt.datetime(2026, 3, 8, 7, 0),  # New York springs forward
    dt.datetime(2026, 11, 1, 6, 0),  # and falls back
    dt.datetime(2026, 4, 4, 15, 0),  # Lord Howe leaves DST (02:00 local)
    dt.datetime(2026, 10, 3, 15, 30),  # Lord Howe enters DST
    dt.datetime(2011, 12, 30, 10, 0),  # Apia skips a day
    dt.datetime(2026, 3, 29, 1, 0),  # Dublin
]
near_edges = st.sampled_from(DST_EDGES).flatmap(
    lambda edge: st.integers(-36 * 3600, 36 * 3600).map(lambda s: edge + dt.timedelta(seconds=s))
)
anywhen = st.datetimes(min_value=dt.datetime(1, 1, 3), max_value=dt.datetime(9999, 12, 29))
instants = st.one_of(near_edges, anywhen, st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1))).map(
    lambda naive: naive.replace(tzinfo=dt.UTC)
)


def _days_near(today: dt.date, offsets: list[int]) -> list[dt.date]:
    days = []
    for offset in offsets:
        try:
            days.append(today + dt.timedelta(days=offset))
        except OverflowError:
            continue
    return days


def _shifted(instant: dt.datetime, seconds: int | None) -> dt.datetime | None:
    """``seconds`` after ``instant``; None for None, or where the calendar ends."""
    if seconds is None:
        return None
    try:
        return instant + dt.timedelta(seconds=seconds)
    except OverflowError:
        return None


@st.composite
def cases(draw: Any) -> tuple[dict[str, Any], Clock]:
    as_of = draw(instants)
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    today = as_of.astimezone(zone).date()
    offsets = st.integers(-400, 3)  # mostly past days, some after today (ignored by the facts)
    activity = _days_near(today, draw(st.lists(offsets, max_size=40)))
    first = _days_near(today, draw(st.lists(offsets, max_size=1)))
    last_active_at = _shifted(as_of, draw(st.none() | st.integers(-400 * 86400, 2 * 86400)))
    profile = {
        "timezone": zone.key,
        "activity_dates": activity,
        "first_active_date": first[0] if first else None,
        "last_active_at": last_active_at,
        "registered_at": _shifted(as_of, draw(st.none() | st.integers(-3 * 365 * 86400, 0))),
        "last_order_at": last_active_at,
    }
    return profile, Clock(as_of, zone)


def reference(profile: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """Every calendar fact, by its definition."""
    zone = clock.zone
    today = clock.as_of.astimezone(zone).date()
    days = set(profile["activity_dates"])
    if profile["first_active_date"]:
        days.add(profile["first_active_date"])
    if profile["last_active_at"]:
        days.add(profile["last_active_at"].astimezone(zone).date())
    active = sorted(day for day in days if day <= today)
    ago = [(today - day).days for day in active]

    def since(field: str) -> int | None:
        instant = profile[field]
        return None if instant is None else (today - instant.astimezone(zone).date()).days

    gaps = [(b - a).days for a, b in itertools.pairwise(active) if (today - b).days < 7]
    return {
        "days_since_registered": since("registered_at"),
        "days_since_last_active": ago[-1] if ago else None,
        "days_since_last_order": since("last_order_at"),
        "is_first_day": bool(active) and active[0] == today,
        "active_today": any(a == 0 for a in ago),
        "active_d1_d6": any(1 <= a <= 6 for a in ago),
        "active_d7_d29": any(7 <= a <= 29 for a in ago),
        "active_before_d29": any(a >= 30 for a in ago),
        "active_days_7d": sum(1 for a in ago if a < 7),
        "active_days_30d": sum(1 for a in ago if a < 30),
        "recent_gap_days": max(gaps) if gaps else None,
        "local_hour": clock.as_of.astimezone(zone).hour,
    }


@settings(max_examples=600, deadline=None)
@given(case=cases())
def test_calendar_facts_are_their_definitions(case: tuple[dict[str, Any], Clock]) -> None:
    profile, clock = case
    expected = reference(profile, clock)
    memo: dict[str, Any] = {}
    got = {name: DERIVED_FACTS[name].compute(profile, clock, memo) for name in expected}
    assert got == expected
    assert set(expected) == set(DERIVED_FACTS)  # every derived fact is checked here
