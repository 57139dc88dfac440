"""A database that hangs instead of failing: profile loads give up before the caller does.

A table lock held by the test stands in for a stalled database (its
statements wait, they do not fail). The replica is a real ``strata serve``
with ``STRATA_DATABASE_TIMEOUT=1``:

- with a deadline, the load is cut short by ``statement_timeout`` from what
  the deadline leaves, and the *server* answers ``deadline_exceeded`` (over
  REST, whose client sets no timeout of its own, so the 504 is the server's);
- without one, the load gives up after the configured second: ``unavailable``;
- inline-profile decisions, which need no database, are answered meanwhile.

The pool's wait for a free connection is bounded the same way (checked on
the store directly: filling a pool from outside a server is not possible).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from strata.errors import DeadlineExceeded, Unavailable
from strata.store import ProfileStore, make_engine, migrate
from strata.store.guarded import GuardedStore
from tests.e2e.conftest import Clients
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.postgres import PostgresServer
from tests.replica import Replica, start_replica

USER = "slow-1"


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url.render_as_string(hide_password=False)
    postgres_server.drop_database(url)


@pytest.fixture
def replica(database_url: str, tmp_path: Path) -> Iterator[Replica]:
    env = {"STRATA_DATABASE_TIMEOUT": "1", "STRATA_RULES_SNAPSHOT": str(tmp_path / "rules.json")}
    started = start_replica(database_url, tmp_path / "serve.log", "--migrate", env=env)
    try:
        started.wait_ready(timeout=180)  # a loaded CI machine compiles the rules slowly
        stored = requests.put(
            f"{started.url}/v1/profiles/{USER}", json={**PROFILES["u-current"], "user_id": USER}, timeout=10
        )
        assert stored.status_code == 200, stored.text
        yield started
    finally:
        started.terminate()


def test_a_stalled_database_is_cut_off_by_the_deadline_or_the_timeout(
    replica: Replica, database_url: str
) -> None:
    clients = Clients(replica.url, grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}"))
    stored = {"user_id": USER, "as_of": AS_OF}
    assert clients.rest("ClassifyLifecycle", stored).ok
    locker = create_engine(database_url, poolclass=NullPool)
    with locker.connect() as connection:
        connection.execute(text("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE"))  # until rollback

        # REST's caller sets no timeout of its own: the 504 is the server giving up at the deadline.
        rest = clients.rest("ClassifyLifecycle", stored, headers={"Grpc-Timeout": "500m"})
        assert rest.code == "deadline_exceeded" and rest.body["message"].startswith("deadline exceeded")
        grpc_ = clients.grpc("ClassifyLifecycle", stored, timeout=0.5)  # the server's answer or the client's
        assert grpc_.code == "deadline_exceeded"

        waited = clients.rest("ClassifyLifecycle", stored)  # no deadline: STRATA_DATABASE_TIMEOUT
        assert waited.code == "unavailable", waited.body

        inline = {"profile": {**PROFILES["u-current"], "user_id": "inline"}, "as_of": AS_OF}
        assert all(outcome.ok for outcome in clients.both("ClassifyLifecycle", inline))
        connection.rollback()
    locker.dispose()
    assert clients.rest("ClassifyLifecycle", stored).ok
    clients.channel.close()


def test_a_pool_wait_ends_with_the_deadline(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url, pool_size=1)  # one connection, one more on overflow
    store = GuardedStore(ProfileStore(engine, default_rules().schema), timeout=0.3)
    held = [engine.connect(), engine.connect()]
    try:
        with pytest.raises(DeadlineExceeded, match="while loading the profile"):
            store.get(USER, deadline=time.monotonic() + 0.2)
        with pytest.raises(Unavailable):
            store.get(USER)  # no deadline: the store's own timeout
    finally:
        for connection in held:
            connection.close()
    assert store.get(USER) is None  # connections are free again: answered
    engine.dispose()


def test_a_budget_ends_with_the_statements_it_bounds(database_url: str) -> None:
    """The budget's ``statement_timeout`` is not left on the pooled connection for imports and previews."""
    migrate(database_url)
    engine = make_engine(database_url, pool_size=1)  # each call below gets the same connection
    store = GuardedStore(ProfileStore(engine, default_rules().schema), timeout=0.5)
    store.upsert({**PROFILES["u-current"], "user_id": USER})  # a committed write under the budget
    assert store.get(USER, deadline=time.monotonic() + 5) is not None  # a read under the budget
    with engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "0"
    engine.dispose()
