"""DecisionService: defaults, profile merging, one parse per request, batches, deadlines."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from strata.decisions import DEFAULT_RULESETS, DecideRequest, DecideResult, DecisionRequest, DecisionService
from strata.engine.decision import IncentiveDecision, LifecycleDecision
from strata.engine.schema import parse_datetime
from strata.errors import DeadlineExceeded, InvalidArgument, NotFound, ProfileError, ResourceExhausted
from strata.profiles import ProfileService
from strata.rulesets import Served, Snapshot
from tests.fakes import AS_OF, PROFILES, DictStore, default_rules

NOW = parse_datetime(AS_OF)


@pytest.fixture
def store() -> DictStore:
    return DictStore(PROFILES)


@pytest.fixture
def service(store: DictStore) -> DecisionService:
    return DecisionService.from_files(default_rules(), store, now=lambda: NOW)


def test_every_default_ruleset_is_loaded_and_of_its_kind() -> None:
    for kind, name in DEFAULT_RULESETS.items():
        assert default_rules().get(name).kind == kind


def test_a_stored_user_is_decided_at_the_service_clock(service: DecisionService) -> None:
    answer = service.classify_lifecycle(DecisionRequest(user_id="u-current"))
    expected = default_rules().get("lifecycle.duolingo").evaluate(PROFILES["u-current"], NOW)
    assert answer.decision == expected
    assert answer.decision.ruleset == "lifecycle.duolingo"
    assert (answer.version, answer.version_reason) == (None, None)  # rule files have no versions


def test_inline_fields_override_stored_ones(service: DecisionService) -> None:
    # u-current was active today; inline activity says only 3 days ago.
    inline = {"activity_dates": ["2026-03-07"], "last_active_at": None}  # null overrides too
    request = DecisionRequest(user_id="u-current", profile=inline)
    assert service.classify_lifecycle(request).decision.stage == "at_risk_wau"


def test_an_inline_profile_alone_does_not_touch_the_store(service: DecisionService, store: DictStore) -> None:
    answer = service.classify_lifecycle(DecisionRequest(profile=PROFILES["u-new"]))
    assert answer.decision.stage == "new"
    assert store.gets == 0


def test_an_unknown_user_is_not_found_naming_the_user(service: DecisionService) -> None:
    with pytest.raises(NotFound, match="'ghost'") as caught:
        service.classify_lifecycle(DecisionRequest(user_id="ghost"))
    assert caught.value.problems[0].field == "user_id"


def test_an_unknown_user_with_an_inline_profile_is_decided(service: DecisionService) -> None:
    answer = service.classify_lifecycle(DecisionRequest(user_id="ghost", profile={"activity_dates": []}))
    assert answer.decision.stage == "dormant"


def test_without_a_store_only_inline_profiles_work() -> None:
    service = DecisionService.from_files(default_rules(), now=lambda: NOW)
    with pytest.raises(NotFound):
        service.classify_lifecycle(DecisionRequest(user_id="u-current"))
    assert (
        service.classify_lifecycle(DecisionRequest(profile=PROFILES["u-current"])).decision.stage == "current"
    )


def test_a_request_needs_a_user_id_or_a_profile(service: DecisionService) -> None:
    with pytest.raises(InvalidArgument) as caught:
        service.classify_lifecycle(DecisionRequest())
    assert caught.value.problems[0].field == "user_id"


def test_an_inline_profile_without_user_id_misses_the_required_field(service: DecisionService) -> None:
    with pytest.raises(ProfileError) as caught:
        service.classify_lifecycle(DecisionRequest(profile={"activity_dates": []}))
    assert [p.field for p in caught.value.problems] == ["profile.user_id"]


def test_profile_problems_name_the_field_from_the_request_root(service: DecisionService) -> None:
    with pytest.raises(ProfileError) as caught:
        service.classify_lifecycle(
            DecisionRequest(user_id="u-current", profile={"points": "many", "nope": 1})
        )
    assert {p.field for p in caught.value.problems} == {"profile.points", "profile.nope"}


def test_every_profile_problem_is_reported_at_once_in_field_order(service: DecisionService) -> None:
    """Lists and maps check their container and each item; the schema's order, unknown fields first."""
    profile = {"user_id": "u-1", "tags": "vip", "last_sent": {"nudge": 3}, "badges": [1], "zz": 0}
    with pytest.raises(ProfileError) as caught:
        service.classify_lifecycle(DecisionRequest(profile=profile))
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("profile.zz", "unknown profile field"),
        ("profile.badges", "expected a string, got int"),
        ("profile.tags", "expected a list, got str"),
        ("profile.last_sent", "expected an ISO 8601 date-time string, got int"),
    ]


def test_the_user_ids_must_agree(service: DecisionService) -> None:
    with pytest.raises(InvalidArgument) as caught:
        service.classify_lifecycle(DecisionRequest(user_id="u-current", profile={"user_id": "u-new"}))
    assert caught.value.problems[0].field == "profile.user_id"


def test_unknown_and_wrong_kind_rulesets(service: DecisionService) -> None:
    with pytest.raises(NotFound, match=r"lifecycle\.nope"):
        service.classify_lifecycle(DecisionRequest(user_id="u-current", ruleset="lifecycle.nope"))
    with pytest.raises(InvalidArgument, match="segment ruleset, not lifecycle"):
        service.classify_lifecycle(DecisionRequest(user_id="u-current", ruleset="segment.rfm"))


def test_an_unknown_ruleset_fails_before_the_store_is_read(
    service: DecisionService, store: DictStore
) -> None:
    with pytest.raises(NotFound):
        service.decide(DecideRequest(user_id="u-current", rulesets=("lifecycle", "nope.x")))
    assert store.gets == 0


def test_incentives_need_an_event(service: DecisionService) -> None:
    with pytest.raises(InvalidArgument) as caught:
        service.evaluate_incentive(DecisionRequest(user_id="u-current"))
    assert caught.value.problems[0].field == "event"
    answer = service.evaluate_incentive(
        DecisionRequest(user_id="u-current", event={"type": "note_published"})
    )
    assert isinstance(answer.decision, IncentiveDecision)


def test_decide_answers_in_order_and_parses_the_profile_once(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = default_rules().schema
    calls = 0
    original = schema.parse

    def counting(raw: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return original(raw)

    monkeypatch.setattr(schema, "parse", counting)
    result = service.decide(
        DecideRequest(
            user_id="u-current",
            rulesets=("lifecycle", "segment.pyramid", "incentive", "intervention"),
            event={"type": "note_published"},
        )
    )
    assert calls == 1
    assert result.user_id == "u-current"
    assert [answer.decision.ruleset for answer in result.decisions] == [
        "lifecycle.duolingo",
        "segment.pyramid",
        "incentive.levels",
        "intervention.default",
    ]
    single = service.classify_lifecycle(DecisionRequest(user_id="u-current"))
    assert result.decisions[0] == single


def test_decide_needs_at_least_one_ruleset(service: DecisionService) -> None:
    with pytest.raises(InvalidArgument) as caught:
        service.decide(DecideRequest(user_id="u-current"))
    assert caught.value.problems[0].field == "rulesets"


def test_a_batch_answers_each_request_on_its_own(service: DecisionService) -> None:
    results = service.decide_batch(
        [
            DecideRequest(user_id="u-current", rulesets=("lifecycle",)),
            DecideRequest(user_id="ghost", rulesets=("lifecycle",)),
            DecideRequest(user_id="u-new", rulesets=("lifecycle", "segment")),
        ]
    )
    assert [type(r).__name__ for r in results] == ["DecideResult", "NotFound", "DecideResult"]


def _decisions_counted(ruleset: str) -> float:
    return (
        REGISTRY.get_sample_value("strata_decisions_total", {"ruleset": ruleset, "version": "", "why": ""})
        or 0.0
    )


def test_a_batch_counts_its_decisions_in_the_metrics(service: DecisionService) -> None:
    lifecycle, segment = _decisions_counted("lifecycle.duolingo"), _decisions_counted("segment.rfm")
    service.decide_batch(
        [
            DecideRequest(user_id="u-current", rulesets=("lifecycle", "segment")),
            DecideRequest(user_id="ghost", rulesets=("lifecycle",)),
            DecideRequest(user_id="u-new", rulesets=("lifecycle", "lifecycle")),
        ]
    )
    assert _decisions_counted("lifecycle.duolingo") - lifecycle == 3
    assert _decisions_counted("segment.rfm") - segment == 1


class _ExpiringStore(DictStore):
    """A store whose read of ``late`` finds the caller's deadline passed, as a slow read would."""

    def get(self, user_id: str, deadline: float | None = None) -> dict[str, Any] | None:
        if user_id == "late":
            raise DeadlineExceeded("deadline exceeded while loading the profile")
        return super().get(user_id, deadline)


def test_a_batch_stopped_by_its_deadline_counts_the_decisions_it_made() -> None:
    service = DecisionService.from_files(default_rules(), _ExpiringStore(PROFILES), now=lambda: NOW)
    before = _decisions_counted("lifecycle.duolingo")
    with pytest.raises(DeadlineExceeded):
        service.decide_batch(
            [DecideRequest(user_id="u-current", rulesets=("lifecycle",))] * 2
            + [DecideRequest(user_id="late", rulesets=("lifecycle",))] * 2
        )
    assert _decisions_counted("lifecycle.duolingo") - before == 2


def test_a_batch_has_a_size_limit(store: DictStore) -> None:
    service = DecisionService.from_files(default_rules(), store, max_batch=2)
    with pytest.raises(ResourceExhausted):
        service.decide_batch([DecideRequest(user_id="u-new", rulesets=("lifecycle",))] * 3)


def test_a_passed_deadline_stops_before_the_store_is_read(service: DecisionService, store: DictStore) -> None:
    with pytest.raises(DeadlineExceeded, match="before loading"):
        service.classify_lifecycle(DecisionRequest(user_id="u-current"), deadline=time.monotonic() - 1)
    assert store.gets == 0


def test_a_deadline_passing_during_the_load_stops_before_evaluating(
    service: DecisionService, store: DictStore
) -> None:
    store.delays["u-current"] = 0.05
    with pytest.raises(DeadlineExceeded, match="after loading"):
        service.classify_lifecycle(DecisionRequest(user_id="u-current"), deadline=time.monotonic() + 0.01)


def test_a_batch_fails_as_a_whole_when_its_deadline_passes(service: DecisionService) -> None:
    with pytest.raises(DeadlineExceeded):
        service.decide_batch(
            [DecideRequest(user_id="u-current", rulesets=("lifecycle",))], deadline=time.monotonic() - 1
        )


def test_naive_as_of_means_utc(service: DecisionService) -> None:
    naive = DecisionRequest(user_id="u-current", as_of=dt.datetime(2026, 3, 10, 12))
    aware = DecisionRequest(user_id="u-current", as_of=NOW)
    assert service.classify_lifecycle(naive) == service.classify_lifecycle(aware)
    assert isinstance(service.classify_lifecycle(aware).decision, LifecycleDecision)


# profile use cases -------------------------------------------------------------


def test_profiles_are_checked_before_they_are_stored(store: DictStore) -> None:
    profiles = ProfileService(default_rules().schema, store)
    before = store.get("u-current")
    with pytest.raises(ProfileError) as caught:
        profiles.upsert("u-current", {"points": "lots"})
    assert caught.value.problems[0].field == "profile.points"
    assert store.get("u-current") == before


def test_profile_upsert_get_delete(store: DictStore) -> None:
    profiles = ProfileService(default_rules().schema, store)
    assert profiles.upsert("u9", {"points": 5}) == {"user_id": "u9", "points": 5}
    assert profiles.get("u9")["points"] == 5
    profiles.delete("u9")
    with pytest.raises(NotFound):
        profiles.get("u9")
    with pytest.raises(NotFound):
        profiles.delete("u9")
    with pytest.raises(InvalidArgument):
        profiles.upsert("u9", {"user_id": "u10"})
    with pytest.raises(InvalidArgument):
        profiles.get("")


# provenance and reloads -------------------------------------------------------------


class Reloading:
    """A ruleset source whose snapshot changes on every read, as if a reload landed between any two."""

    def __init__(self, *snapshots: Snapshot) -> None:
        self.snapshots = snapshots
        self.reads = 0

    def current(self) -> Snapshot:
        self.reads += 1
        return self.snapshots[self.reads % len(self.snapshots)]


def _versioned(version: int) -> Snapshot:
    rules = default_rules()
    return Snapshot(rules.schema, {name: Served(c, version, "active") for name, c in rules.compiled.items()})


def test_a_call_reads_the_rulesets_once_so_a_reload_cannot_mix_versions(store: DictStore) -> None:
    source = Reloading(_versioned(1), _versioned(2))
    service = DecisionService(source, store, now=lambda: NOW)
    result = service.decide(
        DecideRequest(user_id="u-current", rulesets=("lifecycle", "segment", "intervention"))
    )
    assert source.reads == 1
    assert {(answer.version, answer.version_reason) for answer in result.decisions} == {(2, "active")}
    batch = service.decide_batch([DecideRequest(user_id="u-current", rulesets=("lifecycle",))] * 3)
    assert source.reads == 2
    assert {item.decisions[0].version for item in batch if isinstance(item, DecideResult)} == {1}
    assert service.classify_lifecycle(DecisionRequest(user_id="u-current")).version == 2
