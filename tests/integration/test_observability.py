"""Request ids and metrics through real servers: ids round trip over both transports; /metrics counts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest

from strata.api.strata.v1 import decision_pb2 as pb
from strata.config import Settings
from strata.transport.errors import GRPC_ERROR_KEY
from tests.integration.conftest import LiveServers, settings_for
from tests.scrape import gained, scrape, wait_for

DUOLINGO = "lifecycle.duolingo"
#: Request ids and metrics do not depend on the database: one backend keeps the suite quick.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
REQUEST = {"profile": {"user_id": "obs-1", "activity_dates": ["2026-03-09"]}, "as_of": "2026-03-10T12:00:00Z"}


@pytest.fixture
def live_settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path / "decisions.jsonl")


def grpc_classify(
    live: LiveServers, request: pb.ClassifyLifecycleRequest, metadata: list[tuple[str, str]]
) -> tuple[grpc.StatusCode, dict[str, Any]]:
    """The status and the trailing metadata of a ClassifyLifecycle call."""
    call = live.clients.channel.unary_unary(
        "/strata.v1.DecisionService/ClassifyLifecycle",
        request_serializer=pb.ClassifyLifecycleRequest.SerializeToString,
        response_deserializer=pb.LifecycleDecision.FromString,
    )
    try:
        _, outcome = call.with_call(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        outcome = error  # a failed unary call's error is also its Call
    return outcome.code(), dict(outcome.trailing_metadata() or ())


def logged(live: LiveServers) -> list[dict[str, Any]]:
    path = Path(live.services.decisions.log.path)  # type: ignore[union-attr]
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@SQLITE_ONLY
def test_a_request_id_is_echoed_over_both_transports_and_names_the_log_entries(live: LiveServers) -> None:
    reader = live.token("reader")
    auth = {"Authorization": f"Bearer {reader}"}
    url = live.clients.base_url + "/v1/lifecycle:classify"
    given = live.clients.http.post(url, json=REQUEST, headers={**auth, "X-Request-Id": "rest-1"}, timeout=30)
    assert given.status_code == 200 and given.headers["X-Request-Id"] == "rest-1"
    made = live.clients.http.post(url, json=REQUEST, headers=auth, timeout=30)
    assert made.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    failed = live.clients.http.post(
        url, json={"user_id": "nobody"}, headers={**auth, "X-Request-Id": "rest-2"}, timeout=30
    )
    assert failed.status_code == 404 and failed.headers["X-Request-Id"] == "rest-2"
    bad = live.clients.http.post(url, json=REQUEST, headers={**auth, "X-Request-Id": "a b"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "x-request-id"
    assert "X-Request-Id" not in bad.headers

    message = pb.ClassifyLifecycleRequest(user_id="obs-1")
    message.profile.update(REQUEST["profile"])
    message.as_of.FromJsonString(REQUEST["as_of"])
    bearer = ("authorization", f"Bearer {reader}")
    status, trailers = grpc_classify(live, message, [bearer, ("x-request-id", "grpc-1")])
    assert status == grpc.StatusCode.OK and trailers["x-request-id"] == "grpc-1"
    status, trailers = grpc_classify(live, message, [bearer])
    assert status == grpc.StatusCode.OK and re.fullmatch(r"[0-9a-f]{32}", trailers["x-request-id"])
    generated = trailers["x-request-id"]
    unknown = pb.ClassifyLifecycleRequest(user_id="nobody")
    status, trailers = grpc_classify(live, unknown, [bearer, ("x-request-id", "grpc-2")])
    assert status == grpc.StatusCode.NOT_FOUND and trailers["x-request-id"] == "grpc-2"
    assert GRPC_ERROR_KEY in trailers
    status, trailers = grpc_classify(live, message, [bearer, ("x-request-id", "x" * 129)])
    assert status == grpc.StatusCode.INVALID_ARGUMENT and "x-request-id" not in trailers
    assert orjson.loads(trailers[GRPC_ERROR_KEY])["errors"][0]["field"] == "x-request-id"

    expected = {"rest-1", made.headers["X-Request-Id"], "grpc-1", generated}
    wait_for(lambda: len(logged(live)) >= len(expected), "the decision log")
    entries = logged(live)
    assert {entry["request_id"] for entry in entries} == expected
    for entry in entries:
        assert (entry["user_id"], entry["ruleset"], entry["version"]) == ("obs-1", DUOLINGO, 1)
        assert entry["version_reason"] == "active" and entry["result"]["stage"] == "at_risk_wau"
        assert entry["latency_ms"] >= 0


@SQLITE_ONLY
def test_metrics_are_scraped_from_a_running_server(live: LiveServers) -> None:
    clients, reader = live.clients, live.token("reader")
    before = scrape(clients)
    for outcome in clients.both("ClassifyLifecycle", REQUEST, token=reader):
        assert outcome.ok, outcome.body
    decide = {**REQUEST, "rulesets": ["lifecycle", f"{DUOLINGO}@1", "segment"]}
    for outcome in clients.both("Decide", decide, token=reader):
        assert outcome.ok, outcome.body
    for outcome in clients.both("ClassifyLifecycle", {"user_id": "nobody"}, token=reader):
        assert outcome.code == "not_found"
    for outcome in clients.both("ClassifyLifecycle", REQUEST):
        assert outcome.code == "unauthenticated"
    wait_for(
        lambda: gained(before, scrape(clients), "strata_decision_log_written_total") >= 8,
        "the decision log to be written",
    )
    after = scrape(clients)

    def decisions(ruleset: str, version: str, why: str) -> float:
        return gained(before, after, "strata_decisions_total", ruleset=ruleset, version=version, why=why)

    assert decisions(DUOLINGO, "1", "active") == 4 and decisions(DUOLINGO, "1", "pinned") == 2
    assert decisions("segment.rfm", "1", "active") == 2
    assert gained(before, after, "strata_errors_total", code="not_found") == 2
    assert gained(before, after, "strata_errors_total", code="unauthenticated") == 2
    latency = "strata_request_latency_seconds_count"
    assert gained(before, after, latency, rpc="ClassifyLifecycle") == 4  # refused before the call: not timed
    assert gained(before, after, latency, rpc="Decide") == 2
    assert gained(before, after, "strata_decision_log_written_total") == 8
    assert gained(before, after, "strata_decision_log_dropped_total") == 0
    names = {name for name, _ in after}
    assert {"strata_rules_interpreted_expressions_total", "strata_rules_reruns_total"} <= names
    assert {"strata_shadow_dropped_total", "strata_request_latency_seconds_bucket"} <= names
