"""gRPC's shortcut for Decide (``convert_wire``) gives the bytes of the messages ``convert`` builds.

The oracle is upb: the encoded bytes parse into a message equal to ``convert``'s, of the same size,
over a generated population and every default ruleset at every explanation level, over generated
facts, and over the edges a population does not reach (negative and out-of-range integers, empty
and nested facts, versions, skipped actions' instants, huge numbers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strata.api.strata.v1 import decision_pb2 as pb
from strata.decisions import Answer, DecideRequest, DecideResult, DecisionService
from strata.engine.decision import (
    Action,
    Decision,
    IncentiveDecision,
    InterventionDecision,
    LifecycleDecision,
    RuleHit,
    SegmentDecision,
    SkippedAction,
)
from strata.errors import StrataError
from strata.store.population import generate_population
from strata.transport import convert, convert_wire
from tests.fakes import default_rules

AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
LEVELS = [pb.EXPLAIN_FULL, pb.EXPLAIN_RULES, pb.EXPLAIN_NONE]
EVENTS = [{"type": "sign_in", "count": 2}, {"type": "note_published", "count": 3}, {"type": "like_received"}]


@functools.cache
def _service() -> DecisionService:
    return DecisionService.from_files(default_rules())


@functools.cache
def _results() -> list[DecideResult]:
    """A generated population's answers from every default ruleset, under each kind of event."""
    names = tuple(sorted(default_rules().compiled))
    return [
        _service().decide(
            DecideRequest(user_id="", profile=profile, as_of=AS_OF, rulesets=names, event=EVENTS[index % 3])
        )
        for index, profile in enumerate(generate_population(60, seed=11, as_of=AS_OF))
    ]


def _same(result: DecideResult, explain: int) -> None:
    expected = convert.decide_response(result, explain)
    encoded = convert_wire.decide_response(result, explain)
    assert pb.DecideResponse.FromString(encoded) == expected
    assert len(encoded) == expected.ByteSize()


@pytest.mark.parametrize("explain", LEVELS)
def test_decide_bytes_are_the_messages_bytes(explain: int) -> None:
    results = _results()
    assert {type(answer.decision) for result in results for answer in result.decisions} == set(
        convert_wire._KINDS
    )
    for result in results:
        _same(result, explain)


def test_the_population_reaches_what_the_encoder_caches_and_what_it_does_not() -> None:
    """Not a vacuous oracle: the answers hold each kind of fact, points, skipped actions with instants."""
    decisions = [answer.decision for result in _results() for answer in result.decisions]
    facts = [value for d in decisions for hit in d.explanation for value in hit.facts.values()]
    assert {type(value) for value in facts} >= {int, bool, type(None), dict, str}
    assert any(not hit.facts for d in decisions for hit in d.explanation)
    assert any(isinstance(d, IncentiveDecision) and d.points_earned for d in decisions)
    assert any(isinstance(d, InterventionDecision) and d.actions for d in decisions)


def test_batch_bytes_are_the_messages_bytes() -> None:
    names = sorted(default_rules().compiled)
    requests = [
        DecideRequest(user_id="", profile=profile, as_of=AS_OF, rulesets=tuple(names), event=EVENTS[0])
        for profile in generate_population(9, seed=3, as_of=AS_OF)
    ]
    requests += [
        DecideRequest(user_id="ghost", rulesets=("lifecycle",)),
        DecideRequest(user_id="x", profile={"user_id": "x"}, rulesets=("nope",)),
    ]
    results: list[DecideResult | StrataError] = list(_service().decide_batch(requests))
    assert isinstance(results[-1], StrataError) and isinstance(results[-2], StrataError)
    levels = [LEVELS[index % 3] for index in range(len(results))]
    expected = convert.batch_response(results, levels)
    encoded = convert_wire.batch_response(results, levels)
    assert pb.DecideBatchResponse.FromString(encoded) == expected
    assert len(encoded) == expected.ByteSize()
    assert convert_wire.batch_response([], []) == b""


def test_every_kind_numbers_the_shared_fields_alike() -> None:
    """The encoder writes a decision's provenance and hits with one set of keys for all four kinds."""
    shared = ("ruleset", "checksum", "version", "version_reason", "explanation")
    kinds = [pb.LifecycleDecision, pb.SegmentDecision, pb.IncentiveDecision, pb.InterventionDecision]
    numbers = {
        tuple((f.number, f.type) for f in (k.DESCRIPTOR.fields_by_name[n] for n in shared)) for k in kinds
    }
    assert len(numbers) == 1


# edges -----------------------------------------------------------------------

CHECKSUM = "sha256:" + "0" * 64
DAY = dt.date(2026, 3, 10)


def _hit(facts: dict[str, Any], rule: str = "r", reason: str = "because") -> RuleHit:
    return RuleHit(rule, reason, facts)


def _lifecycle(*hits: RuleHit, stage: str = "active") -> LifecycleDecision:
    return LifecycleDecision(ruleset="lifecycle.x", checksum=CHECKSUM, explanation=hits, stage=stage)


def _incentive(**changes: Any) -> IncentiveDecision:
    decision = IncentiveDecision(
        ruleset="incentive.x", checksum=CHECKSUM, explanation=(_hit({}),), event_type="sign_in", local_day=DAY,
        points_earned=0, points_before_cap=0, capped=False, points_total=0, daily_points={}, streak="untracked",
        streak_days=0, level=0, previous_level=0, level_up=False, badges_unlocked=(), privileges=(),
    )  # fmt: skip
    return dataclasses.replace(decision, **changes)


def _segment(scores: dict[str, int], tags: tuple[str, ...] = ()) -> SegmentDecision:
    return SegmentDecision(
        ruleset="segment.x", checksum=CHECKSUM, explanation=(), segment="s", scores=scores, tags=tags
    )


def _intervention(
    actions: tuple[Action, ...] = (), skipped: tuple[SkippedAction, ...] = (), **context: str | None
) -> InterventionDecision:
    return InterventionDecision(
        ruleset="intervention.x", checksum=CHECKSUM, explanation=(), actions=actions, skipped=skipped,
        stage=context.get("stage"), segment=context.get("segment"),
    )  # fmt: skip


def _action(**changes: Any) -> Action:
    action = Action(
        id="a", channel="push", template=None, offer=None, priority=0, reason="", cooldown_seconds=0
    )
    return dataclasses.replace(action, **changes)


def _result(*decisions: Decision | Answer[Decision], user_id: str = "u1") -> DecideResult:
    answers = tuple(item if isinstance(item, Answer) else Answer(item) for item in decisions)
    return DecideResult(user_id=user_id, decisions=answers)


EXTREME_INCENTIVE = _incentive(
    points_earned=-5, points_before_cap=2**40, capped=True, points_total=2**63 - 1,
    daily_points={"2026-03-10": -(2**63), "2026-03-09": 200, "": 0}, streak="continued", streak_days=-3,
    level=2**31 - 1, previous_level=-(2**31), level_up=True, badges_unlocked=("b1", ""), privileges=("p",),
    event_type="",
)  # fmt: skip

EDGES: dict[str, DecideResult] = {
    "empty facts are a present, empty Struct": _result(_lifecycle(_hit({}), _hit({}, rule="", reason=""))),
    "nested, listed and unicode facts": _result(
        _lifecycle(
            _hit({"scores": {"r": 1, "deep": {"x": [1, "ü", None, True, {}, []]}}, "empty": {}, "list": []}),
            _hit(
                {"名前": "ünïcødé ✓", "tuple": (1, 2.5), "long": "x" * 5000, "": ""}, rule="règle", reason="…"
            ),
        ),
        user_id="üser",
    ),
    "numbers beyond 2^53 as doubles, negative, fractional, zero": _result(
        _lifecycle(
            _hit({"big": 2**53 + 1, "bigger": 2**64 + 1, "neg": -7, "half": 0.5, "zero": 0, "nz": -0.0})
        )
    ),
    "versions present, zero, negative, absent; reasons empty": _result(
        Answer(_lifecycle(_hit({"a": 1})), version=3, version_reason="active"),
        Answer(_lifecycle(), version=0, version_reason=""),
        Answer(_lifecycle(), version=-1),
        Answer(_lifecycle(), version_reason="pinned"),
        _lifecycle(stage=""),
        user_id="",
    ),
    "negative and large int32 and int64 fields": _result(
        _segment({"r": -1, "f": 0, "m": 2**31 - 1, "n": -(2**31), "big": 300}, tags=("a", "", "ü")),
        EXTREME_INCENTIVE,
    ),
    "actions with and without optional fields; skipped with instants": _result(
        _intervention(
            actions=(
                _action(),
                _action(
                    id="", channel="", template="", offer="", priority=-2, reason="ü", cooldown_seconds=86400
                ),
                _action(template="t", offer="o", priority=2**31 - 1, cooldown_seconds=-1),
            ),
            skipped=(
                SkippedAction("a", "cooldown", dt.datetime(2026, 3, 11, 12, 0, 0, 500, tzinfo=dt.UTC)),
                SkippedAction("b", "cooldown", dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
                SkippedAction("c", "cooldown", dt.datetime(2026, 3, 11, 12, 0)),
                SkippedAction("d", "beyond_max_actions"),
                SkippedAction("", ""),
            ),
            stage="",
            segment="general",
        ),
        _intervention(stage="active"),
    ),
}


@pytest.mark.parametrize("explain", LEVELS)
@pytest.mark.parametrize("name", list(EDGES))
def test_edges(name: str, explain: int) -> None:
    _same(EDGES[name], explain)


def test_empty_facts_are_sent_as_an_empty_struct() -> None:
    """``facts {}`` at FULL, as ``convert.fill_struct`` makes it: a rule that read nothing says so."""
    encoded = convert_wire.decide_response(EDGES["empty facts are a present, empty Struct"], pb.EXPLAIN_FULL)
    hits = pb.DecideResponse.FromString(encoded).decisions[0].lifecycle.explanation
    assert [hit.HasField("facts") for hit in hits] == [True, True]


def _error(encode: Callable[[], Any]) -> tuple[type[BaseException], str] | None:
    try:
        encode()
    except (ValueError, OverflowError, TypeError) as exc:
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize(
    "decision",
    [
        _lifecycle(_hit({"huge": 10**400})),
        _lifecycle(_hit({"huge": {"inner": [-(10**400)]}})),
        _segment({"r": 2**31}),
        _incentive(points_total=2**63),
        _incentive(daily_points={"d": -(2**63) - 1}),
        _incentive(streak_days=-(2**31) - 1),
        _intervention(actions=(_action(priority=2**31),)),
        _lifecycle(_hit({"when": dt.date(2026, 3, 10)})),
    ],
)
def test_what_the_messages_refuse_is_refused_alike(decision: Decision) -> None:
    result = _result(decision)
    expected = _error(lambda: convert.decide_response(result, pb.EXPLAIN_FULL))
    assert expected is not None
    assert _error(lambda: convert_wire.decide_response(result, pb.EXPLAIN_FULL)) == expected


def test_an_unknown_decision_is_refused_as_convert_refuses_it() -> None:
    @dataclasses.dataclass(frozen=True)
    class Other(Decision):
        pass

    result = _result(Other(ruleset="x", checksum="", explanation=()))
    assert _error(lambda: convert_wire.decide_response(result)) == _error(
        lambda: convert.decide_response(result)
    )


def test_caches_are_bounded_and_stay_right() -> None:
    """Many rule ids (or reasons quoting request values) empty a cache rather than grow it."""
    limit = convert_wire._CACHE_LIMIT
    for index in range(limit + 10):
        result = _result(_lifecycle(_hit({"n": index}, rule=f"rule-{index}"), stage=f"stage-{index}"))
        if index % 1000 == 0 or index >= limit:
            _same(result, pb.EXPLAIN_FULL)
        else:
            convert_wire.decide_response(result)
    assert len(convert_wire._hit_heads) <= limit
    assert len(convert_wire._STAGES) <= limit


# generated facts ---------------------------------------------------------------

fact_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=6) | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
fact_dicts = st.dictionaries(st.text(max_size=8), fact_values, max_size=6)


@given(
    st.lists(st.tuples(st.text(max_size=6), st.text(max_size=30), fact_dicts), max_size=4),
    st.sampled_from(LEVELS),
    st.none() | st.integers(-(2**31), 2**31 - 1),
    st.none() | st.text(max_size=8),
)
def test_generated_facts(
    hits: list[tuple[str, str, dict[str, Any]]], explain: int, version: int | None, reason: str | None
) -> None:
    decision = _lifecycle(*(RuleHit(rule, why, facts) for rule, why, facts in hits))
    _same(_result(Answer(decision, version=version, version_reason=reason)), explain)
