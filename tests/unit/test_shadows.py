"""Shadows: a deterministic sample of the users, outcomes compared, and a full queue that drops."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from strata import metrics
from strata.decisions import DecisionRequest, DecisionService
from strata.engine.decision import LifecycleDecision
from strata.engine.facts import Clock
from strata.engine.schema import parse_datetime
from strata.errors import InvalidArgument
from strata.rulesets import ACTIVE, Served, ShadowServed, Snapshot
from strata.shadowrunner import ShadowRun, ShadowRunner
from strata.shadows import Shadow, outcome
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.scrape import wait_for


def test_the_sample_is_the_users_share_and_the_same_every_time() -> None:
    shadow, users = Shadow(2, 0.3, "seed"), 20_000
    sampled = [shadow.sampled(f"user-{index}") for index in range(users)]
    sigma = math.sqrt(0.3 * 0.7 / users)
    assert abs(sum(sampled) / users - 0.3) <= 4.5 * sigma
    assert sampled == [shadow.sampled(f"user-{index}") for index in range(users)]
    assert Shadow(2, 1.0, "seed").sampled("") and not shadow.sampled("")


@pytest.mark.parametrize(
    ("version", "share", "seed", "fields"),
    [(0, 0.5, "s", {"version"}), (2, 0.0, "s", {"share"}), (2, math.inf, "", {"share", "seed"})],
)
def test_an_invalid_shadow_is_refused_naming_the_fields(
    version: int, share: float, seed: str, fields: set[str]
) -> None:
    with pytest.raises(InvalidArgument) as info:
        Shadow(version, share, seed)
    assert {problem.field for problem in info.value.problems} == fields


def test_outcomes_leave_out_how_a_decision_was_reached() -> None:
    decision = LifecycleDecision("lifecycle.a", "sha256:1", (), "current").to_dict()
    reworded = LifecycleDecision("lifecycle.a", "sha256:2", (), "current").to_dict()
    assert outcome(decision) == outcome(reworded) == {"stage": "current"}


class StuckRuleset:
    """A candidate whose evaluation waits until released: a shadow worker that has fallen behind."""

    name = "lifecycle.duolingo"

    def __init__(self) -> None:
        self.release = threading.Event()

    def facts(self, profile: Any, clock: Clock) -> None:
        self.release.wait(10)

    def decide(self, facts: Any, event: Any) -> LifecycleDecision:
        return LifecycleDecision(self.name, "sha256:stuck", (), "current")


def test_a_full_shadow_queue_drops_and_counts_instead_of_blocking() -> None:
    runner = ShadowRunner(capacity=2)
    stuck = StuckRuleset()
    answered = Served(default_rules().compiled["lifecycle.duolingo"], 1, ACTIVE)
    decision = LifecycleDecision("lifecycle.duolingo", "sha256:x", (), "current")
    clock = Clock.for_profile(parse_datetime(AS_OF), {})
    run = ShadowRun(Served(stuck, 2, "shadow"), answered, decision, None, clock, None, "u", "r", clock.as_of)  # type: ignore[arg-type]
    dropped = metrics.SHADOW_DROPPED._value.get()
    assert runner.submit(run)
    wait_for(lambda: runner._queue.qsize() == 0, "the worker to get stuck on the first run")
    accepted = [runner.submit(run) for _ in range(100)]
    assert accepted == [True] * 2 + [False] * 98
    assert metrics.SHADOW_DROPPED._value.get() - dropped == 98
    stuck.release.set()
    runner.close()


def test_close_judges_the_runs_still_queued_and_logs_their_differences() -> None:
    logged: list[dict[str, Any]] = []

    class Sink:
        def record(self, entry: dict[str, Any]) -> bool:
            logged.append(entry)
            return True

    runner = ShadowRunner(Sink())
    stuck = StuckRuleset()  # answers "current"
    answered = Served(default_rules().compiled["lifecycle.duolingo"], 1, ACTIVE)
    decision = LifecycleDecision("lifecycle.duolingo", "sha256:x", (), "dormant")
    clock = Clock.for_profile(parse_datetime(AS_OF), {})
    for index in range(5):
        run = ShadowRun(
            Served(stuck, 2, "shadow"), answered, decision, None, clock, None, "u", f"r{index}", clock.as_of
        )  # type: ignore[arg-type]
        assert runner.submit(run)
    wait_for(lambda: runner._queue.qsize() == 4, "the worker to get stuck on the first run")
    stuck.release.set()
    assert runner.close()
    assert [entry["request_id"] for entry in logged] == [f"r{index}" for index in range(5)]


def test_a_pinned_request_and_the_candidates_own_version_are_not_shadowed() -> None:
    rules = default_rules()
    active = Served(rules.compiled["lifecycle.duolingo"], 1, ACTIVE)
    candidate = Served(rules.compiled["lifecycle.duolingo"], 2, "shadow")
    submitted: list[ShadowRun] = []

    class Recorder(ShadowRunner):
        def submit(self, run: ShadowRun) -> bool:
            submitted.append(run)
            return True

    class Rulesets:
        def __init__(self, served: Served) -> None:
            shadows = {"lifecycle.duolingo": ShadowServed(Shadow(2, 1.0, "s"), candidate)}
            self.snapshot = Snapshot(rules.schema, {"lifecycle.duolingo": served}, None, {}, shadows)

        def current(self) -> Snapshot:
            return self.snapshot

    request = DecisionRequest(profile=PROFILES["u-current"], as_of=parse_datetime(AS_OF))
    for served, expected in ((active, 1), (candidate, 0)):
        submitted.clear()
        service = DecisionService(Rulesets(served), shadows=Recorder())
        answer = service.classify_lifecycle(request)
        assert len(submitted) == expected and answer.version == served.version


class BrokenRuleset:
    """A candidate with a defect: its decision raises what no rule file can cause."""

    name = "lifecycle.duolingo"

    def facts(self, profile: Any, clock: Clock) -> None:
        return None

    def decide(self, facts: Any, event: Any) -> LifecycleDecision:
        raise TypeError("a bug, with data in its text: user@example.com")


def test_a_candidate_that_crashes_counts_as_a_difference_with_the_requests_error() -> None:
    logged: list[dict[str, Any]] = []

    class Sink:
        def record(self, entry: dict[str, Any]) -> bool:
            logged.append(entry)
            return True

    runner = ShadowRunner(Sink())
    answered = Served(default_rules().compiled["lifecycle.duolingo"], 1, ACTIVE)
    decision = LifecycleDecision("lifecycle.duolingo", "sha256:x", (), "current")
    clock = Clock.for_profile(parse_datetime(AS_OF), {})
    labels = ("lifecycle.duolingo", "3")
    differed = metrics.SHADOW_DIFFERED.labels(*labels)._value.get()
    run = ShadowRun(
        Served(BrokenRuleset(), 3, "shadow"), answered, decision, None, clock, None, "u", "r", clock.as_of
    )  # type: ignore[arg-type]
    assert runner.submit(run)
    assert runner.close()
    assert metrics.SHADOW_DIFFERED.labels(*labels)._value.get() - differed == 1
    (entry,) = logged
    assert (
        entry["version"] == 1 and entry["version_reason"] == ACTIVE and entry["result"]["stage"] == "current"
    )
    error = entry["shadow"]["error"]
    assert entry["shadow"]["version"] == 3 and "result" not in entry["shadow"]
    assert error["code"] == "evaluation_failed" and "example.com" not in error["message"]
