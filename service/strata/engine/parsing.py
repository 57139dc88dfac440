"""rule-engine's grammar with Strata's limits and RE2: what every rule expression is parsed by.

rule-engine parses in two phases. ply first turns the text into a tree of
deferred nodes (a table-driven parser: no recursion, linear in the text); each
node is then built recursively, type checked and, where its operands are all
literals, evaluated on the spot ("reduced"). Strata steps in between:

* the text's length is checked before ply sees it, and the deferred tree is
  measured against ``LIMITS`` (nodes, depth, literal sizes, iteration
  nesting) before anything is built, so nothing that would exhaust the stack,
  the memory or the CPU is ever built;
* every regex comparison (``=~``, ``=~~``, ``!~``, ``!~~``) is built as
  ``Re2Comparison``, whose patterns compile with RE2. rule-engine 5.1 calls
  ``re.compile`` itself and offers no hook for another engine, so the node
  class is swapped in the deferred tree: no pattern a user wrote reaches
  Python's backtracking ``re``, not even a literal compared with a literal,
  which rule-engine matches while it builds.

RE2 matches in time linear in the text (``(a+)+$`` on 28 characters: microseconds,
not 10 s with the interpreter lock held) and refuses what needs backtracking
(backreferences, lookarounds) when the pattern compiles, that is at publish
for a literal pattern. Its syntax differs from Python's in places: ``\\d``,
``\\w`` and ``\\s`` are ASCII, ``$`` matches only at the very end, ``\\Z`` is
spelled ``\\z``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import re2
import rule_engine
from re2 import _re2 as re2_binding
from rule_engine import ast as re_ast
from rule_engine import builtins as re_builtins
from rule_engine import errors as re_errors
from rule_engine import parser as re_parser
from rule_engine.parser import utilities as re_parse

from strata.engine.limits import LIMITS, LimitExceeded, Refused, quoted, range_length

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # refusals are reported to the caller, not written to stderr
_RE2_OPTIONS.never_capture = True  # rules only ask whether a pattern matches ($re_groups does not exist)
_SHOWN = 60  # characters of a refused pattern quoted back
_UNANCHORED, _ANCHOR_START = re2_binding.RE2.Anchor.UNANCHORED, re2_binding.RE2.Anchor.ANCHOR_START
_NO_MATCH = (-1, -1)


class _Found:
    """What a pattern returns when it matches; rule-engine's interpreter asks it for its groups."""

    __slots__ = ()

    def groups(self) -> tuple[()]:
        return ()


_FOUND = _Found()


class Pattern:
    """An RE2 pattern that only answers whether it matches: ``search`` (``=~~``) and ``match`` (``=~``).

    It calls the C++ ``RE2`` object behind google-re2's ``re``-like wrapper directly: the
    wrapper builds a match object, with every offset converted back from UTF-8, on each call,
    which costs five times the match itself for the short strings rules test.
    """

    __slots__ = ("_regexp",)

    def __init__(self, compiled: Any) -> None:
        self._regexp = compiled._regexp

    def search(self, text: str) -> _Found | None:
        encoded = text.encode()
        return None if self._regexp.Match(_UNANCHORED, encoded, 0, len(encoded))[0] == _NO_MATCH else _FOUND

    def match(self, text: str) -> _Found | None:
        encoded = text.encode()
        return None if self._regexp.Match(_ANCHOR_START, encoded, 0, len(encoded))[0] == _NO_MATCH else _FOUND


def compile_regex(pattern: str) -> Pattern:
    """``pattern`` compiled by RE2; one it cannot compile raises rule-engine's ``RegexSyntaxError``."""
    try:
        return Pattern(re2.compile(pattern, _RE2_OPTIONS))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        message = f"regex {quoted(pattern, _SHOWN)} is refused by RE2 ({reason}); backreferences and lookarounds do not exist there"
        raise re_errors.RegexSyntaxError(message, error=exc, value=pattern) from None


class Re2Comparison(re_ast.FuzzyComparisonExpression):  # type: ignore[misc]
    """``=~`` and friends, matching with RE2 (the regex flags of the context are not used: Strata sets none)."""

    def _compile_regex(self, regex: str) -> Pattern:
        return compile_regex(regex)


def _children(deferred: Any) -> Iterator[tuple[Any, bool]]:
    """The deferred nodes below ``deferred``, each with whether it runs once per iteration of it."""
    comprehension = deferred.cls is re_ast.ComprehensionExpression
    for index, value in enumerate(deferred.args):
        yield from _deferred_in(value, comprehension and index == 1)  # args: context, result, name, iterable
    for value in deferred.kwargs.values():
        yield from _deferred_in(value, comprehension)  # a comprehension's condition


def _deferred_in(value: Any, repeated: bool) -> Iterator[tuple[Any, bool]]:
    if isinstance(value, re_parser._DeferredAstNode):
        yield value, repeated
    elif isinstance(value, (tuple, list, deque)):  # a call's arguments are a deque
        for item in value:
            yield from _deferred_in(item, repeated)


_LOOPS = frozenset({"range", "map", "filter"})
"""Builtins whose call is a loop: ``$range`` builds its numbers, ``$map`` and ``$filter`` call a function per item."""
NESTED_LOOPS = "the nesting of loops (comprehensions, $range, $map, $filter)"


def _builtin(deferred: Any) -> str | None:
    """The name of a builtin symbol (``$range`` is "range"), else None."""
    if (
        deferred.cls is re_ast.SymbolExpression
        and deferred.kwargs.get("scope") == re_builtins.Builtins.scope_name
    ):
        return str(deferred.args[1])
    return None


def _callee(deferred: Any) -> Any:
    """The function node of a call, else None."""
    if deferred.cls is re_ast.FunctionCallExpression and isinstance(
        deferred.args[1], re_parser._DeferredAstNode
    ):
        return deferred.args[1]
    return None


def _check_range(call: Any) -> None:
    """A ``$range`` of literal numbers too long for ``LIMITS.range_items`` is refused now, not when it runs."""
    arguments = call.args[2]
    if not all(
        isinstance(a, re_parser._DeferredAstNode) and a.cls is re_ast.FloatExpression for a in arguments
    ):
        return
    numbers = [re_parse.parse_float(argument.args[1]) for argument in arguments]
    if not 1 <= len(numbers) <= 3 or not all(n.is_finite() and n == n.to_integral_value() for n in numbers):
        return  # rule-engine refuses it when it type checks the call
    length = range_length(*(int(n) for n in numbers))
    if length > LIMITS.range_items:
        raise LimitExceeded("the length of $range", length, LIMITS.range_items)


def _check_literal(deferred: Any) -> None:
    if deferred.cls is re_ast.FloatExpression and deferred.args[1] in ("nan", "inf"):  # NaN > 1 raises
        raise Refused(f"{deferred.args[1]} is not a number a rule may use")
    if deferred.cls in (re_ast.StringExpression, re_ast.BytesExpression):
        what, maximum = "the length of a string literal", LIMITS.literal_chars
    elif deferred.cls in (re_ast.ArrayExpression, re_ast.SetExpression, re_ast.MappingExpression):
        what, maximum = "the number of items in a literal", LIMITS.literal_items
    else:
        return
    if len(deferred.args[1]) > maximum:
        raise LimitExceeded(what, len(deferred.args[1]), maximum)


def measure(root: Any) -> int:
    """Check a deferred tree against ``LIMITS`` and swap in ``Re2Comparison``; returns its node count.

    Iterative, so that a tree too deep for rule-engine's recursion is measured, not crashed on.
    """
    nodes = 0
    direct_calls: set[int] = set()  # the builtin symbols seen as the function of a call
    stack = [(root, 1, 0)]  # node, depth, loops around it
    while stack:
        deferred, depth, nesting = stack.pop()
        nodes += 1
        if nodes > LIMITS.expression_nodes:
            raise LimitExceeded("the number of syntax tree nodes", nodes, LIMITS.expression_nodes)
        if depth > LIMITS.depth:
            raise LimitExceeded("the nesting depth", depth, LIMITS.depth)
        _check_literal(deferred)
        callee = _callee(deferred)
        called = _builtin(callee) if callee is not None else None
        if called is not None:
            direct_calls.add(id(callee))
        if _builtin(deferred) == "range" and id(deferred) not in direct_calls:
            raise Refused(
                "$range may only be called, not passed as a value"
            )  # its length is checked where called
        if called == "range":
            _check_range(deferred)
        inner = nesting + (deferred.cls is re_ast.ComprehensionExpression or called in _LOOPS)
        if inner > LIMITS.iteration_nesting:
            raise LimitExceeded(NESTED_LOOPS, inner, LIMITS.iteration_nesting)
        if deferred.cls is re_ast.FuzzyComparisonExpression:
            deferred.cls = Re2Comparison
        for child, repeated in _children(deferred):
            stack.append((child, depth + 1, inner if repeated else nesting))
    return nodes


_RULE_ENGINE = rule_engine.Rule.parser
"""rule-engine's own parser instance: building ply's tables for a second one would take seconds."""


def parse(text: str, context: rule_engine.Context) -> tuple[Any, int]:
    """The built statement and its node count; ``LimitExceeded`` before anything is built.

    rule-engine's ``Parser.parse`` with a step between its two phases (see the module docstring).
    """
    if len(text) > LIMITS.expression_chars:
        raise LimitExceeded("the length of the expression", len(text), LIMITS.expression_chars)
    with _RULE_ENGINE._ParserBase__mutex:  # rule-engine's: ply's parser and lexer keep state while they run
        _RULE_ENGINE.context = context
        try:
            deferred = _RULE_ENGINE._parser.parse(text, lexer=_RULE_ENGINE._lexer)
        finally:
            _RULE_ENGINE.context = None
    nodes = measure(deferred)
    return deferred.build(), nodes


class Rule(rule_engine.Rule):  # type: ignore[misc]
    """A rule-engine ``Rule`` parsed by ``parse``; ``nodes`` is the size of its syntax tree."""

    def __init__(self, text: str, context: rule_engine.Context) -> None:  # rule-engine's, measured
        self.text = text
        self.context = context
        self.statement, self.nodes = parse(text, context)
