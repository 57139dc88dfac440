"""Shadows through the registry and real servers: the answer never changes; differences are counted exactly.

The candidate differs from the active lifecycle version in one place: its
default stage is ``inactive`` instead of ``dormant``. So for the users it is
run for, it disagrees exactly with the answers that say ``dormant`` (users
last active 30 or more days ago), which the test computes from the profiles
it sends and from the answers it gets.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from strata.cli import main
from strata.config import Settings
from strata.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from strata.registry.service import Registry
from strata.shadows import Shadow
from tests.conftest import RULES_DIR
from tests.integration.conftest import LiveServers, settings_for
from tests.integration.test_registry_api import documented
from tests.scrape import gained, scrape, wait_for

DUOLINGO = "lifecycle.duolingo"
CONTENT = (RULES_DIR / "lifecycle.duolingo.yaml").read_text()
CANDIDATE = CONTENT.replace("stage: dormant", "stage: inactive")
AS_OF = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
USERS = 120


@pytest.fixture
def live_settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path / "decisions.jsonl")


def profile(index: int) -> dict[str, Any]:
    """User ``index``, last active ``index % 40`` days before AS_OF: dormant from 30 days on."""
    last = (AS_OF - dt.timedelta(days=index % 40)).date().isoformat()
    return {"user_id": f"shadow-{index}", "first_active_date": "2025-01-01", "activity_dates": [last]}


def is_dormant(index: int) -> bool:
    return index % 40 >= 30


def run(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"STRATA_DATABASE_URL": database_url, "COLUMNS": "200"})


def test_a_shadow_is_set_changed_and_ended_with_the_revision_guard_and_audit(
    database_url: str, registry: Registry
) -> None:
    registry.publish(CONTENT, "ana")
    registry.activate(DUOLINGO, 1, 0, "ana")
    registry.publish(CANDIDATE, "ana")
    tenth = Shadow(2, 0.1, "s")
    assert registry.set_shadow(DUOLINGO, tenth, 1, "ana").revision == 2
    assert registry.shadow(DUOLINGO) == tenth
    with pytest.raises(Conflict, match="at revision 2, not 1"):
        registry.set_shadow(DUOLINGO, Shadow(2, 0.5, "s"), 1, "bo")
    with pytest.raises(NotFound, match="no version 3"):
        registry.set_shadow(DUOLINGO, Shadow(3, 0.5, "s"), 2, "bo")
    assert registry.set_shadow(DUOLINGO, tenth, 2, "bo").revision == 2  # the same shadow changes nothing
    with pytest.raises(InvalidArgument) as invalid:
        Shadow(2, 0.0, "")
    assert {problem.field for problem in invalid.value.problems} == {"share", "seed"}

    changed = run(
        database_url, "rules", "shadow", DUOLINGO, "--version", "2", "--share", "0.5",
        "--expected-revision", "2", "--actor", "cy",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert f"{DUOLINGO}: shadow version 2 share=0.5 seed=shadow:{DUOLINGO} (revision 3)" in changed.stdout
    stale = run(database_url, "rules", "shadow", DUOLINGO, "--end", "--expected-revision", "2")
    assert stale.exit_code != 0 and "at revision 3, not 2" in stale.stderr
    neither = run(database_url, "rules", "shadow", DUOLINGO, "--expected-revision", "3")
    assert neither.exit_code == 2 and "--version or --end" in neither.output
    ended = run(database_url, "rules", "shadow", DUOLINGO, "--end", "--expected-revision", "3")
    assert ended.exit_code == 0 and f"{DUOLINGO}: no shadow (revision 4)" in ended.stdout
    assert registry.shadows() == {}
    trail = [(entry.action, entry.to_version, entry.detail) for entry in registry.audit(DUOLINGO)]
    assert trail[:3] == [
        ("shadow", None, "ended"),
        ("shadow", 2, f"version 2 share=0.5 seed=shadow:{DUOLINGO}"),
        ("shadow", 2, "version 2 share=0.1 seed=s"),
    ]
    assert [entry.actor for entry in registry.audit(DUOLINGO)][1:3] == ["cy", "ana"]


def test_a_candidate_that_does_not_compile_with_the_active_rulesets_is_refused(registry: Registry) -> None:
    registry.publish(CONTENT, "ana")
    registry.activate(DUOLINGO, 1, 0, "ana")
    with pytest.raises(NotFound):
        registry.set_shadow("no.such", Shadow(1, 1.0, "s"), 0, "ana")
    with pytest.raises((NotFound, FailedPrecondition)):
        registry.set_shadow(DUOLINGO, Shadow(9, 1.0, "s"), 1, "ana")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the registry tests cover Postgres
def test_shadows_change_no_answer_and_count_exactly_the_differing_users(live: LiveServers) -> None:
    clients, services = live.clients, live.services
    publisher, reader = live.token("publisher", "ana"), live.token("reader")
    clients.grpc("PublishVersion", {"content": CANDIDATE}, token=publisher)

    def ask(index: int) -> list[dict[str, Any]]:
        request = {"profile": profile(index), "as_of": AS_OF.isoformat()}
        headers = {"X-Request-Id": f"rid-{index}", "Authorization": f"Bearer {reader}"}
        rest = clients.rest("ClassifyLifecycle", request, headers)
        outcomes = (rest, clients.grpc("ClassifyLifecycle", request, token=reader))
        assert all(outcome.ok for outcome in outcomes), outcomes
        return [outcome.body for outcome in outcomes]

    before = {index: ask(index) for index in range(USERS)}
    assert {is_dormant(i) for i in range(USERS) if before[i][0]["stage"] == "dormant"} == {True}

    shadow = {"version": 2, "share": 0.5, "seed": "exp-shadow"}
    made = clients.rest(
        "SetShadow", {"name": DUOLINGO, "shadow": shadow, "expected_revision": 1}, token=publisher
    )
    assert documented("SetShadow", made)["shadow"] == shadow
    for refused in clients.both(
        "SetShadow",
        {"name": DUOLINGO, "shadow": {**shadow, "share": 1.5}, "expected_revision": 2},
        token=publisher,
    ):
        assert refused.code == "invalid_argument" and refused.body["errors"][0]["field"] == "share"
    wait_for(lambda: DUOLINGO in services.decisions.rulesets.current().shadows, "the shadow to be served")

    counted = scrape(clients)
    labels = {"ruleset": DUOLINGO, "candidate": "2"}
    after = {index: ask(index) for index in range(USERS)}
    for index in range(USERS):
        pinned = clients.rest(
            "Decide", {"profile": profile(index), "as_of": AS_OF.isoformat(), "rulesets": [f"{DUOLINGO}@1"]},
            token=reader,
        )  # fmt: skip
        assert pinned.ok and pinned.body["decisions"][0]["lifecycle"]["version_reason"] == "pinned"
    assert after == before  # every answer, explanation and version included, is unchanged

    sample = Shadow(2, 0.5, "exp-shadow")
    sampled = [index for index in range(USERS) if sample.sampled(f"shadow-{index}")]
    differing = [index for index in sampled if is_dormant(index)]
    assert 0 < len(differing) < len(sampled) < USERS

    def runs() -> float:
        now = scrape(clients)
        return sum(
            gained(counted, now, name, **labels)
            for name in ("strata_shadow_agreements_total", "strata_shadow_differences_total")
        )

    wait_for(lambda: runs() >= 2 * len(sampled), "the shadow runs")
    services.decisions.shadows.wait_idle()  # type: ignore[union-attr]
    now = scrape(clients)
    # each user was asked over both transports; the pinned requests were not shadowed
    assert gained(counted, now, "strata_shadow_differences_total", **labels) == 2 * len(differing)
    assert gained(counted, now, "strata_shadow_agreements_total", **labels) == 2 * (
        len(sampled) - len(differing)
    )
    assert gained(counted, now, "strata_shadow_dropped_total") == 0

    log_path = Path(services.decisions.log.path)  # type: ignore[union-attr]

    def shadow_entries() -> list[dict[str, Any]]:
        lines = log_path.read_bytes().splitlines()
        return [entry for entry in map(orjson.loads, lines) if "shadow" in entry]

    wait_for(lambda: len(shadow_entries()) >= 2 * len(differing), "the differences in the decision log")
    entries = shadow_entries()
    assert sorted(entry["user_id"] for entry in entries) == sorted(
        f"shadow-{index}" for index in differing for _ in range(2)
    )
    for entry in entries:
        assert (entry["ruleset"], entry["version"], entry["version_reason"]) == (DUOLINGO, 1, "active")
        assert (entry["result"]["stage"], entry["shadow"]["version"]) == ("dormant", 2)
        assert entry["shadow"]["result"]["stage"] == "inactive" and entry["request_id"]
    assert {entry["request_id"] for entry in entries} >= {f"rid-{index}" for index in differing}

    ended = clients.grpc("EndShadow", {"name": DUOLINGO, "expected_revision": 2}, token=publisher)
    assert ended.ok and "shadow" not in ended.body
    audit = clients.grpc("ListAudit", {"ruleset": DUOLINGO, "limit": 2}, token=reader).body["entries"]
    assert [(e["actor"], e["action"], e["detail"]) for e in audit] == [
        ("ana", "shadow", "ended"),
        ("ana", "shadow", "version 2 share=0.5 seed=exp-shadow"),
    ]
