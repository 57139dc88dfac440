"""Hostile expressions in the engine, on both evaluation paths (compiled code and rule-engine's interpreter).

* No pattern a user wrote reaches Python's ``re``: rule-engine's regex module
  is replaced by one that fails the test, and every regex form still parses,
  reduces and evaluates, on RE2.
* What only data can reveal is enforced when evaluated: a ``$range`` too long,
  a pattern RE2 refuses that came from the profile.
* Expressions at the nesting limit evaluate even from a thread already deep
  in its stack (a gRPC handler is a few dozen frames down).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from strata.engine.expressions import DataType, Expression, ExpressionError
from strata.engine.facts import Clock, Facts
from strata.engine.limits import LIMITS
from tests.hostile.rules_cases import ATTACK_INPUT, CATASTROPHIC, without_python_regex

AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
TYPES = {
    "name": DataType.STRING,
    "pattern": DataType.STRING,
    "count": DataType.FLOAT,
    "tags": DataType.ARRAY(DataType.STRING),
}


def facts(**values: Any) -> Facts:
    return Facts({"name": "", "pattern": "", "count": 0, "tags": (), **values}, Clock(AS_OF, dt.UTC), {})


@pytest.fixture(params=["compiled", "interpreted"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    Expression.use_compiled = request.param == "compiled"
    try:
        yield request.param
    finally:
        Expression.use_compiled = True


@pytest.fixture
def no_python_regex() -> Iterator[None]:
    with without_python_regex():
        yield


REGEX_CASES = [
    (f"name =~ '{CATASTROPHIC}'", {"name": ATTACK_INPUT}, False),
    (f"name =~ '{CATASTROPHIC}'", {"name": "aaaa"}, True),
    (f"'{ATTACK_INPUT}' =~ '{CATASTROPHIC}'", {}, False),  # literal against literal: reduced while it builds
    (f"name =~~ '{CATASTROPHIC}'", {"name": "x" + ATTACK_INPUT}, False),
    ("name !~ '^a'", {"name": "ba"}, True),
    ("name !~~ 'a'", {"name": "ba"}, False),
    ("name =~ pattern", {"name": ATTACK_INPUT, "pattern": CATASTROPHIC}, False),  # pattern from the data
    ("name =~~ pattern", {"name": "xabc", "pattern": "b+"}, True),
    ("[t for t in tags if t =~ '(x+x+)+y'] == []", {"tags": ("x" * 40,)}, True),
    (f"$any([name =~ '{CATASTROPHIC}', false])", {"name": ATTACK_INPUT}, False),  # inside a call's arguments
    ("$all([[name =~ pattern][0]])", {"name": "ab", "pattern": "b"}, False),
]


@pytest.mark.usefixtures("no_python_regex")
@pytest.mark.parametrize(("text", "values", "expected"), REGEX_CASES)
def test_every_regex_form_runs_on_re2(path: str, text: str, values: dict[str, Any], expected: bool) -> None:
    expression = Expression(text, TYPES)
    assert expression.test(facts(**values)) is expected


@pytest.mark.usefixtures("no_python_regex")
def test_a_pattern_from_the_data_that_re2_refuses_fails_the_evaluation(path: str) -> None:
    expression = Expression("name =~ pattern", TYPES)
    with pytest.raises(ExpressionError, match="refused by RE2"):
        expression.test(facts(name="aa", pattern="(a)\\1"))


def test_a_range_too_long_for_the_data_fails_when_evaluated(path: str) -> None:
    expression = Expression("$range(count) != []", TYPES)
    assert expression.test(facts(count=LIMITS.range_items)) is True
    with pytest.raises(
        ExpressionError, match=f"the length of \\$range is 10000000, the maximum is {LIMITS.range_items}"
    ):
        expression.test(facts(count=10_000_000))


@pytest.mark.parametrize(
    "text",
    [
        " and ".join(["count > 1"] * ((LIMITS.depth - 1) // 2 + 1)),
        "not " * (LIMITS.depth - 3) + "(count > 1)",
        "(" * (LIMITS.depth - 3) + "count" + " + 1)" * (LIMITS.depth - 3) + " > 1",
        "count > 1 ? " * ((LIMITS.depth - 2) // 2) + "true" + " : false" * ((LIMITS.depth - 2) // 2),
    ],
    ids=["and", "not", "parentheses", "ternary"],
)
def test_expressions_at_the_depth_limit_evaluate_deep_in_a_stack(path: str, text: str) -> None:
    expression = Expression(text, TYPES)

    def nested(frames: int) -> bool:
        return expression.test(facts(count=2)) if frames == 0 else nested(frames - 1)

    assert isinstance(nested(200), bool)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("count / (count - count) > 0", "division by zero"),
        ("['a'][count] == 'a'", "lookup operation failed"),
        ("$parse_datetime(name) > $now", "function call failed"),
        ("$min([count][1:]) > 0", "function call failed"),
    ],
)
def test_failures_inside_the_library_come_out_as_expression_errors(
    path: str, text: str, message: str
) -> None:
    expression = Expression(text, TYPES)
    with pytest.raises(ExpressionError, match=message):
        expression.test(facts(count=3, name="not a date"))
