"""The expression compiler: default rule files, whole decisions, and the semantics it relies on.

* Every expression of every default rule file compiles (no fallback).
* Every default ruleset gives the identical decision (``repr`` of the whole
  decision, explanation included) with compiled expressions and with
  rule-engine's interpreter, over generated profiles and events.
* Values compiled code does not expect, errors, and constructs it does not
  translate all end as the interpreter would have them end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.engine import compiler
from strata.engine.expressions import DataType, Expression, ExpressionError, compile_condition, object_type
from strata.engine.facts import Clock, Facts
from strata.engine.ruleset import AllMatches, Chain, Choice, CompiledRuleset, Compiler, FirstMatch
from strata.errors import StrataError
from strata.rulefiles.loader import load_paths
from tests.conftest import RULES_DIR

AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
CLOCK = Clock(AS_OF, dt.UTC)


@contextlib.contextmanager
def interpreted() -> Iterator[None]:
    """Every expression evaluated by rule-engine's interpreter while inside."""
    Expression.use_compiled = False
    try:
        yield
    finally:
        Expression.use_compiled = True


def expressions_of(value: Any) -> Iterator[Expression]:
    """Every Expression a compiled ruleset holds (in its rules, scores and points)."""
    if isinstance(value, Expression):
        yield value
    elif isinstance(value, CompiledRuleset):
        skipped = ("spec", "schema", "lifecycle", "segment")  # dependencies are checked on their own
        for name, item in vars(value).items():
            if name not in skipped:
                yield from expressions_of(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in vars(value).values():
            yield from expressions_of(item)
    elif isinstance(value, (list, tuple, Chain)):  # a Chain: a ruleset's rules of one kind
        for item in value:
            yield from expressions_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from expressions_of(item)


def test_every_expression_of_every_default_rule_file_compiles() -> None:
    before = compiler.counts.copy()
    ruleset_set, names = load_paths([RULES_DIR])
    loaded = compiler.counts - before
    assert loaded["interpreted"] == 0, compiler.fallback_reasons
    found = [expr for name in names for expr in expressions_of(ruleset_set.compiled[name])]
    assert len(found) == loaded["compiled"] > 50
    assert all(expr.compiled for expr in found)


# -- whole decisions, compiled and interpreted ---------------------------------------------

RULESETS, NAMES = load_paths([RULES_DIR])
ZONES = ["UTC", "Asia/Shanghai", "Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin"]
EVENT_TYPES = [
    "sign_in",
    "note_published",
    "like_received",
    "comment_received",
    "collect_received",
    "note_viewed",
]
ACTIONS = ["recall_coupon", "winback_coupon", "general_campaign", "active_care", "register_prompt"]


def _instant(days: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda d, s: (AS_OF - dt.timedelta(days=d, seconds=s)).isoformat().replace("+00:00", "Z"),
        days,
        st.integers(0, 86399),
    )


def _day(days: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return days.map(lambda d: (AS_OF.date() - dt.timedelta(days=d)).isoformat())


recent = st.one_of(st.integers(0, 10), st.integers(0, 60), st.integers(0, 900))
counts = st.one_of(st.integers(0, 12), st.integers(0, 300), st.integers(0, 200_000))
profiles = st.fixed_dictionaries(
    {"user_id": st.just("u1")},
    optional={
        "timezone": st.sampled_from(ZONES),
        "registered_at": st.none() | _instant(recent),
        "first_active_date": st.none() | _day(recent),
        "activity_dates": st.lists(_day(st.integers(-1, 45)), max_size=25),
        "last_active_at": st.none() | _instant(recent),
        "profile_fields_completed": st.integers(0, 5),
        "following_count": counts,
        "followers_count": counts,
        "is_signed_kol": st.booleans(),
        "posts_30d": counts,
        "likes_received_30d": counts,
        "comments_30d": counts,
        "shares_30d": counts,
        "likes_given_30d": counts,
        "orders_365d": counts,
        "spend_365d": st.one_of(counts, st.floats(0, 20000).map(lambda f: round(f, 2))),
        "last_order_at": st.none() | _instant(recent),
        "points": st.one_of(st.integers(0, 200), st.integers(0, 100_000)),
        "level": st.integers(1, 11),
        "streak_days": st.integers(0, 40),
        "last_checkin_date": st.none() | _day(st.integers(-1, 5)),
        "daily_points": st.dictionaries(st.sampled_from(EVENT_TYPES), st.integers(0, 120), max_size=3),
        "daily_points_date": st.none() | _day(st.integers(-1, 2)),
        "badges": st.lists(st.sampled_from(["first_note", "likes_100", "streak_30", "level_5"]), max_size=3),
        "membership": st.none() | st.sampled_from(["black_card", "gold"]),
        "tags": st.lists(st.sampled_from(["travel", "fashion", "food", "pets"]), max_size=3),
        "last_sent": st.dictionaries(st.sampled_from(ACTIONS), _instant(st.integers(0, 40)), max_size=3),
    },
)
events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES)},
    optional={"count": st.integers(1, 12), "at": _instant(st.integers(-1, 3))},
)
instants = st.sampled_from(
    [AS_OF, AS_OF + dt.timedelta(hours=13), AS_OF - dt.timedelta(hours=11, minutes=30)]
)


def decide(ruleset: CompiledRuleset[Any], profile: dict[str, Any], as_of: dt.datetime, event: Any) -> str:
    """The whole decision as text, or the error it raised."""
    try:
        return repr(ruleset.evaluate(profile, as_of, event if ruleset.kind == "incentive" else None))
    except StrataError as exc:
        return f"{type(exc).__name__}: {exc} {getattr(exc, 'problems', '')}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=profiles, as_of=instants, event=events)
def test_default_rulesets_decide_identically_compiled_and_interpreted(
    profile: dict[str, Any], as_of: dt.datetime, event: dict[str, Any]
) -> None:
    reruns = compiler.counts["reruns"]
    compiled = {name: decide(RULESETS.compiled[name], profile, as_of, event) for name in NAMES}
    assert compiler.counts["reruns"] == reruns, compiler.rerun_reasons  # compiled code decided alone
    with interpreted():
        reference = {name: decide(RULESETS.compiled[name], profile, as_of, event) for name in NAMES}
    assert compiled == reference


# -- what compiled code leaves to the interpreter ------------------------------------------

THING = object_type("thing", {"n": DataType.FLOAT})
TYPES: dict[str, Any] = {
    "n": DataType.FLOAT,
    "s": DataType.STRING,
    "d": DataType.DATETIME,
    "xs": DataType.ARRAY(DataType.FLOAT),
    "o": THING,
    "facts": DataType.FLOAT,  # names a generated function uses for itself are plain fact names here
    "values": DataType.FLOAT,
    "profile": DataType.STRING,
    "k0": DataType.FLOAT,
    "t1": DataType.FLOAT,
}
GOOD: dict[str, Any] = {
    "n": 2,
    "s": "ab",
    "d": AS_OF,
    "xs": (1, 2.5),
    "o": {"n": 4},
    "facts": 1,
    "values": 2,
    "profile": "p",
    "k0": 3,
    "t1": 4,
}


def outcome(evaluate: Any, values: dict[str, Any]) -> tuple[Any, str]:
    try:
        value = evaluate(Facts({}, CLOCK, values))
    except ExpressionError as exc:
        return ("error", str(exc))
    return (type(value), repr(value))


def both(text: str, values: dict[str, Any]) -> tuple[Any, Any]:
    """(compiled path, interpreter) outcomes of one expression over one set of facts."""
    expression = Expression(text, TYPES)
    assert expression.compiled, compiler.fallback_reasons
    return outcome(expression.evaluate, values), outcome(expression.interpret, values)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("n + 1", None),  # null where the schema promised a number: rule-engine fails on '+'
        ("n == 1", None),  # ... and compares null with 1 as false
        ("n + 1", True),  # a boolean is not a number
        ("n > 1", float("nan")),  # NaN: rule-engine's decimal comparison fails
        ("n * 2", Decimal("Infinity")),
        ("n + 1", 1.5),  # floats are fine: Decimal(repr(1.5))
        ("s + 'x'", 3),
        ("d.year", dt.datetime(2026, 3, 10)),  # naive: rule-engine gives it its default zone
        ("d.day", dt.date(2026, 3, 9)),  # a date is its midnight
        ("$sum(xs)", [1, 2]),  # a list is an array
        ("$sum(xs)", (1, None)),
        ("$sum(xs)", (1, "x")),
        ("o.n + 1", {"n": None}),
        ("o.n + 1", {}),
        ("o.n + 1", None),
        ("o.n + 1", "not an object"),
    ],
)
def test_unexpected_fact_values_end_as_in_the_interpreter(text: str, bad: Any) -> None:
    name = text.replace("$sum(", "").split(".")[0].split(" ")[0].strip(")")
    compiled, reference = both(text, {**GOOD, name: bad})
    assert compiled == reference


@pytest.mark.parametrize(
    "text",
    [
        "n / (n - 2)",  # division by zero
        "xs[5]",  # no such item
        "xs[0.5]",  # not an index
        "missing_fact == 1",
        "$min(xs[5:])",  # min of an empty array
        "(n - 3).to_int + $abs(n - 2.5).to_int",
        "'a' =~ s + '('",  # a pattern that does not compile
    ],
)
def test_errors_carry_rule_engines_messages(text: str) -> None:
    types = {**TYPES, "missing_fact": DataType.FLOAT}
    expression = Expression(text, types)
    facts = Facts({}, CLOCK, GOOD)
    with pytest.raises(ExpressionError) as reference:
        expression.interpret(facts)
    with pytest.raises(ExpressionError) as compiled:
        expression.evaluate(facts)
    assert str(compiled.value) == str(reference.value)


def test_names_the_generated_code_uses_are_just_fact_names() -> None:
    compiled, reference = both("facts + values + k0 + t1 + [facts * 2 for facts in xs][1]", GOOD)
    assert compiled == reference == (Decimal, "Decimal('15.0')")
    assert both("profile + s", GOOD)[0] == (str, "'pab'")


def chain_answers(first: FirstMatch[int], every: AllMatches[int], facts: Facts) -> tuple[Any, Any]:
    """(first match, all matches) of the same rules, each its rule ids or the error it raised."""
    answers: list[Any] = []
    for match in (lambda: first.first(facts, None), lambda: every.all(facts)):
        try:
            found = match()
        except StrataError as exc:
            answers.append((exc.message, exc.problems))
        else:
            answers.append(found[1].rule if isinstance(found, tuple) else [c.id for c, _ in found or ()])
    return answers[0], answers[1]


def test_a_chain_hands_each_failing_condition_alone_to_the_interpreter() -> None:
    """One function evaluates a ruleset's conditions (``FirstMatch``, ``AllMatches``); each one that fails at run time,
    or is not compiled, is decided by the interpreter, and the others stay compiled. Compiled code
    reads a condition's facts before evaluating it: ``missing_fact`` fails there, where rule-engine
    never reads it (the interpreter decides: false); the next condition reuses the unassigned local
    only behind the same short-circuit, so it stays compiled."""
    types = {**TYPES, "missing_fact": DataType.FLOAT, "result": DataType.FLOAT, "f0": DataType.FLOAT}
    texts = [
        "n == 3 and missing_fact > 1",  # compiled code reads missing_fact first; rule-engine never does
        "n == 2 or missing_fact > 1",
        "{'a': n}['a'] == 2",  # not compiled
        "result + f0 == 3",  # names the generated code uses for itself are plain fact names here
        "n / (n - 2) > 1",  # division by zero
        "n == 2",
    ]
    choices = [Choice(f"r{i}", compile_condition(text, types), i, "why") for i, text in enumerate(texts)]
    first, every = FirstMatch("test.chain", choices), AllMatches("test.chain", choices)
    assert first.bare is not None and every.bare is not None and not choices[2].when.compiled
    facts = Facts({}, CLOCK, {**GOOD, "result": 1, "f0": 2}, skip_facts=True)  # hits read no missing_fact
    reruns = compiler.counts["reruns"]
    compiled = chain_answers(first, every, facts)
    assert compiler.counts["reruns"] - reruns == 1 + 2  # rule 0; rules 0 and 4
    with interpreted():
        reference = chain_answers(first, every, facts)
    assert compiled == reference
    assert compiled[0] == "r1"
    assert compiled[1][1][0].rule == "r4" and "division by zero" in compiled[1][1][0].message


def test_a_chain_explains_each_match_with_the_facts_its_rule_read() -> None:
    """The chained code hands back the values of the facts a matching condition read, from its own
    locals; where they may not all be there (an earlier condition failed before reading one that a
    short-circuit then skipped, or a name is a comprehension variable), the hit reads the facts
    again. Either way the explanation is the interpreter's, byte for byte."""
    types = {**TYPES, "missing_fact": DataType.FLOAT, "y": DataType.FLOAT, "x": DataType.FLOAT}
    texts = [
        "n == 3 and missing_fact > 1 and y > 0",  # fails reading missing_fact, before y
        "n == 2 or y > 1",  # y unread (short-circuit): its local was never assigned
        "s == 'ab' and d > d",
        "[x for x in xs if x > 1] == [2.5]",  # x: a fact, and here only a comprehension variable
        "xs[0] == 1 and o.n == 4 and d == d",
    ]
    choices = [Choice(f"r{i}", compile_condition(text, types), i, "why") for i, text in enumerate(texts)]
    every = AllMatches("test.chain", choices)
    first = FirstMatch("test.chain", choices[1:])
    shown = []
    for facts_values in ({**GOOD, "y": 5, "x": 7}, {**GOOD, "n": 1, "y": 0.5, "x": None}):
        answers = []
        for compiled in (True, False):
            Expression.use_compiled = compiled
            try:
                facts = Facts({}, CLOCK, facts_values)
                found = first.first(facts, None)
                answers.append((repr(every.all(facts)), None if found is None else repr(found[1])))
            finally:
                Expression.use_compiled = True
        assert answers[0] == answers[1]
        shown.append(answers[0])
    assert "facts={'n': 2, 'y': 5}" in str(shown[0][1]) and "facts={'x': None, 'xs': [1, 2.5]}" in shown[1][0]


def test_a_chain_checks_a_boolean_fact_once_and_hands_a_wrong_one_to_the_interpreter() -> None:
    """A chain checks a BOOLEAN fact where it first reads it, not at each use: a value that is not a
    boolean (here a number, or null, where the types promised a boolean) fails the condition that
    reads it first and every later one using it, and the interpreter decides each of them, with its
    own answers, errors and explanations."""
    types = {**TYPES, "flag": DataType.BOOLEAN}
    texts = ["n == 3 and flag", "flag or n == 2", "not flag", "n == 2"]
    choices = [Choice(f"r{i}", compile_condition(text, types), i, "why") for i, text in enumerate(texts)]
    first, every = FirstMatch("test.chain", choices), AllMatches("test.chain", choices)
    for flag in (True, False, 1, None):
        for skip_facts in (False, True):
            facts = Facts({}, CLOCK, {**GOOD, "flag": flag}, skip_facts=skip_facts)
            explained = (
                [repr(first.first(facts, None)), repr(every.all(facts))] if isinstance(flag, bool) else []
            )
            compiled = chain_answers(first, every, facts)
            with interpreted():
                assert chain_answers(first, every, facts) == compiled, (flag, skip_facts)
                if explained:
                    assert [repr(first.first(facts, None)), repr(every.all(facts))] == explained


def test_text_in_a_rule_stays_data() -> None:
    text = """s + '"); import os; os.system("true"); ("' == 'x'"""
    compiled, reference = both(text, GOOD)
    assert compiled == reference == (bool, "False")


def test_generated_code_runs_without_builtins() -> None:
    expression = Expression("$max(xs) + n", TYPES)
    assert expression._compiled is not None
    assert expression._compiled.__globals__["__builtins__"] == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{'a': n}['a']", "MappingExpression"),
        ("n > 0 ** -1", "nan or inf literal"),  # a nan or inf literal is refused; this folds to inf
        ("$parse_float(s) > 1", "$parse_float()"),
        ("s.to_flt > 1", "attribute to_flt of STRING"),
        ("[n, null][0] ?? 1", "null in a typed array literal"),
        ("$map($abs, xs)", "$map()"),
    ],
)
def test_constructs_left_to_the_interpreter_are_counted_and_still_evaluate(text: str, reason: str) -> None:
    before = compiler.fallback_reasons[reason]
    expression = Expression(text, TYPES)
    assert not expression.compiled
    assert compiler.fallback_reasons[reason] == before + 1
    assert outcome(expression.evaluate, GOOD) == outcome(expression.interpret, GOOD)


def test_decimal_arithmetic_is_the_interpreters_to_the_last_digit() -> None:
    big = 10**27 + 1  # 28 digits: the decimal context rounds the sum of two of them
    for text in ("n + n", "n - 0.1", "n * n", "n / 3", "n // 7", "n % 7", "n ** 0.5", "-n", "n + n > n"):
        for value in (big, 7, 0, -3, 2.675):
            compiled, reference = both(text, {**GOOD, "n": value})
            assert compiled == reference, (text, value)


def test_plain_profile_fields_are_those_nothing_hides() -> None:
    compiler_ = Compiler(RULESETS.schema, {"threshold": 3})
    fields = compiler_.profile_fields()
    assert {"followers_count", "tags", "registered_at", "last_sent"} <= fields
    dates = {"first_active_date", "activity_dates", "last_checkin_date"}  # read as local midnights
    assert not dates & fields
    compiler_.types["tags"] = DataType.STRING  # a kind's input of the same name hides the field
    assert "tags" not in compiler_.profile_fields()
