"""Pinned versions: a request names a version by number or alias, over REST and gRPC."""

from __future__ import annotations

import time

from tests.conftest import RULES_DIR
from tests.integration.conftest import LiveServers

DUOLINGO = "lifecycle.duolingo"
CONTENT = (RULES_DIR / "lifecycle.duolingo.yaml").read_text()
REWORDED = CONTENT.replace("reason: not active in the last 30 days", "reason: gone quiet for 30 days")
PROFILE = {"user_id": "u1", "activity_dates": ["2025-01-01"]}
AS_OF = "2026-03-10T12:00:00Z"


def _reasons(body: dict[str, object]) -> list[str]:
    explanation = body["explanation"]
    assert isinstance(explanation, list)
    return [hit["reason"] for hit in explanation]


def test_a_request_pins_a_version_by_number_or_alias_over_both_transports(live: LiveServers) -> None:
    clients = live.clients
    publisher, reader = live.token("publisher"), live.token("reader")
    assert (
        clients.grpc("PublishVersion", {"content": REWORDED}, token=publisher).body["version"]["version"] == 2
    )
    aliased = clients.grpc(
        "SetAlias",
        {"name": DUOLINGO, "alias": "canary", "version": 2, "expected_revision": 1},
        token=publisher,
    )
    assert aliased.ok, aliased.body
    deadline = time.monotonic() + 2
    while True:  # the watcher picks up the new version and alias
        outcome = clients.rest(
            "ClassifyLifecycle",
            {"profile": PROFILE, "as_of": AS_OF, "ruleset": f"{DUOLINGO}@canary"},
            token=reader,
        )
        if outcome.ok or time.monotonic() > deadline:
            break
        time.sleep(0.02)

    for ruleset, version, reason in [
        ("", 1, "active"),
        (DUOLINGO, 1, "active"),
        (f"{DUOLINGO}@2", 2, "pinned"),
        (f"{DUOLINGO}@canary", 2, "pinned"),
        ("@2", 2, "pinned"),
        ("lifecycle@1", 1, "pinned"),
    ]:
        request = {"profile": PROFILE, "as_of": AS_OF, "ruleset": ruleset}
        for outcome in clients.both("ClassifyLifecycle", request, token=reader):
            assert outcome.ok, (ruleset, outcome.body)
            body = outcome.body
            assert (body["ruleset"], body["version"], body["version_reason"]) == (DUOLINGO, version, reason)
            worded = "gone quiet for 30 days" if version == 2 else "not active in the last 30 days"
            assert worded in _reasons(body), (ruleset, body)

    request = {
        "profile": PROFILE,
        "as_of": AS_OF,
        "rulesets": ["lifecycle@canary", "segment.rfm", "lifecycle"],
    }
    for outcome in clients.both("Decide", request, token=reader):
        assert outcome.ok, outcome.body
        decisions = outcome.body["decisions"]
        assert [
            (d["lifecycle"]["version"], d["lifecycle"]["version_reason"])
            for d in (decisions[0], decisions[2])
        ] == [
            (2, "pinned"),
            (1, "active"),
        ]
        assert decisions[1]["segment"]["version_reason"] == "active"


def test_an_unknown_version_or_alias_is_not_found_over_both_transports(live: LiveServers) -> None:
    clients = live.clients
    reader = live.token("reader")
    for ruleset in (f"{DUOLINGO}@9", f"{DUOLINGO}@nope", "no.such@1", f"{DUOLINGO}@0"):
        request = {"profile": PROFILE, "as_of": AS_OF, "ruleset": ruleset}
        for outcome in clients.both("ClassifyLifecycle", request, token=reader):
            assert outcome.code == "not_found", (ruleset, outcome.body)
            assert outcome.body["errors"][0]["field"] == "ruleset"
        decide = {"profile": PROFILE, "as_of": AS_OF, "rulesets": ["segment", ruleset]}
        for outcome in clients.both("Decide", decide, token=reader):
            assert outcome.code == "not_found", (ruleset, outcome.body)
            assert outcome.body["errors"][0]["field"] == "rulesets.1"
    for outcome in clients.both(
        "ClassifyLifecycle", {"profile": PROFILE, "ruleset": f"{DUOLINGO}@"}, token=reader
    ):
        assert outcome.code == "invalid_argument", outcome.body
