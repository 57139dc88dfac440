"""Compiled expressions agree with rule-engine's interpreter on generated expressions and facts.

A grammar generates well-typed (and some ill-typed) expressions over facts of
every type Strata declares: numbers (integers and floats, some nullable),
strings, booleans, datetimes, arrays, a mapping and objects. Each expression
is evaluated over a few generated fact sets both ways:

* the interpreter (``Expression.interpret``) is the reference;
* ``Expression.evaluate`` must give the identical value (same type, same
  ``repr``: ``Decimal('1.0')`` is not ``Decimal('1')``) or the identical
  ``ExpressionError``;
* and the compiled code itself must have decided: when the interpreter
  returns a value, compiled code returns it without handing the evaluation
  back to the interpreter (``compiler.counts["reruns"]`` does not move), the
  one exception being a power that gave infinity (``0 ** -1``), which
  compiled code hands over by design; when the interpreter fails, compiled
  code fails too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import warnings
from collections import OrderedDict
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from strata.engine import compiler
from strata.engine.expressions import (
    DataType,
    Expression,
    ExpressionError,
    compile_condition,
    compile_optional_number,
    object_type,
)
from strata.engine.facts import Clock, Facts
from strata.engine.ruleset import AllMatches, Chain, Choice, FirstMatch
from strata.errors import EvaluationError

OBJECT = object_type("thing", {"n": DataType.FLOAT, "s": DataType.STRING, "t": DataType.DATETIME})
TYPES: dict[str, Any] = {
    "i1": DataType.FLOAT,
    "i2": DataType.FLOAT,
    "x1": DataType.FLOAT,
    "ni": DataType.NULLABLE(DataType.FLOAT),
    "s1": DataType.STRING,
    "s2": DataType.STRING,
    "ns": DataType.NULLABLE(DataType.STRING),
    "b1": DataType.BOOLEAN,
    "b2": DataType.BOOLEAN,
    "nb": DataType.NULLABLE(DataType.BOOLEAN),
    "d1": DataType.DATETIME,
    "d2": DataType.DATETIME,
    "nd": DataType.NULLABLE(DataType.DATETIME),
    "xs": DataType.ARRAY(DataType.FLOAT),
    "ss": DataType.ARRAY(DataType.STRING),
    "ds": DataType.ARRAY(DataType.DATETIME),
    "m": DataType.MAPPING(DataType.STRING, DataType.FLOAT),
    "o": OBJECT,
    "no": DataType.NULLABLE(OBJECT),
}

# -- fact values --------------------------------------------------------------

ZONES = [dt.UTC, ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")]
integers = st.one_of(st.integers(-3, 12), st.integers(-(10**7), 10**7))
floats = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 3))
numbers = st.one_of(integers, floats)
strings = st.text(alphabet="abA ", max_size=4)
instants = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.sampled_from(ZONES)
)
objects = st.fixed_dictionaries({"n": numbers, "s": strings, "t": instants})
fact_values = st.fixed_dictionaries(
    {
        "i1": integers,
        "i2": integers,
        "x1": numbers,
        "ni": st.none() | numbers,
        "s1": strings,
        "s2": strings,
        "ns": st.none() | strings,
        "b1": st.booleans(),
        "b2": st.booleans(),
        "nb": st.none() | st.booleans(),
        "d1": instants,
        "d2": instants,
        "nd": st.none() | instants,
        "xs": st.lists(numbers, max_size=4).map(tuple),
        "ss": st.lists(strings, max_size=4).map(tuple),
        "ds": st.lists(instants, max_size=3).map(tuple),
        "m": st.dictionaries(st.sampled_from("abc"), numbers, max_size=3),
        "o": objects,
        "no": st.none() | objects,
    }
)
clocks = st.builds(Clock, instants, st.sampled_from(ZONES))

# -- the grammar ----------------------------------------------------------------

LEAVES: dict[str, list[str]] = {
    "num": ["i1", "i2", "x1", "0", "1", "2", "7", "2.5", "0.1", "1e3", "o.n", "xs.length", "s1.length",
            "m.length", "d1.day", "d1.hour", "$today.day", "(ni ?? 3)", "(no&.n ?? 1)", "$e"],
    "nnum": ["ni", "no&.n", "xs&[2]", "m&['a']", "null"],
    "str": ["s1", "s2", "'a'", "''", "'ab'", "o.s", "(ns ?? 'z')", "d1.weekday"],
    "nstr": ["ns", "no&.s", "ss&[0]"],
    "bool": ["b1", "b2", "true", "false", "(nb ?? false)"],
    "dt": ["d1", "d2", "$now", "$today", "d'2026-03-01T00:00:00Z'", "(nd ?? d1)", "o.t"],
    "nums": ["xs", "[1, 2, 3]", "xs[1:]", "$range(3)"],
    "strs": ["ss", "['a', 'b']"],
}  # fmt: skip
INDEXES = st.sampled_from(["0", "1", "-1", "5", "0.5"])


def _template(pattern: str, **parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(parts).map(lambda values: pattern.format(**values))


@functools.cache
def expressions(kind: str, depth: int) -> st.SearchStrategy[str]:
    """Expression text of ``kind``; deeper levels combine shallower ones."""
    leaves = st.sampled_from(LEAVES[kind])
    if depth == 0:
        return leaves

    def sub(k: str) -> st.SearchStrategy[str]:
        return expressions(k, depth - 1)

    num, string, boolean, instant = sub("num"), sub("str"), sub("bool"), sub("dt")
    any_value = st.one_of(num, string, boolean, sub("nnum"), sub("nstr"))
    compound: dict[str, list[st.SearchStrategy[str]]] = {
        "num": [
            _template("({a} {op} {b})", a=num, b=num, op=st.sampled_from(["+", "-", "*", "/", "//", "%"])),
            _template("({a} ** {b})", a=num, b=st.sampled_from(["2", "0.5", "-1", "3"])),
            _template("(-{a})", a=num),
            _template("$abs({a})", a=num),
            _template("${f}({xs})", f=st.sampled_from(["min", "max", "sum"]), xs=sub("nums")),
            _template("({c} ? {a} : {b})", c=boolean, a=num, b=num),
            _template("({n} ?? {a})", n=sub("nnum"), a=num),
            _template("({a}).{attr}", a=num, attr=st.sampled_from(["floor", "ceiling", "to_int"])),
            _template("xs[{i}]", i=INDEXES),
            _template("xs[{a}]", a=num),
            _template("m[{k}]", k=st.sampled_from(["'a'", "'b'", "s1"])),
            _template("({xs}).length", xs=sub("nums")),
            _template("(({a}) - ({b})).days", a=instant, b=instant),
            _template("(({a}) - ({b})).total_seconds", a=instant, b=instant),
            _template("({a}).{attr}", a=instant, attr=st.sampled_from(["month", "minute", "millisecond"])),
        ],
        "nnum": [
            _template("({c} ? {n} : {a})", c=boolean, n=sub("nnum"), a=num),
            _template("xs&[{i}]", i=INDEXES),
        ],
        "str": [
            _template("({a} + {b})", a=string, b=string),
            _template("({a}).{attr}", a=string, attr=st.sampled_from(["as_lower", "as_upper", "to_str"])),
            _template("({a}).to_str", a=num),
            _template("({c} ? {a} : {b})", c=boolean, a=string, b=string),
            _template("({a})[{i}]", a=string, i=INDEXES),
            _template("({a})[1:]", a=string),
            _template("({n} ?? {a})", n=sub("nstr"), a=string),
            _template("ss[{i}]", i=INDEXES),
        ],
        "nstr": [_template("({c} ? {n} : {a})", c=boolean, n=sub("nstr"), a=string)],
        "bool": [
            _template("({a} {op} {b})", a=num, b=num, op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="])),
            _template("({a} {op} {b})", a=string, b=string, op=st.sampled_from(["<", ">=", "==", "!="])),
            _template("({a} {op} {b})", a=instant, b=instant, op=st.sampled_from(["<", ">", "=="])),
            _template("({a} {op} {b})", a=any_value, b=any_value, op=st.sampled_from(["==", "!="])),
            _template(
                "({n} {op} null)", n=st.one_of(sub("nnum"), sub("nstr")), op=st.sampled_from(["==", "!="])
            ),
            _template("({a} {op} {b})", a=boolean, b=boolean, op=st.sampled_from(["and", "or"])),
            _template("({a} {op} {b})", a=any_value, b=any_value, op=st.sampled_from(["and", "or"])),
            _template("(not {a})", a=any_value),
            _template("({a} in ss)", a=string),
            _template("({a} in {xs})", a=num, xs=sub("nums")),
            _template("({a} in {b})", a=string, b=string),
            _template("({a} in m)", a=string),
            _template(
                "({a} {op} {p})", a=string, op=st.sampled_from(["=~", "=~~", "!~"]), p=st.just("'a.*'")
            ),
            _template("({a}).{f}({b})", a=string, b=string, f=st.sampled_from(["starts_with", "ends_with"])),
            _template("${f}([{a}, {b}])", f=st.sampled_from(["any", "all"]), a=boolean, b=boolean),
            _template("({xs}).is_empty", xs=sub("nums")),
            _template("({a} {op} {b})", a=sub("nums"), b=sub("nums"), op=st.sampled_from(["<", "==", ">="])),
            _template("({c} ? {a} : {b})", c=any_value, a=boolean, b=boolean),
        ],
        "dt": [
            _template("({a} + t'P1D')", a=instant),
            _template("({a} - t'PT5H')", a=instant),
            _template("({a}).date", a=instant),
            _template("({c} ? {a} : {b})", c=boolean, a=instant, b=instant),
            _template("ds[{i}]", i=INDEXES),
        ],
        "nums": [
            _template("[{a}, {b}]", a=num, b=num),
            _template("[c * 2 for c in {xs}]", xs=sub("nums")),
            _template("[c for c in {xs} if c > {a}]", xs=sub("nums"), a=num),
        ],
        "strs": [
            _template("$split({a})", a=string),
            _template("[c.as_upper for c in ss if c != {a}]", a=string),
        ],
    }
    return st.one_of(leaves, *compound[kind])


KINDS = ["num", "nnum", "str", "bool", "dt", "nums", "strs"]
texts = st.sampled_from(KINDS).flatmap(lambda kind: expressions(kind, 3))

# -- comparing outcomes ------------------------------------------------------------


def same(left: Any, right: Any) -> bool:
    """Identical rule-engine values: same types all the way down, same representation."""
    if type(left) is not type(right):
        return False
    if isinstance(left, tuple):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, OrderedDict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, set):
        return left == right and sorted(map(repr, left)) == sorted(map(repr, right))
    return bool(left == right) and repr(left) == repr(right)


def outcome(expression: Expression, facts: Facts, interpret: bool) -> tuple[str, Any]:
    try:
        value = expression.interpret(facts) if interpret else expression.evaluate(facts)
    except ExpressionError as exc:
        return "error", str(exc)
    return "value", value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, fact_sets=st.lists(st.tuples(fact_values, clocks), min_size=1, max_size=4))
def test_compiled_code_agrees_with_the_interpreter(
    text: str, fact_sets: list[tuple[dict[str, Any], Clock]]
) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SyntaxWarning)  # generated code compiles cleanly
            expression = Expression(text, TYPES)
    except ExpressionError:
        event("refused at load (type error)")
        assume(False)
        return
    event("compiled" if expression.compiled else "interpreted")
    for values, clock in fact_sets:
        facts = Facts({}, clock, values)
        expected = outcome(expression, facts, interpret=True)
        reruns, infinities = compiler.counts["reruns"], compiler.rerun_reasons["NonFinite"]
        got = outcome(expression, facts, interpret=False)
        compiled_failed = compiler.counts["reruns"] > reruns
        handed_over = compiler.rerun_reasons["NonFinite"] > infinities
        assert got[0] == expected[0], (text, values, got, expected)
        if expected[0] == "error":
            assert got[1] == expected[1], (text, values)
            assert compiled_failed or not expression.compiled, (
                text,
                values,
                "compiled code returned a value",
            )
        else:
            assert same(got[1], expected[1]), (text, values, got, expected)
            assert not compiled_failed or handed_over, (
                text,
                values,
                "compiled code failed where rule-engine did not",
            )


# -- rule chains -------------------------------------------------------------------


def chain_outcome(chain: Chain[int], facts: Facts, interpret: bool) -> tuple[str, Any]:
    """What a chain answers (the matching rules and their hits) or the error it raises, by the
    chained compiled code or rule by rule with the interpreter."""
    Expression.use_compiled = not interpret
    try:
        if isinstance(chain, FirstMatch):
            match = chain.first(facts, None)
            return "value", None if match is None else (match[0], repr(match[1]))
        assert isinstance(chain, AllMatches)
        return "value", [(choice.result, repr(hit)) for choice, hit in chain.all(facts)]
    except EvaluationError as exc:
        return "error", (exc.message, exc.problems)
    finally:
        Expression.use_compiled = True


conditions = expressions("bool", 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    condition_texts=st.lists(conditions, min_size=1, max_size=6),
    fact_sets=st.lists(st.tuples(fact_values, clocks), min_size=1, max_size=3),
)
def test_a_chain_of_conditions_agrees_with_the_interpreter_rule_by_rule(
    condition_texts: list[str], fact_sets: list[tuple[dict[str, Any], Clock]]
) -> None:
    """A ruleset's conditions compiled into one function (``FirstMatch``, ``AllMatches``) match the same
    rules, with the same explanations (with the facts' values or without) and the same errors, as the interpreter testing them one by one: also when
    some conditions are not compiled, or fail at run time and are handed to the interpreter."""
    choices = []
    for index, text in enumerate(condition_texts):
        with contextlib.suppress(ExpressionError):  # an ill-typed one is refused at load: left out
            choices.append(Choice(f"rule{index}", compile_condition(text, TYPES), index, f"reason {index}"))
    assume(choices)
    chains = [FirstMatch("test.chain", choices), AllMatches("test.chain", choices)]
    event("chained" if chains[0].bare else "not chained")
    if not all(choice.when.compiled for choice in choices):
        event("some conditions interpreted")
    for values, clock in fact_sets:
        for chain, skip_facts in itertools.product(chains, (False, True)):
            facts = Facts({}, clock, values, skip_facts=skip_facts)
            expected = chain_outcome(chain, facts, interpret=True)
            reruns = compiler.counts["reruns"]
            got = chain_outcome(chain, facts, interpret=False)
            assert got == expected, (condition_texts, values, type(chain).__name__, skip_facts)
            event(f"answer: {expected[0]}")
            if compiler.counts["reruns"] > reruns:
                event("a condition was handed to the interpreter")


# -- score values ---------------------------------------------------------------------

EXACT_INTS = st.integers(-(2**53), 2**53)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**20), 10**20)
    ),
    thresholds=st.lists(EXACT_INTS, max_size=4),
    near=st.integers(-2, 2),
)
def test_a_score_value_compared_with_integers_orders_as_the_interpreters_decimal(
    value: float | int | None, thresholds: list[int], near: int
) -> None:
    """A score's value compared only with ints a float holds exactly (``Compared`` "integers") may stay
    a float: against each such int it orders as rule-engine's Decimal of it does (thresholds next to
    the value included, where a float and its decimal could part)."""
    expression = compile_optional_number("x", {"x": DataType.NULLABLE(DataType.FLOAT)}, compared="integers")
    facts = Facts({}, Clock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC), dt.UTC), {"x": value})
    compiled, reference = expression.evaluate(facts), expression.interpret(facts)
    assert (compiled is None) == (reference is None)
    if value is not None and abs(value) < 2**53:
        thresholds = [*thresholds, int(value) + near]
    for threshold in thresholds if reference is not None else ():
        assert (compiled < threshold, compiled == threshold) == (
            reference < threshold,
            reference == threshold,
        )
