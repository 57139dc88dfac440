"""Rule expressions: parsed and type checked once, evaluated per request.

Expressions are data, not code. They read only plain values from a ``Facts``
mapping (never attributes of Python objects), cannot name anything starting
with ``_``, and see a clock bound to the request: ``$now`` is ``as_of`` and
``$today`` is local midnight of the profile's day, so the same request always
gets the same answer. ``$random`` does not exist here.

rule-engine parses and type checks each expression; ``strata.engine.compiler``
then turns the checked AST into a Python function, which is what requests run.
rule-engine's interpreter stays the reference: it evaluates the expressions the
compiler does not translate, and it re-evaluates any evaluation the compiled
function could not finish, so errors carry rule-engine's own messages.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import rule_engine
from rule_engine import ast as re_ast
from rule_engine import builtins as re_builtins
from rule_engine import errors as re_errors
from rule_engine import types as re_types

from strata.engine import compiler, parsing
from strata.engine.facts import Facts
from strata.engine.limits import Refused, bounded_range, quoted

DataType = re_types.DataType

_FORBIDDEN_BUILTINS = frozenset({"random"})
_UNDERSCORE = "names starting with '_' are not allowed: {!r}"

DECIMAL_CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
"""The arithmetic of every rule (Python's default context, written down): rule-engine
would otherwise take whatever context the thread that loaded the rules had."""


class ExpressionError(ValueError):
    """An expression that does not parse, type check or fit where it is used."""


def object_type(name: str, attributes: Mapping[str, Any]) -> Any:
    """A rule-engine object type whose values are plain dicts (``scores.r``)."""
    return DataType.OBJECT(name, dict(attributes), accessor=compiler.read_key)


def _now(facts: Facts) -> dt.datetime:
    return facts.clock.as_of


def _today(facts: Facts) -> dt.datetime:
    return facts.clock.midnight(facts.clock.today)


_CLOCK: dict[str, Callable[[Facts], dt.datetime]] = {"now": _now, "today": _today}


class _RequestContext(rule_engine.Context):  # type: ignore[misc]
    """A rule-engine context whose clock builtins read the request's clock.

    Its builtins are rule-engine's with ``$range`` bounded (``LIMITS.range_items``) and without
    ``$re_groups`` (the groups of the thread's last match: state shared between evaluations).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.builtins = re_builtins.Builtins.from_defaults(
            values={"range": bounded_range}, timezone=self.default_timezone
        )

    def resolve(self, thing: Any, name: str, scope: str | None = None) -> Any:
        if scope == re_builtins.Builtins.scope_name and isinstance(thing, Facts) and name in _CLOCK:
            return _CLOCK[name](thing)
        return super().resolve(thing, name, scope=scope)


def _walk(node: Any) -> Iterator[Any]:
    """Every AST node below ``node`` (rule-engine keeps children in slots or attributes)."""
    yield node
    names = set(getattr(node, "__dict__", {}))
    for cls in type(node).__mro__:
        slots = getattr(cls, "__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    for name in sorted(names - {"context"}):
        child = getattr(node, name, None)
        children = child if isinstance(child, (list, tuple)) else (child,)
        for item in children:
            if isinstance(item, (re_ast.ExpressionBase, re_ast.Statement)):
                yield from _walk(item)


class Expression:
    """One compiled expression and the names of the facts it reads."""

    __slots__ = ("_compiled", "_rule", "access", "nodes", "reads", "result_type", "sources", "text")

    use_compiled: ClassVar[bool] = True
    """False: every evaluation uses the interpreter (tests compare the two paths with it)."""

    def __init__(
        self,
        text: str,
        types: Mapping[str, Any],
        profile_fields: frozenset[str] = frozenset(),
        compared: compiler.Compared | None = None,
    ) -> None:
        """``profile_fields``: names whose value is the parsed profile's, as is (see ``Compiler``).
        ``compared``: the value is only compared (a score's), so compiled code may give a number as
        an int equal to rule-engine's Decimal, which compares the same and costs no Decimal (see
        ``compiler.Compared``)."""
        self.text = text
        context = _RequestContext(
            type_resolver=dict(types), default_timezone="utc", decimal_context=DECIMAL_CONTEXT
        )
        try:
            self._rule = parsing.Rule(text, context=context)
        except Refused as exc:
            raise ExpressionError(exc.message) from None
        except re_errors.SymbolResolutionError as exc:
            if exc.symbol_name.startswith("_"):
                raise ExpressionError(_UNDERSCORE.format(exc.symbol_name)) from None
            hint = f" (did you mean {exc.suggestion!r}?)" if exc.suggestion else ""
            raise ExpressionError(f"unknown fact {exc.symbol_name!r}{hint}") from None
        except re_errors.AttributeResolutionError as exc:
            raise ExpressionError(f"unknown attribute {exc.attribute_name!r}") from None
        except re_errors.RuleSyntaxError as exc:
            where = f" at {exc.token.value!r}" if exc.token is not None else " (unexpected end)"
            raise ExpressionError(f"syntax error{where} in {quoted(text)}") from None
        except re_errors.RegexSyntaxError as exc:
            raise ExpressionError(exc.message) from None
        except re_errors.EngineError as exc:
            raise ExpressionError(f"{exc.message} in {quoted(text)}") from None
        except Exception as exc:  # RecursionError, MemoryError, TypeError...: a located problem, never a 500
            raise ExpressionError(f"expression refused: {type(exc).__name__}") from None
        self.nodes: int = self._rule.nodes
        """The size of its syntax tree, counted against the file's budget (``LIMITS.file_nodes``)."""
        reads: set[str] = set()
        for node in _walk(self._rule.statement):
            if isinstance(node, re_ast.GetAttributeExpression) and node.name.startswith("_"):
                raise ExpressionError(_UNDERSCORE.format(node.name))  # even a mapping's key
            if isinstance(node, re_ast.SymbolExpression):
                if node.name.startswith("_"):
                    raise ExpressionError(_UNDERSCORE.format(node.name))
                if node.scope == re_builtins.Builtins.scope_name:
                    if node.name in _FORBIDDEN_BUILTINS:
                        raise ExpressionError(f"${node.name} is not available in Strata rules")
                    if node.name not in context.builtins:  # rule-engine would fail only when it runs
                        raise ExpressionError(f"unknown builtin ${node.name}")
                else:
                    reads.add(node.name)
        self.reads = tuple(sorted(reads & set(types)))  # not comprehension variables
        self.sources = tuple((name, name in profile_fields) for name in self.reads)
        """Each fact read, and whether its value is the parsed profile's (read there, it costs less)."""
        self.result_type = self._rule.statement.expression.result_type
        self.access = compiler.FactsAccess(Facts, "known", _CLOCK, "profile", profile_fields)
        self._compiled = compiler.compile_rule(self._rule, self.access, compared)

    @property
    def compiled(self) -> bool:
        """Whether requests run compiled code (else rule-engine's interpreter; see compiler.counts)."""
        return self._compiled is not None

    def expect(self, expected: Any, what: str, nullable: bool = False) -> Expression:
        """Refuse, at load, an expression whose type cannot be ``expected``."""
        actual = self.result_type
        if DataType.is_type(actual, DataType.NULLABLE):
            if not nullable:
                raise ExpressionError(f"{what} may be null; discharge it with '??'")
            actual = actual.inner_type
        if actual != DataType.UNDEFINED and not DataType.is_compatible(actual, expected):
            raise ExpressionError(f"{what} must be {expected.name}, this is {actual.name}")
        return self

    def evaluate(self, facts: Facts) -> Any:
        compiled = self._compiled
        if compiled is None or not Expression.use_compiled:
            return self.interpret(facts)
        try:
            return compiled(facts)
        except Exception as exc:  # the interpreter decides every failure (see compiler)
            compiler.count_rerun(exc)
            return self.interpret(facts)

    def interpret(self, facts: Facts) -> Any:
        """Evaluate with rule-engine's interpreter, the reference semantics."""
        try:
            return self._rule.evaluate(facts)
        except re_errors.EngineError as exc:
            raise ExpressionError(exc.message) from None
        except Exception as exc:  # RecursionError, MemoryError, decimal.InvalidOperation...: never a 500
            raise ExpressionError(f"{type(exc).__name__} while evaluating") from None

    def test(self, facts: Facts) -> bool:
        """Evaluate a condition; anything but a boolean is an error, never a silent false.

        ``evaluate``, inlined: conditions are most of the expressions a request runs.
        """
        compiled = self._compiled
        if compiled is not None and Expression.use_compiled:
            try:
                result = compiled(facts)
            except Exception as exc:  # the interpreter decides every failure (see compiler)
                return self.retest(facts, exc)
        else:
            result = self.interpret(facts)
        return boolean(result)

    def retest(self, facts: Facts, failed: BaseException | None = None) -> bool:
        """``test`` by the interpreter: after compiled code failed with ``failed`` (counted), or for
        a condition that is not compiled (None)."""
        if failed is not None:
            compiler.count_rerun(failed)
        return boolean(self.interpret(facts))

    @staticmethod
    def chain(
        expressions: list[Expression],
        first: bool,
        retry: Any,
        not_boolean: Any,
        matches: list[Any],
        explained: compiler.Explained | None = None,
    ) -> Any:
        """The conditions ``expressions`` as one compiled function (``compiler.compile_chain``), or
        None where it would not help: none of them compiled, or they read facts differently."""
        compiled = [expression._rule if expression.compiled else None for expression in expressions]
        access = expressions[0].access if expressions else None
        if not any(compiled) or any(expression.access != access for expression in expressions):
            return None
        return compiler.compile_chain(
            compiled, expressions[0].access, first, retry, not_boolean, matches, explained
        )


def boolean(result: Any) -> bool:
    """A condition's result, which must be a boolean."""
    if result is not True and result is not False:
        raise ExpressionError(f"condition gave {type(result).__name__}, not a boolean")
    return result


def compile_condition(
    text: str, types: Mapping[str, Any], profile_fields: frozenset[str] = frozenset()
) -> Expression:
    return Expression(text, types, profile_fields).expect(DataType.BOOLEAN, "a condition")


def compile_number(
    text: str | int | float, types: Mapping[str, Any], profile_fields: frozenset[str] = frozenset()
) -> Expression:
    return Expression(str(text), types, profile_fields).expect(DataType.FLOAT, "this value")


def compile_optional_number(
    text: str | int | float,
    types: Mapping[str, Any],
    profile_fields: frozenset[str] = frozenset(),
    compared: compiler.Compared = "numbers",
) -> Expression:
    """A number that may be null, only compared (a score's value: null scores ``missing``)."""
    return Expression(str(text), types, profile_fields, compared).expect(
        DataType.FLOAT, "this value", nullable=True
    )
