"""The same requests over REST and gRPC, against real servers: identical answers, identical errors."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from strata.engine.schema import parse_datetime
from strata.transport.convert import decision_to_proto, message_to_json
from tests.e2e.conftest import ROUTE_BY_RPC, Clients, Outcome, Servers
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.openapi_check import check_response


def _documented(rpc: str, outcome: Outcome) -> None:
    """A REST body matches the OpenAPI document's schema for its status."""
    route = ROUTE_BY_RPC[rpc]
    check_response(route.path, route.method, outcome.body, 200 if outcome.ok else 400)


SUCCESSES: list[tuple[str, dict[str, Any]]] = [
    ("ClassifyLifecycle", {"user_id": "u-current", "as_of": AS_OF}),
    ("ClassifyLifecycle", {"user_id": "u-current", "as_of": AS_OF, "ruleset": "lifecycle.journey"}),
    ("ClassifyLifecycle", {"profile": PROFILES["u-new"], "as_of": AS_OF}),
    (
        "ClassifyLifecycle",
        {"user_id": "u-current", "as_of": AS_OF, "profile": {"activity_dates": [], "last_active_at": None}},
    ),
    ("AssignSegment", {"user_id": "u-current", "as_of": AS_OF}),
    ("AssignSegment", {"user_id": "u-lapsed", "as_of": AS_OF, "ruleset": "segment.pyramid"}),
    (
        "EvaluateIncentive",
        {"user_id": "u-current", "as_of": AS_OF, "event": {"type": "note_published", "count": 7}},
    ),
    (
        "EvaluateIncentive",
        {
            "user_id": "u-current",
            "as_of": AS_OF,
            "ruleset": "incentive.daily_signin",
            "event": {"type": "sign_in", "at": "2026-03-10T08:00:00Z"},
        },
    ),
    ("RecommendIntervention", {"user_id": "u-new", "as_of": AS_OF}),
    ("RecommendIntervention", {"user_id": "u-lapsed", "as_of": AS_OF}),
    (
        "Decide",
        {
            "user_id": "u-current",
            "as_of": AS_OF,
            "rulesets": ["lifecycle", "segment", "segment.pyramid", "incentive", "intervention"],
            "event": {"type": "like_received", "count": 3},
        },
    ),
    (
        "DecideBatch",
        {
            "requests": [
                {"user_id": "u-current", "as_of": AS_OF, "rulesets": ["lifecycle", "segment"]},
                {"user_id": "ghost", "as_of": AS_OF, "rulesets": ["lifecycle"]},
                {"user_id": "u-new", "as_of": AS_OF, "rulesets": ["nope.nope"]},
                {"profile": PROFILES["u-lapsed"], "as_of": AS_OF, "rulesets": ["intervention"]},
            ]
        },
    ),
    ("GetProfile", {"user_id": "u-new"}),
    (
        "Decide",
        {
            "profile": PROFILES["u-current"],
            "as_of": AS_OF,
            "rulesets": ["segment", "intervention"],
            "explain": "EXPLAIN_RULES",
        },
    ),
    (
        "DecideBatch",
        {
            "requests": [
                {"user_id": "u-new", "as_of": AS_OF, "rulesets": ["lifecycle"], "explain": "EXPLAIN_NONE"},
                {"profile": PROFILES["u-lapsed"], "as_of": AS_OF, "rulesets": ["segment"], "explain": 1},
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("rpc", "request_"), SUCCESSES, ids=[f"{i}-{rpc}" for i, (rpc, _) in enumerate(SUCCESSES)]
)
def test_same_answer_over_both_transports(clients: Clients, rpc: str, request_: dict[str, Any]) -> None:
    rest, grpc_ = clients.both(rpc, request_)
    assert rest.ok, rest.body
    assert rest.body == grpc_.body
    _documented(rpc, rest)


def test_the_answer_is_the_engines(clients: Clients) -> None:
    rest = clients.rest("ClassifyLifecycle", {"user_id": "u-current", "as_of": AS_OF})
    decision = (
        default_rules().get("lifecycle.duolingo").evaluate(PROFILES["u-current"], parse_datetime(AS_OF))
    )
    assert rest.body == message_to_json(decision_to_proto(decision))
    assert rest.body["stage"] == "current"


def test_a_batch_reports_errors_per_item(clients: Clients) -> None:
    results = clients.rest("DecideBatch", SUCCESSES[11][1]).body["results"]
    assert [next(iter(r)) for r in results] == ["response", "error", "error", "response"]
    assert results[1]["error"]["code"] == "not_found"
    assert results[2]["error"]["errors"] == [{"message": "unknown ruleset", "field": "rulesets.0"}]


CU = {"user_id": "u-current"}
ERRORS = [
    # (what, rpc, request, code, field)
    ("unknown user", "ClassifyLifecycle", {"user_id": "ghost"}, "not_found", "user_id"),
    (
        "wrong profile type",
        "AssignSegment",
        {**CU, "profile": {"orders_365d": "many"}},
        "invalid_argument",
        "profile.orders_365d",
    ),
    (
        "unknown profile field",
        "ClassifyLifecycle",
        {"profile": {"user_id": "x", "colour": "red"}},
        "invalid_argument",
        "profile.colour",
    ),
    (
        "missing required field",
        "ClassifyLifecycle",
        {"profile": {"points": 3}},
        "invalid_argument",
        "profile.user_id",
    ),
    ("no user at all", "ClassifyLifecycle", {}, "invalid_argument", "user_id"),
    ("unknown ruleset", "ClassifyLifecycle", {**CU, "ruleset": "lifecycle.nope"}, "not_found", "ruleset"),
    (
        "ruleset of another kind",
        "ClassifyLifecycle",
        {**CU, "ruleset": "segment.rfm"},
        "invalid_argument",
        "ruleset",
    ),
    ("incentive without event", "EvaluateIncentive", CU, "invalid_argument", "event"),
    (
        "event without type",
        "EvaluateIncentive",
        {**CU, "event": {"count": 2}},
        "invalid_argument",
        "event.type",
    ),
    (
        "bad event count",
        "EvaluateIncentive",
        {**CU, "event": {"type": "sign_in", "count": 0}},
        "invalid_argument",
        "event.count",
    ),
    (
        "bad time zone",
        "ClassifyLifecycle",
        {**CU, "profile": {"timezone": "Mars/Olympus"}},
        "invalid_argument",
        "profile.timezone",
    ),
    (
        "user ids disagree",
        "ClassifyLifecycle",
        {**CU, "profile": {"user_id": "u-new"}},
        "invalid_argument",
        "profile.user_id",
    ),
    ("decide with nothing asked", "Decide", CU, "invalid_argument", "rulesets"),
    (
        "decide with unknown ruleset",
        "Decide",
        {**CU, "rulesets": ["lifecycle", "x.y"]},
        "not_found",
        "rulesets.1",
    ),
    ("unknown profile", "GetProfile", {"user_id": "ghost"}, "not_found", "user_id"),
    ("delete unknown profile", "DeleteProfile", {"user_id": "ghost"}, "not_found", "user_id"),
]


@pytest.mark.parametrize(
    ("rpc", "request_", "code", "field"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_same_error_over_both_transports(
    clients: Clients, rpc: str, request_: dict[str, Any], code: str, field: str | None
) -> None:
    rest, grpc_ = clients.both(rpc, request_)
    assert not rest.ok and not grpc_.ok
    assert rest.body == grpc_.body  # the whole envelope: code, message, located problems
    assert rest.code == code
    assert rest.body["errors"][0]["field"] == field
    assert field in rest.body["message"]  # the one-line message names the field too
    _documented(rpc, rest)
    # the server keeps serving
    assert clients.both("ClassifyLifecycle", {"user_id": "u-current"})[1].ok


def test_a_body_that_does_not_decode_is_invalid_over_both(clients: Clients) -> None:
    route = ROUTE_BY_RPC["ClassifyLifecycle"]
    rest = clients.rest_raw("POST", route.path, b'{"user_id": "u-current",')
    grpc_ = clients.grpc_raw(route, b"\xff\xff\xff\xff")
    assert rest.code == grpc_.code == "invalid_argument"
    assert rest.body["errors"][0]["field"] == grpc_.body["errors"][0]["field"] == "body"
    assert "not valid JSON" in rest.body["message"]


def test_rest_names_a_misspelt_or_mistyped_field(clients: Clients) -> None:
    route = ROUTE_BY_RPC["Decide"]
    misspelt = clients.rest_raw("POST", route.path, b'{"user": "u-current"}')
    assert misspelt.code == "invalid_argument" and misspelt.body["errors"][0]["field"] == "user"
    mistyped = clients.rest_raw("POST", route.path, b'{"user_id": "u-current", "event": {"count": "x"}}')
    assert mistyped.body["errors"][0]["field"] == "event.count"
    not_object = clients.rest_raw("POST", route.path, b"[]")
    assert not_object.code == "invalid_argument"


def test_an_oversized_request_is_refused_over_both(clients: Clients) -> None:
    request = {"user_id": "u-current", "profile": {"tags": ["x" * 1024] * 5 * 1024}}  # ~5 MiB
    rest, grpc_ = clients.both("ClassifyLifecycle", request)
    assert rest.status == 413 and grpc_.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert rest.code == grpc_.code == "resource_exhausted"
    assert clients.both("ClassifyLifecycle", {"user_id": "u-current"})[0].ok


def test_a_deadline_already_passed_is_refused_over_both(clients: Clients) -> None:
    """A passed deadline never yields a decision.

    gRPC refuses a negative timeout in the client already (a zero one races:
    the runtime rounds it up and a fast call may still answer); REST's
    ``Grpc-Timeout: 0n`` reaches the server, which refuses before any work.
    """
    request = {"user_id": "u-current"}
    rest = clients.rest("ClassifyLifecycle", request, headers={"Grpc-Timeout": "0n"})
    grpc_ = clients.grpc("ClassifyLifecycle", request, timeout=-1)
    assert rest.status == 504 and grpc_.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert rest.code == grpc_.code == "deadline_exceeded"


def test_a_deadline_passing_during_the_profile_load_is_refused_over_both(
    servers: Servers, clients: Clients
) -> None:
    servers.store.delays["u-current"] = 0.3
    started = time.monotonic()
    rest = clients.rest("ClassifyLifecycle", {"user_id": "u-current"}, headers={"Grpc-Timeout": "100m"})
    grpc_ = clients.grpc("ClassifyLifecycle", {"user_id": "u-current"}, timeout=0.1)
    assert rest.code == grpc_.code == "deadline_exceeded"
    assert "after loading the profile" in rest.body["message"]
    assert time.monotonic() - started < 2


def test_a_malformed_timeout_header_is_named(clients: Clients) -> None:
    rest = clients.rest("ClassifyLifecycle", {"user_id": "u-current"}, headers={"Grpc-Timeout": "soon"})
    assert rest.code == "invalid_argument" and rest.body["errors"][0]["field"] == "Grpc-Timeout"


def test_profiles_over_both_transports(clients: Clients) -> None:
    profile = {"registered_at": "2026-01-01T00:00:00Z", "points": 12, "tags": ["travel"]}
    for transport in ("rest", "grpc"):
        send = clients.rest if transport == "rest" else clients.grpc
        user = f"u-{transport}"
        upserted = send("UpsertProfile", {"user_id": user, "profile": profile})
        assert upserted.ok and upserted.body == {"user_id": user, "profile": {**profile, "user_id": user}}
        assert send("GetProfile", {"user_id": user}).body == upserted.body
        decided = send("ClassifyLifecycle", {"user_id": user, "as_of": AS_OF})
        assert decided.ok
        assert send("DeleteProfile", {"user_id": user}).body == {"user_id": user}
        assert send("GetProfile", {"user_id": user}).code == "not_found"


def test_a_refused_write_changes_nothing(servers: Servers, clients: Clients) -> None:
    before = servers.store.get("u-current")
    bad = {"user_id": "u-current", "profile": {"points": "lots", "registered_at": "last week"}}
    rest, grpc_ = clients.both("UpsertProfile", bad)
    assert rest.body == grpc_.body
    assert rest.code == "invalid_argument"
    assert {e["field"] for e in rest.body["errors"]} == {"profile.points", "profile.registered_at"}
    assert servers.store.get("u-current") == before


def test_rest_framework_errors_use_the_envelope(clients: Clients) -> None:
    missing = clients.rest_raw("GET", "/v1/nothing")
    assert missing.status == 404 and missing.code == "not_found"
    wrong_method = clients.rest_raw("GET", "/v1/decide")
    assert wrong_method.status == 405 and wrong_method.code == "invalid_argument"


def test_health_and_reflection(servers: Servers, clients: Clients) -> None:
    health = health_pb2_grpc.HealthStub(clients.channel)
    for service in ("", "strata.v1.DecisionService", "strata.v1.ProfileService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(clients.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    listed = next(iter(reflection.ServerReflectionInfo(iter([request]))))
    names = {service.name for service in listed.list_services_response.service}
    assert {"strata.v1.DecisionService", "strata.v1.ProfileService", "grpc.health.v1.Health"} <= names
    assert clients.rest_raw("GET", "/healthz").body == {"status": "ok"}
    assert clients.rest_raw("GET", "/readyz").body == {"status": "ready"}
    document = clients.rest_raw("GET", "/openapi.json").body
    assert document["openapi"].startswith("3.")


def test_compiled_rules_are_shared_safely_by_the_grpc_thread_pool(clients: Clients) -> None:
    """Many concurrent calls over shared compiled rulesets give each caller its own answer."""
    rules = default_rules()
    cases = []
    for day in range(1, 41):
        profile = {
            "user_id": f"t{day}",
            "first_active_date": "2025-12-01",
            "activity_dates": [f"2026-02-{(day % 28) + 1:02d}", f"2026-03-{(day % 10) + 1:02d}"],
            "orders_365d": day,
            "spend_365d": day * 37.5,
            "last_order_at": f"2026-0{1 + day % 3}-15T10:00:00Z",
        }
        cases.append(
            {"profile": profile, "as_of": AS_OF, "rulesets": ["lifecycle", "segment", "intervention"]}
        )

    def expected(case: dict[str, Any]) -> list[str]:
        at = parse_datetime(AS_OF)
        return [
            rules.get("lifecycle.duolingo").evaluate(case["profile"], at).stage,  # type: ignore[attr-defined]
            rules.get("segment.rfm").evaluate(case["profile"], at).segment,  # type: ignore[attr-defined]
        ]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda case: clients.grpc("Decide", case), cases))
    for case, outcome in zip(cases, outcomes, strict=True):
        decisions = outcome.body["decisions"]
        assert [decisions[0]["lifecycle"]["stage"], decisions[1]["segment"]["segment"]] == expected(case)
