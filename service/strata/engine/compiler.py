"""Rule expressions compiled to Python functions, once, when a ruleset loads.

rule-engine interprets its AST: every evaluation walks the tree, resolves each
symbol through the context, re-coerces every value it reads and re-validates
every function call, about 10 us an expression. This module translates the
type-checked AST (``Rule.statement``) into one Python function
``f(facts) -> value`` with the same semantics, so a request pays for the
operations its rules perform and nothing else.
What the generated code calls at run time (value loaders, operations with
rule-engine's semantics) is in ``strata.engine.compiled_runtime``.

How the translation stays faithful:

* Code is generated from rule-engine's AST nodes with the ``ast`` module; text
  a user wrote never becomes source. Literals become ``ast.Constant`` or, for
  values a Python constant cannot hold (``Decimal``, ``datetime``), closure
  cells filled with the very objects rule-engine built; a symbol becomes
  ``facts["name"]`` with the name as a constant. The function runs with no
  builtins: everything it calls is handed to it.
* Static types hold at run time. The AST is type checked, so every node's type
  is known, and the generated code relies on it: a FLOAT is a finite
  ``Decimal``, a STRING a ``str``, an ARRAY a tuple of its member type, and a
  non-nullable value is never null. Values that enter from outside (facts,
  object attributes) are coerced on the way in exactly as rule-engine coerces
  them, and checked; a value that does not have the type the code assumes (a
  null where the schema promised a number, a NaN) raises ``Unexpected``.
* The interpreter decides every failure. Any exception in compiled code (a
  missing fact, a division by zero, ``Unexpected``) makes the caller evaluate
  the expression again with rule-engine, which raises its own error with its
  own message, or returns what it returns. Compiled code is pure, so running
  it and then the interpreter changes nothing.
* Decimal arithmetic goes through the methods of the expression's decimal
  context, which is what rule-engine's ``localcontext`` gives, so results do
  not depend on the calling thread. NaN and infinity never arise: their
  sources are not compiled (``nan``/``inf`` literals, ``$parse_float``,
  ``to_flt``/``to_int`` of strings), the context's traps turn operations
  that would create them into errors, and a power that gives infinity
  (``0 ** -1``, unsignalled) hands the expression to the interpreter. So
  comparisons need no context.
* A construct this module does not translate raises ``NotCompilable`` at load;
  the expression stays interpreted and ``counts``/``fallback_reasons`` say how
  often and why.
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import functools
import math
import operator
import types
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

from rule_engine import ast as re_ast
from rule_engine import builtins as re_builtins
from rule_engine import errors as re_errors
from rule_engine import types as re_types
from rule_engine.engine import context as re_context
from rule_engine.parser import utilities as re_parse

from strata.engine import compiled_runtime as rt
from strata.engine.compiled_runtime import NotCompilable, Unexpected
from strata.engine.decision import ALREADY_PLAIN, plain
from strata.engine.limits import bounded_range
from strata.engine.parsing import Re2Comparison

DataType = re_types.DataType
Function = Callable[[Any], Any]

counts: Counter[str] = Counter()
"""``compiled``, ``interpreted`` (expressions left to rule-engine at load) and ``reruns``."""
fallback_reasons: Counter[str] = Counter()
"""Why expressions were left to the interpreter, by construct."""
rerun_reasons: Counter[str] = Counter()
"""Which exceptions sent a compiled evaluation back to the interpreter."""


@dataclass(frozen=True)
class FactsAccess:
    """How compiled code reads the facts it is given.

    ``type`` is the only class of facts the function accepts (anything else
    goes to the interpreter). ``values`` names its attribute that maps every
    name to the same value as ``facts[name]``, as a dict does (fast);
    ``profile`` names an attribute holding a dict that gives the same value
    for each of ``profile_names`` (faster still: nothing is cached or
    converted on the way). ``builtins`` computes builtin symbols from the facts.
    """

    type: type
    values: str
    builtins: Mapping[str, Function]
    profile: str = "profile"
    profile_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Explained:
    """What a chain's match gives when its explanation is wanted (``_Generator.chain``): for the
    condition at ``index``, ``(heads[index], hit(rule, reason, values))``, where ``hits[index]`` is
    ``(rule, reason)`` and ``values`` maps each fact in ``reads[index]`` (``Expression.reads``), in
    that order, to its plain value (``plain``). Built inside the generated code, the explained
    match costs no call of its own; ``slow(index, facts)`` gives the same where the code cannot.

    ``decision``: where given, a match gives ``decision((hit,), heads[index])`` instead, also built
    in the generated code: the finished decision of a kind whose answer is the first match alone
    (lifecycle), so that no pair is built and taken apart again, and no call is made in between.
    """

    reads: list[tuple[str, ...]]
    heads: list[Any]
    hits: list[tuple[str, str]]
    hit: Callable[[str, str, dict[str, Any]], Any]
    slow: Callable[[int, Any], Any]
    decision: Callable[[tuple[Any, ...], Any], Any] | None = None


FLOAT_EXACT_INTEGERS = 2**53
"""Every int of at most this magnitude is exactly a float (a double's 53-bit significand)."""

Compared = Literal["numbers", "integers"]
"""How a value that is only compared (a score's, with its thresholds) may be given.

``"numbers"``: in ``number`` form, an int where that is exact, else rule-engine's Decimal.
``"integers"``: compared only with ints of magnitude at most ``FLOAT_EXACT_INTEGERS``, so a finite float read from
the facts may also stay a float. It orders against such an int exactly as rule-engine's Decimal of
its ``repr`` does: that decimal rounds to the float, and an int that is itself a float lies outside
the float's rounding interval, or is the float. ``Decimal(repr(x))`` costs ~10 times the
comparisons it spares."""


def count_rerun(exc: BaseException) -> None:
    counts["reruns"] += 1
    rerun_reasons[type(exc).__name__] += 1


def read_key(value: Mapping[str, Any], name: str) -> Any:
    """The accessor of object types whose values are plain dicts (``scores.r`` is ``scores["r"]``).

    Compiled code inlines it as a subscript on the raw dict: rule-engine would
    first rebuild the dict with coerced values, which gives the same answer.
    """
    return value[name]


# --------------------------------------------------------------------------
# Load time: the code generator
# --------------------------------------------------------------------------

_COMPARE = {"eq": ast.Eq, "ne": ast.NotEq, "lt": ast.Lt, "le": ast.LtE, "gt": ast.Gt, "ge": ast.GtE}
_ORDER_OPS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}
_BITWISE_OPS = {
    "bwand": operator.and_, "bwor": operator.or_, "bwxor": operator.xor,
    "bwlsh": operator.lshift, "bwrsh": operator.rshift,
}  # fmt: skip
_SET_OPS = {"bwand": ast.BitAnd, "bwor": ast.BitOr, "bwxor": ast.BitXor}
_DECIMAL_METHODS = {
    "mul": "multiply",
    "tdiv": "divide",
    "fdiv": "divide_int",
    "mod": "remainder",
}
_ORDERABLE = (DataType.FLOAT, DataType.STRING, DataType.DATETIME, DataType.TIMEDELTA, DataType.BOOLEAN)
_PLAIN_SCALARS = (*_ORDERABLE, DataType.BYTES)
_TRAPS = (decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow)


def _name(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _call(function: ast.expr, *arguments: ast.expr, **keywords: ast.expr) -> ast.Call:
    return ast.Call(
        func=function,
        args=list(arguments),
        keywords=[ast.keyword(arg=k, value=v) for k, v in keywords.items()],
    )


def _method(value: ast.expr, name: str, *arguments: ast.expr) -> ast.Call:
    return _call(ast.Attribute(value=value, attr=name, ctx=ast.Load()), *arguments)


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=value)


def _is_none(value: ast.expr, negate: bool = False) -> ast.expr:
    if isinstance(value, ast.Constant):  # known now (``3 ?? x``): Python warns about ``3 is None``
        return ast.Constant((value.value is None) != negate)
    return ast.Compare(
        left=value, ops=[ast.IsNot() if negate else ast.Is()], comparators=[ast.Constant(None)]
    )


def _base(dtype: Any) -> Any:
    """The type without nullability."""
    return DataType.NULLABLE.unwrap(dtype)


def _may_be_null(dtype: Any) -> bool:
    return bool(DataType.is_type(dtype, DataType.NULLABLE)) or dtype in (DataType.NULL, DataType.UNDEFINED)


def _is(dtype: Any, *kinds: Any) -> bool:
    """``dtype`` (never null) is one of the scalar ``kinds``."""
    return any(dtype == kind for kind in kinds)


def _is_object(dtype: Any) -> bool:
    return bool(DataType.is_type(_base(dtype), DataType.OBJECT))


class _Generator:
    """Walks one statement, emitting statements into the current block and returning expressions.

    Most nodes compile to a single Python expression. A few need a value twice
    (``??``, safe navigation) or evaluate a sub-expression only sometimes
    (``and``, ``or``, ``?:``, comprehensions); those assign temporaries in the
    current block, and what runs only sometimes goes into an ``if`` or ``for``
    block of its own, so short-circuiting stays exactly rule-engine's.
    """

    def __init__(self, context: Any, access: FactsAccess) -> None:
        self.access = access
        self.use(context)
        self.block: list[ast.stmt] = []
        self.injected: dict[int, str] = {}
        self.values: list[Any] = []
        self.names: list[str] = []
        self.temps = 0
        self.scopes: dict[str, str] = {}  # comprehension variable -> Python local
        self.facts_type = self.ref(access.type)
        self.reads: set[str] = set()  # which of the facts' attributes the function reads
        #: In a chain: each fact read so far -> the local holding it, assigned in ``prologue``.
        self.hoisted: dict[str, str] | None = None
        self.prologue: list[ast.stmt] = []
        self.touched: set[str] = set()  # the facts the current condition of a chain read
        self.checked: set[str] = set()  # the facts of a chain whose locals hold checked booleans

    # -- plumbing ---------------------------------------------------------

    def inject(self, value: Any) -> str:
        """A closure cell holding ``value`` (one per distinct object)."""
        key = id(value)
        if key not in self.injected:
            name = f"k{len(self.values)}"
            self.injected[key] = name
            self.values.append(value)
            self.names.append(name)
        return self.injected[key]

    def ref(self, value: Any) -> ast.Name:
        return _name(self.inject(value))

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def hold(self, value: ast.expr) -> ast.expr:
        """``value`` usable twice: a name or constant as is, anything else through a temporary."""
        if isinstance(value, (ast.Name, ast.Constant)):
            return value
        name = self.temp()
        self.block.append(_assign(name, value))
        return _name(name)

    def sub(
        self, node: Any, form: Callable[[Any], ast.expr] | None = None
    ) -> tuple[list[ast.stmt], ast.expr]:
        """Compile ``node`` (by ``form``, else ``value``) into a block of its own: for code that
        runs only sometimes."""
        outer, self.block = self.block, []
        try:
            value = (form or self.value)(node)
            return self.block, value
        finally:
            self.block = outer

    def unless_null(self, target: ast.expr, guarded: bool, body: Callable[[], ast.expr]) -> ast.expr:
        """``body``, or null when ``guarded`` and ``target`` is null (safe navigation).

        The body is compiled into a block of its own: what it hoists into
        statements must not run when the target is null, as rule-engine would
        not evaluate it.
        """
        if not guarded:
            return body()
        outer, self.block = self.block, []
        try:
            code = body()
            statements = self.block
        finally:
            self.block = outer
        if not statements:
            return ast.IfExp(test=_is_none(target), body=ast.Constant(None), orelse=code)
        name = self.temp()
        self.block.append(
            ast.If(
                test=_is_none(target),
                body=[_assign(name, ast.Constant(None))],
                orelse=[*statements, _assign(name, code)],
            )
        )
        return _name(name)

    # -- entry points -----------------------------------------------------

    def function(self, statement: Any, compared: Compared | None = None) -> Function:
        """``f(facts)``: the statement's value; ``compared``: a FLOAT in ``number`` form (an int
        where that is exact, see ``Compared``), for a value only compared, never shown or computed with."""
        facts = _name("facts")
        guard = ast.If(
            test=ast.Compare(
                left=ast.Attribute(value=facts, attr="__class__", ctx=ast.Load()),
                ops=[ast.IsNot()],
                comparators=[self.facts_type],
            ),
            body=[ast.Raise(exc=self.ref(Unexpected), cause=None)],
            orelse=[],
        )
        expression = statement.expression
        result = self.value(expression) if compared is None else self.number(expression, compared)
        return self.build([guard, *self.locals(), *self.block, ast.Return(value=result)])

    def chain(
        self,
        rules: list[Any | None],
        first: bool,
        retry: Function,
        not_boolean: Function,
        matches: list[Any],
        explained: Explained | None = None,
    ) -> Function:
        """One function for a list of conditions evaluated in order: it returns what the first that
        holds gives (None if none) when ``first``, else the list of what each that holds gives: by
        default ``matches[index]``, as it is.

        Each condition is the code ``function`` would generate for it, in a ``try`` of its own, so
        that any exception hands that condition (and only it) to ``retry(index, facts, exc)``, as
        ``Expression.test`` would; a condition that is None (not compiled) goes there directly,
        with None. ``not_boolean(index, result)`` raises for a result that is not a boolean. Each
        fact is read once into a local, in the prologue of the first condition that reads it, and
        later conditions reuse it: reading is pure, so reading early changes no answer, and a read
        that fails fails inside a ``try`` (a later condition reading the unassigned local fails
        too, and is retried: the interpreter decides, as everywhere in compiled code).
        The caller guarantees ``facts`` is of the access's type.

        ``explained``: a match gives instead its explained form (see ``Explained``), built here from
        the locals the condition read, without reading the facts again or another call; where the
        locals may not hold them, ``explained.slow(index, facts)`` gives it: the interpreter
        decided that condition or an earlier one (whose unassigned locals a short-circuit may have
        skipped), or the condition reads a name as something else than a fact (a comprehension
        variable).
        """
        self.hoisted = {}
        found = _name("found")
        retry_ref, not_boolean_ref = self.ref(retry), self.ref(not_boolean)
        body: list[ast.stmt] = [] if first else [_assign("found", ast.List(elts=[], ctx=ast.Load()))]
        if explained is not None:
            body.append(_assign("failed", ast.Constant(False)))

        def check(index: int, match: ast.expr) -> list[ast.stmt]:
            """What a condition's result does: a match is returned or collected, a non-boolean refused."""
            result = _name("result")
            return [
                ast.If(
                    test=ast.Compare(left=result, ops=[ast.Is()], comparators=[ast.Constant(True)]),
                    body=[
                        ast.Return(value=match) if first else ast.Expr(value=_method(found, "append", match))
                    ],
                    orelse=[
                        ast.If(
                            test=ast.Compare(
                                left=result, ops=[ast.IsNot()], comparators=[ast.Constant(False)]
                            ),
                            body=[ast.Expr(value=_call(not_boolean_ref, ast.Constant(index), result))],
                            orelse=[],
                        )
                    ],
                )
            ]

        def slow(index: int) -> ast.expr:
            """The match as ``matches`` holds it, or explained from the facts themselves."""
            if explained is None:
                return self.ref(matches[index])
            return _call(self.ref(explained.slow), ast.Constant(index), _name("facts"))

        retried_marks = [] if explained is None else [_assign("failed", ast.Constant(True))]
        for index, rule in enumerate(rules):
            retried = _call(retry_ref, ast.Constant(index), _name("facts"), _name("exc"))
            if rule is None:
                retried.args[2] = ast.Constant(None)
                body += [_assign("result", retried), *retried_marks, *check(index, slow(index))]
                continue
            self.use(rule.context)
            self.block, self.prologue, self.touched = [], [], set()
            value = self.value(rule.statement.expression)
            handler = ast.ExceptHandler(
                type=self.ref(Exception),
                name="exc",
                body=[_assign("result", retried), *retried_marks, *check(index, slow(index))],
            )
            attempt = [*self.prologue, *self.block, _assign("result", value)]
            match = slow(index) if explained is None else self.explain(explained, index, slow(index))
            body.append(ast.Try(body=attempt, handlers=[handler], orelse=check(index, match), finalbody=[]))
        body.append(ast.Return(value=ast.Constant(None) if first else found))
        return self.build([*self.locals(), *body])

    def explain(self, explained: Explained, index: int, slow: ast.expr) -> ast.expr:
        """A match explained from the locals the current condition read (``chain``), or ``slow`` if it
        read others; ``slow`` too at run time if a condition failed before."""
        names = explained.reads[index]
        if set(names) != self.touched:
            return slow
        shown: list[ast.expr] = []
        for name in names:
            local = _name(self.hoisted[name])  # type: ignore[index]
            if name in self.checked:  # a boolean: plain as it is
                shown.append(local)
                continue
            is_plain = ast.Compare(
                left=ast.Attribute(value=local, attr="__class__", ctx=ast.Load()),
                ops=[ast.In()],
                comparators=[self.ref(ALREADY_PLAIN)],
            )
            shown.append(ast.IfExp(test=is_plain, body=local, orelse=_call(self.ref(plain), local)))
        values = ast.Dict(keys=[ast.Constant(name) for name in names], values=shown)
        rule, reason = explained.hits[index]
        hit = _call(self.ref(explained.hit), ast.Constant(rule), ast.Constant(reason), values)
        head = self.ref(explained.heads[index])
        match: ast.expr = ast.Tuple(elts=[head, hit], ctx=ast.Load())
        if explained.decision is not None:
            match = _call(self.ref(explained.decision), ast.Tuple(elts=[hit], ctx=ast.Load()), head)
        return ast.IfExp(test=_name("failed"), body=slow, orelse=match)

    def use(self, context: Any) -> None:
        """Generate code for an expression parsed in ``context`` (its decimal context and zone)."""
        self.context = context
        self.decimal = context.decimal_context.copy()  # private: its flags are nobody's business
        self.zone: dt.tzinfo = context.default_timezone

    def locals(self) -> list[ast.stmt]:
        """``values`` and ``profile``, the facts' attributes the code reads, as locals."""
        facts = _name("facts")
        return [
            _assign(local, ast.Attribute(value=facts, attr=attribute, ctx=ast.Load()))
            for local, attribute in (("values", self.access.values), ("profile", self.access.profile))
            if local in self.reads
        ]

    def build(self, body: list[ast.stmt]) -> Function:
        """The function ``f(facts)`` running ``body``, its injected values in closure cells."""
        arguments = ast.arguments(
            posonlyargs=[], args=[ast.arg(arg="facts")], kwonlyargs=[], kw_defaults=[], defaults=[]
        )
        inner = ast.FunctionDef(name="evaluate", args=arguments, body=body, decorator_list=[], returns=None)
        factory_arguments = ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=name) for name in self.names],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        )
        factory = ast.FunctionDef(
            name="factory",
            args=factory_arguments,
            body=[inner, ast.Return(value=_name("evaluate"))],
            decorator_list=[],
            returns=None,
        )
        module = ast.fix_missing_locations(ast.Module(body=[factory], type_ignores=[]))
        code = compile(module, "<strata rule expression>", "exec")
        factory_code = next(const for const in code.co_consts if isinstance(const, types.CodeType))
        make = types.FunctionType(factory_code, {"__builtins__": {}})
        built: Function = make(*self.values)
        return built

    def value(self, node: Any) -> ast.expr:
        """Code for ``node``'s value exactly as rule-engine represents it."""
        code = self.raw(node)
        if _is_object(node.result_type):
            # rule-engine rebuilds an object's mapping (coercing its values) whenever it reads one;
            # compiled code reads attributes straight from the raw value and coerces only here,
            # where the object itself is used
            code = _call(self.ref(re_types.coerce_value), code, verify_type=ast.Constant(False))
        return code

    def raw(self, node: Any) -> ast.expr:
        """Code for ``node``: the same as ``value`` except that objects stay as the facts hold them."""
        method = self.dispatch.get(type(node))
        if method is None:
            raise NotCompilable(type(node).__name__)
        code: ast.expr = method(self, node)
        return code

    def number(self, node: Any, compared: Compared = "numbers") -> ast.expr:
        """A FLOAT (or null) as an int or a finite Decimal equal to rule-engine's Decimal.

        Python compares and hashes ints and Decimals by their exact values, so
        comparisons and membership tests on this form give rule-engine's
        answers without building a Decimal for every integer fact they read.
        Only code that compares or looks up uses it, and a score's value (``compared``);
        every other result is a Decimal. ``compared``: for a score's value read as it is, see ``Compared``.
        """
        kind = type(node)
        if kind is re_ast.FloatExpression:
            value = node.value
            if value.is_finite() and value == value.to_integral_value() and abs(value) < 10**18:
                return ast.Constant(int(value))
        elif kind is re_ast.SymbolExpression and self.plain_fact(node) and self.numeric(node.result_type):
            return self.numeric_read(self.read_fact(node.name), node.result_type, compared)
        elif kind is re_ast.GetAttributeExpression and node._object_type is not None:
            declared = re_ast.base._resolve_type(node._object_type.attributes[node.name], self.context)
            if node._object_type.accessor is read_key and self.numeric(declared):
                target = self.hold(self.raw(node.object))
                read = ast.Subscript(value=target, slice=ast.Constant(node.name), ctx=ast.Load())
                return self.unless_null(target, node.safe, lambda: self.numeric_read(read, declared))
        elif kind in (re_ast.AddExpression, re_ast.SubtractExpression) and self.numeric(node.result_type):
            return self.int_arithmetic(node)
        elif kind is re_ast.CoalesceExpression and self.numeric(node.result_type):
            return self.coalesce(node, self.number)
        elif kind is re_ast.TernaryExpression and self.numeric(node.result_type):
            return self.ternary(node, self.number)
        return self.value(node)

    def int_arithmetic(self, node: Any) -> ast.expr:
        """``+`` or ``-`` on the number form, inline (a helper's call cost more than the sum): two
        ints stay an int while the result has fewer than 28 digits (the decimal context would give
        the same value, unrounded); anything else is the context's exact Decimal arithmetic (it
        converts ints exactly, and raises for a null, which the interpreter then decides)."""
        left, right = self.hold(self.number(node.left)), self.hold(self.number(node.right))
        method = self.ref(self.decimal.add if node.type == "add" else self.decimal.subtract)
        exact = _call(method, left, right)
        result = _name(self.temp())
        is_int: list[ast.expr] = [
            ast.Compare(
                left=ast.Attribute(value=side, attr="__class__", ctx=ast.Load()),
                ops=[ast.Is()],
                comparators=[self.ref(int)],
            )
            for side in (left, right)
        ]
        within = ast.Compare(
            left=ast.Constant(-rt.EXACT),
            ops=[ast.Lt(), ast.Lt()],
            comparators=[result, ast.Constant(rt.EXACT)],
        )
        store = ast.Name(id=result.id, ctx=ast.Store())
        ints = ast.BinOp(left=left, op=ast.Add() if node.type == "add" else ast.Sub(), right=right)
        self.block.append(
            ast.If(
                test=ast.BoolOp(op=ast.And(), values=is_int),
                body=[
                    ast.Assign(targets=[store], value=ints),
                    ast.If(
                        test=ast.UnaryOp(op=ast.Not(), operand=within),
                        body=[ast.Assign(targets=[store], value=exact)],
                        orelse=[],
                    ),
                ],
                orelse=[ast.Assign(targets=[store], value=exact)],
            )
        )
        return result

    def numbers(self, node: Any) -> ast.expr:
        """A literal array of FLOATs as a tuple in ``number`` form, for membership tests."""
        if isinstance(node, re_ast.ArrayExpression) and node.result_type.value_type == DataType.FLOAT:
            return ast.Tuple(elts=[self.number(member) for member in node.value], ctx=ast.Load())
        return self.value(node)

    def plain_fact(self, node: Any) -> bool:
        return node.scope is None and node.name not in self.scopes

    @staticmethod
    def numeric(dtype: Any) -> bool:
        return bool(_base(dtype) == DataType.FLOAT)

    def numeric_read(self, read: ast.expr, dtype: Any, compared: Compared = "numbers") -> ast.expr:
        """An int as it is (a finite float too, when ``compared`` is ``"integers"``); anything else through the
        FLOAT loader (floats become Decimals by repr)."""
        held = self.hold(read)
        cls = ast.Attribute(value=held, attr="__class__", ctx=ast.Load())
        is_int: ast.expr = ast.Compare(left=cls, ops=[ast.Is()], comparators=[self.ref(int)])
        if compared == "integers":
            is_float = ast.Compare(left=cls, ops=[ast.Is()], comparators=[self.ref(float)])
            finite = ast.BoolOp(op=ast.And(), values=[is_float, _call(self.ref(math.isfinite), held)])
            is_int = ast.BoolOp(op=ast.Or(), values=[is_int, finite])
        load = rt.loader(dtype, self.zone)
        assert load is not None
        return ast.IfExp(test=is_int, body=held, orelse=_call(self.ref(load), held))

    # -- literals -----------------------------------------------------------

    def literal(self, node: Any) -> ast.expr:
        value = node.value
        if isinstance(value, Decimal) and not value.is_finite():
            raise NotCompilable("nan or inf literal")
        if value is None or isinstance(value, (bool, str, bytes)):
            return ast.Constant(value)
        return self.ref(value)  # Decimal, datetime, timedelta: immutable, built once by the parser

    def array(self, node: Any) -> ast.expr:
        member_type = node.result_type.value_type
        if not _may_be_null(member_type) and any(_may_be_null(m.result_type) for m in node.value):
            raise NotCompilable("null in a typed array literal")
        return ast.Tuple(elts=[self.value(member) for member in node.value], ctx=ast.Load())

    def set_(self, node: Any) -> ast.expr:
        if node.result_type.value_type == DataType.UNDEFINED:
            raise NotCompilable("mixed set literal")  # which equal member survives depends on order
        members = [self.value(member) for member in node.value]  # rule-engine's (set) order
        return ast.Set(elts=members) if members else _call(self.ref(set))

    # -- symbols ------------------------------------------------------------

    def symbol(self, node: Any) -> ast.expr:
        if node.scope == re_builtins.Builtins.scope_name:
            return self.builtin_symbol(node)
        if node.scope is not None:
            raise NotCompilable(f"symbol scope {node.scope}")
        if node.name in self.scopes:
            return _name(self.scopes[node.name])
        if node.result_type == DataType.UNDEFINED:
            raise NotCompilable("untyped symbol")
        load = rt.loader(node.result_type, self.zone)
        if load is rt.load_boolean and self.hoisted is not None:
            local = self.read_fact(node.name, check=load)
            return local if node.name in self.checked else self.loaded(local, load)
        return self.loaded(self.read_fact(node.name), load)

    def loaded(self, read: ast.expr, load: Function | None) -> ast.expr:
        """``read`` through ``load`` (None: as it is). The commonest loaders return a value of the
        right type as it is: for them the test is inline (a call costs more than the test), and
        the loader is called only to raise."""
        if load is rt.load_boolean:
            held = self.hold(read)
            test: ast.expr = ast.BoolOp(
                op=ast.Or(),
                values=[
                    ast.Compare(left=held, ops=[ast.Is()], comparators=[ast.Constant(True)]),
                    ast.Compare(left=held, ops=[ast.Is()], comparators=[ast.Constant(False)]),
                ],
            )
        elif load is rt.load_string:
            held = self.hold(read)
            test = ast.Compare(
                left=ast.Attribute(value=held, attr="__class__", ctx=ast.Load()),
                ops=[ast.Is()],
                comparators=[self.ref(str)],
            )
        else:
            return read if load is None else _call(self.ref(load), read)
        return ast.IfExp(test=test, body=held, orelse=_call(self.ref(load), held))

    def read_fact(self, name: str, check: Function | None = None) -> ast.expr:
        """The fact's value as the facts hold it: ``profile["name"]`` or ``values["name"]``.

        In a chain, the local it is read into (see ``chain``). ``check``: ``rt.load_boolean``, to
        check the value once, where it is read, rather than at every use (``checked``): a value of
        another type raises there, before the local is assigned, so every condition using the local
        fails and goes to the interpreter, as it would have at its own check."""
        local = "profile" if name in self.access.profile_names else "values"
        self.reads.add(local)
        read: ast.expr = ast.Subscript(value=_name(local), slice=ast.Constant(name), ctx=ast.Load())
        if self.hoisted is None:
            return read
        self.touched.add(name)
        if name not in self.hoisted:
            hoisted = self.hoisted[name] = f"f{len(self.hoisted)}"
            if check is rt.load_boolean:
                self.checked.add(name)
                raw = self.temp()
                not_boolean = ast.BoolOp(
                    op=ast.And(),
                    values=[
                        ast.Compare(left=_name(raw), ops=[ast.IsNot()], comparators=[ast.Constant(flag)])
                        for flag in (True, False)
                    ],
                )
                refuse = ast.Expr(value=_call(self.ref(check), _name(raw)))
                self.prologue += [_assign(raw, read), ast.If(test=not_boolean, body=[refuse], orelse=[])]
                read = _name(raw)
            self.prologue.append(_assign(hoisted, read))
        return _name(self.hoisted[name])

    def builtin_symbol(self, node: Any) -> ast.expr:
        name = node.name
        if name in self.access.builtins:
            load = rt.loader(node.result_type, self.zone)
            assert load is not None
            return _call(self.ref(load), _call(self.ref(self.access.builtins[name]), _name("facts")))
        if name in ("e", "pi"):
            return self.ref(self.context.builtins[name])
        raise NotCompilable(f"${name} as a value")

    # -- attributes and items ------------------------------------------------

    def attribute(self, node: Any) -> ast.expr:
        object_type = node.object.result_type
        if node._object_type is not None:
            return self.object_attribute(node)
        base = _base(object_type)
        if _may_be_null(object_type) and not node.safe:
            raise NotCompilable("attribute of a null")
        target = self.hold(self.value(node.object))
        guarded = _may_be_null(object_type)
        return self.unless_null(target, guarded, lambda: self.builtin_attribute(base, node.name, target))

    def object_attribute(self, node: Any) -> ast.expr:
        object_type = node._object_type
        if self.context.default_value is not re_errors.UNDEFINED:
            raise NotCompilable("context default value")
        accessor = object_type.accessor
        if accessor is read_key:
            target = self.hold(self.raw(node.object))
            read: ast.expr = ast.Subscript(value=target, slice=ast.Constant(node.name), ctx=ast.Load())
        else:
            target = self.hold(self.value(node.object))
            read = _call(self.ref(accessor), target, ast.Constant(node.name))
        declared = re_ast.base._resolve_type(object_type.attributes[node.name], self.context)
        load = rt.loader(declared, self.zone)
        return self.unless_null(target, node.safe, lambda: self.loaded(read, load))

    def builtin_attribute(self, base: Any, name: str, target: ast.expr) -> ast.expr:
        decimal_ = self.ref(Decimal)
        if name == "length" and self.sized(base):
            return _call(decimal_, _call(self.ref(len), target))
        if name == "is_empty" and self.sized(base):
            return ast.UnaryOp(op=ast.Not(), operand=target)
        if _is(base, DataType.STRING):
            simple = {"as_lower": "lower", "as_upper": "upper"}
            if name in simple:
                return _method(target, simple[name])
            if name == "to_str":
                return target
        if _is(base, DataType.FLOAT):
            if name in ("ceiling", "floor"):
                return _call(
                    decimal_, _call(self.ref(math.ceil if name == "ceiling" else math.floor), target)
                )
            if name == "to_flt":
                return target
            if name == "to_int":
                return _call(self.ref(rt.to_int), target)
            if name == "to_str":
                return _call(self.ref(str), target)
            if name == "is_nan":
                return _method(target, "is_nan")
        if _is(base, DataType.DATETIME):
            if name in ("year", "month", "day", "hour", "minute", "second", "microsecond"):
                return _call(decimal_, ast.Attribute(value=target, attr=name, ctx=ast.Load()))
            if name == "millisecond":
                micro = ast.Attribute(value=target, attr="microsecond", ctx=ast.Load())
                return _call(
                    self.ref(rt.as_float), ast.BinOp(left=micro, op=ast.Div(), right=ast.Constant(1000))
                )
            if name == "date":
                zero = ast.Constant(0)
                return _call(
                    ast.Attribute(value=target, attr="replace", ctx=ast.Load()),
                    hour=zero,
                    minute=zero,
                    second=zero,
                    microsecond=zero,
                )
            if name == "weekday":
                return _call(self.ref(rt.weekday), target)
            if name == "zone_name":
                return _call(self.ref(rt.zone_name), target)
            if name == "to_epoch":
                return _call(self.ref(rt.as_float), _method(target, "timestamp"))
        if _is(base, DataType.TIMEDELTA):
            if name in ("days", "seconds", "microseconds"):
                return _call(decimal_, ast.Attribute(value=target, attr=name, ctx=ast.Load()))
            if name == "total_seconds":
                return _call(self.ref(rt.as_float), _method(target, "total_seconds"))
        if DataType.is_type(base, DataType.ARRAY) or DataType.is_type(base, DataType.SET):
            if name == "to_ary":
                return _call(self.ref(tuple), target)
            if name == "to_set":
                return _call(self.ref(set), target)
        if DataType.is_type(base, DataType.MAPPING) and name in ("keys", "values"):
            return _call(self.ref(tuple), _method(target, name))
        raise NotCompilable(f"attribute {name} of {base.name}")

    @staticmethod
    def sized(base: Any) -> bool:
        return _is(base, DataType.STRING) or any(
            DataType.is_type(base, kind) for kind in (DataType.ARRAY, DataType.SET, DataType.MAPPING)
        )

    def item(self, node: Any) -> ast.expr:
        container_type = _base(node.container.result_type)
        sequence = _is(container_type, DataType.STRING) or DataType.is_type(container_type, DataType.ARRAY)
        if sequence and not _is(_base(node.item.result_type), DataType.FLOAT):
            raise NotCompilable("untyped index")
        if not (sequence or DataType.is_type(container_type, DataType.MAPPING)):
            raise NotCompilable(f"item of {container_type.name}")
        container = self.hold(self.value(node.container))

        def read() -> ast.expr:
            key = self.value(node.item)
            if sequence:
                return _call(self.ref(rt.item_safe if node.safe else rt.item), container, key)
            if node.safe:
                return _method(container, "get", key)
            return ast.Subscript(value=container, slice=key, ctx=ast.Load())

        return self.unless_null(container, _may_be_null(node.container.result_type), read)

    def slice_(self, node: Any) -> ast.expr:
        container_type = _base(node.container.result_type)
        if not (_is(container_type, DataType.STRING) or DataType.is_type(container_type, DataType.ARRAY)):
            raise NotCompilable(f"slice of {container_type.name}")
        for bound in (node.start, node.stop):
            if not (_is(_base(bound.result_type), DataType.FLOAT) or bound.result_type == DataType.NULL):
                raise NotCompilable("untyped slice bound")
        container = self.hold(self.value(node.container))
        return self.unless_null(
            container,
            _may_be_null(node.container.result_type),
            lambda: _call(self.ref(rt.slice_of), container, self.value(node.start), self.value(node.stop)),
        )

    # -- operators ------------------------------------------------------------

    def logic(self, node: Any) -> ast.expr:
        left = self.value(node.left)
        statements, right = self.sub(node.right)
        booleans = node.left.result_type == DataType.BOOLEAN and node.right.result_type == DataType.BOOLEAN
        if not statements:
            code: ast.expr = ast.BoolOp(
                op=ast.And() if node.type == "and" else ast.Or(), values=[left, right]
            )
        else:
            name = self.temp()
            self.block.append(_assign(name, left))
            test: ast.expr = (
                _name(name) if node.type == "and" else ast.UnaryOp(op=ast.Not(), operand=_name(name))
            )
            self.block.append(ast.If(test=test, body=[*statements, _assign(name, right)], orelse=[]))
            code = _name(name)
        return code if booleans else _call(self.ref(bool), code)

    def unary(self, node: Any) -> ast.expr:
        operand = self.value(node.right)
        if node.type == "not":
            return ast.UnaryOp(op=ast.Not(), operand=operand)
        operand_type = node.right.result_type
        if operand_type == DataType.FLOAT:
            return _call(self.ref(self.decimal.minus), operand)
        if operand_type == DataType.TIMEDELTA:
            return ast.UnaryOp(op=ast.USub(), operand=operand)
        raise NotCompilable(f"minus of {operand_type.name}")

    def add_or_subtract(self, node: Any) -> ast.expr:
        left_type, right_type = node.left.result_type, node.right.result_type
        left, right = self.value(node.left), self.value(node.right)
        if left_type == DataType.FLOAT and right_type == DataType.FLOAT:
            method = self.decimal.add if node.type == "add" else self.decimal.subtract
            return _call(self.ref(method), left, right)
        known = (DataType.STRING, DataType.BYTES, DataType.DATETIME, DataType.TIMEDELTA)
        if _is(left_type, *known) and _is(right_type, *known):  # the parser checked which pairs are allowed
            return ast.BinOp(left=left, op=ast.Add() if node.type == "add" else ast.Sub(), right=right)
        raise NotCompilable(f"{node.type} of {left_type.name} and {right_type.name}")

    def arithmetic(self, node: Any) -> ast.expr:
        if node.left.result_type != DataType.FLOAT or node.right.result_type != DataType.FLOAT:
            raise NotCompilable("untyped arithmetic")
        method = (
            rt.finite_power(self.decimal)
            if node.type == "pow"
            else getattr(self.decimal, _DECIMAL_METHODS[node.type])
        )
        return _call(self.ref(method), self.value(node.left), self.value(node.right))

    def bitwise(self, node: Any) -> ast.expr:
        left_type, right_type = node.left.result_type, node.right.result_type
        left, right = self.value(node.left), self.value(node.right)
        if left_type == DataType.FLOAT and right_type == DataType.FLOAT:
            return _call(self.ref(rt.bitwise(_BITWISE_OPS[node.type])), left, right)
        if DataType.is_type(left_type, DataType.SET) and DataType.is_type(right_type, DataType.SET):
            return ast.BinOp(left=left, op=_SET_OPS[node.type](), right=right)
        raise NotCompilable(f"bitwise {node.type} of {left_type.name}")

    def equality(self, node: Any) -> ast.expr:
        left_type, right_type = node.left.result_type, node.right.result_type
        equal = node.type == "eq"
        if self.numeric(left_type) and self.numeric(right_type):  # both numbers, or null
            left, right = self.number(node.left), self.number(node.right)
            return ast.Compare(left=left, ops=[_COMPARE[node.type]()], comparators=[right])
        left, right = self.value(node.left), self.value(node.right)
        if left_type == DataType.NULL or right_type == DataType.NULL:
            other = right if left_type == DataType.NULL else left
            return _is_none(other, negate=not equal)
        left_base, right_base = _base(left_type), _base(right_type)
        same_scalar = left_base == right_base and _is(left_base, *_PLAIN_SCALARS)
        arrays = DataType.is_type(left_base, DataType.ARRAY) and DataType.is_type(right_base, DataType.ARRAY)
        if same_scalar or arrays:  # both sides the same Python type, or null
            return ast.Compare(left=left, ops=[_COMPARE[node.type]()], comparators=[right])
        helper = rt.same_type_equal if equal else rt.same_type_unequal
        return _call(self.ref(helper), left, right)

    def ordering(self, node: Any) -> ast.expr:
        left_type, right_type = node.left.result_type, node.right.result_type
        if left_type == DataType.FLOAT and right_type == DataType.FLOAT:
            left, right = self.number(node.left), self.number(node.right)
            return ast.Compare(left=left, ops=[_COMPARE[node.type]()], comparators=[right])
        left, right = self.value(node.left), self.value(node.right)
        if left_type == right_type and _is(left_type, *_ORDERABLE):
            return ast.Compare(left=left, ops=[_COMPARE[node.type]()], comparators=[right])
        if DataType.is_type(left_type, DataType.ARRAY) and DataType.is_type(right_type, DataType.ARRAY):
            return _call(self.ref(rt.ordered), self.ref(_ORDER_OPS[node.type]), left, right)
        raise NotCompilable(f"ordering of {left_type.name} and {right_type.name}")

    def regex(self, node: Any) -> ast.expr:
        if node.left.result_type != DataType.STRING:
            raise NotCompilable("regex on a nullable or untyped value")
        method = "match" if node.type.endswith("fzm") else "search"
        negate = node.type.startswith("ne")
        left = self.value(node.left)
        if isinstance(node.right, re_ast.StringExpression):
            found = ast.Compare(
                left=_method(self.ref(node._right), method, left),
                ops=[ast.Is() if negate else ast.IsNot()],
                comparators=[ast.Constant(None)],
            )
            return found
        if node.right.result_type != DataType.STRING:
            raise NotCompilable("regex pattern that may be null")
        matcher = rt.regex_matcher(method, negate)
        return _call(self.ref(matcher), left, self.value(node.right))

    def contains(self, node: Any) -> ast.expr:
        container_type = node.container.result_type
        collection = any(
            DataType.is_type(container_type, k) for k in (DataType.ARRAY, DataType.SET, DataType.MAPPING)
        )
        if collection and self.numeric(node.member.result_type):  # equality and hashing are exact
            return ast.Compare(
                left=self.number(node.member), ops=[ast.In()], comparators=[self.numbers(node.container)]
            )
        member = self.value(node.member)
        container = self.value(node.container)
        if _is(container_type, DataType.STRING):
            if node.member.result_type == DataType.STRING:
                return ast.Compare(left=member, ops=[ast.In()], comparators=[container])
            return _call(self.ref(rt.string_contains), member, container)
        if any(
            DataType.is_type(container_type, kind)
            for kind in (DataType.ARRAY, DataType.SET, DataType.MAPPING)
        ):
            return ast.Compare(left=member, ops=[ast.In()], comparators=[container])
        raise NotCompilable(f"membership in {container_type.name}")

    # -- control ------------------------------------------------------------------

    def ternary(self, node: Any, form: Callable[[Any], ast.expr] | None = None) -> ast.expr:
        condition = self.value(node.condition)
        form = form or (self.raw if _is_object(node.result_type) else self.value)
        true_statements, when_true = self.sub(node.case_true, form)
        false_statements, when_false = self.sub(node.case_false, form)
        if not true_statements and not false_statements:
            return ast.IfExp(test=condition, body=when_true, orelse=when_false)
        name = self.temp()
        self.block.append(
            ast.If(
                test=condition,
                body=[*true_statements, _assign(name, when_true)],
                orelse=[*false_statements, _assign(name, when_false)],
            )
        )
        return _name(name)

    def coalesce(self, node: Any, form: Callable[[Any], ast.expr] | None = None) -> ast.expr:
        form = form or (self.raw if _is_object(node.result_type) else self.value)
        left = form(node.left)
        statements, right = self.sub(node.right, form)
        if not statements:
            held = self.hold(left)
            return ast.IfExp(test=_is_none(held, negate=True), body=held, orelse=right)
        name = self.temp()
        self.block.append(_assign(name, left))
        self.block.append(
            ast.If(test=_is_none(_name(name)), body=[*statements, _assign(name, right)], orelse=[])
        )
        return _name(name)

    def comprehension(self, node: Any) -> ast.expr:
        iterable_type = re_ast.base._resolve_type(node.iterable.result_type, self.context)
        if not (
            DataType.is_type(iterable_type, DataType.ARRAY) or DataType.is_type(iterable_type, DataType.SET)
        ):
            raise NotCompilable(f"comprehension over {iterable_type.name}")
        member_type = iterable_type.value_type
        if member_type == DataType.UNDEFINED or _is_object(member_type):
            raise NotCompilable("comprehension over untyped or object members")
        if node.variable in self.scopes:
            raise NotCompilable("comprehension variable shadowing another")
        iterable = self.value(node.iterable)
        results, variable = self.temp(), self.temp()
        self.block.append(_assign(results, ast.List(elts=[], ctx=ast.Load())))
        self.scopes[node.variable] = variable
        outer, self.block = self.block, []
        try:
            append = ast.Expr(value=_method(_name(results), "append", self.value(node.result)))
            body: list[ast.stmt] = [*self.block, append]
            self.block = []
            if node.condition is not None:
                condition = self.value(node.condition)
                body = [*self.block, ast.If(test=condition, body=body, orelse=[])]
        finally:
            self.block = outer
            del self.scopes[node.variable]
        self.block.append(
            ast.For(target=ast.Name(id=variable, ctx=ast.Store()), iter=iterable, body=body, orelse=[])
        )
        return _call(self.ref(tuple), _name(results))

    # -- calls ----------------------------------------------------------------------

    def call(self, node: Any) -> ast.expr:
        function = node.function
        if (
            isinstance(function, re_ast.SymbolExpression)
            and function.scope == re_builtins.Builtins.scope_name
        ):
            helper = self.builtin_function(
                function.name, [argument.result_type for argument in node.arguments]
            )
        elif isinstance(function, re_ast.GetAttributeExpression) and function.name in (
            "starts_with",
            "ends_with",
        ):
            base = function.object.result_type
            if function.safe or not (_is(base, DataType.STRING) or DataType.is_type(base, DataType.ARRAY)):
                raise NotCompilable(f"{function.name} of {base.name}")
            return _call(
                self.ref(rt.starts_with if function.name == "starts_with" else rt.ends_with),
                self.value(function.object),
                *[self.value(argument) for argument in node.arguments],
            )
        else:
            raise NotCompilable("call of a computed function")
        return _call(self.ref(helper), *[self.value(argument) for argument in node.arguments])

    def builtin_function(self, name: str, given: list[Any]) -> Callable[..., Any]:
        """What a builtin call runs, when its arguments have the types it declares, so that
        rule-engine's run-time validation of them always passes; anything looser stays interpreted."""
        builtin = self.context.builtins[name]
        numbers = DataType.ARRAY(DataType.FLOAT)
        if name == "abs" and builtin is abs and given == [DataType.FLOAT]:
            return self.decimal.abs  # type: ignore[no-any-return]
        if name in ("min", "max") and builtin is {"min": min, "max": max}[name] and given == [numbers]:
            return builtin  # empty arrays raise, as in rule-engine
        if name == "sum" and builtin is sum and given == [numbers]:
            return rt.decimal_sum(self.decimal)
        arrays = len(given) == 1 and DataType.is_type(given[0], DataType.ARRAY)
        if name in ("any", "all") and builtin is {"any": any, "all": all}[name] and arrays:
            return builtin
        if name == "range" and builtin is bounded_range and all(t == DataType.FLOAT for t in given):
            return rt.decimal_range
        split_types = [DataType.STRING, DataType.STRING, DataType.FLOAT][: len(given)]
        if name == "split" and builtin is re_builtins._builtins_split and given == split_types:
            return rt.split
        if given == [DataType.STRING]:
            if name == "parse_timedelta" and builtin is re_parse.parse_timedelta:
                return re_parse.parse_timedelta  # type: ignore[no-any-return]
            if (
                name == "parse_datetime"
                and getattr(builtin, "func", None) is re_builtins._builtin_parse_datetime
            ):
                return functools.partial(re_parse.parse_datetime, default_timezone=builtin.args[0].timezone)
        raise NotCompilable(f"${name}()")

    dispatch: ClassVar[dict[type, Callable[[_Generator, Any], ast.expr]]] = {
        re_ast.BooleanExpression: literal,
        re_ast.BytesExpression: literal,
        re_ast.DatetimeExpression: literal,
        re_ast.FloatExpression: literal,
        re_ast.NullExpression: literal,
        re_ast.StringExpression: literal,
        re_ast.TimedeltaExpression: literal,
        re_ast.ArrayExpression: array,
        re_ast.SetExpression: set_,
        re_ast.SymbolExpression: symbol,
        re_ast.GetAttributeExpression: attribute,
        re_ast.GetItemExpression: item,
        re_ast.GetSliceExpression: slice_,
        re_ast.LogicExpression: logic,
        re_ast.UnaryExpression: unary,
        re_ast.AddExpression: add_or_subtract,
        re_ast.SubtractExpression: add_or_subtract,
        re_ast.ArithmeticExpression: arithmetic,
        re_ast.BitwiseExpression: bitwise,
        re_ast.BitwiseShiftExpression: bitwise,
        re_ast.ComparisonExpression: equality,
        re_ast.ArithmeticComparisonExpression: ordering,
        Re2Comparison: regex,  # never rule-engine's FuzzyComparisonExpression: that one runs Python's re
        re_ast.ContainsExpression: contains,
        re_ast.TernaryExpression: ternary,
        re_ast.CoalesceExpression: coalesce,
        re_ast.ComprehensionExpression: comprehension,
        re_ast.FunctionCallExpression: call,
    }


def compile_rule(rule: Any, access: FactsAccess, compared: Compared | None = None) -> Function | None:
    """A function with ``rule``'s semantics, or None (counted) where the interpreter must stay.
    ``compared``: see ``_Generator.function``."""
    try:
        function = _compile(rule, access, compared)
    except NotCompilable as exc:
        counts["interpreted"] += 1
        fallback_reasons[str(exc)] += 1
        return None
    counts["compiled"] += 1
    return function


def compile_chain(
    rules: list[Any | None],
    access: FactsAccess,
    first: bool,
    retry: Function,
    not_boolean: Function,
    matches: list[Any],
    explained: Explained | None = None,
) -> Function:
    """The rule-engine ``rules`` (each one that ``compile_rule`` compiled, else None; at least
    one compiled) as one function: see ``_Generator.chain``."""
    context = next(rule.context for rule in rules if rule is not None)
    return _Generator(context, access).chain(rules, first, retry, not_boolean, matches, explained)


def _compile(rule: Any, access: FactsAccess, compared: Compared | None) -> Function:
    context = rule.context
    if getattr(context, "_Context__resolver", None) is not re_context.resolve_item:
        raise NotCompilable("custom symbol resolver")  # compiled code reads facts[name]
    if not all(context.decimal_context.traps[trap] for trap in _TRAPS):
        raise NotCompilable("decimal context without the default traps")  # NaN could arise
    return _Generator(context, access).function(rule.statement, compared)
