"""Decision objects built the quick way behave as the frozen dataclasses they are."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc

import pytest

from strata.decisions import DEFAULT_RULESETS, DecideRequest, DecideResult, DecisionService
from strata.engine.decision import InterventionDecision, RuleHit, SegmentDecision, quick_init
from strata.engine.facts import Clock
from strata.store.population import generate_population
from tests.fakes import default_rules

AS_OF = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
RULESETS = [*DEFAULT_RULESETS, "lifecycle.journey", "segment.pyramid"]  # what the intervention builds on
EVENT = {"type": "sign_in"}


@quick_init
@dataclasses.dataclass(frozen=True)
class _Quick:
    a: int
    b: str
    c: int | None = None


def test_arguments_as_the_dataclass_takes_them() -> None:
    assert _Quick(1, "x") == _Quick(a=1, b="x") == _Quick(1, b="x", c=None) == _Quick(1, "x", None)
    assert repr(_Quick(1, "x", 3)) == "_Quick(a=1, b='x', c=3)"
    hit = RuleHit("r", "why", {"n": 1})
    decision = SegmentDecision("segment.rfm", "abc", (hit,), "loyal", {"r": 5}, ("vip",))
    assert decision == SegmentDecision(
        ruleset="segment.rfm",
        checksum="abc",
        explanation=(hit,),
        segment="loyal",
        scores={"r": 5},
        tags=("vip",),
    )
    assert decision.to_dict()["explanation"] == [{"rule": "r", "reason": "why", "facts": {"n": 1}}]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "x", 3, 4), {}), ((1,), {"a": 2, "b": "x"}), ((), {"a": 1, "b": "x", "d": 4})],
)
def test_wrong_arguments_are_refused(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        _Quick(*args, **kwargs)  # type: ignore[arg-type]


def test_still_frozen() -> None:
    decision = InterventionDecision("i", "c", (), (), (), None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.stage = "new"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        RuleHit("r", "why").rule = "other"  # type: ignore[misc]


class _Log:
    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def record(self, entry: dict[str, object]) -> bool:
        self.entries.append(entry)
        return True


def test_fact_values_are_left_out_only_when_nobody_reads_them() -> None:
    profile = next(iter(generate_population(1, seed=6, as_of=AS_OF)))
    full, brief = (
        DecideRequest(
            profile=profile, as_of=AS_OF, rulesets=tuple(RULESETS), event=EVENT, explain_facts=explain
        )
        for explain in (True, False)
    )
    service = DecisionService.from_files(default_rules())
    with_facts, without = service.decide(full), service.decide(brief)
    hits = [hit for answer in with_facts.decisions for hit in answer.decision.explanation]
    assert any(hit.facts for hit in hits)
    assert [hit.renamed(hit.rule) for a in without.decisions for hit in a.decision.explanation] == [
        RuleHit(hit.rule, hit.reason) for hit in hits
    ]
    assert [a.decision.to_dict() | {"explanation": []} for a in without.decisions] == [
        a.decision.to_dict() | {"explanation": []} for a in with_facts.decisions
    ]  # the answers do not change
    log = _Log()
    logged = DecisionService.from_files(default_rules(), log=log).decide(brief)
    assert logged == with_facts  # the log writes the whole explanation: it is built
    assert [entry["result"] for entry in log.entries] == [a.decision.to_dict() for a in with_facts.decisions]


def test_a_decide_leaves_no_cycles_for_the_garbage_collector() -> None:
    """Everything a request builds is freed by reference counting: the cyclic collector, which
    walks every object the process holds, does not have to run for it (it cost a third of a
    batch's time when answers and explanations held each other)."""
    service = DecisionService.from_files(default_rules())
    profiles = generate_population(20, seed=4, as_of=AS_OF)
    requests = [  # half of them without fact values (explain RULES or NONE)
        DecideRequest(profile=p, as_of=AS_OF, rulesets=tuple(RULESETS), event=EVENT, explain_facts=i % 2 == 0)
        for i, p in enumerate(profiles)
    ]
    gc.collect()
    gc.disable()
    try:
        results = service.decide_batch(requests)
        assert [str(hit.facts) for r in results if isinstance(r, DecideResult) for a in r.decisions
                for hit in a.decision.explanation]  # fmt: skip
        del results
        assert gc.collect() == 0
        for ruleset in default_rules().compiled.values():  # the engine on its own (previews, the CLI)
            for profile in generate_population(5, seed=5, as_of=AS_OF):
                parsed = ruleset.schema.parse(profile)
                decision = ruleset.decide(ruleset.facts(parsed, Clock.for_profile(AS_OF, parsed)), EVENT)
                assert all(isinstance(hit.facts, dict) for hit in decision.explanation)
        del decision
        assert gc.collect() == 0
    finally:
        gc.enable()
