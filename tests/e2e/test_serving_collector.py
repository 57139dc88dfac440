"""A serving process's collector: a large ``DecideBatch`` over gRPC runs no young passes (issue 9).

Python's default threshold ran a young pass every 700 net allocations, about 35 in a 500-user
batch, each walking the batch's results, alive until the answer is sent. A serving process
raises it (``wiring.YOUNG_COLLECTION_THRESHOLD``); this checks it does, through a real
``strata serve`` and a real call, and that the batch still answers every user as the service
does in process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import decision_pb2_grpc as pb_grpc
from strata.decisions import DecisionService
from strata.transport import convert
from tests.fakes import PROFILES, default_rules
from tests.replica import Replica, start_replica
from tests.scrape import gained, scrape_url

USERS = 300  # about 20 young passes under Python's default threshold
AS_OF = "2026-03-01T12:00:00Z"
KINDS = ["lifecycle", "segment", "incentive", "intervention"]


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    started = start_replica(f"sqlite:///{tmp_path / 'strata.db'}", tmp_path / "serve.log", "--migrate")
    try:
        started.wait_ready(timeout=180)
        yield started
    finally:
        started.terminate()


def _batch() -> pb.DecideBatchRequest:
    """``USERS`` inline profiles, the test profiles cycled, each with its own id, every kind."""
    request = pb.DecideBatchRequest()
    profiles = list(PROFILES.values())
    for index in range(USERS):
        item = request.requests.add(rulesets=KINDS, explain=pb.EXPLAIN_FULL)
        item.profile.update({**profiles[index % len(profiles)], "user_id": f"batch-{index}"})
        item.as_of.FromJsonString(AS_OF)
        item.event.type = "sign_in"
    return request


def _answers(response: pb.DecideBatchResponse) -> pb.DecideBatchResponse:
    """The response without the version stamps (the replica serves registry versions, rule files none)."""
    for result in response.results:
        for decision in result.response.decisions:
            kind = getattr(decision, str(decision.WhichOneof("decision")))
            kind.ClearField("version")
            kind.ClearField("version_reason")
    return response


def test_a_large_batch_over_grpc_runs_no_young_pass_and_answers_every_user(replica: Replica) -> None:
    request = _batch()
    with grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        stub.DecideBatch(request, timeout=60)  # anything first use builds stays out of the count
        before = scrape_url(replica.url)
        response = stub.DecideBatch(request, timeout=60)
        after = scrape_url(replica.url)

    assert gained(before, after, "python_gc_collections_total", generation="0") <= 1  # one due anyway
    in_process = DecisionService.from_files(default_rules()).decide_batch(convert.batch_request(request))
    assert _answers(response) == convert.batch_response(in_process)
    assert all(len(result.response.decisions) == len(KINDS) for result in response.results)
