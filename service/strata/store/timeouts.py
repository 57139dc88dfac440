"""Database work bounded by the request's deadline: pool waits, connects and statements.

A decision that loads a profile must answer before its caller gives up,
also when the database is slow, overloaded or gone. ``bounded(seconds)``
sets a budget for the database calls made inside it (in this thread or
task, through a context variable, so the stores' signatures stay plain):

- waiting for a pooled connection (``DeadlinePool``) gives up at the budget;
- a new connection's ``connect_timeout`` is the budget (libpq counts whole
  seconds, at least 2);
- on Postgres, a statement runs under ``statement_timeout`` equal to the
  budget, set on the connection's transaction only when a budget is active
  (reset-on-return's rollback undoes it), so other work on the same engine
  (imports, previews) keeps its own limits and no request pays a round
  trip when it has no budget.

Outside ``bounded`` the engine behaves as configured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

#: The monotonic instant by which database work in this context must be done (None: no budget).
_until: ContextVar[float | None] = ContextVar("strata_database_until", default=None)
#: libpq's smallest connect timeout; smaller values are treated as 2 s.
MIN_CONNECT_SECONDS = 2


def remaining(default: float) -> float:
    """Seconds left in the current budget, or ``default`` outside one."""
    until = _until.get()
    return default if until is None else max(0.0, until - time.monotonic())


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Database calls inside this block give up after ``seconds``."""
    token = _until.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _until.reset(token)


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


def _statement_timeout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    until = _until.get()
    if until is None:
        return
    milliseconds = max(1, int((until - time.monotonic()) * 1000))
    with dbapi_connection.cursor() as cursor:  # begins the transaction the request's statements run in
        cursor.execute(f"SET statement_timeout = {milliseconds}")


def bound_postgres(engine: Engine, connect_timeout: int) -> None:
    """Make ``engine``'s connects and statements honour ``bounded`` budgets (its pool: ``DeadlinePool``)."""
    event.listen(engine, "do_connect", _connect_timeout(connect_timeout))
    event.listen(engine, "checkout", _statement_timeout)
