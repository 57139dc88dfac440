"""Hostile rules against a real `strata serve`: publishes over REST and gRPC, decisions, health checks.

The probe (every hostile publish over both transports, then decisions that
read naive datetimes, ``$now`` and ``$today``, run the regex attack, and
ask for a ``$range`` too long) runs once against a server under
TZ=UTC; the suite asserts on what it answered, then runs the same probe
against a server under TZ=Asia/Tokyo and expects the very same answers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import Outcome
from tests.hostile.rules_cases import (
    ALL_REFUSALS,
    ATTACK_INPUT,
    CATASTROPHIC,
    LIMIT_BREAKERS,
    NAME,
    WHEN_LINE,
    lifecycle,
)
from tests.hostile.rules_server import Served, serve

AS_OF = "2026-03-10T12:00:00Z"
CLOCK = "lifecycle.clock"
CLOCK_FILE = f"""\
name: {CLOCK}
kind: lifecycle
description: reads naive datetimes and the request's clock; no answer may depend on the host's zone
stages:
  - id: naive_literal
    when: (registered_at ?? d'2100-01-01') < d'2026-03-10 03:00'
    reason: a naive literal is UTC
  - id: parsed
    when: (registered_at ?? d'2100-01-01') < $parse_datetime('2026-03-10 06:00')
    reason: a naive string parsed in a rule is UTC
  - id: today
    when: $today == d'2026-03-10' and $now > d'2026-03-10 11:59'
    reason: the request's day and instant
default: {{stage: later, reason: none of the above}}
"""
REGEX = "lifecycle.regex"
RANGED = "lifecycle.ranged"
SERVED = {
    CLOCK: CLOCK_FILE,
    # the literal against the literal is matched while the rule builds, at publish
    REGEX: lifecycle(f"user_id =~ '{CATASTROPHIC}' or '{ATTACK_INPUT}' =~ '{CATASTROPHIC}'", name=REGEX),
    RANGED: lifecycle("$range(points) != []", name=RANGED),
}
"""The rulesets the probe publishes and activates."""
DECISIONS = {
    "naive 01:00": (CLOCK, {"user_id": "c1", "registered_at": "2026-03-10T01:00:00"}),
    "naive 04:00": (CLOCK, {"user_id": "c2", "registered_at": "2026-03-10T04:00:00"}),
    "no registration": (CLOCK, {"user_id": "c3"}),
    "Tokyo user": (CLOCK, {"user_id": "c4", "timezone": "Asia/Tokyo"}),
    "regex attack": (REGEX, {"user_id": ATTACK_INPUT}),
    "regex match": (REGEX, {"user_id": "aaaa"}),
    "short range": (RANGED, {"user_id": "u1", "points": 3}),
    "range too long": (RANGED, {"user_id": "u1", "points": 10_000_000}),
}
"""What the probe decides, over both transports: (ruleset, inline profile)."""
EXPECTED_STAGES = {
    "naive 01:00": "naive_literal",
    "naive 04:00": "parsed",
    "no registration": "today",
    "Tokyo user": "later",
    "regex attack": "other",
    "regex match": "hostile",
    "short range": "hostile",
}


def publish_and_activate(server: Served, name: str, content: str) -> int:
    """Publish a new ruleset over gRPC, activate it, and wait until the server decides with it."""
    published = server.clients.grpc("PublishVersion", {"content": content}, token=server.token)
    assert published.ok, published.body
    version = int(published.body["version"]["version"])
    request = {"name": name, "version": version, "expected_revision": 0}
    assert server.clients.grpc("Activate", request, token=server.token).ok
    deadline = time.monotonic() + 30  # the watcher reloads within a second
    probe = {"profile": {"user_id": "p"}, "as_of": AS_OF, "ruleset": name}
    while not server.clients.grpc("ClassifyLifecycle", probe).ok:
        assert time.monotonic() < deadline, f"{name} was not served"
        time.sleep(0.1)
    return version


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {"code": outcome.code, "body": outcome.body}


def probe(server: Served) -> dict[str, Any]:
    """Everything the hostile suite asks a server, and what it answered, keyed by case."""
    answers: dict[str, Any] = {}
    for case, refusal in ALL_REFUSALS.items():
        request = {"name": NAME, "content": refusal.content, "note": case}
        rest, grpc_ = server.clients.both("PublishVersion", request, token=server.token)
        answers[f"publish {case}"] = {"rest": _outcome(rest), "grpc": _outcome(grpc_)}
    for name, content in SERVED.items():
        answers[f"publish {name}"] = publish_and_activate(server, name, content)
    for label, (name, profile) in DECISIONS.items():
        request = {"profile": profile, "as_of": AS_OF, "ruleset": name}
        rest, grpc_ = server.clients.both("ClassifyLifecycle", request)
        answers[f"decide {label}"] = {"rest": _outcome(rest), "grpc": _outcome(grpc_)}
    return answers


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """A server under TZ=UTC and one under TZ=Asia/Tokyo, started side by side."""
    with contextlib.ExitStack() as stack, concurrent.futures.ThreadPoolExecutor(2) as pool:
        starting = {
            zone: pool.submit(
                stack.enter_context, serve(tmp_path_factory.mktemp(zone.replace("/", "-")), zone)
            )
            for zone in ("UTC", "Asia/Tokyo")
        }
        yield {zone: future.result() for zone, future in starting.items()}


@pytest.fixture(scope="module")
def server(zones: dict[str, Served]) -> Served:
    return zones["UTC"]


@pytest.fixture(scope="module")
def utc_probe(server: Served) -> dict[str, Any]:
    return probe(server)


@pytest.mark.parametrize("case", list(ALL_REFUSALS))
def test_hostile_publishes_are_refused_over_both_transports(utc_probe: dict[str, Any], case: str) -> None:
    refusal = ALL_REFUSALS[case]
    for transport, answer in utc_probe[f"publish {case}"].items():
        assert answer["code"] == refusal.code, (transport, answer)
        body = answer["body"]
        assert refusal.fragment in body["message"], (transport, body)
        (problem,) = [p for p in body["errors"] if refusal.fragment in p["message"]]
        if refusal.line == WHEN_LINE:
            assert (problem["line"], problem["rule"], problem["field"]) == (
                WHEN_LINE,
                "hostile",
                "stages.0.when",
            )
        if case in LIMIT_BREAKERS and not refusal.read:  # pydantic words its own
            assert "the maximum is" in problem["message"]


def test_decisions_answer_as_in_utc_on_both_transports(utc_probe: dict[str, Any]) -> None:
    assert [utc_probe[f"publish {name}"] for name in SERVED] == [1, 1, 1]
    for label, stage in EXPECTED_STAGES.items():
        answers = utc_probe[f"decide {label}"]
        assert answers["rest"] == answers["grpc"], label
        assert answers["rest"]["code"] == "ok", answers
        assert answers["rest"]["body"]["stage"] == stage, (label, answers)


def test_a_range_too_long_for_the_profile_fails_that_decision_with_its_limit(
    utc_probe: dict[str, Any],
) -> None:
    for answer in utc_probe["decide range too long"].values():
        assert answer["code"] == "evaluation_failed", answer
        assert "the length of $range is 10000000, the maximum is 1000" in answer["body"]["message"]
        assert "Traceback" not in json.dumps(answer)


def test_the_suite_answers_the_same_under_tokyo_time(
    utc_probe: dict[str, Any], zones: dict[str, Served]
) -> None:
    tokyo_probe = probe(zones["Asia/Tokyo"])
    differences = [key for key in utc_probe if utc_probe[key] != tokyo_probe[key]]
    assert not differences, json.dumps({key: [utc_probe[key], tokyo_probe[key]] for key in differences})[
        :4000
    ]


def test_the_regex_attack_is_answered_while_health_checks_answer(
    server: Served, utc_probe: dict[str, Any]
) -> None:
    assert utc_probe[f"publish {REGEX}"], "the probe publishes and activates the regex ruleset"

    def decide(user_id: str, transport: str) -> Outcome:
        request = {"profile": {"user_id": user_id}, "as_of": AS_OF, "ruleset": REGEX}
        if transport == "rest":
            return server.clients.rest("ClassifyLifecycle", request)
        return server.clients.grpc("ClassifyLifecycle", request, timeout=30)

    health = health_pb2_grpc.HealthStub(server.clients.channel)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        attacks = [pool.submit(decide, ATTACK_INPUT, transport) for transport in ("rest", "grpc") * 2]
        grpc_health = pool.submit(health.Check, health_pb2.HealthCheckRequest(service=""), timeout=30)
        rest_health = pool.submit(server.clients.rest_raw, "GET", "/healthz")
        matching = pool.submit(decide, "aaaa", "grpc")
        assert grpc_health.result(timeout=60).status == health_pb2.HealthCheckResponse.SERVING
        assert rest_health.result(timeout=60).body == {"status": "ok"}
        for attack in attacks:
            outcome = attack.result(timeout=60)
            assert outcome.ok and outcome.body["stage"] == "other", outcome.body
        assert matching.result(timeout=60).body["stage"] == "hostile"


def test_a_refused_version_leaves_the_active_one_serving(server: Served) -> None:
    request = {"profile": {"user_id": "u1", "activity_dates": ["2026-03-09"]}, "as_of": AS_OF}
    before = server.clients.grpc("ClassifyLifecycle", request)
    assert before.ok, before.body
    hostile = LIMIT_BREAKERS["nesting depth"].content.replace(NAME, "lifecycle.duolingo")
    refused = server.clients.grpc("PublishVersion", {"content": hostile}, token=server.token)
    assert refused.code == "invalid_argument" and refused.status == grpc.StatusCode.INVALID_ARGUMENT
    after = server.clients.both("ClassifyLifecycle", request)
    assert all(outcome.body == before.body for outcome in after)
    versions = server.clients.grpc("ListVersions", {"name": "lifecycle.duolingo"}, token=server.token)
    assert [v["version"] for v in versions.body["versions"]] == [1]


def test_a_file_larger_than_the_limit_is_refused_over_both_transports(server: Served) -> None:
    from strata.engine.limits import LIMITS

    padding = "#" + "x" * 1000 + "\n"
    content = lifecycle("true") + padding * (LIMITS.file_bytes // len(padding) + 1)
    for outcome in server.clients.both(
        "PublishVersion", {"name": NAME, "content": content}, token=server.token
    ):
        assert outcome.code == "resource_exhausted", outcome.body
