"""Facts: what a rule reads. Profile fields plus facts derived from the clock.

Derived facts are computed lazily, on first read, so a ruleset pays only for
the facts it uses. Calendar facts (days, windows, "today") are counted in the
profile's IANA time zone: a user in Tokyo is active "today" by Tokyo's
calendar, whatever the server's zone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from rule_engine import types as re_types

DataType = re_types.DataType
_NULLABLE_NUMBER = DataType.NULLABLE(DataType.FLOAT)


@functools.lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo:
    """The IANA zone; cached, because ZoneInfo's own cache keeps only 8 and
    a population spans dozens (rereading zone files cost ~15 us a profile)."""
    return ZoneInfo(name)


def profile_zone(profile: Mapping[str, Any]) -> ZoneInfo:
    """The zone a profile's calendar days are counted in (UTC when it names none)."""
    return zone_named(profile.get("timezone") or "UTC")


class Clock(NamedTuple):
    """The request's instant and the profile's local calendar day.

    A named tuple, not a frozen dataclass: every decision builds one, and this is
    the cheapest immutable value to build.
    """

    as_of: dt.datetime
    zone: ZoneInfo

    @classmethod
    def for_profile(cls, as_of: dt.datetime, profile: Mapping[str, Any]) -> Clock:
        aware = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
        return cls(aware, profile_zone(profile))

    @property
    def today(self) -> dt.date:
        return self.as_of.astimezone(self.zone).date()

    def local_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.zone).date()

    def midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=self.zone)


Memo = dict[str, Any]
"""Per request, shared by every derived fact: what several of them need is worked out once
(under names starting with ``_``, which no rule can read)."""


def _today(clock: Clock, memo: Memo) -> dt.date:
    if "_today" not in memo:
        memo["_today"] = clock.today
    today: dt.date = memo["_today"]
    return today


def every_active_day(profile: Mapping[str, Any], zone: dt.tzinfo) -> list[dt.date]:
    """Every local day the user was active, in order, future ones included.

    ``activity_dates``, ``first_active_date`` and the day of ``last_active_at``
    in ``zone`` (the profile's). It depends on no clock, so the profile store
    keeps it per profile (the ``active_days`` column) for impact previews to
    read instead of rebuilding it in SQL for every row.
    """
    days = set(profile.get("activity_dates") or ())
    if profile.get("first_active_date"):
        days.add(profile["first_active_date"])
    if profile.get("last_active_at"):
        days.add(profile["last_active_at"].astimezone(zone).date())
    return sorted(days)


def active_days(profile: Mapping[str, Any], clock: Clock, memo: Memo) -> list[dt.date]:
    """Every local day the user was active, up to and including today, in order."""
    if "_active_days" not in memo:
        days = every_active_day(profile, clock.zone)
        memo["_active_days"] = days[: bisect.bisect_right(days, _today(clock, memo))]
    found: list[dt.date] = memo["_active_days"]
    return found


def _before(today: dt.date, days: dt.timedelta) -> dt.date | None:
    """The day ``days`` before ``today``, or None if that is before the calendar's first day."""
    try:
        return today - days
    except OverflowError:
        return None


# The window facts below find the days they count by bisection in the sorted active days, from a
# day offset worked out once per fact, instead of measuring every day's distance from today.


def _days_since(profile: Mapping[str, Any], clock: Clock, memo: Memo, field: str) -> int | None:
    instant = profile.get(field)
    if instant is None:
        return None
    return (_today(clock, memo) - clock.local_date(instant)).days


def _days_since_last_active(profile: Mapping[str, Any], clock: Clock, memo: Memo) -> int | None:
    days = active_days(profile, clock, memo)
    return (_today(clock, memo) - days[-1]).days if days else None


def _first_active(profile: Mapping[str, Any], clock: Clock, memo: Memo) -> dt.date | None:
    days = active_days(profile, clock, memo)
    return days[0] if days else None


def _active_between(first: int, last: int | None) -> Callable[[Mapping[str, Any], Clock, Memo], bool]:
    """Active on some day from ``first`` to ``last`` days ago (None: no limit)."""
    oldest = None if last is None else dt.timedelta(days=last)

    def active(profile: Mapping[str, Any], clock: Clock, memo: Memo) -> bool:
        today = _today(clock, memo)
        days = active_days(profile, clock, memo)
        earliest = None if oldest is None else _before(today, oldest)
        start = 0 if earliest is None else bisect.bisect_left(days, earliest)  # the oldest within ``last``
        return start < len(days) and (today - days[start]).days >= first

    return active


def _count_active_days(window: int) -> Callable[[Mapping[str, Any], Clock, Memo], int]:
    span = dt.timedelta(days=window)

    def count(profile: Mapping[str, Any], clock: Clock, memo: Memo) -> int:
        days = active_days(profile, clock, memo)
        before = _before(_today(clock, memo), span)  # the last day outside the window
        return len(days) - (0 if before is None else bisect.bisect_right(days, before))

    return count


_WEEK = dt.timedelta(days=7)


def _recent_gap_days(profile: Mapping[str, Any], clock: Clock, memo: Memo) -> int | None:
    """The longest absence (days between two active days) that ended in the past 7 days."""
    days = active_days(profile, clock, memo)
    before = _before(_today(clock, memo), _WEEK)
    start = max(1, 0 if before is None else bisect.bisect_right(days, before))  # the first recent day
    gaps = [(days[index] - days[index - 1]).days for index in range(start, len(days))]
    return max(gaps) if gaps else None


@dataclass(frozen=True)
class DerivedFact:
    name: str
    type: Any
    doc: str
    compute: Callable[[Mapping[str, Any], Clock, Memo], Any]


DERIVED_FACTS: dict[str, DerivedFact] = {
    fact.name: fact
    for fact in [
        DerivedFact(
            "days_since_registered",
            _NULLABLE_NUMBER,
            "local calendar days from registered_at to today; null if not registered",
            lambda p, c, m: _days_since(p, c, m, "registered_at"),
        ),
        DerivedFact(
            "days_since_last_active",
            _NULLABLE_NUMBER,
            "local calendar days since the last active day; null if never active",
            _days_since_last_active,
        ),
        DerivedFact(
            "days_since_last_order",
            _NULLABLE_NUMBER,
            "local calendar days since last_order_at; null if never ordered",
            lambda p, c, m: _days_since(p, c, m, "last_order_at"),
        ),
        DerivedFact(
            "is_first_day",
            DataType.BOOLEAN,
            "today is the user's first active day ever",
            lambda p, c, m: _first_active(p, c, m) == _today(c, m),
        ),
        DerivedFact(
            "active_today",
            DataType.BOOLEAN,
            "active on the local day of as_of",
            _active_between(0, 0),
        ),
        DerivedFact(
            "active_d1_d6",
            DataType.BOOLEAN,
            "active on some day 1 to 6 days ago",
            _active_between(1, 6),
        ),
        DerivedFact(
            "active_d7_d29",
            DataType.BOOLEAN,
            "active on some day 7 to 29 days ago",
            _active_between(7, 29),
        ),
        DerivedFact(
            "active_before_d29",
            DataType.BOOLEAN,
            "active on some day 30 or more days ago",
            _active_between(30, None),
        ),
        DerivedFact(
            "active_days_7d",
            DataType.FLOAT,
            "number of active days in the last 7 local days, today included",
            _count_active_days(7),
        ),
        DerivedFact(
            "active_days_30d",
            DataType.FLOAT,
            "number of active days in the last 30 local days, today included",
            _count_active_days(30),
        ),
        DerivedFact(
            "recent_gap_days",
            _NULLABLE_NUMBER,
            "longest gap in days between two active days, where the later one is "
            "within the last 7 days (a return after an absence); null if none",
            _recent_gap_days,
        ),
        DerivedFact(
            "local_hour",
            DataType.FLOAT,
            "hour of day (0-23) of as_of in the profile's time zone",
            lambda p, c, m: c.as_of.astimezone(c.zone).hour,
        ),
    ]
}


_PLAIN_VALUES = frozenset({int, float, str, bool, type(None)})


def to_rule_value(value: Any, clock: Clock) -> Any:
    """Rules know no calendar dates: a date becomes local midnight of that day."""
    if value.__class__ in _PLAIN_VALUES or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return clock.midnight(value)
    if isinstance(value, tuple) and value and isinstance(value[0], dt.date):
        return tuple(to_rule_value(item, clock) for item in value)
    return value


class _Known(dict[str, Any]):
    """Values of one ``Facts`` already known: its extras, then every fact read so far.

    A missing name is computed here, once: a derived fact from the profile and
    the clock, or a profile field turned into a rule value. The computed values
    live in ``cache``, shared by every ``Facts`` of the same profile and clock.
    """

    __slots__ = ("cache", "clock", "profile")
    cache: dict[str, Any]
    clock: Clock
    profile: Mapping[str, Any]

    def __missing__(self, name: str) -> Any:
        cache = self.cache
        if name in cache:
            value = cache[name]
        elif name in DERIVED_FACTS:
            value = cache[name] = DERIVED_FACTS[name].compute(self.profile, self.clock, cache)
        elif name in self.profile:
            value = cache[name] = to_rule_value(self.profile[name], self.clock)
        else:
            raise KeyError(name)
        self[name] = value
        return value


class Facts(Mapping[str, Any]):
    """The values a rule reads: profile fields, derived facts and extras.

    Extras are decision inputs that are not profile fields: the ruleset's
    constants, the event being rewarded, the RFM scores, the lifecycle stage an
    intervention builds on. Derived facts are computed on first read and cached
    for the request. ``known`` is the same mapping as a plain dict lookup, for
    compiled rules: reading a fact there costs what reading a dict costs.
    """

    __slots__ = ("_extra", "answers", "clock", "known", "profile", "skip_facts")

    def __init__(
        self,
        profile: Mapping[str, Any],
        clock: Clock,
        extra: Mapping[str, Any] | None = None,
        cache: dict[str, Any] | None = None,
        answers: dict[Any, Any] | None = None,
        skip_facts: bool = False,
        known: Mapping[str, Any] | None = None,
    ) -> None:
        """``answers``: the request's, shared by every ruleset that decides in it, where one may
        reuse another's answer (see ``CompiledRuleset.memoized``). Apart from ``cache`` on purpose:
        an answer's explanation reads ``known``, which holds ``cache``; were the answers in
        ``cache``, each request would leave a reference cycle for the garbage collector.

        ``skip_facts``: explanations leave out the values of the facts their rules read, because
        nobody will read them (``explain`` RULES or NONE, and no decision log for the call).

        ``known``: what another ``Facts`` of the same profile and clock already read (``with_extra``),
        copied instead of ``cache`` (whatever it lacks is still found there)."""
        self.profile = profile
        self.clock = clock
        self.answers = answers
        self.skip_facts = skip_facts
        # never changed (``known`` is the copy that grows), so a ruleset's constants are kept as they are
        extras = self._extra = {} if extra is None else extra
        seed = cache if known is None else known
        if seed:  # what the request already worked out is read without a call to __missing__
            values = _Known(seed)
            if extras:
                values.update(extras)  # extras first, as when asked for one by one
        else:
            values = _Known(extras)
        values.profile, values.clock = profile, clock
        values.cache = {} if cache is None else cache
        self.known = values

    def with_extra(self, **extra: Any) -> Facts:
        """The same profile and clock with more extras (derived facts stay cached)."""
        merged = {**self._extra, **extra}
        known = self.known  # what this one already read, copied once: read again without a lookup
        return Facts(self.profile, self.clock, merged, known.cache, self.answers, self.skip_facts, known)

    def rebase(self, extra: Mapping[str, Any]) -> Facts:
        """The same profile and clock with other extras: another ruleset's view of the request,
        sharing the derived facts already computed."""
        return Facts(self.profile, self.clock, extra, self.known.cache, self.answers, self.skip_facts)

    def __getitem__(self, name: str) -> Any:
        return self.known[name]

    def __contains__(self, name: object) -> bool:
        return name in self._extra or name in DERIVED_FACTS or name in self.profile

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        yield from DERIVED_FACTS
        yield from self.profile

    def __len__(self) -> int:
        return len(self._extra) + len(DERIVED_FACTS) + len(self.profile)
