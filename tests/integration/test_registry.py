"""The registry's use cases on SQLite and Postgres: publish, dedupe, diff, activate, alias, roll back, audit."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from strata.engine import CompiledRuleset
from strata.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    RuleFileError,
    RuleTestFailure,
    StrataError,
)
from strata.registry.service import Registry
from tests.registry_files import INTERVENTION, LIFECYCLE, SEGMENT, intervention, lifecycle, segment


def actions(registry: Registry) -> list[tuple[str, str, int | None, int | None]]:
    """The audit trail, oldest first, as (action, ruleset, from, to)."""
    return [(e.action, e.ruleset, e.from_version, e.to_version) for e in reversed(registry.audit())]


def test_publish_numbers_versions_and_dedupes_by_content(registry: Registry) -> None:
    first = registry.publish(lifecycle(7), "ana", "first cut")
    assert first.created and first.version.version == 1
    assert (first.version.author, first.version.note, first.version.kind) == ("ana", "first cut", "lifecycle")
    assert first.version.checksum.startswith("sha256:")

    again = registry.publish(lifecycle(7) + "# a comment changes no meaning\n", "bob")
    assert not again.created and again.version == first.version

    second = registry.publish(lifecycle(14), "bob")
    assert second.created and second.version.version == 2
    assert [v.version for v in registry.versions(LIFECYCLE)] == [1, 2]
    assert registry.version(LIFECYCLE, 1).content == lifecycle(7)
    head = registry.head(LIFECYCLE)
    assert (head.active_version, head.revision, head.latest_version, head.kind) == (None, 0, 2, "lifecycle")
    assert actions(registry) == [("publish", LIFECYCLE, None, 1), ("publish", LIFECYCLE, None, 2)]


def test_diff_shows_what_changed_between_two_versions(registry: Registry) -> None:
    registry.publish(lifecycle(7), "ana")
    registry.publish(lifecycle(14), "ana")
    diff = registry.diff(LIFECYCLE, 1, 2)
    assert diff.startswith(f"--- {LIFECYCLE}@1\n+++ {LIFECYCLE}@2\n")
    assert "-constants: {window: 7}\n+constants: {window: 14}\n" in diff
    assert registry.diff(LIFECYCLE, 2, 2) == ""
    with pytest.raises(NotFound, match="no version 3"):
        registry.diff(LIFECYCLE, 1, 3)


def test_activate_alias_and_roll_back_quote_the_revision(registry: Registry) -> None:
    for window in (7, 14, 30):
        registry.publish(lifecycle(window), "ana")
    assert registry.activate(LIFECYCLE, 1, 0, "ana").active_version == 1
    with pytest.raises(Conflict, match="at revision 1, not 0") as stale:
        registry.activate(LIFECYCLE, 2, 0, "bob")
    assert stale.value.code == "aborted"
    assert registry.activate(LIFECYCLE, 2, 1, "bob").revision == 2
    assert registry.activate(LIFECYCLE, 3, 2, "bob").active_version == 3
    assert registry.activate(LIFECYCLE, 3, 3, "bob").revision == 3  # already active: nothing changes

    head = registry.set_alias(LIFECYCLE, "stable", 2, 3, "cy")
    assert head.aliases == {"stable": 2} and head.revision == 4 and head.active_version == 3
    assert registry.set_alias(LIFECYCLE, "canary", 3, 4, "cy").aliases == {"canary": 3, "stable": 2}

    back = registry.rollback(LIFECYCLE, 5, "dee")
    assert (back.active_version, back.revision) == (2, 6)
    assert registry.rollback(LIFECYCLE, 6, "dee").active_version == 1  # rollbacks walk further back
    with pytest.raises(FailedPrecondition, match="no earlier active version"):
        registry.rollback(LIFECYCLE, 7, "dee")

    trail = [(e.actor, e.action, e.from_version, e.to_version, e.detail) for e in reversed(registry.audit())]
    assert trail[3:] == [
        ("ana", "activate", None, 1, ""),
        ("bob", "activate", 1, 2, ""),
        ("bob", "activate", 2, 3, ""),
        ("cy", "alias", None, 2, "stable"),
        ("cy", "alias", None, 3, "canary"),
        ("dee", "rollback", 3, 2, ""),
        ("dee", "rollback", 2, 1, ""),
    ]
    newest = registry.audit(limit=2)
    assert [e.action for e in newest] == ["rollback", "rollback"]
    assert registry.audit(limit=2, before=newest[-1].id)[0].detail == "canary"


def test_missing_things_are_not_found(registry: Registry) -> None:
    registry.publish(lifecycle(7), "ana")
    with pytest.raises(NotFound, match="no version 9"):
        registry.activate(LIFECYCLE, 9, 0, "ana")
    with pytest.raises(NotFound, match=r"no ruleset named 'lifecycle\.nope'"):
        registry.activate("lifecycle.nope", 1, 0, "ana")
    with pytest.raises(NotFound):
        registry.set_alias(LIFECYCLE, "stable", 2, 0, "ana")
    with pytest.raises(NotFound):
        registry.versions("lifecycle.nope")
    with pytest.raises(InvalidArgument, match="invalid alias"):
        registry.set_alias(LIFECYCLE, "Not An Alias", 1, 0, "ana")
    assert registry.head(LIFECYCLE).revision == 0


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (lifecycle(when="(days_since_last_active ?? 999) <="), RuleFileError, "stages.0.when"),
        (lifecycle(when="timezone > window"), RuleFileError, "stages.0.when"),
        (
            lifecycle(expect="idle"),
            RuleTestFailure,
            "test 'three days away': stage: expected 'idle', got 'active'",
        ),
        (
            lifecycle().replace("kind: lifecycle", "kind: lifecycle\nstray: 1"),
            RuleFileError,
            "stray: unknown key",
        ),
        ("name: [unclosed", RuleFileError, "not valid YAML"),
        (lifecycle() + "#" * 1_000_000, ResourceExhausted, "at most 1000000 are accepted"),
    ],
    ids=["broken expression", "type error", "failing test case", "unknown key", "not yaml", "too large"],
)
def test_a_bad_publish_is_refused_with_its_errors_and_stores_nothing(
    registry: Registry, content: str, error: type[StrataError], message: str
) -> None:
    registry.publish(lifecycle(5), "ana")
    with pytest.raises(error) as refused:
        registry.publish(content, "ana", source="probe.yaml")
    assert message in str(refused.value)
    assert [v.version for v in registry.versions(LIFECYCLE)] == [1]
    assert len(registry.audit()) == 1


def test_every_problem_is_listed_with_its_line(registry: Registry) -> None:
    content = lifecycle(when="nope_a > 1").replace("default: {stage: idle", "default: {stage: Idle")
    with pytest.raises(RuleFileError) as refused:
        registry.publish(content, "ana", source="probe.yaml")
    assert [(p.file, p.line, p.field) for p in refused.value.problems] == [("probe.yaml", 9, "default.stage")]
    with pytest.raises(RuleFileError) as uncompiled:
        registry.publish(lifecycle(when="nope_a > 1 and nope_b"), "ana", source="probe.yaml")
    assert [(p.line, p.rule) for p in uncompiled.value.problems] == [(7, "active")]
    assert "nope_a" in str(uncompiled.value)


def test_a_publish_cannot_change_the_kind_or_the_name(registry: Registry) -> None:
    registry.publish(lifecycle(), "ana")
    relabelled = segment().replace(SEGMENT, LIFECYCLE)
    with pytest.raises(InvalidArgument, match="cannot change a ruleset's kind"):
        registry.publish(relabelled, "ana")
    with pytest.raises(InvalidArgument, match=r"declares 'lifecycle\.probe', not 'lifecycle\.other'"):
        registry.publish(lifecycle(9), "ana", name="lifecycle.other")
    with pytest.raises(InvalidArgument, match="needs an author"):
        registry.publish(lifecycle(9), " ")


def test_uses_resolve_against_the_active_versions(registry: Registry) -> None:
    registry.publish(lifecycle(), "ana")
    registry.publish(segment(), "ana")
    with pytest.raises(RuleFileError, match=r"no lifecycle ruleset named 'lifecycle\.probe' is loaded"):
        registry.publish(intervention(), "ana")
    registry.activate(LIFECYCLE, 1, 0, "ana")
    registry.activate(SEGMENT, 1, 0, "ana")
    assert registry.publish(intervention(), "ana").created
    registry.activate(INTERVENTION, 1, 0, "ana")

    registry.publish(segment(score="purchases"), "ana")  # fine on its own...
    with pytest.raises(FailedPrecondition, match="would break the active rulesets") as broken:
        registry.activate(SEGMENT, 2, 1, "ana")  # ...but the active intervention reads scores.orders
    assert any(p.file == f"{INTERVENTION}@1" for p in broken.value.problems)
    assert registry.head(SEGMENT).active_version == 1


def race(registry: Registry, versions: list[int], revision: int) -> list[str]:
    """Activate each version from its own thread, all quoting ``revision``; sorted outcomes."""

    def activate(version: int) -> str:
        try:
            registry.activate(LIFECYCLE, version, revision, f"racer{version}")
        except Conflict:
            return "conflict"
        return "won"

    with concurrent.futures.ThreadPoolExecutor(len(versions)) as pool:
        return sorted(pool.map(activate, versions))


def test_two_activations_from_the_same_revision_exactly_one_wins(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both racers pass the revision check before either writes: the store's compare-and-set decides."""
    for window in range(3, 9):
        registry.publish(lifecycle(window), "ana")
    both_checked = threading.Barrier(2, timeout=10)
    compile_set = registry.compiled.compile_set

    def checked_then_compiled(versions: Mapping[str, int]) -> dict[str, CompiledRuleset[Any]]:
        both_checked.wait()  # runs after the revision check, right before the write
        return compile_set(versions)

    monkeypatch.setattr(registry.compiled, "compile_set", checked_then_compiled)
    for revision in range(5):
        active = registry.head(LIFECYCLE).active_version
        rivals = [version for version in range(1, 7) if version != active][:2]
        assert race(registry, rivals, revision) == ["conflict", "won"]
        assert registry.head(LIFECYCLE).revision == revision + 1
    assert len([entry for entry in registry.audit() if entry.action == "activate"]) == 5


def test_concurrent_publishes_of_the_same_content_store_it_once(registry: Registry) -> None:
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []

    def publish() -> None:
        barrier.wait()
        published = registry.publish(lifecycle(11), "ana")
        results.append((published.version.version, published.created))

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [(1, False), (1, False), (1, False), (1, True)]
