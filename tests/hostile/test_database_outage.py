"""A real Postgres stopped and restarted under a load loop, and a replica started without one.

The cluster is private to this module (``tests.postgres.private_cluster``),
so stopping it harms no other test. The replica is a real ``strata serve``
process; the callers use REST and gRPC. What must hold:

- inline-profile decisions are answered throughout, from the rules in memory;
- stored-profile decisions are answered or refused with ``unavailable``
  (503 / UNAVAILABLE), never anything else, and every answer equals the
  engine's answer for that profile (zero wrong answers);
- once the database is back, stored-profile decisions are answered again by
  the same process (no restart);
- started without its database, a replica serves the rules it saved last
  time, or reports not ready (``/readyz`` 503, gRPC NOT_SERVING) and refuses
  decisions as ``unavailable``, never with an empty rule set; it catches up
  by itself when the database comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from strata.engine.schema import parse_datetime
from strata.store import ProfileStore, make_engine, migrate
from strata.transport.convert import decision_to_proto, message_to_json
from tests.e2e.conftest import Clients, Outcome
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.load import LoadThreads
from tests.postgres import Cluster, PostgresServer, PostgresUnavailable, private_cluster
from tests.replica import Replica, start_replica

STORED = "stored-1"
INLINE = {"user_id": "inline-1", "first_active_date": "2026-01-10", "activity_dates": ["2026-03-01"]}
REQUESTS: dict[str, dict[str, Any]] = {
    "inline": {"profile": INLINE, "as_of": AS_OF},
    "stored": {"user_id": STORED, "as_of": AS_OF},
}


def _expected(profile: dict[str, Any]) -> dict[str, Any]:
    """The engine's own answer for ``profile``, as the wire shows it, from the seeded version 1."""
    decision = default_rules().get("lifecycle.duolingo").evaluate(profile, parse_datetime(AS_OF))
    return {**message_to_json(decision_to_proto(decision)), "version": 1, "version_reason": "active"}


EXPECTED = {"inline": _expected(INLINE), "stored": _expected({**PROFILES["u-current"], "user_id": STORED})}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        with private_cluster() as started:
            yield started
    except PostgresUnavailable as exc:
        pytest.skip(f"cannot start a private Postgres cluster: {exc}")


@pytest.fixture
def database_url(cluster: Cluster) -> Iterator[str]:
    server = PostgresServer(cluster.url)
    url = server.create_database()
    yield url.render_as_string(hide_password=False)
    server.drop_database(url)


def _clients(replica: Replica) -> Clients:
    return Clients(replica.url, grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}"))


@dataclass
class LoadLoop:
    """Threads calling one replica (REST and gRPC, inline and stored profiles), recording every outcome."""

    replica: Replica
    outcomes: dict[tuple[str, str], list[Outcome]] = field(default_factory=dict)
    threads: LoadThreads = field(default_factory=LoadThreads)

    def _loop(self, transport: str, kind: str) -> None:
        clients = _clients(self.replica)
        send: Callable[[str, dict[str, Any]], Outcome] = getattr(clients, transport)
        outcomes = self.outcomes.setdefault((transport, kind), [])
        while self.threads.running:
            outcomes.append(send("ClassifyLifecycle", REQUESTS[kind]))
            time.sleep(0.005)
        clients.channel.close()

    def __enter__(self) -> LoadLoop:
        self.threads.start(
            self._loop, [(transport, kind) for transport in ("rest", "grpc") for kind in REQUESTS]
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.threads.stop()

    def codes(self, kind: str) -> set[str]:
        return {o.code for (_, k), outcomes in self.outcomes.items() if k == kind for o in outcomes}

    def wait_for(self, kind: str, code: str, after: int = 0, timeout: float = 60) -> None:
        """Until every transport has seen ``code`` for ``kind`` among its outcomes from index ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            seen = [
                any(o.code == code for o in outcomes[after:])
                for (_, k), outcomes in list(self.outcomes.items())
                if k == kind
            ]
            if len(seen) == 2 and all(seen):
                return
            assert time.monotonic() < deadline, (
                f"no {code!r} for {kind} within {timeout} s: {self.codes(kind)}"
            )
            time.sleep(0.05)

    def count(self) -> int:
        return min(len(outcomes) for outcomes in self.outcomes.values())


def _check_every_answer(load: LoadLoop) -> None:
    for (transport, kind), outcomes in load.outcomes.items():
        wrong = [o.body for o in outcomes if o.ok and o.body != EXPECTED[kind]]
        assert wrong == [], f"{transport} {kind}: answers that are not the engine's"
        refused = {o.code for o in outcomes if not o.ok}
        allowed = set() if kind == "inline" else {"unavailable"}
        assert refused <= allowed, f"{transport} {kind}: refused with {refused}"


def test_the_database_stopped_and_restarted_under_load(
    cluster: Cluster, database_url: str, tmp_path: Path
) -> None:
    env = {"STRATA_RULES_SNAPSHOT": str(tmp_path / "rules.json"), "STRATA_DATABASE_TIMEOUT": "1"}
    replica = start_replica(database_url, tmp_path / "serve.log", "--migrate", env=env)
    try:
        replica.wait_ready(timeout=180)
        stored = requests.put(
            f"{replica.url}/v1/profiles/{STORED}",
            json={**PROFILES["u-current"], "user_id": STORED},
            timeout=10,
        )
        assert stored.status_code == 200, stored.text
        with LoadLoop(replica) as load:
            load.wait_for("stored", "ok")
            _checkpoint(database_url)  # the test cluster commits asynchronously: keep the profile
            cluster.stop("immediate")  # a crash: connections die mid-traffic
            load.wait_for("stored", "unavailable")
            assert requests.get(f"{replica.url}/readyz", timeout=5).status_code == 200  # rules in memory
            cluster.start()
            load.wait_for("stored", "ok", after=load.count())  # recovered, without a restart
        assert replica.process.poll() is None
        _check_every_answer(load)
        assert load.codes("inline") == {"ok"}
        assert load.codes("stored") == {"ok", "unavailable"}
    finally:
        replica.terminate()


def _end_connections(database_url: str) -> int:
    """Terminate every other session on the database, as a restart or an idle reaper would; how many."""
    killer = create_engine(database_url, poolclass=NullPool)
    with killer.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    killer.dispose()
    return int(ended or 0)


def test_a_pooled_connection_the_server_dropped_costs_no_failed_call(database_url: str) -> None:
    """A profile read finds it by failing and reads again; other work finds it with the pool's ping."""
    migrate(database_url)
    engine = make_engine(database_url, pool_size=1)  # each call below gets the pool's one connection
    store = ProfileStore(engine, default_rules().schema)
    store.upsert({**PROFILES["u-current"], "user_id": STORED})
    assert store.get(STORED) is not None
    assert _end_connections(database_url) == 1
    read = store.get(STORED)  # answered on a new connection, not failed on the dead one
    assert read is not None and read["user_id"] == STORED
    assert _end_connections(database_url) == 1
    assert store.count() == 1  # through an SQLAlchemy Connection: the ping replaces it first
    engine.dispose()


def test_the_profile_reads_connection_is_prepared_anew_and_left_alone_by_other_work(
    database_url: str,
) -> None:
    """The reads have a connection of their own, with the read prepared on it (``store/lookup.py``): one
    that replaced a dropped one prepares it anew, and psycopg's ``DEALLOCATE ALL`` on the pool's
    connections (its rollback, once it has prepared statements of its own) does not reach it."""
    migrate(database_url)
    engine = make_engine(database_url, pool_size=1)
    store = ProfileStore(engine, default_rules().schema)
    store.upsert({**PROFILES["u-current"], "user_id": STORED})
    assert store.get(STORED) is not None
    assert _end_connections(database_url) == 1  # the reads' own: the pool's one went to them
    read = store.get(STORED)
    assert read is not None and read["user_id"] == STORED
    for _ in range(6):  # psycopg prepares the (committed) upsert itself, then deallocates all on a rollback
        store.upsert({**PROFILES["u-current"], "user_id": STORED})
    assert store.count() == 1 and _prepared(engine) == []
    read = store.get(STORED)
    assert read is not None and read["user_id"] == STORED
    assert _end_connections(database_url) == 2  # the pool's and the reads'
    engine.dispose()


def _prepared(engine: Engine) -> list[str]:
    """The statements prepared with SQL on a pooled connection (not the ones psycopg prepares)."""
    with engine.connect() as connection:
        return list(
            connection.execute(text("SELECT name FROM pg_prepared_statements WHERE from_sql")).scalars()
        )


def _checkpoint(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("CHECKPOINT"))
    engine.dispose()


def _health(replica: Replica) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
        request = health_pb2.HealthCheckRequest(service="strata.v1.DecisionService")
        return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status)


def test_a_start_without_the_database(cluster: Cluster, database_url: str, tmp_path: Path) -> None:
    saved = {"STRATA_RULES_SNAPSHOT": str(tmp_path / "rules.json")}
    first = start_replica(database_url, tmp_path / "first.log", "--migrate", env=saved)
    first.wait_ready(timeout=180)
    assert first.terminate() == 0
    assert (tmp_path / "rules.json").exists()  # written when it began serving
    cluster.stop("fast")
    try:
        # Nothing saved: not ready, and decisions are refused as unavailable, not "no such ruleset".
        unsaved = {"STRATA_RULES_SNAPSHOT": str(tmp_path / "none.json")}
        bare = start_replica(database_url, tmp_path / "bare.log", env=unsaved)
        try:
            _wait_for_port(bare)
            assert requests.get(f"{bare.url}/readyz", timeout=5).status_code == 503
            assert _health(bare) == health_pb2.HealthCheckResponse.NOT_SERVING
            rest, grpc_ = _clients(bare).both("ClassifyLifecycle", REQUESTS["inline"])
            assert rest.code == grpc_.code == "unavailable"
        finally:
            bare.terminate()

        # Saved rules: ready, answering inline profiles exactly as before; stored ones unavailable.
        replica = start_replica(database_url, tmp_path / "saved.log", env=saved)
        try:
            replica.wait_ready(timeout=180)
            assert _health(replica) == health_pb2.HealthCheckResponse.SERVING
            clients = _clients(replica)
            for outcome in clients.both("ClassifyLifecycle", REQUESTS["inline"]):
                assert outcome.ok and outcome.body == EXPECTED["inline"]
            for outcome in clients.both("ClassifyLifecycle", REQUESTS["stored"]):
                assert outcome.code == "unavailable"
            pinned = {**REQUESTS["inline"], "ruleset": "lifecycle.duolingo@1"}
            assert {o.code for o in clients.both("ClassifyLifecycle", pinned)} == {"unavailable"}
            cluster.start()
            deadline = time.monotonic() + 30
            while (stored := clients.rest("ClassifyLifecycle", REQUESTS["stored"])).code == "unavailable":
                assert time.monotonic() < deadline, "the replica did not reconnect"
                time.sleep(0.2)
            assert stored.code == "not_found"  # the database answers: this user was never stored here
        finally:
            replica.terminate()
    finally:
        if not cluster.running:
            cluster.start()


def _wait_for_port(replica: Replica, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert replica.process.poll() is None, replica.log.read_text()
        try:
            requests.get(f"{replica.url}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            assert time.monotonic() < deadline, replica.log.read_text()
            time.sleep(0.2)
