"""Rule expressions compiled to SQL: rule-engine's type-checked AST becomes a SQLAlchemy expression.

An impact preview classifies every profile twice; doing it inside the
database means translating each rule expression into SQL over the profiles
table with exactly rule-engine's semantics. The translated subset is what the
default rule files and typical ops rules use:

* literals (numbers, strings, booleans, null, datetimes; arrays after ``in``),
  the ruleset's constants, profile fields (typed columns, or the JSON document
  for fields without a column), derived facts (``sqlfacts``), ``$now``, ``$today``
  and segment scores (``scores.r``);
* ``==`` ``!=`` (null-safe, as rule-engine's equality is), ``<`` ``<=`` ``>`` ``>=``
  on numbers, strings (code point order), booleans and datetimes;
* ``and`` ``or`` ``not`` and the ternary on booleans, numbers, strings and
  datetimes (by rule-engine's truthiness), ``??``;
* ``+`` ``-`` ``*`` and unary minus on numbers, ``+`` on strings, a datetime
  plus or minus a duration literal;
* ``in`` over a literal array, over a ``list<string>`` field (``tags``,
  ``badges``) and over a string (substring); ``.length`` and ``.is_empty`` of
  strings and string lists, ``.starts_with(...)`` and ``.ends_with(...)`` of strings.

Everything else raises ``NotCompilable`` naming the construct, and the preview
evaluates that ruleset in Python instead: regular expressions (Python's ``re``
is not any database's), ``/`` ``//`` ``%`` ``**`` (rule-engine's 28-digit
decimal division and its division-by-zero errors per profile), ``.as_lower``
and friends (Unicode case mapping differs), datetime attributes and datetime
differences, maps, comprehensions, and functions.

How the translation stays exact:

* Types are known statically, and SQL is null exactly where rule-engine's
  value is ``None``; conditions never evaluate to SQL null (three-valued logic
  never leaks into a ``CASE``).
* Numbers carry their SQL representation: ``int`` (exact integers), ``decimal``
  (Postgres ``numeric``) or ``double`` (``spend_365d``: rule-engine reads a
  float as ``Decimal(repr(x))``). A double meets a literal whose decimal
  digits survive the trip through a double as a double (``repr`` preserves
  order, so that is exact); anything else is compared and computed as
  ``numeric`` on Postgres (a float8 prints its ``repr`` digits) and is not
  compilable on SQLite, which has no exact decimals. Integer arithmetic runs
  in ``numeric`` on Postgres, so no profile can make the query fail with an
  overflow; rule-engine rounds results past 28 significant digits, which no
  realistic profile reaches.
* Datetimes are instants; date fields and ``$today`` are local midnights in
  the profile's zone, and only instants take arithmetic (adding a day to a
  local midnight is wall-clock arithmetic, left to Python).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import rule_engine
import sqlalchemy as sa
from rule_engine import ast as re_ast
from rule_engine import builtins as re_builtins
from rule_engine import types as re_types

from strata.engine import parsing
from strata.engine.expressions import DECIMAL_CONTEXT
from strata.preview.dialects import NotCompilable, SqlDialect, SqlExpr

DataType = re_types.DataType
_INT64 = range(-(2**63), 2**63)
_NO_LITERAL = object()


@dataclass(frozen=True)
class Sql:
    """A compiled scalar: its SQL and what rule-engine would hold for it.

    ``number`` is the SQL representation of a FLOAT (``int``, ``decimal`` or
    ``double``); ``local`` marks a DATETIME that is a local midnight (no
    arithmetic); ``literal`` is the Python value when the node is a literal.
    """

    expr: SqlExpr
    type: Any
    number: str | None = None
    local: bool = False
    literal: Any = field(default=_NO_LITERAL, compare=False)

    @property
    def base(self) -> Any:
        """The type without its nullability."""
        return DataType.NULLABLE.unwrap(self.type)

    @property
    def nullable(self) -> bool:
        return bool(DataType.is_type(self.type, DataType.NULLABLE)) or self.base == DataType.NULL


@dataclass(frozen=True)
class StringList:
    """A ``list<string>`` field of the document: read only by ``in``, ``.length`` and ``.is_empty``."""

    field: str


@dataclass(frozen=True)
class Record:
    """An object value (``scores``): its attributes, compiled when first read."""

    attribute: Callable[[str], Sql]


Value = Sql | StringList | Record
Resolver = Callable[[str], Value]


def parse(text: str, types: Mapping[str, Any]) -> Any:
    """The type-checked AST of an expression, as ``strata.engine.expressions`` builds it."""
    context = rule_engine.Context(
        type_resolver=dict(types), default_timezone="utc", decimal_context=DECIMAL_CONTEXT
    )
    return parsing.Rule(text, context=context).statement.expression


def _kind(*numbers: str | None) -> str:
    """The representation two numbers share: int only if both are, double if either is."""
    kinds = set(numbers)
    if kinds == {"int"}:
        return "int"
    return "double" if "double" in kinds else "decimal"


class ExpressionCompiler:
    """Compiles expressions of one ruleset; ``resolve`` gives the SQL of a name (field, fact, constant, object)."""

    def __init__(self, dialect: SqlDialect, resolve: Resolver) -> None:
        self._dialect = dialect
        self._resolve = resolve
        self._handlers: dict[type, Callable[[Any], Value]] = {
            re_ast.BooleanExpression: lambda node: Sql(
                sa.true() if node.value else sa.false(), DataType.BOOLEAN
            ),
            re_ast.FloatExpression: lambda node: self.number(node.value),
            re_ast.StringExpression: lambda node: Sql(
                sa.literal(node.value, sa.Text()), DataType.STRING, literal=node.value
            ),
            re_ast.NullExpression: lambda node: Sql(sa.null(), DataType.NULL, literal=None),
            re_ast.DatetimeExpression: lambda node: Sql(
                dialect.instant_literal(node.value), DataType.DATETIME, literal=node.value
            ),
            re_ast.SymbolExpression: self._symbol,
            re_ast.GetAttributeExpression: self._attribute,
            re_ast.FunctionCallExpression: self._call,
            re_ast.ContainsExpression: self._contains,
            re_ast.ComparisonExpression: self._equality,
            re_ast.ArithmeticComparisonExpression: self._ordering,
            re_ast.LogicExpression: self._logic,
            re_ast.UnaryExpression: self._unary,
            re_ast.TernaryExpression: self._ternary,
            re_ast.CoalesceExpression: self._coalesce,
            re_ast.AddExpression: self._add,
            re_ast.SubtractExpression: self._subtract,
            re_ast.ArithmeticExpression: self._multiply,
        }

    # -- entry points --------------------------------------------------------------------

    def condition(self, node: Any) -> SqlExpr:
        """A rule's ``when``: a SQL boolean that is never null."""
        return self.truthy(self.sql(node))

    def sql(self, node: Any) -> Sql:
        """A scalar value (not a string list or an object)."""
        value = self.value(node)
        if not isinstance(value, Sql):
            raise NotCompilable(f"{type(node).__name__} of a list or object is not translated to SQL")
        return value

    def value(self, node: Any) -> Value:
        handler = self._handlers.get(type(node))
        if handler is None:
            raise NotCompilable(_unsupported(node))
        return handler(node)

    # -- values --------------------------------------------------------------------------

    def number(self, value: Decimal) -> Sql:
        """A number literal: an integer where it is one, else an exact decimal."""
        if value == value.to_integral_value() and int(value) in _INT64:
            return Sql(self._dialect.integer_literal(int(value)), DataType.FLOAT, number="int", literal=value)
        kind = "decimal" if self._dialect.exact_decimals else "double"
        return Sql(self._dialect.decimal_literal(value), DataType.FLOAT, number=kind, literal=value)

    def _symbol(self, node: Any) -> Value:
        if node.scope == re_builtins.Builtins.scope_name:
            if node.name == "now":
                as_of = self._dialect.as_of
                return Sql(self._dialect.instant_literal(as_of), DataType.DATETIME, literal=as_of)
            if node.name == "today":
                return Sql(self._dialect.local_midnight(self._dialect.today()), DataType.DATETIME, local=True)
            raise NotCompilable(f"${node.name} is not translated to SQL")
        return self._resolve(node.name)

    def _attribute(self, node: Any) -> Value:
        target = self.value(node.object)
        if isinstance(target, Record):
            return target.attribute(node.name)
        if node.name in ("length", "is_empty"):
            if isinstance(target, StringList):
                length = self._dialect.json_array_length(target.field)
            elif target.base == DataType.STRING:
                length = self._dialect.text_length(target.expr)
            else:
                raise NotCompilable(f".{node.name} of {target.base.name} is not translated to SQL")
            result = length if node.name == "length" else length == 0
            return Sql(result, node.result_type, number="int" if node.name == "length" else None)
        raise NotCompilable(f"the attribute .{node.name} is not translated to SQL")

    def _call(self, node: Any) -> Value:
        function = node.function
        if (
            isinstance(function, re_ast.GetAttributeExpression)
            and function.name in ("starts_with", "ends_with")
            and len(node.arguments) == 1
        ):
            text, affix = self.sql(function.object), self.sql(node.arguments[0])
            if text.base == DataType.STRING and affix.base == DataType.STRING and not affix.nullable:
                test = (
                    self._dialect.starts_with if function.name == "starts_with" else self._dialect.ends_with
                )
                return Sql(test(text.expr, affix.expr), node.result_type)
        raise NotCompilable(f"calling {_describe(function)} is not translated to SQL")

    # -- comparisons ---------------------------------------------------------------------

    def _contains(self, node: Any) -> Value:
        container, member = node.container, node.member
        if isinstance(container, re_ast.ArrayExpression):
            needle = self.sql(member)
            tests = [self.equal(needle, self.sql(item)) for item in container.value]
            return Sql(sa.or_(sa.false(), *tests), DataType.BOOLEAN)
        haystack = self.value(container)
        needle = self.sql(member)
        if isinstance(haystack, StringList) and needle.base in (DataType.STRING, DataType.NULL):
            return Sql(self._dialect.json_array_contains(haystack.field, needle.expr), DataType.BOOLEAN)
        if isinstance(haystack, Sql) and haystack.base == DataType.STRING and not needle.nullable:
            return Sql(self._dialect.contains_text(haystack.expr, needle.expr), DataType.BOOLEAN)
        raise NotCompilable(f"'in' over {_describe(container)} is not translated to SQL")

    def _equality(self, node: Any) -> Value:
        equal = self.equal(self.sql(node.left), self.sql(node.right))
        return Sql(equal if node.type == "eq" else sa.not_(equal), DataType.BOOLEAN)

    def equal(self, left: Sql, right: Sql) -> SqlExpr:
        """rule-engine's ``==``: values of different types are unequal, null equals null."""
        if left.base == DataType.NULL or right.base == DataType.NULL:
            other = right if left.base == DataType.NULL else left
            return other.expr.is_(None) if other.base != DataType.NULL else sa.true()
        a, b = self._comparable(left, right)
        if left.nullable or right.nullable:
            return a.is_not_distinct_from(b)
        return a == b

    def _ordering(self, node: Any) -> Value:
        a, b = self._comparable(self.sql(node.left), self.sql(node.right))
        operators: dict[str, Callable[[SqlExpr, SqlExpr], SqlExpr]] = {
            "lt": lambda x, y: x < y,
            "le": lambda x, y: x <= y,
            "gt": lambda x, y: x > y,
            "ge": lambda x, y: x >= y,
        }
        return Sql(operators[node.type](a, b), DataType.BOOLEAN)

    def _comparable(self, left: Sql, right: Sql) -> tuple[SqlExpr, SqlExpr]:
        """Two non-null-typed operands as SQL that compares the way rule-engine compares them."""
        if left.base != right.base:
            raise NotCompilable(f"comparing {left.base.name} with {right.base.name} is not translated to SQL")
        if left.base == DataType.STRING:
            return self._dialect.ordered(left.expr), self._dialect.ordered(right.expr)
        if left.base == DataType.FLOAT:
            return self._numbers(left, right)
        if left.base in (DataType.BOOLEAN, DataType.DATETIME):
            return left.expr, right.expr
        raise NotCompilable(f"comparing {left.base.name} values is not translated to SQL")

    def _numbers(self, left: Sql, right: Sql) -> tuple[SqlExpr, SqlExpr]:
        kinds = {left.number, right.number}
        if "double" not in kinds or kinds == {"double"}:
            return left.expr, right.expr  # exact types, or two doubles (repr keeps their order)
        double, other = (left, right) if left.number == "double" else (right, left)
        if other.literal is not _NO_LITERAL and Decimal(repr(float(other.literal))) == other.literal:
            as_double: SqlExpr = sa.literal(float(other.literal), sa.Double())
            return (double.expr, as_double) if double is left else (as_double, double.expr)
        if not self._dialect.exact_decimals and other.number == "int":
            return left.expr, right.expr  # SQLite compares an integer with a real exactly
        return self._dialect.exact(left.expr, left.number or ""), self._dialect.exact(
            right.expr, right.number or ""
        )

    def compare_to_float(self, value: Sql, operator: str, threshold: float) -> SqlExpr:
        """``value >= threshold`` (or ``<=``) where the threshold is a Python float, as a score's are:
        Python compares a Decimal with a float exactly, against the float's binary value."""
        exact = Decimal(threshold)
        if value.number == "double" and Decimal(repr(threshold)) != exact:
            if not self._dialect.exact_decimals:
                raise NotCompilable(
                    f"comparing a float with {threshold!r} exactly needs decimals SQLite lacks"
                )
            a, b = self._dialect.exact(value.expr, "double"), self._dialect.decimal_literal(exact)
        elif value.number == "decimal":
            a, b = value.expr, self._dialect.decimal_literal(exact)
        elif threshold.is_integer():  # exact in every representation, and an integer compare is cheapest
            a, b = value.expr, self._dialect.integer_literal(int(threshold))
        else:  # an integer, or a double against a float whose repr is exact: compare as doubles
            a, b = value.expr, sa.literal(threshold, sa.Double())
        return a >= b if operator == "ge" else a <= b

    # -- logic ---------------------------------------------------------------------------

    def truthy(self, value: Sql) -> SqlExpr:
        """Python's truth value of a rule value, as a SQL boolean that is never null."""
        base = value.base
        if base == DataType.NULL:
            return sa.false()
        if base == DataType.BOOLEAN:
            test = value.expr
        elif base == DataType.FLOAT:
            test = value.expr != 0
        elif base == DataType.STRING:
            test = self._dialect.text_length(value.expr) > 0
        elif base == DataType.DATETIME:
            return value.expr.is_not(None) if value.nullable else sa.true()
        else:
            raise NotCompilable(f"the truth value of {base.name} is not translated to SQL")
        return sa.func.coalesce(test, sa.false()) if value.nullable else test

    def _logic(self, node: Any) -> Value:
        left, right = self.truthy(self.sql(node.left)), self.truthy(self.sql(node.right))
        return Sql(sa.and_(left, right) if node.type == "and" else sa.or_(left, right), DataType.BOOLEAN)

    def _unary(self, node: Any) -> Value:
        operand = self.sql(node.right)
        if node.type == "not":
            return Sql(sa.not_(self.truthy(operand)), DataType.BOOLEAN)
        if operand.base != DataType.FLOAT:
            raise NotCompilable(f"unary minus of {operand.base.name} is not translated to SQL")
        number = operand.number or ""
        if number == "int" and self._dialect.exact_decimals:
            return Sql(-self._dialect.exact(operand.expr, number), operand.type, number="decimal")
        return Sql(-operand.expr, operand.type, number=number)

    def _ternary(self, node: Any) -> Value:
        condition = self.truthy(self.sql(node.condition))
        branches = self._aligned(self.sql(node.case_true), self.sql(node.case_false))
        expr = sa.case((condition, branches[0].expr), else_=branches[1].expr)
        return self._merged(expr, node.result_type, branches)

    def _coalesce(self, node: Any) -> Value:
        left, right = self._aligned(self.sql(node.left), self.sql(node.right))
        if left.base == DataType.NULL:
            return right
        return self._merged(sa.func.coalesce(left.expr, right.expr), node.result_type, (left, right))

    def _aligned(self, first: Sql, second: Sql) -> tuple[Sql, Sql]:
        """Two alternatives in one SQL representation (a CASE or COALESCE has one type)."""
        if first.base != DataType.FLOAT or second.base != DataType.FLOAT or first.number == second.number:
            return first, second
        kind = _kind(first.number, second.number)
        if kind == "double" and self._dialect.exact_decimals:
            kind = "decimal"  # Postgres: both exactly, as numeric
        if kind == "double":
            return first, second  # SQLite: integers and reals mix without loss in comparisons
        return (
            replace(first, expr=self._dialect.exact(first.expr, first.number or ""), number=kind),
            replace(second, expr=self._dialect.exact(second.expr, second.number or ""), number=kind),
        )

    @staticmethod
    def _merged(expr: SqlExpr, result_type: Any, branches: tuple[Sql, Sql]) -> Sql:
        numbers = [branch.number for branch in branches if branch.base == DataType.FLOAT]
        return Sql(
            expr,
            result_type,
            number=_kind(*numbers) if numbers else None,
            local=any(branch.local for branch in branches),
        )

    # -- arithmetic ----------------------------------------------------------------------

    def _add(self, node: Any) -> Value:
        left, right = node.left, node.right
        if isinstance(right, re_ast.TimedeltaExpression):
            return self._shift(self.sql(left), right.value)
        if isinstance(left, re_ast.TimedeltaExpression):
            return self._shift(self.sql(right), left.value)
        a, b = self.sql(left), self.sql(right)
        if a.base == DataType.STRING and b.base == DataType.STRING:
            return Sql(a.expr.op("||")(b.expr), DataType.STRING)
        return self._arithmetic(a, b, lambda x, y: x + y)

    def _subtract(self, node: Any) -> Value:
        if isinstance(node.right, re_ast.TimedeltaExpression):
            return self._shift(self.sql(node.left), -node.right.value)
        return self._arithmetic(self.sql(node.left), self.sql(node.right), lambda x, y: x - y)

    def _multiply(self, node: Any) -> Value:
        if node.type != "mul":
            raise NotCompilable(f"{_OPERATORS.get(node.type, node.type)} is not translated to SQL")
        return self._arithmetic(self.sql(node.left), self.sql(node.right), lambda x, y: x * y)

    def _arithmetic(self, a: Sql, b: Sql, operator: Callable[[SqlExpr, SqlExpr], SqlExpr]) -> Sql:
        if a.base != DataType.FLOAT or b.base != DataType.FLOAT:
            raise NotCompilable(f"arithmetic on {a.base.name} and {b.base.name} is not translated to SQL")
        d = self._dialect
        if not d.exact_decimals and a.number == "int" and b.number == "int":
            return Sql(operator(a.expr, b.expr), DataType.FLOAT, number="int")
        exact = operator(d.exact(a.expr, a.number or ""), d.exact(b.expr, b.number or ""))
        return Sql(exact, DataType.FLOAT, number="decimal")

    def _shift(self, instant: Sql, delta: dt.timedelta) -> Sql:
        if instant.base != DataType.DATETIME or instant.local:
            raise NotCompilable(
                "adding a duration to a local day is wall-clock arithmetic, not translated to SQL"
            )
        return Sql(self._dialect.shift(instant.expr, delta), instant.type)


_OPERATORS = {"tdiv": "division (/)", "fdiv": "floor division (//)", "mod": "modulo (%)", "pow": "power (**)"}
_CONSTRUCTS = {
    parsing.Re2Comparison: "regular expressions (=~, =~~)",
    re_ast.GetItemExpression: "item lookups (x[...])",
    re_ast.GetSliceExpression: "slices (x[a:b])",
    re_ast.ComprehensionExpression: "comprehensions ([... for ... in ...])",
    re_ast.BitwiseExpression: "bitwise operators",
    re_ast.BitwiseShiftExpression: "bitwise operators",
    re_ast.MappingExpression: "mapping literals",
    re_ast.SetExpression: "set literals",
    re_ast.ArrayExpression: "array literals outside 'in'",
    re_ast.TimedeltaExpression: "durations outside datetime arithmetic",
}


def _describe(node: Any) -> str:
    """A construct as a rule author wrote it: ``$abs``, ``.as_lower``, ``points``, or what it is."""
    if isinstance(node, re_ast.SymbolExpression):
        return f"${node.name}" if node.scope == re_builtins.Builtins.scope_name else node.name
    if isinstance(node, re_ast.GetAttributeExpression):
        return f".{node.name}"
    return _CONSTRUCTS.get(type(node), type(node).__name__)


def _unsupported(node: Any) -> str:
    return f"{_describe(node)} {'are' if type(node) in _CONSTRUCTS else 'is'} not translated to SQL"
