"""Engines from database URLs: Postgres through psycopg 3, or a SQLite file.

Only these two are supported because the bulk paths are written for them
(COPY on Postgres, ``INSERT ... ON CONFLICT`` on both); anything else is
refused here, at start-up, rather than failing on the first import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from psycopg.pq import ConnStatus
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InvalidatePoolError

from strata.store.timeouts import DeadlinePool, bound_postgres

SQLITE_BUSY_TIMEOUT_S = 30
#: Waits for a pooled connection and connects give up after this long, or a request's budget if shorter.
POSTGRES_TIMEOUT_S = 10


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalize_url(url: str | URL) -> URL:
    """The URL with its driver made explicit (``postgresql://`` means psycopg 3 here).

    SQLAlchemy would pick psycopg2 for a bare ``postgresql://``, which is not
    installed; ``postgres://`` is what Heroku-style platforms hand out.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg")
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if (backend, driver) not in (("postgresql", "psycopg"), ("sqlite", "pysqlite")):
        shown = parsed.render_as_string(hide_password=True)
        raise ValueError(f"unsupported database URL {shown!r}: use postgresql+psycopg://... or sqlite:///...")
    return parsed


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits; NORMAL sync is durable
    # across application crashes in WAL mode; SQLite leaves foreign keys off
    # unless asked, per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def make_engine(url: str | URL, *, pool_size: int = 10) -> Engine:
    """An engine for ``url`` with pool and connection settings fit for the service.

    Postgres: a pool of ``pool_size`` connections (as many again on bursts),
    checked with a ping before use (``_ping``) and recycled every 30 minutes,
    so a database restart or an idle-connection reaper costs no failed requests;
    pool waits, connects and statements inside ``timeouts.bounded`` end
    with the request's budget.
    SQLite: the file's directory is created if missing (the default URL
    points into ``var/``), and each connection gets WAL and foreign keys.
    JSON documents go through orjson both ways.
    """
    parsed = normalize_url(url)
    json_options: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **json_options)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    engine = create_engine(
        parsed,
        poolclass=DeadlinePool,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=POSTGRES_TIMEOUT_S,
        pool_recycle=1800,
        # A server that stops answering mid-statement (a lost network) fails the call, not the thread.
        connect_args={"tcp_user_timeout": POSTGRES_TIMEOUT_S * 1000},
        **json_options,
    )
    event.listen(engine, "checkout", _ping)
    bound_postgres(engine, POSTGRES_TIMEOUT_S)
    return engine


def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for a fifth of its CPU: an empty query straight through libpq.

    Every checkout pays for it, and the dialect's ping (a psycopg cursor,
    ``SELECT 1``, autocommit switched on and off) cost as much CPU as a short
    query of its own. The round trip is the same. A
    connection found lost is replaced as the pre-ping does it: the pool
    reconnects this one and retires all that are older.
    """
    pgconn = dbapi_connection.pgconn
    if pgconn.status == ConnStatus.OK:  # not closed by psycopg already (exec_ would raise)
        pgconn.exec_(b"")
    if pgconn.status != ConnStatus.OK:
        raise InvalidatePoolError("the connection was lost")
