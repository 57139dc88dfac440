"""Stored profiles by user id on Postgres: reads made at the same time share one query and one round trip.

Every decision that names a user reads its profile here, so this read's cost
is the service's. Each read used to check a connection out of SQLAlchemy's
pool and make its own round trip; under load most of a stored-profile
``Decide``'s extra CPU was that: the checkout, and a thread blocking on
Postgres for every request (and Postgres working through one message each).

Here the reads of a process share one connection of their own, and go in
turns. A read that finds none under way makes it at once, for itself and
for every read queued meanwhile (``MAX_BATCH`` at most): one message with
the budget (``SET LOCAL statement_timeout``) and the ``EXECUTE`` of a
prepared ``SELECT ... WHERE user_id = ANY(...)``. Reads that arrive while it
runs queue; when it ends, it hands each its row (or the error) and hands the
turn to the first queued read, which reads for all that queued. So a lone
read is never delayed, and a read that must wait, waits for the one under
way (and, past ``MAX_BATCH``, the ones queued before it); it is never
answered from a query sent before it asked, so no read can see a profile
older than its own request.

The statement's budget is the longest of its readers' (so none is cut short
by another's). A reader whose own budget ends first stops waiting then, with
SQLAlchemy's pool ``TimeoutError``, as a read that waited for a pooled
connection past it. The thread making the query waits for it, up to that
longest budget (the store's timeout at most); its caller then checks its
own deadline (``GuardedStore``, ``decisions``).

The connection comes through the engine's pool (the budget's connect
timeout, the ping) and is then detached from it: it serves only these reads,
so the ``SELECT`` is prepared once per connection and nothing else deallocates
it. A connection found lost (a restart, a reaper) is dropped and the read
made once more on a new one. A prepared statement belongs to the server
session, so a pooler that hands one client's transactions to different
sessions (PgBouncer's transaction mode) does not fit this read: put the
service's connections in session mode.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from strata.store.models import PROFILES
from strata.store.timeouts import budget_end, statement_timeout_sql

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn, PGresult

#: The most user ids one query reads; later ones wait for the next turn.
MAX_BATCH = 64
_USER_ID, _DATA = PROFILES.c.user_id.name, PROFILES.c.data.name
_SELECT = f"SELECT {_USER_ID}, {_DATA} FROM {PROFILES.name} WHERE {_USER_ID} = ANY($1::text[])"
#: The read, prepared once per connection: Postgres then neither parses nor plans the ``SELECT`` again.
_PREPARE = f"PREPARE strata_profiles AS {_SELECT}".encode()
_EXECUTE = b"EXECUTE strata_profiles(%s)"


class _Wanted:
    """One caller's read: its user id and budget, then the row's JSON or the error, or the turn to read.

    ``done`` is held from the start and released once, to wake the caller:
    when the read is answered, or when the turn is handed to it. A plain
    lock: the cheapest thing to block a thread on and wake it with.
    """

    __slots__ = ("done", "error", "json", "turn", "until", "user_id")

    def __init__(self, user_id: str, until: float | None) -> None:
        self.user_id = user_id
        self.until = until
        self.json: bytes | None = None
        self.error: BaseException | None = None
        self.turn = False
        self.done = _thread.allocate_lock()
        self.done.acquire()


class ProfileReader:
    """Reads the stored JSON of profiles by user id for every thread of a process; see the module's doc."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._queue: list[_Wanted] = []
        self._reading = False  # a read is under way: new ones queue
        self._connection: psycopg.Connection[Any] | None = None  # used only by the read under way
        self._encoding = "utf-8"  # the connection's (asking psycopg costs as much as building the query)

    def document(self, user_id: str) -> bytes | None:
        """The stored JSON of ``user_id``'s profile, or None without one.

        Bounded by the current ``timeouts.bounded`` budget; failures come out
        as SQLAlchemy's exceptions, as from any other store call.
        """
        if "\x00" in user_id:
            return None  # Postgres text cannot hold NUL, so no stored id has one (nor can libpq send it)
        wanted = _Wanted(user_id, budget_end())
        with self._lock:
            self._queue.append(wanted)
            its_turn = not self._reading
            self._reading = True
        if its_turn or self._waited_for_turn(wanted):
            self._read_queued()
        if wanted.error is not None:
            raise _raised(wanted.error, user_id) from wanted.error
        return wanted.json

    def _waited_for_turn(self, wanted: _Wanted) -> bool:
        """Whether ``wanted`` was handed the turn to read; else it was answered. Raises the pool's
        ``TimeoutError`` when its budget ends first."""
        timeout = -1.0 if wanted.until is None else max(0.0, wanted.until - time.monotonic())
        try:
            answered = wanted.done.acquire(timeout=timeout)
        except BaseException:  # interrupted (KeyboardInterrupt, SystemExit): leave, as on a timeout
            self._leave(wanted)
            raise
        if answered:
            return wanted.turn
        self._leave(wanted)
        raise PoolTimeout("the profile read did not answer within the budget")

    def _leave(self, wanted: _Wanted) -> None:
        """``wanted`` stops waiting: out of the queue if not read yet, handing on the turn if it was
        just handed it (else nobody would read again); else the read under way drops its answer."""
        with self._lock:
            if wanted in self._queue:
                self._queue.remove(wanted)
                if wanted.turn:
                    self._hand_turn_on()

    def _read_queued(self) -> None:
        """Read for the queued (this thread's own read first), answer each, then hand the turn on."""
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            found = self._read({wanted.user_id for wanted in batch}, _last(wanted.until for wanted in batch))
            for wanted in batch:
                wanted.json = found.get(wanted.user_id)
        except BaseException as exc:  # every reader gets the error, this one included
            for wanted in batch:
                wanted.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:  # whatever happened, no reader waits forever
            with self._lock:
                self._hand_turn_on()
            for wanted in batch[1:]:
                wanted.done.release()

    def _hand_turn_on(self) -> None:
        """Give the turn to the first queued read, or end the reading (under ``_lock``)."""
        if self._queue:
            first = self._queue[0]
            first.turn = True
            first.done.release()
        else:
            self._reading = False

    def _read(self, user_ids: set[str], until: float | None) -> dict[str, bytes]:
        """Each found id's stored JSON; on a connection found lost, once more on a new one."""
        try:
            return _rows(self._connected(until), self._encoding, user_ids, until)
        except psycopg.Error:
            if self._connection is None or self._connection.pgconn.status == pq.ConnStatus.OK:
                raise
            self._connection.close()
            self._connection = None
        return _rows(self._connected(until), self._encoding, user_ids, until)

    def _connected(self, until: float | None) -> PGconn:
        """This reader's connection, made (through the pool, then detached from it) and prepared if
        needed, under the budget ``until`` of the read it is for (all its readers', not this thread's)."""
        if self._connection is None:
            pooled = self._engine.raw_connection()  # the pool hands on a failed connect as psycopg's error
            connection = cast("psycopg.Connection[Any]", pooled.driver_connection)
            pooled.detach()
            self._encoding = connection.info.encoding
            try:
                # Bounded like the read: preparing waits for a lock on the table as much as the read does.
                query = statement_timeout_sql(until) + _PREPARE
                _run(connection.pgconn, self._encoding, query, pq.ExecStatus.COMMAND_OK)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection.pgconn


def _last(untils: Iterable[float | None]) -> float | None:
    """The latest of the budgets' ends: a statement under it cuts none of its readers short (None: no end)."""
    ends = list(untils)
    return None if None in ends else max(cast("list[float]", ends))


def _rows(pgconn: PGconn, encoding: str, user_ids: set[str], until: float | None) -> dict[str, bytes]:
    """The stored JSON of each of ``user_ids`` that has a row, in one message under the budget ``until``."""
    ids = ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in user_ids)
    literal = pq.Escaping(pgconn).escape_literal(f"{{{ids}}}".encode(encoding))
    result = _run(
        pgconn, encoding, statement_timeout_sql(until) + _EXECUTE % literal, pq.ExecStatus.TUPLES_OK
    )
    return {
        cast(bytes, result.get_value(row, 0)).decode(encoding): cast(bytes, result.get_value(row, 1))
        for row in range(result.ntuples)
    }


def _run(pgconn: PGconn, encoding: str, query: bytes, expected: pq.ExecStatus) -> PGresult:
    """The result of ``query``, one message of statements, if its last ended as ``expected`` (rows for
    the read, none for ``PREPARE``); psycopg's error if not."""
    result = pgconn.exec_(query)  # waits without the GIL
    if pgconn.status == pq.ConnStatus.BAD:  # lost: libpq's result carries no SQLSTATE to say so
        raise psycopg.OperationalError(pq.error_message(result, encoding))
    if result.status != expected:
        raise error_from_result(result, encoding)
    return result


def _raised(error: BaseException, user_id: str) -> Exception:
    """What a reader raises for the shared read's ``error``: its own exception, as the store's other calls
    raise them (several threads cannot raise one exception object at once)."""
    if isinstance(error, psycopg.Error):
        return DBAPIError.instance(_SELECT, {"user_id": user_id}, error, psycopg.Error)
    if isinstance(error, PoolTimeout):
        return PoolTimeout(str(error))
    if isinstance(error, DBAPIError) and isinstance(
        error.orig, Exception
    ):  # already SQLAlchemy's: the same kind, so it maps to the same status
        return DBAPIError.instance(error.statement, error.params, error.orig, psycopg.Error)
    return RuntimeError(f"the profile read failed: {error!r}")
