"""What the SQL stores share: connections whose outages are ``Unavailable``, instants in UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from strata.errors import Unavailable


@contextmanager
def connect(engine: Engine, *, write: bool = False, what: str = "the database") -> Iterator[Connection]:
    """A connection, in a transaction that commits when ``write``.

    A lost or locked database is ``Unavailable`` (503, retryable) instead of
    an ``internal`` error, and the use cases above never see SQLAlchemy.
    """
    try:
        with engine.begin() if write else engine.connect() as connection:
            yield connection
    except OperationalError as exc:
        raise Unavailable(f"{what} is unavailable") from exc


def utc(instant: dt.datetime) -> dt.datetime:
    """An instant read back as aware UTC (SQLite returns the naive UTC that was written)."""
    return instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant.astimezone(dt.UTC)
