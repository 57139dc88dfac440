"""Database work bounded by the request's deadline: pool waits, connects and statements.

A decision that loads a profile must answer before its caller gives up,
also when the database is slow, overloaded or gone. ``bounded(seconds)``
sets a budget for the database calls made inside it (in this thread or
task, through a context variable, so the stores' signatures stay plain):

- waiting for a pooled connection (``DeadlinePool``) gives up at the budget;
- a new connection's ``connect_timeout`` is the budget (libpq counts whole
  seconds, at least 2);
- on Postgres, a statement runs under ``statement_timeout`` equal to what
  the budget leaves: ``SET LOCAL`` at the start of each transaction (of an
  SQLAlchemy connection) only when a budget is active, so the setting ends
  with the transaction, other work on the same engine (imports, previews)
  keeps its own limits and no request pays a round trip when it has no
  budget. Reads that bypass SQLAlchemy's connections (``store.lookup``)
  send ``statement_timeout_sql`` in front of their statement themselves.

Outside ``bounded`` the engine behaves as configured.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import QueuePool

T = TypeVar("T")
#: The monotonic instant by which database work in this context must be done (None: no budget).
_until: ContextVar[float | None] = ContextVar("strata_database_until", default=None)
#: libpq's smallest connect timeout; smaller values are treated as 2 s.
MIN_CONNECT_SECONDS = 2


def budget_end() -> float | None:
    """The monotonic instant the current budget ends, or None outside one."""
    return _until.get()


def remaining(default: float) -> float:
    """Seconds left in the current budget, or ``default`` outside one."""
    until = _until.get()
    return default if until is None else max(0.0, until - time.monotonic())


class Setting(Generic[T]):
    """A context variable set to a value inside a ``with`` block (in this thread or task).

    A class rather than ``@contextmanager``: every stored-profile load enters
    one (``bounded``), and a generator-based context costs about twice as much.
    """

    __slots__ = ("_token", "_value", "_variable")

    def __init__(self, variable: ContextVar[T], value: T) -> None:
        self._variable = variable
        self._value = value

    def __enter__(self) -> None:
        self._token = self._variable.set(self._value)

    def __exit__(self, *_exc: object) -> None:
        self._variable.reset(self._token)


def bounded(seconds: float) -> Setting[float | None]:
    """Database calls inside this block give up after ``seconds`` (counted from this call)."""
    return Setting(_until, time.monotonic() + seconds)


class DeadlinePool(QueuePool):
    """A queue pool whose wait for a free connection ends with the current budget, if shorter."""

    @property
    def _timeout(self) -> float:
        return min(self._configured_timeout, remaining(self._configured_timeout))

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._configured_timeout = value


def _connect_timeout(default: int) -> Any:
    def on_connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["connect_timeout"] = max(MIN_CONNECT_SECONDS, math.ceil(remaining(default)))

    return on_connect


def statement_timeout_sql(until: float | None) -> bytes:
    """``SET LOCAL statement_timeout`` to what a budget ending at ``until`` leaves, with its ``;``; empty
    for no budget (None).

    Sent in the same message as the statements it bounds, it costs no round
    trip of its own; ``LOCAL`` makes it end with their transaction.
    """
    if until is None:
        return b""
    # Rounded up: a statement cut off never fails before the budget's end, so a caller that
    # checks the clock on the failure (``GuardedStore``) sees the budget spent.
    milliseconds = max(1, math.ceil((until - time.monotonic()) * 1000))
    return b"SET LOCAL statement_timeout = %d; " % milliseconds


def _statement_timeout(connection: Connection) -> None:
    limit = statement_timeout_sql(_until.get())
    if limit:
        cursor = connection.connection.cursor()
        try:
            cursor.execute(limit)  # psycopg begins the transaction first: the setting is that transaction's
        finally:
            cursor.close()


def bound_postgres(engine: Engine, connect_timeout: int) -> None:
    """Make ``engine``'s connects and statements honour ``bounded`` budgets (its pool: ``DeadlinePool``)."""
    event.listen(engine, "do_connect", _connect_timeout(connect_timeout))
    event.listen(engine, "begin", _statement_timeout)
