"""Two replicas on one Postgres: a change made through one is served by the other within a second.

Both are real ``python -m strata serve`` processes. While the change lands, a
load loop keeps calling the other replica over REST and gRPC (through
strata_client, with no retries) and must see no error and no flip-flop:
every caller sees the old version, then only the new one.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from strata_client import StrataClient

from strata.access.store import TokenStore
from strata.access.tokens import Tokens
from strata.store import make_engine
from tests.conftest import RULES_DIR
from tests.load import LoadThreads
from tests.postgres import PostgresServer
from tests.replica import Replica, start_replica

RELOAD_BUDGET_S = 1.0
DUOLINGO = "lifecycle.duolingo"
REWORDED = (
    (RULES_DIR / f"{DUOLINGO}.yaml")
    .read_text()
    .replace("reason: not active in the last 30 days", "reason: gone quiet for 30 days")
)
PROFILE = {"user_id": "load", "activity_dates": ["2026-01-02"]}


@dataclass
class Load:
    """Threads calling one replica as fast as they can, recording each answer's version or error."""

    replica: Replica
    answers: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    threads: LoadThreads = field(default_factory=LoadThreads)

    def _loop(self, name: str, client: StrataClient) -> None:
        answers = self.answers.setdefault(name, [])
        with client:
            while self.threads.running:
                try:
                    version = client.classify_lifecycle(profile=PROFILE).version
                except Exception as exc:
                    self.errors.append(f"{name}: {exc!r}")
                else:
                    answers.append((time.monotonic(), version))

    def __enter__(self) -> Load:
        clients = {
            "rest": StrataClient.rest(self.replica.url, timeout=5, retries=0),
            "grpc": StrataClient.grpc(f"127.0.0.1:{self.replica.grpc_port}", timeout=5, retries=0),
        }
        self.threads.start(self._loop, clients.items())
        return self

    def __exit__(self, *exc: object) -> None:
        self.threads.stop(10)

    def first_answer(self, version: int, timeout: float) -> float:
        """When every load thread has been answered by ``version`` (the latest first such answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            firsts = [
                next((t for t, v in answers if v == version), None) for answers in self.answers.values()
            ]
            if firsts and all(first is not None for first in firsts):
                return max(first for first in firsts if first is not None)
            time.sleep(0.01)
        raise AssertionError(f"version {version} was not served within {timeout} s")


def switch(via: Replica, watched: Replica, token: str, action: str, body: dict[str, Any], to: int) -> float:
    """Change the registry through ``via`` under load on ``watched``; seconds until ``watched`` served ``to``."""
    with Load(watched) as load:
        time.sleep(0.3)  # calls are flowing
        sent = time.monotonic()
        reply = requests.post(
            f"{via.url}/v1/rulesets/{DUOLINGO}:{action}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        latency = load.first_answer(to, timeout=5) - sent
        time.sleep(0.3)  # and keep calling after the switch
    assert load.errors == []
    for answers in load.answers.values():
        versions = [version for _, version in answers]
        switched = versions.index(to)
        assert set(versions[switched:]) == {to}, "a caller saw the old version again after the new one"
        assert len(versions) > 20
    return latency


@pytest.fixture
def replicas(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[Replica, Replica, str]]:
    """Two serving processes on one fresh Postgres database, and a publisher token."""
    url = postgres_server.create_database()
    database_url = url.render_as_string(hide_password=False)
    started: list[Replica] = []
    try:
        first = start_replica(database_url, tmp_path / "a.log", "--migrate")  # migrates and seeds
        started.append(first)
        first.wait_ready()
        second = start_replica(database_url, tmp_path / "b.log")
        started.append(second)
        second.wait_ready()
        engine = make_engine(database_url)
        token = Tokens(TokenStore(engine)).create("e2e-ops", "publisher")
        engine.dispose()
        yield first, second, token
    finally:
        for replica in started:
            replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            try:
                replica.process.wait(15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
        postgres_server.drop_database(url)


def test_an_activation_through_one_replica_is_served_by_the_other_within_a_second(
    replicas: tuple[Replica, Replica, str],
) -> None:
    a, b, token = replicas
    published = requests.post(
        f"{a.url}/v1/rulesets/{DUOLINGO}/versions",
        json={"content": REWORDED, "note": "reword the default"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert published.status_code == 200 and published.json()["version"]["version"] == 2, published.text

    activated = switch(a, b, token, "activate", {"version": 2, "expected_revision": 1}, to=2)
    rolled_back = switch(b, a, token, "rollback", {"expected_revision": 2}, to=1)
    print(f"\nreload latency: activation {activated * 1000:.0f} ms, rollback {rolled_back * 1000:.0f} ms")
    assert activated < RELOAD_BUDGET_S and rolled_back < RELOAD_BUDGET_S
