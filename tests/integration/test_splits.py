"""Traffic splits through the registry: set, changed and ended (revision guarded, audited), and served."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from strata.cli import main
from strata.errors import Conflict, NotFound
from strata.registry.service import Registry
from strata.splits import Split
from tests.conftest import RULES_DIR
from tests.integration.conftest import LiveServers
from tests.integration.test_registry_api import documented
from tests.scrape import wait_for
from tests.unit.test_splits import growthbook_arm

DUOLINGO = "lifecycle.duolingo"
CONTENT = (RULES_DIR / "lifecycle.duolingo.yaml").read_text()
REWORDED = CONTENT.replace("reason: not active in the last 30 days", "reason: gone quiet for 30 days")
AS_OF = "2026-03-10T12:00:00Z"


def run(database_url: str, *args: str | Path) -> Result:
    env = {"STRATA_DATABASE_URL": database_url, "COLUMNS": "200"}
    return CliRunner().invoke(main, [str(arg) for arg in args], env=env)


def test_a_split_is_set_changed_and_ended_with_the_revision_guard_and_audit(registry: Registry) -> None:
    registry.publish(CONTENT, "ana")
    registry.activate(DUOLINGO, 1, 0, "ana")
    registry.publish(REWORDED, "ana")
    half = Split((1, 2), (0.5, 0.5), "exp")
    head = registry.set_split(DUOLINGO, half, 1, "ana")
    assert head.revision == 2 and registry.split(DUOLINGO) == half
    with pytest.raises(Conflict, match="at revision 2, not 1"):
        registry.set_split(DUOLINGO, Split((1, 2), (0.9, 0.1), "exp"), 1, "bo")
    with pytest.raises(NotFound, match="no version 3"):
        registry.set_split(DUOLINGO, Split((1, 3), (0.5, 0.5), "exp"), 2, "bo")
    with pytest.raises(NotFound):
        registry.set_split("no.such", half, 0, "bo")
    assert registry.set_split(DUOLINGO, half, 2, "bo").revision == 2  # the same split changes nothing
    assert registry.set_split(DUOLINGO, Split((1, 2), (0.9, 0.1), "exp", 0.5), 2, "bo").revision == 3
    assert registry.splits() == {DUOLINGO: Split((1, 2), (0.9, 0.1), "exp", 0.5)}
    assert registry.end_split(DUOLINGO, 3, "cy").revision == 4
    assert registry.splits() == {} and registry.split(DUOLINGO) is None
    assert registry.end_split(DUOLINGO, 4, "cy").revision == 4  # no split: nothing to end
    trail = [(entry.actor, entry.action, entry.detail) for entry in registry.audit(DUOLINGO)[:3]]
    assert trail == [
        ("cy", "split", "ended"),
        ("bo", "split", "1:0.9,2:0.1 seed=exp coverage=0.5"),
        ("ana", "split", "1:0.5,2:0.5 seed=exp coverage=1.0"),
    ]


def test_the_cli_sets_changes_and_ends_a_split(database_url: str, registry: Registry) -> None:
    registry.publish(CONTENT, "ana")
    registry.activate(DUOLINGO, 1, 0, "ana")
    registry.publish(REWORDED, "ana")
    args = ("rules", "split", DUOLINGO, "--versions", "1:0.5,2:0.5", "--seed", "s1", "--coverage", "1.0")
    made = run(database_url, *args, "--expected-revision", "1", "--actor", "ana")
    assert made.exit_code == 0, made.output
    assert f"{DUOLINGO}: split 1:0.5,2:0.5 seed=s1 coverage=1.0 (revision 2)" in made.stdout
    stale = run(database_url, *args, "--expected-revision", "1")
    assert stale.exit_code != 0 and "at revision 2, not 1" in stale.stderr
    bad = run(
        database_url, "rules", "split", DUOLINGO, "--versions", "1:0.5,2:0.6", "--expected-revision", "2"
    )
    assert bad.exit_code != 0 and "add up to 1" in bad.stderr
    both = run(
        database_url, "rules", "split", DUOLINGO, "--end", "--versions", "1:1", "--expected-revision", "2"
    )
    assert both.exit_code == 2
    ended = run(database_url, "rules", "split", DUOLINGO, "--end", "--expected-revision", "2")
    assert ended.exit_code == 0 and f"{DUOLINGO}: no split (revision 3)" in ended.stdout
    assert registry.splits() == {}


def test_split_arms_answer_over_both_transports_and_a_pin_is_not_split(live: LiveServers) -> None:
    clients, registry = live.clients, live.services.registry
    reader = live.token("reader")
    registry.publish(REWORDED, "ana")
    split = Split((1, 2), (0.5, 0.5), "exp-1", 0.8)
    registry.set_split(DUOLINGO, split, registry.head(DUOLINGO).revision, "ana")
    wait_for(lambda: DUOLINGO in live.services.decisions.rulesets.current().splits, "the split to be served")

    seen = set()
    for index in range(40):
        user_id = f"user-{index}"
        arm = split.arm(user_id)
        expected = (1, "active") if arm is None else (split.versions[arm], f"split:{arm}")
        seen.add(expected)
        request = {"profile": {"user_id": user_id, "activity_dates": ["2025-01-01"]}, "as_of": AS_OF}
        for outcome in clients.both("ClassifyLifecycle", request, token=reader):
            assert (outcome.body["version"], outcome.body["version_reason"]) == expected, (
                user_id,
                outcome.body,
            )
        decide = {**request, "rulesets": ["lifecycle", f"{DUOLINGO}@1", "segment"]}
        for outcome in clients.both("Decide", decide, token=reader):
            first, pinned, segment = (
                outcome.body["decisions"][0]["lifecycle"],
                outcome.body["decisions"][1]["lifecycle"],
                outcome.body["decisions"][2]["segment"],
            )
            assert (first["version"], first["version_reason"]) == expected
            assert (pinned["version"], pinned["version_reason"]) == (1, "pinned")
            assert segment["version_reason"] == "active"
    assert seen == {(1, "active"), (1, "split:0"), (2, "split:1")}

    registry.end_split(DUOLINGO, registry.head(DUOLINGO).revision, "ana")
    wait_for(lambda: not live.services.decisions.rulesets.current().splits, "the split to end")
    request = {"profile": {"user_id": "user-0", "activity_dates": ["2025-01-01"]}, "as_of": AS_OF}
    for outcome in clients.both("ClassifyLifecycle", request, token=reader):
        assert (outcome.body["version"], outcome.body["version_reason"]) == (1, "active")


def test_splits_are_set_and_ended_over_both_transports_by_publishers(live: LiveServers) -> None:
    clients = live.clients
    publisher, reader = live.token("publisher", "ana"), live.token("reader")
    clients.grpc("PublishVersion", {"content": REWORDED}, token=publisher)
    split = {"arms": [{"version": 1, "weight": 0.25}, {"version": 2, "weight": 0.75}], "seed": "exp-2"}
    request = {"name": DUOLINGO, "split": split, "expected_revision": 1}
    refused = clients.rest("SetSplit", request, token=reader)
    assert refused.code == "permission_denied", refused.body
    made = clients.rest("SetSplit", request, token=publisher)
    body = documented("SetSplit", made)
    assert body["revision"] == "2" and body["split"] == {**split, "coverage": 1.0}
    for stale in clients.both("SetSplit", request, token=publisher):
        assert stale.code == "aborted", stale.body
    bad = {"arms": [{"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.6}], "seed": "s"}
    for invalid in clients.both(
        "SetSplit", {**request, "split": bad, "expected_revision": 2}, token=publisher
    ):
        assert invalid.code == "invalid_argument" and invalid.body["errors"][0]["field"] == "versions"
    missing = {"arms": [{"version": 1, "weight": 0.5}, {"version": 7, "weight": 0.5}]}
    for unknown in clients.both(
        "SetSplit", {**request, "split": missing, "expected_revision": 2}, token=publisher
    ):
        assert unknown.code == "not_found", unknown.body
    listed = clients.grpc("ListRulesets", {}, token=reader).body["rulesets"]
    assert next(item for item in listed if item["name"] == DUOLINGO)["split"]["seed"] == "exp-2"
    ended = clients.grpc("EndSplit", {"name": DUOLINGO, "expected_revision": 2}, token=publisher)
    assert ended.ok and ended.body["revision"] == "3" and "split" not in ended.body
    audit = clients.grpc("ListAudit", {"ruleset": DUOLINGO, "limit": 2}, token=reader).body["entries"]
    assert [(e["actor"], e["action"], e["detail"]) for e in audit] == [
        ("ana", "split", "ended"),
        ("ana", "split", "1:0.25,2:0.75 seed=exp-2 coverage=1.0"),
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # served from memory: one backend
def test_a_served_split_puts_each_of_1000_users_in_growthbooks_arm(live: LiveServers) -> None:
    """Through the servers (one DecideBatch a transport): every user's arm is the growthbook package's."""
    registry, reader = live.services.registry, live.token("reader")
    registry.publish(REWORDED, "ana")
    split = Split((1, 2), (0.3, 0.7), "gb-check", 0.9)
    registry.set_split(DUOLINGO, split, registry.head(DUOLINGO).revision, "ana")
    wait_for(lambda: DUOLINGO in live.services.decisions.rulesets.current().splits, "the split to be served")
    users = [f"gb-user-{index}" for index in range(1000)]
    profile = {"activity_dates": ["2025-01-01"]}
    batch = {
        "requests": [
            {"profile": {**profile, "user_id": user}, "as_of": AS_OF, "rulesets": ["lifecycle"]}
            for user in users
        ]
    }
    expected = []
    for user in users:
        arm = growthbook_arm(split, user)
        expected.append("active" if arm is None else f"split:{arm}")
    assert {"active", "split:0", "split:1"} == set(expected)
    for outcome in live.clients.both("DecideBatch", batch, token=reader):
        assert outcome.ok, outcome.body
        answers = [item["response"]["decisions"][0]["lifecycle"] for item in outcome.body["results"]]
        assert [answer["version_reason"] for answer in answers] == expected
