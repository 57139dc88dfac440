"""Hostile rule files, and what Strata must say about each (shared by the hostile-rule tests).

Every case is a whole lifecycle rule file whose one stage has the hostile
``when``; ``REFUSED`` maps a case to the code and a fragment of the message
that must come back from a publish over REST and gRPC, and from
``strata rules check`` with the file, the line and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from rule_engine.ast.binary import comparison

from strata.engine.limits import LIMITS

NAME = "lifecycle.hostile"
WHEN_LINE = 7
CATASTROPHIC = "(a+)+$"
"""The classic backtracking regex: Python's re needs about 10 s for 28 a's and a '!'."""
ATTACK_INPUT = "a" * 28 + "!"


def lifecycle(when: str, *, name: str = NAME, constants: str = "{}") -> str:
    """A lifecycle file whose stage ``hostile`` (line 7) has condition ``when``."""
    return f"""\
name: {name}
kind: lifecycle
description: one stage with a hostile condition
constants: {constants}
stages:
  - id: hostile
    when: {json.dumps(when)}
    reason: the hostile condition held
default: {{stage: other, reason: the hostile condition did not hold}}
"""


@dataclass(frozen=True)
class Refusal:
    """A file that must not publish: the error code and a fragment of the problem's message."""

    content: str
    code: str
    fragment: str
    line: int | None = WHEN_LINE
    """Where ``strata rules check`` reports it (None: wherever the file's budget ran out)."""
    read: bool = False
    """Refused while the file is read (its YAML, its structure), before any file of the set compiles."""


def _items(count: int) -> str:
    """An array literal of ``count`` items in as few characters as possible."""
    return "[" + ",".join("1" * count) + "]"


def _too_many_nodes() -> str:
    """Shallow and made of small literals, yet more nodes than one expression may have."""
    per = LIMITS.literal_items - 1
    terms = LIMITS.expression_nodes // per + 1
    return " or ".join([f"points in {_items(per)}"] * terms)


def _over_file_budget() -> str:
    """Every expression within its own limits; together more nodes than a file may have."""
    per = LIMITS.literal_items - 1
    stages = "".join(
        f"  - id: s{index}\n    when: points in {_items(per)}\n    reason: r\n"
        for index in range(LIMITS.file_nodes // per + 1)
    )
    return (
        f"name: {NAME}\nkind: lifecycle\ndescription: d\nstages:\n{stages}default: {{stage: o, reason: o}}\n"
    )


CODE_EXECUTION: dict[str, Refusal] = {
    "dunder attribute": Refusal(lifecycle("user_id.__class__ == null"), "invalid_argument", "'__class__'"),
    "globals chain": Refusal(
        lifecycle("user_id.__init__.__globals__ == null"), "invalid_argument", "'__init__'"
    ),
    "underscore name": Refusal(
        lifecycle("_names == 1"), "invalid_argument", "names starting with '_' are not allowed: '_names'"
    ),
    "underscore builtin": Refusal(
        lifecycle("$__import__('os') == null"), "invalid_argument", "names starting with '_' are not allowed"
    ),
    "underscore key of a mapping": Refusal(
        lifecycle("daily_points.__globals__ == 1"),
        "invalid_argument",
        "names starting with '_' are not allowed",
    ),
    "method of a value": Refusal(lifecycle("user_id.format == null"), "invalid_argument", "'format'"),
    "random": Refusal(lifecycle("$random() > 0.5"), "invalid_argument", "$random is not available"),
    "match groups": Refusal(lifecycle("$re_groups == []"), "invalid_argument", "unknown builtin $re_groups"),
    "function in the data": Refusal(
        lifecycle("true", constants="{run: !!python/object/apply:os.system ['echo pwned']}"),
        "invalid_argument",
        "could not determine a constructor for the tag",
        line=4,
        read=True,
    ),
    "not a number": Refusal(
        lifecycle("points > nan or points < inf"), "invalid_argument", "is not a number a rule may use"
    ),
    "range as a value": Refusal(
        lifecycle("$map($range, [1000, 1000]) == []"), "invalid_argument", "$range may only be called"
    ),
    "condition not boolean": Refusal(
        lifecycle("points + 1"), "invalid_argument", "a condition must be BOOLEAN"
    ),
}
"""Payloads that would reach Python internals, run code, or could only fail when evaluated: refused at publish."""

LIMIT_BREAKERS: dict[str, Refusal] = {
    "expression length": Refusal(
        lifecycle("points > 1 or " * (LIMITS.expression_chars // 14 + 1) + "true"),
        "invalid_argument",
        "the length of the expression is",
    ),
    "syntax tree nodes": Refusal(
        lifecycle(_too_many_nodes()), "invalid_argument", "the number of syntax tree nodes is"
    ),
    "nesting depth": Refusal(
        lifecycle("not " * LIMITS.depth + "active_today"),
        "invalid_argument",
        f"the nesting depth is {LIMITS.depth + 1}, the maximum is {LIMITS.depth}",
    ),
    "string literal": Refusal(
        lifecycle(f"user_id == '{'a' * (LIMITS.literal_chars + 1)}'"),
        "invalid_argument",
        f"the length of a string literal is {LIMITS.literal_chars + 1}, the maximum is {LIMITS.literal_chars}",
    ),
    "array literal": Refusal(
        lifecycle(f"points in {_items(LIMITS.literal_items + 1)}"),
        "invalid_argument",
        f"the number of items in a literal is {LIMITS.literal_items + 1}",
    ),
    "range": Refusal(
        lifecycle("$range(1e7) == []"),
        "invalid_argument",
        f"the length of $range is 10000000, the maximum is {LIMITS.range_items}",
    ),
    "nested comprehensions": Refusal(
        lifecycle("[[y for y in tags] for x in tags] == []"),
        "invalid_argument",
        "the nesting of loops (comprehensions, $range, $map, $filter) is 2, the maximum is 1",
    ),
    "test cases": Refusal(
        lifecycle("true")
        + "tests:\n"
        + "  - {name: t, as_of: 2026-03-10T12:00:00Z, profile: {user_id: u}, expect: {stage: hostile}}\n"
        * (LIMITS.test_cases + 1),
        "invalid_argument",
        f"List should have at most {LIMITS.test_cases} items after validation, not {LIMITS.test_cases + 1}",
        line=11,
        read=True,
    ),
    "loop in a comprehension": Refusal(
        lifecycle("[$map($abs, [1, 2]) for x in tags] == []"), "invalid_argument", "the nesting of loops"
    ),
    "file node budget": Refusal(
        _over_file_budget(), "invalid_argument", "syntax tree nodes in the file is", line=None
    ),
}
"""One file per limit, each just past it."""

REGEX_REFUSALS: dict[str, Refusal] = {
    "backreference": Refusal(lifecycle(r"user_id =~ '(a)\\1'"), "invalid_argument", "refused by RE2"),
    "lookahead": Refusal(lifecycle("user_id =~ 'a(?=b)'"), "invalid_argument", "refused by RE2"),
    "lookbehind": Refusal(lifecycle("user_id =~~ '(?<!a)b'"), "invalid_argument", "refused by RE2"),
}
"""Patterns RE2 cannot run: refused at publish, with the rule and the line."""

ALL_REFUSALS = {**CODE_EXECUTION, **LIMIT_BREAKERS, **REGEX_REFUSALS}


class _NoPythonRegex:
    """Stands in for the ``re`` module rule-engine's regex comparisons would use."""

    error = Exception

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"Python's re was asked to compile {args[0]!r}")


@contextmanager
def without_python_regex() -> Iterator[None]:
    """Inside, a regex that reaches rule-engine's own (Python ``re``) comparison fails the test."""
    with mock.patch.object(comparison, "re", _NoPythonRegex()):
        yield
