"""Fuzzing rule files and expressions: only Strata's own errors come out, nothing hangs, nothing crashes.

Three generators, from wild to plausible: arbitrary text as a rule file;
arbitrary YAML-shaped data as a rule file; and expressions put together from
the grammar's tokens and from a small grammar (operators, builtins, regexes,
comprehensions, attribute chains, hostile literals), compiled into a lifecycle
file and evaluated against generated JSON profiles. A ``StrataError`` is
the only acceptable failure; any other exception fails the test, and so do
an example running past ``HANG_SECONDS`` (a timer interrupts it) and a
pattern that reaches Python's ``re``.

CI runs a bounded number of examples; ``make fuzz`` runs many more
(``STRATA_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.errors import StrataError
from strata.rulefiles.loader import compile_rule_file, parse_rule_file
from tests.hostile.rules_cases import lifecycle, without_python_regex
from tests.unit.helpers import SCHEMA

EXAMPLES = int(os.environ.get("STRATA_FUZZ_EXAMPLES", "60"))
HANG_SECONDS = 20
AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


class Hang(Exception):
    """An example ran longer than HANG_SECONDS."""


@contextlib.contextmanager
def no_hang() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def publish_and_decide(text: str, profiles: list[dict[str, Any]]) -> None:
    """What a publish and a few decisions do with ``text``; only StrataError may escape."""
    with no_hang(), without_python_regex():
        try:
            compiled = compile_rule_file(parse_rule_file(text, "fuzz.yaml"), SCHEMA)
        except StrataError:
            return
        for profile in profiles:
            with contextlib.suppress(StrataError):
                compiled.evaluate(profile, AS_OF)


# -- values ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["2026-03-10", "2026-03-10T12:00:00", "Asia/Tokyo", "a" * 28 + "!", "(a+)+$"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = sorted(SCHEMA.fields)
PROFILES = st.lists(
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6).map(
        lambda fields: {**fields, "user_id": "u1"}
    ),
    min_size=1,
    max_size=3,
)

# -- expressions ----------------------------------------------------------------------

SYMBOLS = [
    "user_id", "points", "level", "tags", "badges", "timezone", "registered_at", "daily_points",
    "active_today", "days_since_last_active", "membership", "spend_365d", "_names", "__class__",
]  # fmt: skip
LITERALS = [
    "0", "1", "-1", "1.5", "1e400", "0x10", "'a'", "''", "'(a+)+$'", "'(a)\\\\1'", "'a(?=b)'", "'[a-z]+'",
    "'" + "a" * 28 + "!'", "d'2026-03-10'", "d'2026-03-10 03:00'", "t'P1D'", "null", "true", "false",
    "[1, 2]", "[]", "['a', 'b']", "{'a': 1}", "{1, 2}", "nan", "inf", "b'x'",
]  # fmt: skip
BUILTINS = [
    "$now", "$today", "$range", "$split", "$abs", "$min", "$max", "$sum", "$any", "$all", "$parse_datetime",
    "$parse_float", "$parse_timedelta", "$random", "$re_groups", "$e", "$pi", "$nonexistent", "$__import__",
]  # fmt: skip
OPERATORS = [
    "and", "or", "not", "==", "!=", "<", "<=", ">", ">=", "=~", "=~~", "!~", "!~~", "+", "-", "*", "/", "//",
    "%", "**", "&", "|", "^", "<<", ">>", "in", "?", ":", "??", ".", "&.", "[", "]", "&[", "(", ")", ",",
    "for", "if", "{", "}",
]  # fmt: skip
ATTRIBUTES = [
    "length", "to_ary", "as_lower", "as_upper", "is_empty", "days", "to_epoch", "keys", "values", "to_str",
    "to_flt", "__class__", "__globals__", "format", "ends_with", "starts_with", "year", "date",
]  # fmt: skip
TOKENS = st.sampled_from(SYMBOLS + LITERALS + BUILTINS + OPERATORS + ATTRIBUTES)
ATOMS = st.sampled_from(SYMBOLS + LITERALS + ["$now", "$today", "$e", "$random()", "$re_groups"])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from([op for op in OPERATORS[:25] if op not in ("not", "?", ":")])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"-{e}"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(inner, st.sampled_from(ATTRIBUTES)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(st.sampled_from(BUILTINS), st.lists(inner, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(inner, inner, inner).map(lambda t: f"[{t[0]} for x in {t[1]} if {t[2]}]"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
    )


GRAMMAR = st.recursive(ATOMS, _extend, max_leaves=10)
SOUP = st.lists(TOKENS, min_size=1, max_size=25).map(" ".join)


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_as_a_rule_file(text: str) -> None:
    publish_and_decide(text, [])


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(["name", "kind", "description", "stages", "default", "constants", "tests"]), JSON
    )
)
def test_any_yaml_data_as_a_rule_file(data: dict[str, Any]) -> None:
    publish_and_decide(yaml.safe_dump(data), [])


@FUZZ
@given(when=GRAMMAR | SOUP, profiles=PROFILES)
def test_any_expression_as_a_condition(when: str, profiles: list[dict[str, Any]]) -> None:
    publish_and_decide(lifecycle(when), profiles)


@FUZZ
@given(
    stages=st.lists(GRAMMAR, min_size=1, max_size=5),
    constants=st.dictionaries(st.sampled_from(["k", "window"]), JSON),
)
def test_any_expressions_and_constants_in_a_file(stages: list[str], constants: dict[str, Any]) -> None:
    body = "".join(
        f"  - id: s{i}\n    when: {json.dumps(when)}\n    reason: r\n" for i, when in enumerate(stages)
    )
    text = (
        f"name: lifecycle.fuzz\nkind: lifecycle\ndescription: d\nconstants: {json.dumps(constants)}\n"
        f"stages:\n{body}default: {{stage: o, reason: o}}\n"
    )
    publish_and_decide(text, [{"user_id": "u1", "tags": ["a"], "points": 3}])
