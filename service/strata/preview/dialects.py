"""What differs between Postgres and SQLite when rules run as SQL.

The SQL compiler (``sqlcompile``) and the derived facts (``sqlfacts``) speak in
a few primitives: the profile's local today, the local day of an instant, days
between two days, how many active days fall on or before a day and the latest
of them, JSON array membership, exact decimals, string tests. Each database
implements them with what it does both fast and exactly.

Postgres. Values that several rules read are computed once per row in a
chain of subqueries, one per dependency level, each ``SELECT <level below>.*,
<values> ... OFFSET 0`` (the ``OFFSET`` keeps the planner from flattening them
back into every reader). Per row that costs a projection; ``JOIN LATERAL ROWS
FROM (...)`` items, which also share values and run in parallel workers,
materialise a row per item and row and cost more CPU than all the rules (about
6 s of CPU per million profiles for a lifecycle preview, against 2.6 s here, in
one process). The active days are the stored ``active_days`` column
(``date[]``, sorted): counts and the latest day are ``width_bucket`` binary
searches against the day, gaps are subscripts.

SQLite. There are no time zones, so Python functions registered on the
connection convert instants with the same zoneinfo the engine uses. Active days
are correlated subqueries over ``json_each`` of the stored ``active_days`` (a
JSON array of ISO days), computed once per row in one subquery of shared
values. There is no exact decimal type either: arithmetic on non-integers, and
comparisons that would need exact decimals, raise ``NotCompilable`` and the
preview evaluates in Python.

Datetime rule values are ``timestamp with time zone`` on Postgres and integer
microseconds since the epoch (UTC) on SQLite; calendar days are ``date`` on
Postgres and ``'YYYY-MM-DD'`` text on SQLite.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, cast

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.util import ClauseAdapter

from strata.engine.facts import zone_named
from strata.store.models import PROFILES

SqlExpr = ColumnElement[Any]

_SHARED = "shared"  # SQLite: the subquery computing the shared per-row values
_UTC_TEXT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores instants in SQLite (UTC, no offset)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class NotCompilable(Exception):
    """An expression outside what the SQL compiler translates exactly; the preview evaluates it in Python."""


def _data() -> SqlExpr:
    """The JSON document column, typed as JSONB on Postgres so ``->`` and ``?`` render."""
    return sa.type_coerce(PROFILES.c.data, postgresql.JSONB)


class SqlDialect(ABC):
    """The per-preview SQL primitives of one database, for one ``as_of`` instant.

    One instance builds one query: it accumulates the per-row values shared by
    the rules (``shared``) and hands out the FROM clause that computes them.
    """

    name: ClassVar[str]
    exact_decimals: ClassVar[bool]
    """Whether the database has an exact decimal type (Postgres ``numeric``): non-integer
    literals, arithmetic and JSON ``number`` fields are ``decimal`` there, ``double`` elsewhere."""

    def __init__(self, as_of: dt.datetime) -> None:
        self.as_of = as_of.astimezone(dt.UTC)

    @abstractmethod
    def select(self, *columns: SqlExpr, where: SqlExpr | None = None) -> sa.Select[Any]:
        """``SELECT columns FROM profiles [WHERE where]``, plus whatever computes the per-row
        values the rules share. Columns and condition go through here, not onto the result:
        on SQLite they are rewritten to read the subquery of shared values."""

    @abstractmethod
    def shared(self, key: str, build: Callable[[], SqlExpr], type_: Any) -> SqlExpr:
        """A per-row value that several rules read, computed once per row; ``key`` names it
        (same key, same value) and ``build`` makes its expression the first time."""

    # -- calendar --------------------------------------------------------------------

    @abstractmethod
    def today(self) -> SqlExpr:
        """The local calendar day of ``as_of`` in the profile's time zone."""

    @abstractmethod
    def local_date(self, instant: SqlExpr) -> SqlExpr:
        """The local calendar day, in the profile's zone, of an instant column (null stays null)."""

    @abstractmethod
    def days_ago(self, days: int) -> SqlExpr:
        """The local day ``days`` days before today."""

    @abstractmethod
    def days_between(self, later: SqlExpr, earlier: SqlExpr) -> SqlExpr:
        """``later - earlier`` in days, an integer (null if either is null)."""

    @abstractmethod
    def local_hour(self) -> SqlExpr:
        """The hour (0-23) of ``as_of`` in the profile's zone."""

    # -- active days: the stored ``active_days`` (activity_dates, first_active_date, --
    # -- and the local day of last_active_at) ----------------------------------------

    @abstractmethod
    def active_count_on_or_before(self, days: int) -> SqlExpr:
        """How many distinct active days fall on or before the day ``days`` days ago."""

    @abstractmethod
    def active_latest_on_or_before(self, days: int) -> SqlExpr:
        """The latest active day on or before the day ``days`` days ago, or null."""

    @abstractmethod
    def longest_recent_gap(self, window: int) -> SqlExpr:
        """The longest gap in days between consecutive active days (up to today) whose
        later day is among the last ``window`` days; null if there is none."""

    # -- datetimes (rule values) ---------------------------------------------------------

    @abstractmethod
    def instant(self, column: SqlExpr) -> SqlExpr:
        """A ``timestamp with time zone`` column as a datetime rule value."""

    @abstractmethod
    def instant_literal(self, value: dt.datetime) -> SqlExpr:
        """An aware datetime as a datetime rule value."""

    @abstractmethod
    def local_midnight(self, day: SqlExpr) -> SqlExpr:
        """Local midnight, in the profile's zone, of a calendar day: how rules see a date field."""

    @abstractmethod
    def shift(self, instant: SqlExpr, delta: dt.timedelta) -> SqlExpr:
        """An instant moved by an exact duration."""

    # -- fields kept only in the JSON document ------------------------------------------

    @abstractmethod
    def json_scalar(self, name: str, scalar: str) -> SqlExpr:
        """A scalar field of the document (schema type ``scalar``) as a typed SQL value."""

    @abstractmethod
    def json_array_contains(self, name: str, member: SqlExpr) -> SqlExpr:
        """Whether the document's string array ``name`` has the element ``member`` (never null)."""

    @abstractmethod
    def json_array_length(self, name: str) -> SqlExpr:
        """The number of elements of the document's array ``name``."""

    # -- numbers -----------------------------------------------------------------------

    def integer_literal(self, value: int) -> SqlExpr:
        return sa.literal(value, sa.BigInteger())

    @abstractmethod
    def decimal_literal(self, value: Decimal) -> SqlExpr:
        """A non-integer literal, exactly (raises NotCompilable where that is impossible)."""

    @abstractmethod
    def exact(self, value: SqlExpr, kind: str) -> SqlExpr:
        """A number as an exact decimal: ``int``, ``decimal`` or ``double`` (read as Python's
        ``Decimal(repr(x))`` reads a float, the way rule-engine loads it)."""

    # -- strings -----------------------------------------------------------------------

    @abstractmethod
    def ordered(self, text: SqlExpr) -> SqlExpr:
        """A string compared by code point, as Python compares ``str``."""

    @abstractmethod
    def contains_text(self, haystack: SqlExpr, needle: SqlExpr) -> SqlExpr:
        """Whether ``needle`` occurs in ``haystack`` (both non-null)."""

    @abstractmethod
    def text_length(self, text: SqlExpr) -> SqlExpr:
        """Length in code points."""

    def starts_with(self, text: SqlExpr, prefix: SqlExpr) -> SqlExpr:
        return func.substr(text, 1, self.text_length(prefix)) == prefix

    def ends_with(self, text: SqlExpr, suffix: SqlExpr) -> SqlExpr:
        start = self.text_length(text) - self.text_length(suffix) + 1
        return sa.and_(self.text_length(suffix) <= self.text_length(text), func.substr(text, start) == suffix)

    # -- the session -------------------------------------------------------------------

    @abstractmethod
    def session(self, engine: Engine, timeout_s: float) -> AbstractContextManager[Connection]:
        """A connection in one read-only snapshot whose statements stop after ``timeout_s``."""


def _reads(expr: SqlExpr, columns: dict[str, SqlExpr]) -> Iterator[str]:
    """The shared values an expression reads (by identity of the column objects that read them)."""
    names = {id(column): name for name, column in columns.items()}
    for element in visitors.iterate(expr):
        if id(element) in names:
            yield names[id(element)]


@dataclass(frozen=True)
class _Shared:
    """A per-row value computed in a subquery: its expression, type, and dependency level."""

    name: str
    expr: SqlExpr
    type: Any
    level: int  # 1 + the highest level of the shared values it reads


class PostgresDialect(SqlDialect):
    name = "postgresql"
    exact_decimals = True

    def __init__(self, as_of: dt.datetime) -> None:
        super().__init__(as_of)
        self._values: dict[str, _Shared] = {}
        self._columns: dict[str, SqlExpr] = {}  # the one column object that reads each value

    def shared(self, key: str, build: Callable[[], SqlExpr], type_: Any) -> SqlExpr:
        """A value computed once per row in the subquery of its level, read by name.

        A value's level is one more than the highest level among the shared
        values its expression reads, so a subquery only reads values of the
        subqueries inside it. The name is unqualified (``v_<key>``): each
        level selects everything of the one inside it, so it reads the same
        everywhere above its own level.
        """
        if key not in self._values:
            expr = build()
            read = [self._values[name].level for name in _reads(expr, self._columns)]
            value = _Shared(f"v_{key}", expr, type_, 1 + max(read, default=0))
            self._values[key] = value
            self._columns[key] = sa.literal_column(value.name, type_)
        return self._columns[key]

    def select(self, *columns: SqlExpr, where: SqlExpr | None = None) -> sa.Select[Any]:
        source: FromClause = PROFILES
        for level in sorted({value.level for value in self._values.values()}):
            adapter = ClauseAdapter(source)  # profiles.x -> the level below's x
            values = [
                adapter.traverse(value.expr).label(value.name)
                for value in self._values.values()
                if value.level == level
            ]
            source = sa.select(source, *values).offset(0).subquery(f"s_{level}")
        adapter = ClauseAdapter(source)
        query = sa.select(*(adapter.traverse(column) for column in columns)).select_from(source)
        return query if where is None else query.where(adapter.traverse(where))

    def _as_of(self) -> SqlExpr:
        return sa.literal(self.as_of, sa.DateTime(timezone=True))

    def _local(self, instant: SqlExpr) -> SqlExpr:
        return func.timezone(PROFILES.c.timezone, instant)

    def today(self) -> SqlExpr:
        return self.shared("today", lambda: func.date(self._local(self._as_of())), sa.Date())

    def local_date(self, instant: SqlExpr) -> SqlExpr:
        return func.date(self._local(instant))

    def days_ago(self, days: int) -> SqlExpr:
        return self.today() - days if days else self.today()

    def days_between(self, later: SqlExpr, earlier: SqlExpr) -> SqlExpr:
        return sa.type_coerce(later - earlier, sa.Integer())

    def local_hour(self) -> SqlExpr:
        return sa.cast(func.extract("hour", self._local(self._as_of())), sa.Integer())

    def active_count_on_or_before(self, days: int) -> SqlExpr:
        return self.shared(
            f"active_le_{days}",
            lambda: func.width_bucket(self.days_ago(days), PROFILES.c.active_days),
            sa.Integer(),
        )

    def active_latest_on_or_before(self, days: int) -> SqlExpr:
        return self._element(self.active_count_on_or_before(days))

    def _element(self, index: SqlExpr) -> SqlExpr:
        """The active day at a 1-based index (null outside the array)."""
        return sa.type_coerce(PROFILES.c.active_days[index], sa.Date())

    def longest_recent_gap(self, window: int) -> SqlExpr:
        # The days in the window are the elements after the last one before it, up to today's.
        first = self.active_count_on_or_before(window)  # index of the last day before the window
        last = self.active_count_on_or_before(0)
        gaps = []
        for step in range(1, window + 1):  # at most one active day per calendar day in the window
            index = first + step
            gaps.append(
                sa.case(
                    (
                        sa.and_(index <= last, index > 1),
                        self.days_between(self._element(index), self._element(index - 1)),
                    ),
                    else_=sa.null(),
                )
            )
        return func.greatest(*gaps)  # ignores nulls; null when all are

    def instant(self, column: SqlExpr) -> SqlExpr:
        return column

    def instant_literal(self, value: dt.datetime) -> SqlExpr:
        return sa.literal(value, sa.DateTime(timezone=True))

    def local_midnight(self, day: SqlExpr) -> SqlExpr:
        return func.timezone(PROFILES.c.timezone, sa.cast(day, sa.DateTime()))

    def shift(self, instant: SqlExpr, delta: dt.timedelta) -> SqlExpr:
        # The session is in UTC (``session``), where adding days is adding 24-hour periods.
        return instant + sa.literal(delta, sa.Interval())

    def json_scalar(self, name: str, scalar: str) -> SqlExpr:
        text = _data()[name].astext
        types: dict[str, Any] = {
            "string": None,
            "integer": sa.BigInteger(),
            "number": sa.Numeric(),  # the document's digits (orjson writes repr's): exactly Decimal(repr(x))
            "boolean": sa.Boolean(),
            "date": sa.Date(),
            "datetime": sa.DateTime(timezone=True),
        }
        target = types[scalar]
        return text if target is None else sa.cast(text, target)

    def json_array_contains(self, name: str, member: SqlExpr) -> SqlExpr:
        return func.coalesce(_data()[name].op("?", return_type=sa.Boolean())(member), sa.false())

    def json_array_length(self, name: str) -> SqlExpr:
        return func.jsonb_array_length(_data()[name])

    def decimal_literal(self, value: Decimal) -> SqlExpr:
        return sa.literal(value, sa.Numeric())

    def exact(self, value: SqlExpr, kind: str) -> SqlExpr:
        if kind == "double":
            # float8 prints its shortest round-trip digits (extra_float_digits = 1, set in
            # ``session``): the digits of Python's repr, which is what rule-engine reads.
            return sa.cast(sa.cast(value, sa.Text()), sa.Numeric())
        return sa.cast(value, sa.Numeric())

    def ordered(self, text: SqlExpr) -> SqlExpr:
        return text.collate("C")

    def contains_text(self, haystack: SqlExpr, needle: SqlExpr) -> SqlExpr:
        return func.strpos(haystack, needle) > 0

    def text_length(self, text: SqlExpr) -> SqlExpr:
        return func.char_length(text)

    @contextmanager
    def session(self, engine: Engine, timeout_s: float) -> Iterator[Connection]:
        """A REPEATABLE READ, READ ONLY transaction: every statement sees the same snapshot.

        Settings are transaction-local (``set_config(..., true)``), so the
        pooled connection goes back unchanged.
        """
        settings = {
            "statement_timeout": f"{max(1, round(timeout_s * 1000))}ms",
            "TimeZone": "UTC",
            "DateStyle": "ISO, YMD",
            "extra_float_digits": "1",
            "jit": "off",  # compiling these wide expressions costs more than it saves
        }
        with engine.connect() as connection:
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with connection.begin():
                for name, value in settings.items():
                    connection.execute(
                        sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
                    )
                yield connection


@functools.lru_cache(maxsize=4096)
def _parse_instant(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _local_date(instant: str | None, zone: str | None) -> str | None:
    if instant is None or zone is None:
        return None
    return _parse_instant(instant).astimezone(zone_named(zone)).date().isoformat()


def _local_hour(instant: str | None, zone: str | None) -> int | None:
    if instant is None or zone is None:
        return None
    return _parse_instant(instant).astimezone(zone_named(zone)).hour


def _epoch_us(instant: str | None) -> int | None:
    if instant is None:
        return None
    return (_parse_instant(instant) - _EPOCH) // dt.timedelta(microseconds=1)


def _midnight_us(day: str | None, zone: str | None) -> int | None:
    if day is None or zone is None:
        return None
    midnight = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=zone_named(zone))
    return (midnight - _EPOCH) // dt.timedelta(microseconds=1)


_SQLITE_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "strata_local_date": (2, _local_date),
    "strata_local_hour": (2, _local_hour),
    "strata_epoch_us": (1, _epoch_us),
    "strata_midnight_us": (2, _midnight_us),
}


class SqliteDialect(SqlDialect):
    name = "sqlite"
    exact_decimals = False

    def __init__(self, as_of: dt.datetime) -> None:
        super().__init__(as_of)
        self._values: dict[str, SqlExpr] = {}  # computed in the subquery
        self._columns: dict[str, SqlExpr] = {}  # the columns that read them
        self._inline: dict[str, SqlExpr] = {}  # built on shared values: left in place

    def shared(self, key: str, build: Callable[[], SqlExpr], type_: Any) -> SqlExpr:
        """Values that read only the profile are computed once per row in one subquery,
        ``(SELECT profiles.*, <values> FROM profiles LIMIT -1) AS shared`` (the LIMIT keeps
        SQLite from flattening it back into every reader). Values built on shared ones are
        cheap arithmetic on them and stay where they are read."""
        if key in self._columns:
            return self._columns[key]
        if key not in self._inline:
            expr = build()
            if any(True for _ in _reads(expr, self._columns)):
                self._inline[key] = expr
            else:
                self._values[key] = expr
                self._columns[key] = sa.literal_column(f"{_SHARED}.{key}", type_)
                return self._columns[key]
        return self._inline[key]

    def select(self, *columns: SqlExpr, where: SqlExpr | None = None) -> sa.Select[Any]:
        if not self._values:
            query = sa.select(*columns).select_from(PROFILES)
            return query if where is None else query.where(where)
        values = [expr.label(key) for key, expr in self._values.items()]
        rows = sa.select(PROFILES, *values).limit(-1).subquery(_SHARED)
        adapter = ClauseAdapter(rows)  # profiles.x -> shared.x in what reads the subquery
        query = sa.select(*(adapter.traverse(column) for column in columns)).select_from(rows)
        return query if where is None else query.where(adapter.traverse(where))

    def _as_of(self) -> SqlExpr:
        return sa.literal(self.as_of.strftime(_UTC_TEXT), sa.Text())

    def today(self) -> SqlExpr:
        return func.strata_local_date(self._as_of(), PROFILES.c.timezone)

    def local_date(self, instant: SqlExpr) -> SqlExpr:
        return func.strata_local_date(instant, PROFILES.c.timezone)

    def days_ago(self, days: int) -> SqlExpr:
        return func.date(self.today(), f"-{days} days") if days else self.today()

    def days_between(self, later: SqlExpr, earlier: SqlExpr) -> SqlExpr:
        return sa.cast(func.julianday(later) - func.julianday(earlier), sa.Integer())

    def local_hour(self) -> SqlExpr:
        return func.strata_local_hour(self._as_of(), PROFILES.c.timezone)

    def _active_days(self) -> sa.Subquery:
        """The profile's active days (stored sorted and distinct), a correlated subquery with one column ``d``."""
        listed = func.json_each(PROFILES.c.active_days).table_valued("value")
        return sa.select(listed.c.value.label("d")).correlate(PROFILES).subquery()

    def active_count_on_or_before(self, days: int) -> SqlExpr:
        def build() -> SqlExpr:
            active = self._active_days()
            return (
                sa.select(func.count(active.c.d)).where(active.c.d <= self.days_ago(days)).scalar_subquery()
            )

        return self.shared(f"active_le_{days}", build, sa.Integer())

    def active_latest_on_or_before(self, days: int) -> SqlExpr:
        def build() -> SqlExpr:
            active = self._active_days()
            return sa.select(func.max(active.c.d)).where(active.c.d <= self.days_ago(days)).scalar_subquery()

        return self.shared(f"active_latest_{days}", build, sa.Text())

    def longest_recent_gap(self, window: int) -> SqlExpr:
        later, earlier = self._active_days(), self._active_days()
        previous = sa.select(func.max(earlier.c.d)).where(earlier.c.d < later.c.d).scalar_subquery()
        today = self.today()
        return (
            sa.select(func.max(self.days_between(later.c.d, previous)))
            .where(later.c.d <= today, later.c.d > self.days_ago(window))
            .scalar_subquery()
        )

    def instant(self, column: SqlExpr) -> SqlExpr:
        return func.strata_epoch_us(column)

    def instant_literal(self, value: dt.datetime) -> SqlExpr:
        return self.integer_literal((value - _EPOCH) // dt.timedelta(microseconds=1))

    def local_midnight(self, day: SqlExpr) -> SqlExpr:
        return func.strata_midnight_us(day, PROFILES.c.timezone)

    def shift(self, instant: SqlExpr, delta: dt.timedelta) -> SqlExpr:
        return instant + self.integer_literal(delta // dt.timedelta(microseconds=1))

    def json_scalar(self, name: str, scalar: str) -> SqlExpr:
        value = func.json_extract(PROFILES.c.data, f"$.{name}")
        if scalar == "datetime":
            return func.strata_epoch_us(value)
        return value

    def json_array_contains(self, name: str, member: SqlExpr) -> SqlExpr:
        items = func.json_each(PROFILES.c.data, f"$.{name}").table_valued("value")
        return sa.exists(sa.select(1).select_from(items).where(items.c.value == member).correlate(PROFILES))

    def json_array_length(self, name: str) -> SqlExpr:
        return func.json_array_length(PROFILES.c.data, f"$.{name}")

    def decimal_literal(self, value: Decimal) -> SqlExpr:
        number = float(value)
        if Decimal(repr(number)) != value:
            raise NotCompilable(f"SQLite has no exact decimal for {value}")
        return sa.literal(number, sa.Double())

    def exact(self, value: SqlExpr, kind: str) -> SqlExpr:
        if kind != "int":
            raise NotCompilable("SQLite has no exact decimal arithmetic")
        return value

    def ordered(self, text: SqlExpr) -> SqlExpr:
        return text  # SQLite's default BINARY collation compares UTF-8 bytes: code point order

    def contains_text(self, haystack: SqlExpr, needle: SqlExpr) -> SqlExpr:
        return func.instr(haystack, needle) > 0

    def text_length(self, text: SqlExpr) -> SqlExpr:
        return func.length(text)

    @contextmanager
    def session(self, engine: Engine, timeout_s: float) -> Iterator[Connection]:
        """One read transaction (a WAL snapshot), writes refused, a progress handler as the timeout.

        The zone functions are registered on the connection; the handler and
        ``query_only`` are removed again before the connection goes back to the pool.
        """
        deadline = time.monotonic() + timeout_s
        with engine.connect() as connection:
            raw = cast(sqlite3.Connection, connection.connection.driver_connection)
            for name, (arity, function) in _SQLITE_FUNCTIONS.items():
                raw.create_function(name, arity, function, deterministic=True)
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            connection.exec_driver_sql("PRAGMA query_only = ON")
            try:
                connection.exec_driver_sql("BEGIN")
                try:
                    yield connection
                finally:
                    connection.exec_driver_sql("ROLLBACK")
            finally:
                raw.set_progress_handler(None, 0)
                connection.exec_driver_sql("PRAGMA query_only = OFF")


def dialect_for(engine_dialect: str, as_of: dt.datetime) -> SqlDialect:
    """The primitives for a SQLAlchemy dialect name (``postgresql`` or ``sqlite``)."""
    dialects: dict[str, type[SqlDialect]] = {"postgresql": PostgresDialect, "sqlite": SqliteDialect}
    if engine_dialect not in dialects:
        raise ValueError(f"no preview SQL for {engine_dialect!r}")
    return dialects[engine_dialect](as_of)
