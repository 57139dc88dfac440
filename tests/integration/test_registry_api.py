"""The registry through both transports, on SQLite and Postgres, with the tokens a user would hold."""

from __future__ import annotations

import time
from typing import Any

import grpc
import orjson

from tests.conftest import RULES_DIR
from tests.e2e.conftest import ROUTE_BY_RPC, Clients, Outcome
from tests.integration.conftest import LiveServers
from tests.openapi_check import check_response
from tests.registry_files import LIFECYCLE, lifecycle

DUOLINGO = "lifecycle.duolingo"
CONTENT = (RULES_DIR / "lifecycle.duolingo.yaml").read_text()
REWORDED = CONTENT.replace("reason: not active in the last 30 days", "reason: gone quiet for 30 days")
DECISION = {"profile": {"user_id": "u1", "activity_dates": ["2025-01-01"]}, "as_of": "2026-03-10T12:00:00Z"}


def documented(rpc: str, outcome: Outcome) -> dict[str, Any]:
    """A successful REST body, checked against the OpenAPI document."""
    assert outcome.ok, outcome.body
    route = ROUTE_BY_RPC[rpc]
    check_response(route.path, route.method, outcome.body)
    return outcome.body


def revision(clients: Clients, token: str, name: str = DUOLINGO) -> int:
    body = clients.grpc("ListVersions", {"name": name}, token=token).body
    return int(body["ruleset"]["revision"])


def served_version(clients: Clients, token: str) -> int:
    return int(clients.rest("ClassifyLifecycle", DECISION, token=token).body["version"])


def test_publish_diff_activate_alias_roll_back_and_audit_over_both_transports(live: LiveServers) -> None:
    clients = live.clients
    publisher, reader = live.token("publisher", "ana"), live.token("reader")

    published = clients.rest(
        "PublishVersion", {"name": DUOLINGO, "content": REWORDED, "note": "reword"}, token=publisher
    )
    body = documented("PublishVersion", published)
    assert body["created"] is True and body["version"]["version"] == 2 and body["version"]["author"] == "ana"
    again = clients.grpc("PublishVersion", {"content": REWORDED}, token=publisher)  # the file names itself
    assert again.body["version"]["version"] == 2 and again.body["created"] is False  # deduped

    got = clients.grpc("GetVersion", {"name": DUOLINGO, "version": 2}, token=reader)
    assert got.body["content"] == REWORDED and got.body["note"] == "reword"
    diff = documented(
        "DiffVersions",
        clients.rest_raw("GET", f"/v1/rulesets/{DUOLINGO}/diff?from=1&to=2", headers=_bearer(reader)),
    )
    assert "-  reason: not active in the last 30 days\n+  reason: gone quiet for 30 days\n" in diff["diff"]
    listed = documented("ListRulesets", clients.rest("ListRulesets", {}, token=reader))
    duolingo = next(item for item in listed["rulesets"] if item["name"] == DUOLINGO)
    assert (duolingo["active_version"], duolingo["latest_version"], duolingo["revision"]) == (1, 2, "1")

    assert served_version(clients, reader) == 1
    activated = clients.grpc(
        "Activate", {"name": DUOLINGO, "version": 2, "expected_revision": 1}, token=publisher
    )
    assert activated.body["active_version"] == 2 and activated.body["revision"] == "2"
    deadline = time.monotonic() + 2
    while served_version(clients, reader) != 2:  # this replica's watcher picks it up
        assert time.monotonic() < deadline
        time.sleep(0.02)

    for stale in clients.both(
        "Activate", {"name": DUOLINGO, "version": 1, "expected_revision": 1}, token=publisher
    ):
        assert stale.code == "aborted" and stale.status in (409, grpc.StatusCode.ABORTED)
        assert "at revision 2, not 1" in stale.body["message"]

    aliased = clients.rest(
        "SetAlias",
        {"name": DUOLINGO, "alias": "stable", "version": 1, "expected_revision": 2},
        token=publisher,
    )
    assert documented("SetAlias", aliased)["aliases"] == {"stable": 1}
    rolled = clients.grpc("Rollback", {"name": DUOLINGO, "expected_revision": 3}, token=publisher)
    assert (rolled.body["active_version"], rolled.body["revision"]) == (1, "4")

    audit = documented(
        "ListAudit", clients.rest_raw("GET", f"/v1/audit?ruleset={DUOLINGO}&limit=4", headers=_bearer(reader))
    )
    assert [
        (e["actor"], e["action"], e.get("from_version"), e.get("to_version"), e["detail"])
        for e in audit["entries"]
    ] == [
        ("ana", "rollback", 2, 1, ""),
        ("ana", "alias", None, 1, "stable"),
        ("ana", "activate", 1, 2, ""),
        ("ana", "publish", None, 2, "reword"),
    ]
    older = clients.grpc(
        "ListAudit", {"ruleset": DUOLINGO, "before": audit["entries"][-1]["id"]}, token=reader
    )
    assert [(e["actor"], e["action"]) for e in older.body["entries"]] == [
        ("seed", "activate"),
        ("seed", "publish"),
    ]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bad_publishes_are_refused_with_their_errors_and_store_nothing(live: LiveServers) -> None:
    clients = live.clients
    publisher = live.token("publisher")
    refusals = {
        "broken expression": (lifecycle(when="(days_since_last_active ?? 999) <="), "invalid_argument"),
        "type error": (lifecycle(when="timezone > window"), "invalid_argument"),
        "failing test case": (lifecycle(expect="idle"), "failed_precondition"),
        "too large": (lifecycle() + "#" * 1_000_000, "resource_exhausted"),
    }
    for what, (content, code) in refusals.items():
        for outcome in clients.both(
            "PublishVersion", {"name": LIFECYCLE, "content": content}, token=publisher
        ):
            assert outcome.code == code, (what, outcome.body)
            assert outcome.body["errors"], what
    broken = clients.rest(
        "PublishVersion", {"name": LIFECYCLE, "content": lifecycle(when="nope > 1")}, token=publisher
    )
    located = broken.body["errors"][0]
    assert located["message"].startswith("unknown fact 'nope'")
    assert {key: located[key] for key in ("file", "line", "rule", "field")} == {
        "file": f"<{LIFECYCLE}>",
        "line": 7,
        "rule": "active",
        "field": "stages.0.when",
    }
    failing = clients.grpc(
        "PublishVersion", {"name": LIFECYCLE, "content": lifecycle(expect="idle")}, token=publisher
    )
    assert failing.status == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "test 'three days away': stage: expected 'idle', got 'active'" in failing.body["errors"][0]["message"]
    )

    oversized = orjson.dumps({"content": "#" * (5 * 1024 * 1024)})
    framework = clients.rest_raw("POST", f"/v1/rulesets/{LIFECYCLE}/versions", oversized, _bearer(publisher))
    assert (framework.status, framework.code) == (413, "resource_exhausted")

    for missing in clients.both("ListVersions", {"name": LIFECYCLE}, token=publisher):
        assert missing.code == "not_found"
    names = [item["name"] for item in clients.grpc("ListRulesets", {}, token=publisher).body["rulesets"]]
    assert LIFECYCLE not in names
    assert not any(
        entry.action == "publish" and entry.actor != "seed" for entry in live.services.registry.audit()
    )


def test_changes_need_a_publisher_token_and_a_revision(live: LiveServers) -> None:
    clients = live.clients
    reader, publisher = live.token("reader"), live.token("publisher")
    change = {"name": DUOLINGO, "version": 1, "expected_revision": 1}
    for outcome in clients.both("Activate", change):
        assert outcome.code == "unauthenticated"
    for outcome in clients.both("Activate", change, token=reader):
        assert outcome.code == "permission_denied" and outcome.status in (
            403,
            grpc.StatusCode.PERMISSION_DENIED,
        )
    for outcome in clients.both("PublishVersion", {"name": DUOLINGO, "content": REWORDED}, token=reader):
        assert outcome.code == "permission_denied"
    for outcome in clients.both("Activate", {"name": DUOLINGO, "version": 1}, token=publisher):
        assert (
            outcome.code == "invalid_argument" and outcome.body["errors"][0]["field"] == "expected_revision"
        )
    for outcome in clients.both(
        "Activate", {"name": DUOLINGO, "version": 9, "expected_revision": 1}, token=publisher
    ):
        assert outcome.code == "not_found" and "no version 9" in outcome.body["message"]
    for outcome in clients.both("Rollback", {"name": DUOLINGO, "expected_revision": 1}, token=publisher):
        assert outcome.code == "failed_precondition"
    assert revision(clients, reader) == 1
    bad_query = clients.rest_raw(
        "GET", f"/v1/rulesets/{DUOLINGO}/diff?from=one&to=2", headers=_bearer(reader)
    )
    assert bad_query.code == "invalid_argument"
    unknown = clients.rest_raw("GET", "/v1/audit?since=3", headers=_bearer(reader))
    assert unknown.code == "invalid_argument" and unknown.body["errors"][0]["field"] == "since"
