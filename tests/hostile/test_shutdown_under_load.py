"""SIGTERM under a load loop: readiness first, every call in flight answered, then a clean exit.

A real ``strata serve`` (REST in its own thread, or under gunicorn as
``make run`` serves it, or two gRPC processes on one port) takes concurrent DecideBatch calls over REST and gRPC,
each slow enough (a batch of four inline profiles of 9,000 active days, three kinds each) to
be caught mid-way. SIGTERM is sent in the middle of the loop. Counted:

- calls started before the signal: every one must be answered, and the
  same as every other answer (in flight or done before);
- calls started after it: answered, or refused (gRPC UNAVAILABLE, or
  CANCELLED for a call that reached the server as it stopped and never
  started; REST 503 or a refused connection), counted apart; anything else
  fails the test;
- a gRPC health watch opened before the signal sees NOT_SERVING;
- the process exits with status 0.

A call is counted as started before the signal when it was sent at least
``ACCEPT_WINDOW`` earlier: one sent a moment before the signal may reach a
socket that is already closing, which a client cannot tell apart from one
sent after.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import requests
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import ROUTE_BY_RPC, Clients
from tests.fakes import AS_OF, PROFILES
from tests.load import LoadThreads
from tests.replica import Replica, start_replica

ACCEPT_WINDOW = 0.05
DAYS = [(dt.date(2026, 3, 10) - dt.timedelta(days=n)).isoformat() for n in range(9000)]
DECISIONS = {
    "profile": {**PROFILES["u-current"], "activity_dates": DAYS},
    "rulesets": ["lifecycle", "segment", "intervention"],
    "as_of": AS_OF,
}
REQUEST = {"requests": [DECISIONS] * 4}
# Encoded once: building this request takes long enough to blur when a call was sent.
DECIDE = ROUTE_BY_RPC["DecideBatch"]
REST_BODY = orjson.dumps(REQUEST)
GRPC_PAYLOAD = json_format.ParseDict(REQUEST, DECIDE.request()).SerializeToString()
REFUSED = {"unavailable", "refused"}


@dataclass(frozen=True)
class Call:
    transport: str
    started: float
    ended: float
    outcome: str  # ok, refused, unavailable, or what went wrong
    body: dict[str, Any] | None = None


@dataclass
class Load:
    replica: Replica
    calls: list[Call] = field(default_factory=list)
    signalled: float | None = None
    threads: LoadThreads = field(default_factory=LoadThreads)

    def _call(self, clients: Clients, transport: str) -> tuple[str, dict[str, Any] | None]:
        try:
            outcome = (
                clients.rest_raw(DECIDE.method, DECIDE.path, REST_BODY)
                if transport == "rest"
                else clients.grpc_raw(DECIDE, GRPC_PAYLOAD)
            )
        except requests.RequestException:  # refused or reset: which calls may see it is checked below
            return "refused", None
        except AssertionError as exc:  # not Strata's envelope (see Clients.rest_raw)
            return f"malformed: {exc}", None
        if outcome.status == grpc.StatusCode.CANCELLED:  # reached a stopping server, never started
            return "refused", None
        return outcome.code, outcome.body

    def _loop(self, transport: str) -> None:
        clients = Clients(self.replica.url, grpc.insecure_channel(f"127.0.0.1:{self.replica.grpc_port}"))
        while self.threads.running:
            started = time.monotonic()
            outcome, body = self._call(clients, transport)
            self.calls.append(Call(transport, started, time.monotonic(), outcome, body))
            if outcome != "ok" and self.signalled is not None:
                break  # the server is going away
        clients.channel.close()

    def start(self, rest: int, grpc_: int) -> None:
        self.threads.start(self._loop, [(transport,) for transport in ["rest"] * rest + ["grpc"] * grpc_])

    def answered(self, count: int) -> bool:
        return sum(call.outcome == "ok" for call in self.calls) >= count


def _watch_health(replica: Replica, seen: list[int], ready: threading.Event) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        try:
            for response in stream:
                seen.append(response.status)
                ready.set()
        except grpc.RpcError:
            pass  # the server stopped


@pytest.fixture(
    params=[["--rest", "builtin"], ["--rest", "gunicorn"], ["--rest", "builtin", "--grpc-processes", "2"]],
    ids=["builtin", "gunicorn", "two-grpc-processes"],
)
def replica(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replica]:
    database = f"sqlite:///{tmp_path / 'strata.db'}"
    started = start_replica(database, tmp_path / "serve.log", "--migrate", *request.param)
    try:
        started.wait_ready(timeout=180)
        yield started
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait(10)


def test_sigterm_under_load_fails_no_call_in_flight(replica: Replica) -> None:
    health: list[int] = []
    watching = threading.Event()
    threading.Thread(target=_watch_health, args=(replica, health, watching), daemon=True).start()
    assert watching.wait(10) and health[-1] == health_pb2.HealthCheckResponse.SERVING

    load = Load(replica)
    load.start(rest=2, grpc_=3)  # gunicorn runs 2 sync workers: one REST caller each
    deadline = time.monotonic() + 60
    while not load.answered(10):
        assert time.monotonic() < deadline, f"no answers: {load.calls[-3:]}"
        time.sleep(0.05)
    load.signalled = time.monotonic()
    replica.process.terminate()
    assert replica.process.wait(30) == 0, replica.log.read_text()
    load.threads.stop()

    signalled = load.signalled
    before = [call for call in load.calls if call.started < signalled - ACCEPT_WINDOW]
    after = [call for call in load.calls if call.started >= signalled - ACCEPT_WINDOW]
    assert [call for call in before if call.outcome != "ok"] == []
    assert [call for call in after if call.outcome not in REFUSED | {"ok"}] == []
    in_flight = [call for call in before if call.ended > signalled]
    assert in_flight, "no call was in flight when the signal came"
    reference = next(call.body for call in load.calls if call.outcome == "ok")
    assert all(call.body == reference for call in load.calls if call.outcome == "ok")
    assert health_pb2.HealthCheckResponse.NOT_SERVING in health
    print(
        f"\nSIGTERM under load: {len(before)} calls before, {len(in_flight)} of them in flight, "
        f"{sum(c.outcome == 'ok' for c in after)} answered and "
        f"{sum(c.outcome in REFUSED for c in after)} refused after"
    )
