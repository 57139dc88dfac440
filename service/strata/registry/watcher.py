"""Hot reload: a background thread that keeps a replica's active rulesets current.

On Postgres it LISTENs on the registry's channel: an activation's NOTIFY is
delivered when its transaction commits, so replicas refresh within
milliseconds. A refresh also runs every ``safety_seconds`` regardless, in case
a notification is lost (a dropped connection, a change made by hand), and
after every reconnect. SQLite has no notifications, so there the registry's
change marker is polled every ``poll_seconds``: one indexed ``max(id)``.

A replica that started without its database (``prepare`` failed) runs
``prepare`` before each refresh until it succeeds, so it catches up by
itself when the database returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from strata.errors import StrataError
from strata.registry.serving import ActiveRulesets
from strata.registry.store import CHANNEL

log = logging.getLogger(__name__)

#: How long a wait for a notification lasts before the thread checks whether it should stop.
WAKE_SECONDS = 0.5


class Watcher:
    """Refreshes ``active`` from a daemon thread between ``start`` and ``stop``."""

    def __init__(
        self,
        active: ActiveRulesets,
        url: URL,
        *,
        poll_seconds: float = 0.5,
        safety_seconds: float = 5.0,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self._active = active
        self._prepare = prepare
        self._url = url
        self._poll_seconds = poll_seconds
        self._safety_seconds = safety_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listen = self._url.get_backend_name() == "postgresql"
        self._thread = threading.Thread(
            target=self._listen if listen else self._poll, name="strata-registry-watcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(WAKE_SECONDS + 5)

    def _refresh(self) -> None:
        if self._prepare is not None:
            try:
                self._prepare()
            except (StrataError, SQLAlchemyError) as exc:
                log.warning("the database is still unavailable (%s)", exc)
                return
            self._prepare = None
        self._active.refresh()

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            self._refresh()

    def _listen(self) -> None:
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._refresh()  # whatever changed while nobody was listening
                    self._wait_for_changes(connection)
            except psycopg.Error as exc:
                log.warning("lost the registry's notifications (%s); reconnecting", exc)
                self._refresh()
                self._stop.wait(self._poll_seconds)

    def _wait_for_changes(self, connection: psycopg.Connection[object]) -> None:
        refreshed = time.monotonic()
        while not self._stop.is_set():
            notified = False
            for _ in connection.notifies(timeout=WAKE_SECONDS, stop_after=1):
                notified = True
            if notified or time.monotonic() - refreshed >= self._safety_seconds:
                self._refresh()
                refreshed = time.monotonic()
