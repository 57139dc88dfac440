"""``strata serve --grpc-processes 2``: two serving processes on one gRPC port, as one replica.

Real processes, real connections: channels are opened until each serving
process has accepted one (the kernel picks a process per connection), then
every process must answer, serve an activation made through REST, and count
its calls in the one ``/metrics``. A serving process that dies stops the
replica with status 1.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests

from strata.access.store import TokenStore
from strata.access.tokens import Tokens
from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import decision_pb2_grpc as pb_grpc
from strata.store import make_engine
from tests.conftest import RULES_DIR
from tests.replica import Replica, channels_to_every_process, serving_processes, start_replica
from tests.scrape import gained, scrape_url, wait_for

DUOLINGO = "lifecycle.duolingo"
REWORDED = (
    (RULES_DIR / f"{DUOLINGO}.yaml")
    .read_text()
    .replace("reason: not active in the last 30 days", "reason: gone quiet for 30 days")
)


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    database = f"sqlite:///{tmp_path / 'strata.db'}"
    started = start_replica(database, tmp_path / "serve.log", "--migrate", "--grpc-processes", "2")
    try:
        started.wait_ready(timeout=180)
        yield started
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait(10)


def _answers(stubs: list[pb_grpc.DecisionServiceStub]) -> set[tuple[int, str]]:
    """The (version, checksum) of lifecycle.duolingo that answered one call on each stub."""
    request = pb.ClassifyLifecycleRequest()
    request.profile.update({"user_id": "u-1", "activity_dates": ["2026-01-02"]})
    responses = [stub.ClassifyLifecycle(request, timeout=10) for stub in stubs]
    return {(response.version, response.checksum) for response in responses}


def test_every_process_answers_counts_in_one_metrics_and_serves_an_activation(replica: Replica) -> None:
    pids = serving_processes(replica)
    assert len(pids) == 2
    channels = channels_to_every_process(replica, pids)
    stubs = [pb_grpc.DecisionServiceStub(channel) for channel in channels]
    try:
        before = scrape_url(replica.url)
        ((version, old_checksum),) = _answers(stubs)
        assert version == 1
        after = scrape_url(replica.url)
        # REST's /metrics (in the first process) adds up both processes' counts.
        assert gained(
            before, after, "strata_decisions_total", ruleset=DUOLINGO, version="1", why="active"
        ) == len(stubs)

        engine = make_engine(replica.database_url)
        token = Tokens(TokenStore(engine)).create("e2e-ops", "publisher")
        engine.dispose()
        headers = {"Authorization": f"Bearer {token}"}
        published = requests.post(
            f"{replica.url}/v1/rulesets/{DUOLINGO}/versions",
            json={"content": REWORDED, "note": "reword the default"},
            headers=headers,
            timeout=30,
        )
        assert published.status_code == 200, published.text
        activated = requests.post(
            f"{replica.url}/v1/rulesets/{DUOLINGO}:activate",
            json={"version": 2, "expected_revision": 1},
            headers=headers,
            timeout=30,
        )
        assert activated.status_code == 200, activated.text
        wait_for(lambda: {v for v, _ in _answers(stubs)} == {2}, "every process answering with version 2")
        ((_, new_checksum),) = _answers(stubs)
        assert new_checksum != old_checksum
    finally:
        for channel in channels:
            channel.close()
    assert replica.terminate() == 0, replica.log.read_text()


def test_a_serving_process_that_dies_stops_the_replica(replica: Replica) -> None:
    first, second = serving_processes(replica)
    os.kill(second, signal.SIGKILL)
    assert replica.process.wait(60) == 1
    output = replica.log.read_text()
    assert f"(pid {second}) exited with status -9: stopping the service" in output
    assert not Path(f"/proc/{first}").exists()  # the other drained and stopped, reaped by the replica
    with pytest.raises(grpc.RpcError), grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
        pb_grpc.DecisionServiceStub(channel).ClassifyLifecycle(pb.ClassifyLifecycleRequest(), timeout=2)


def _stopped(pid: int) -> bool:
    """Whether process ``pid`` has exited: gone, or a zombie nobody reaped yet (its new parent,
    whatever adopted it, may not reap at once)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_serving_processes_stop_when_the_replica_is_killed_outright(replica: Replica) -> None:
    pids = serving_processes(replica)
    assert len(pids) == 2
    replica.process.kill()  # SIGKILL: it passes nothing on
    replica.process.wait(10)
    wait_for(lambda: all(_stopped(pid) for pid in pids), "both serving processes stopping with the replica")
    with pytest.raises(grpc.RpcError), grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
        pb_grpc.DecisionServiceStub(channel).ClassifyLifecycle(pb.ClassifyLifecycleRequest(), timeout=2)
