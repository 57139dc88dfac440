"""Stored-profile decisions made at the same time: reads share queries (``store/lookup.py``), answers do not mix.

On Postgres the reads that arrive while one is under way are made together,
in one query; each request must still be decided on its own user's profile,
an unknown user still be ``not_found``, and a request whose deadline ends
while it waits for another's read be answered ``deadline_exceeded`` at its
own deadline, without failing the read it waited for.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from strata.errors import DeadlineExceeded
from strata.store import ProfileStore, make_engine, migrate
from strata.store.guarded import GuardedStore
from strata.store.lookup import MAX_BATCH
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.integration.conftest import LiveServers
from tests.postgres import PostgresServer
from tests.scrape import wait_for

#: Ids that must reach Postgres as data in the shared query's array: quotes, backslashes, braces, commas.
USERS = ["u-1", "o'brien", 'say "hi"', "back\\slash", "{a,b}", "NULL", "用户-1", "  spaced  ", "u-2"]
UNKNOWN = ["nobody", "o'brien2", "{}"]
RULESETS = ["lifecycle", "segment", "incentive", "intervention"]


def _profile(index: int, user_id: str) -> dict[str, Any]:
    """A profile of its own for each user: the stored users cycled, with points that tell them apart."""
    base = list(PROFILES.values())[index % len(PROFILES)]
    return {**base, "user_id": user_id, "points": 100 + index}


def test_concurrent_stored_decides_each_get_their_own_users_profile(live: LiveServers) -> None:
    clients, token = live.clients, live.token("reader")
    profiles = {user_id: _profile(index, user_id) for index, user_id in enumerate(USERS)}
    for profile in profiles.values():
        live.services.store.upsert(profile)
    request = {"rulesets": RULESETS, "as_of": AS_OF, "event": {"type": "sign_in", "count": 1}}
    expected = {
        user_id: clients.grpc("Decide", {**request, "profile": profile}, token=token).body
        for user_id, profile in profiles.items()
    }
    assert len({str(body["decisions"]) for body in expected.values()}) > 1  # the users are told apart
    asked = [*USERS, *UNKNOWN] * 12
    random.Random(9).shuffle(asked)

    def decide(user_id: str) -> tuple[str, Any]:
        return user_id, clients.grpc("Decide", {**request, "user_id": user_id}, token=token)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(decide, asked))
    for user_id, outcome in answers:
        if user_id in UNKNOWN:
            assert outcome.code == "not_found" and outcome.body["errors"][0]["field"] == "user_id"
        else:
            assert outcome.ok and outcome.body == expected[user_id], user_id


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url.render_as_string(hide_password=False)
    postgres_server.drop_database(url)


def test_a_read_waiting_for_a_stalled_one_ends_at_its_own_deadline(postgres_url: str) -> None:
    """A table lock stands in for a stalled database: the first read waits on it with a long deadline;
    a second, queued behind it with a short one, gives up at its own; the first is answered after."""
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    store = GuardedStore(ProfileStore(engine, default_rules().schema), timeout=30)
    store.upsert({**PROFILES["u-current"], "user_id": "patient"})
    locker = create_engine(postgres_url, poolclass=NullPool)
    first: list[Any] = []
    with locker.connect() as connection:
        connection.execute(text("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE"))  # until rollback
        patient = threading.Thread(target=lambda: first.append(store.get("patient", time.monotonic() + 30)))
        patient.start()
        _wait_for_a_lock_wait(locker)
        with pytest.raises(DeadlineExceeded, match="while loading the profile"):
            store.get("hasty", deadline=time.monotonic() + 0.3)
        assert patient.is_alive()  # still waiting for the lock: the hasty read did not end it
        connection.rollback()
    patient.join()
    assert first and first[0]["user_id"] == "patient"
    locker.dispose()
    engine.dispose()


def _wait_for_a_lock_wait(locker: Any) -> None:
    """Until some session of the database waits for a lock (the read queued behind the test's)."""
    with locker.connect() as watcher:
        while not watcher.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar():
            time.sleep(0.01)


def test_more_reads_queued_than_one_query_takes_each_get_their_own_row(postgres_url: str) -> None:
    """Reads queue behind a stalled one, more of them than one query reads (``lookup.MAX_BATCH``): once
    the stall ends, every one gets its own user's profile or None, over several queries."""
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    store = ProfileStore(engine, default_rules().schema)
    stored = [f"user-{index}" for index in range(MAX_BATCH + 16)]
    for index, user_id in enumerate(stored):
        store.upsert({"user_id": user_id, "points": index})
    asked = ["first", *stored, *(f"missing-{index}" for index in range(8))]
    locker = create_engine(postgres_url, poolclass=NullPool)
    with locker.connect() as connection, ThreadPoolExecutor(len(asked)) as pool:
        connection.execute(text("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE"))  # until rollback
        first = pool.submit(store.get, asked[0])
        _wait_for_a_lock_wait(locker)
        rest = [pool.submit(store.get, user_id) for user_id in asked[1:]]
        queue = store._reader._queue  # type: ignore[union-attr]  # Postgres: the store has a reader
        wait_for(lambda: len(queue) == len(rest), "every read to queue behind the first")
        connection.rollback()
        assert first.result() is None
        answers = [future.result() for future in rest]
    for user_id, answer in zip(asked[1:], answers, strict=True):
        if user_id.startswith("missing"):
            assert answer is None
        else:
            assert answer is not None and answer["user_id"] == user_id
            assert answer["points"] == stored.index(user_id)
    locker.dispose()
    engine.dispose()
