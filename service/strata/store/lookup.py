"""One stored profile by user id on Postgres, in one round trip and without SQLAlchemy's statement layer.

Every decision that names a user reads its profile here, so this read's cost
is the service's. Through an SQLAlchemy ``Connection`` it took five round
trips (the pool's ping, ``BEGIN``, the budget's ``SET``, the ``SELECT``, the
``ROLLBACK`` of the connection's return) and about 500 µs of CPU per load,
most of it SQLAlchemy's and psycopg's per-statement machinery, more than
the four decisions it feeds.

Here the connection still comes from the engine's pool (its wait bounded
by the budget, connected with the budget's timeout), but unpinged: a
connection the server dropped fails the read, which is then made once more
on a pinged one. The read is one simple-protocol message through libpq:
``SET LOCAL statement_timeout`` from what the budget leaves
(``timeouts.statement_timeout_sql``), then the ``EXECUTE`` of the ``SELECT``
prepared on that connection. Postgres runs the two as one implicit
transaction and times each statement on its own (since version 13), so the
read gets the budget, the setting ends with the message, and the connection
goes back to the pool idle: its reset on return costs no round trip either.
Failures come out as SQLAlchemy's exceptions, as from any other store call.

The ``SELECT`` is prepared (SQL ``PREPARE``, its own message under the
budget) the first time a connection reads, and again where it is gone;
Postgres then no longer parses and plans it on every read, about a third of
its CPU for a load (bench/store_bench.py). A prepared statement belongs to
the server session, so a pooler that hands one client's transactions to
different sessions (PgBouncer's transaction mode) does not fit this read:
put the service's connections in session mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import orjson
import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from strata.store.engine import unpinged
from strata.store.models import PROFILES
from strata.store.timeouts import statement_timeout_sql

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn, PGresult
    from sqlalchemy.pool import PoolProxiedConnection

_SELECT = f"SELECT {PROFILES.c.data.name} FROM {PROFILES.name} WHERE {PROFILES.c.user_id.name} = "
#: The read, prepared once per connection: Postgres then neither parses nor plans the ``SELECT`` again.
_PREPARE = f"PREPARE strata_profile AS {_SELECT}$1".encode()
_EXECUTE = b"EXECUTE strata_profile(%s)"
#: In ``PoolProxiedConnection.info`` (kept for the life of one DBAPI connection): ``_PREPARE`` ran on it.
_PREPARED = "strata_profile_prepared"


def stored_document(engine: Engine, user_id: str) -> Any | None:
    """The decoded ``data`` of ``user_id``'s row, or None without one. ``engine``: Postgres through psycopg."""
    if "\x00" in user_id:
        return None  # Postgres text cannot hold NUL, so no stored id has one (and libpq could not send it)
    with unpinged():
        try:
            return _checked_out_read(engine, user_id)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
    # The server had dropped that connection (a restart, a reaper): read once more, on a pinged one.
    return _checked_out_read(engine, user_id)


def _checked_out_read(engine: Engine, user_id: str) -> Any | None:
    try:
        pooled = engine.raw_connection()  # the pool hands on a failed connect as psycopg's error
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
    try:
        return _read(pooled, user_id)
    finally:
        pooled.close()


def _read(pooled: PoolProxiedConnection, user_id: str) -> Any | None:
    connection = cast("psycopg.Connection[Any]", pooled.driver_connection)
    pgconn = connection.pgconn
    encoding = connection.info.encoding
    execute = _EXECUTE % pq.Escaping(pgconn).escape_literal(user_id.encode(encoding))
    try:
        result = _executed(pooled, pgconn, execute, encoding)
    except psycopg.Error as exc:
        lost = pgconn.status == pq.ConnStatus.BAD
        if lost:
            pooled.invalidate(exc)  # the pool connects anew instead of handing it out again
        raise DBAPIError.instance(
            _SELECT + "%(user_id)s", {"user_id": user_id}, exc, psycopg.Error, connection_invalidated=lost
        ) from exc
    value = result.get_value(0, 0) if result.ntuples else None
    return None if value is None else orjson.loads(value)


def _executed(pooled: PoolProxiedConnection, pgconn: PGconn, execute: bytes, encoding: str) -> PGresult:
    """``execute``'s result, preparing the read first on a connection that does not have it.

    A statement prepared on a connection can also vanish from it: psycopg
    runs ``DEALLOCATE ALL`` with a rollback once it has prepared statements
    of its own, and SQLAlchemy's reads through this engine end in one. The
    ``EXECUTE`` then fails, changing nothing (its message is a transaction
    of its own), and the read is prepared again.
    """
    if pooled.info.get(_PREPARED):
        try:
            return _run(pgconn, statement_timeout_sql() + execute, encoding, pq.ExecStatus.TUPLES_OK)
        except psycopg.errors.InvalidSqlStatementName:
            pass
    # Bounded like the read: preparing waits for a lock on the table as much as the read does.
    _run(pgconn, statement_timeout_sql() + _PREPARE, encoding, pq.ExecStatus.COMMAND_OK)
    pooled.info[_PREPARED] = True
    return _run(pgconn, statement_timeout_sql() + execute, encoding, pq.ExecStatus.TUPLES_OK)


def _run(pgconn: PGconn, query: bytes, encoding: str, expected: pq.ExecStatus) -> PGresult:
    """The result of ``query``, one message of statements, if its last ended as ``expected`` (rows for
    the read, none for ``PREPARE``); psycopg's error if not."""
    result = pgconn.exec_(query)  # waits without the GIL
    if pgconn.status == pq.ConnStatus.BAD:  # lost: libpq's result carries no SQLSTATE to say so
        raise psycopg.OperationalError(pq.error_message(result, encoding))
    if result.status != expected:
        raise error_from_result(result, encoding)
    return result
