"""The derived facts of ``strata.engine.facts`` as SQL over the profiles table.

Each fact is defined here once more, in terms of the dialect's calendar and
active-day primitives, with the same meaning as its Python definition: days
are the profile's local calendar days, the active days are ``activity_dates``
plus ``first_active_date`` plus the local day of ``last_active_at``, counted
up to today. The property tests in ``tests/integration/test_preview_equivalence.py``
hold the two definitions together; a fact added to the engine without a SQL
definition here is simply not compilable, and previews that read it run in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from rule_engine import types as re_types

from strata.engine.facts import DERIVED_FACTS
from strata.preview.dialects import NotCompilable, SqlDialect, SqlExpr
from strata.store.models import PROFILES

DataType = re_types.DataType
ACTIVE_DAYS_WINDOWS = {"active_days_7d": 7, "active_days_30d": 30}
RECENT_GAP_WINDOW = 7  # recent_gap_days: gaps whose later day is within the last 7 days
SHARED_FACTS = frozenset(
    {
        "days_since_registered",
        "days_since_last_active",
        "days_since_last_order",
        "recent_gap_days",
        "local_hour",
        "is_first_day",
        "active_today",
        "active_d1_d6",
        "active_d7_d29",
        "active_before_d29",
    }
)


class SqlFacts:
    """Derived facts for one query; built on first use, so a ruleset pays only for what it reads."""

    def __init__(self, dialect: SqlDialect) -> None:
        self._dialect = dialect
        self._built: dict[str, SqlExpr] = {}
        d = dialect
        self._definitions: dict[str, Callable[[], SqlExpr]] = {
            "days_since_registered": lambda: d.days_between(
                d.today(), d.local_date(PROFILES.c.registered_at)
            ),
            "days_since_last_active": lambda: d.days_between(d.today(), d.active_latest_on_or_before(0)),
            "days_since_last_order": lambda: d.days_between(
                d.today(), d.local_date(PROFILES.c.last_order_at)
            ),
            "is_first_day": lambda: sa.and_(self._on_some_day(0, 0), sa.not_(self._on_some_day(1, None))),
            "active_today": lambda: self._on_some_day(0, 0),
            "active_d1_d6": lambda: self._on_some_day(1, 6),
            "active_d7_d29": lambda: self._on_some_day(7, 29),
            "active_before_d29": lambda: self._on_some_day(30, None),
            **{name: self._count_window(window) for name, window in ACTIVE_DAYS_WINDOWS.items()},
            "recent_gap_days": lambda: d.longest_recent_gap(RECENT_GAP_WINDOW),
            "local_hour": d.local_hour,
        }

    def _on_some_day(self, first: int, last: int | None) -> SqlExpr:
        """Active on some day ``first`` to ``last`` days ago (``None``: no limit): two counts."""
        d = self._dialect
        count = d.active_count_on_or_before(first)
        return count > 0 if last is None else count - d.active_count_on_or_before(last + 1) > 0

    def _count_window(self, window: int) -> Callable[[], SqlExpr]:
        d = self._dialect
        return lambda: d.active_count_on_or_before(0) - d.active_count_on_or_before(window)

    def __contains__(self, name: str) -> bool:
        return name in DERIVED_FACTS

    def __getitem__(self, name: str) -> SqlExpr:
        """The fact's SQL: a number (integer days or counts), a boolean, null where Python gives None.

        A fact that converts time zones or reads the active days is a per-row
        value shared by every rule that reads it (both rulesets of a preview,
        each threshold of a score), so that work runs once per row. The day
        counts are a subtraction of two shared counts: cheaper to repeat.
        """
        if name not in self._built:
            if name not in self._definitions:
                raise NotCompilable(f"the derived fact {name!r} has no SQL definition")
            definition = self._definitions[name]
            if name in SHARED_FACTS:
                type_ = sa.Boolean() if DERIVED_FACTS[name].type == DataType.BOOLEAN else sa.Integer()
                self._built[name] = self._dialect.shared(f"fact_{name}", definition, type_)
            else:
                self._built[name] = definition()
        return self._built[name]
