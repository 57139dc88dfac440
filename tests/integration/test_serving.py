"""Decisions served from the registry: seeding, versions in answers, hot reload, outages."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from strata.config import Settings
from strata.decisions import DecisionRequest
from strata.engine.schema import parse_datetime
from strata.errors import Unavailable
from strata.registry.service import Registry
from strata.registry.serving import ActiveRulesets
from strata.rulefiles.loader import read_rule_file, rule_paths
from strata.store import SchemaNotReady
from strata.wiring import Services, build_services
from tests.conftest import RULES_DIR
from tests.fakes import AS_OF, PROFILES
from tests.registry_files import LIFECYCLE, lifecycle

DEFAULT_NAMES = {read_rule_file(path).name for path in rule_paths([RULES_DIR])}
REQUEST = DecisionRequest(profile=PROFILES["u-current"], as_of=parse_datetime(AS_OF))


def start(database_url: str) -> Services:
    return build_services(Settings(database_url=database_url, rules_dir=RULES_DIR), run_migrations=True)


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    services = start(database_url)
    try:
        yield services
    finally:
        services.watcher.stop()
        services.engine.dispose()


def test_an_empty_registry_is_seeded_from_the_rule_files_once(services: Services, database_url: str) -> None:
    heads = services.registry.rulesets()
    assert {head.name: (head.active_version, head.latest_version) for head in heads} == {
        name: (1, 1) for name in DEFAULT_NAMES
    }
    trail = services.registry.audit()
    assert {entry.actor for entry in trail} == {"seed"}
    assert sorted(entry.action for entry in trail) == ["activate"] * 7 + ["publish"] * 7
    restarted = start(database_url)
    assert len(restarted.registry.audit()) == len(trail)
    restarted.engine.dispose()


def test_an_interrupted_seed_is_completed(registry: Registry, database_url: str) -> None:
    duolingo = read_rule_file(RULES_DIR / "lifecycle.duolingo.yaml")
    registry.publish(duolingo.text, "seed")  # published, then the process died before activating
    services = start(database_url)
    assert services.registry.active_versions() == {name: 1 for name in DEFAULT_NAMES}
    services.engine.dispose()


def test_every_answer_names_the_version_that_decided(services: Services) -> None:
    answer = services.decisions.classify_lifecycle(REQUEST)
    assert (answer.decision.ruleset, answer.version, answer.version_reason) == (
        "lifecycle.duolingo",
        1,
        "active",
    )
    assert services.operations().has_rulesets()


def test_an_activation_is_served_within_a_second_without_a_restart(services: Services) -> None:
    registry = services.registry
    original = registry.version("lifecycle.duolingo", 1).content or ""
    changed = original.replace("reason: not active in the last 30 days", "reason: gone quiet for 30 days")
    assert registry.publish(changed, "ana").version.version == 2
    services.watcher.start()
    before = services.decisions.rulesets.current()

    activated = time.monotonic()
    registry.activate("lifecycle.duolingo", 2, registry.head("lifecycle.duolingo").revision, "ana")
    while services.decisions.classify_lifecycle(REQUEST).version != 2:
        assert time.monotonic() - activated < 1.0, "the activation was not served within a second"
        time.sleep(0.005)
    assert before.rulesets["lifecycle.duolingo"].version == 1  # the old snapshot is untouched
    # Only what changed was compiled again: the other rulesets are the same objects.
    after = services.decisions.rulesets.current()
    assert after.rulesets["segment.rfm"].compiled is before.rulesets["segment.rfm"].compiled


def test_a_refresh_keeps_serving_through_an_outage(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.publish(lifecycle(7), "ana")
    registry.activate(LIFECYCLE, 1, 0, "ana")
    active = ActiveRulesets(registry)
    assert active.refresh() and active.current().rulesets[LIFECYCLE].version == 1
    assert not active.refresh()  # nothing changed: nothing read beyond the marker

    registry.publish(lifecycle(14), "ana")
    registry.activate(LIFECYCLE, 2, 1, "ana")

    def down() -> int:
        raise Unavailable("the registry database is unavailable")

    monkeypatch.setattr(registry, "marker", down)
    assert not active.refresh()
    assert active.current().rulesets[LIFECYCLE].version == 1
    monkeypatch.undo()
    assert active.refresh() and active.current().rulesets[LIFECYCLE].version == 2


def test_an_unmigrated_database_is_refused_at_start(database_url: str) -> None:
    with pytest.raises(SchemaNotReady, match="run `strata db migrate`"):
        build_services(Settings(database_url=database_url, rules_dir=RULES_DIR))
