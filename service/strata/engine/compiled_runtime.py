"""What compiled rule expressions call at run time, with rule-engine's semantics.

``strata.engine.compiler`` generates the code; this module holds what that code
is handed: the loaders that coerce values entering from outside (facts, object
attributes) into the types the generated code assumes, exactly as rule-engine
coerces them, and the operations whose semantics take more than one Python
expression (rule-engine's equality, ordering of arrays, Decimal contexts,
indexing, string and date functions, ``$range``, RE2 matching). A value that
does not have the assumed type raises ``Unexpected``, which hands the
expression back to the interpreter.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import operator
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from rule_engine import types as re_types

from strata.engine.limits import LIMITS, range_length
from strata.engine.parsing import compile_regex

DataType = re_types.DataType
Function = Callable[[Any], Any]


class NotCompilable(Exception):
    """A construct the compiler does not translate; the expression stays interpreted."""


class Unexpected(Exception):
    """A value compiled code does not handle; the interpreter evaluates the expression instead."""


class NonFinite(Unexpected):
    """A power gave infinity (``0 ** -1``): rule-engine's infinities are the interpreter's business."""


# --------------------------------------------------------------------------
# Run time: loading values into the types compiled code assumes
# --------------------------------------------------------------------------


def load_float(value: Any) -> Decimal:
    """A FLOAT as rule-engine coerces it (ints exactly, floats by repr), finite."""
    cls = value.__class__
    if cls is int:
        return Decimal(value)
    if cls is Decimal and value.is_finite():
        return value  # type: ignore[no-any-return]
    if cls is float and math.isfinite(value):
        return Decimal(repr(value))
    raise Unexpected


def load_string(value: Any) -> str:
    if value.__class__ is str:
        return value
    raise Unexpected


def load_boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise Unexpected


def load_timedelta(value: Any) -> dt.timedelta:
    if value.__class__ is dt.timedelta:
        return value
    raise Unexpected


def load_bytes(value: Any) -> bytes:
    if value.__class__ is bytes:
        return value
    raise Unexpected


def load_aware(value: Any) -> dt.datetime:
    if value.__class__ is dt.datetime and value.tzinfo is not None:
        return value
    raise Unexpected


def datetime_loader(zone: dt.tzinfo) -> Function:
    """A top-level DATETIME: a date is its midnight, a naive value gets the context's zone."""

    def load(value: Any) -> dt.datetime:
        cls = value.__class__
        if cls is dt.datetime:
            return value if value.tzinfo is not None else value.replace(tzinfo=zone)  # type: ignore[no-any-return]
        if cls is dt.date:
            return dt.datetime(value.year, value.month, value.day, tzinfo=zone)
        raise Unexpected

    return load


def nullable(load: Function) -> Function:
    def load_nullable(value: Any) -> Any:
        return None if value is None else load(value)

    return load_nullable


def array_of(load: Function) -> Function:
    def array(value: Any) -> tuple[Any, ...]:
        if value.__class__ is not tuple and value.__class__ is not list:
            raise Unexpected
        return tuple([load(item) for item in value])

    return array


def load_string_array(value: Any) -> tuple[str, ...]:
    """ARRAY(STRING), the common case: a tuple of strings is already what rule-engine makes of it."""
    cls = value.__class__
    if cls is not tuple and cls is not list:
        raise Unexpected
    for item in value:
        if item.__class__ is not str:
            raise Unexpected
    return value if cls is tuple else tuple(value)


def mapping_of(load_key: Function, load_value: Function) -> Function:
    def mapping(value: Any) -> OrderedDict[Any, Any]:
        if value.__class__ is not dict and value.__class__ is not OrderedDict:
            raise Unexpected
        return OrderedDict([(load_key(key), load_value(item)) for key, item in value.items()])

    return mapping


def loader(dtype: Any, zone: dt.tzinfo, top: bool = True) -> Function | None:
    """How a value of static type ``dtype`` enters compiled code; None for OBJECT (read raw).

    ``top`` is a value rule-engine hands to ``_new_value`` (a symbol, an
    attribute): a naive datetime there gets the context's zone. Members of
    arrays and mappings do not, so compiled code takes only aware ones.
    """
    if DataType.is_type(dtype, DataType.NULLABLE):
        inner = loader(dtype.inner_type, zone, top)
        return None if inner is None else nullable(inner)
    if DataType.is_type(dtype, DataType.OBJECT):
        if not top:
            raise NotCompilable("OBJECT members")
        return None
    scalars: dict[Any, Function] = {
        DataType.FLOAT: load_float,
        DataType.STRING: load_string,
        DataType.BOOLEAN: load_boolean,
        DataType.TIMEDELTA: load_timedelta,
        DataType.BYTES: load_bytes,
        DataType.DATETIME: datetime_loader(zone) if top else load_aware,
    }
    for scalar, load in scalars.items():
        if dtype == scalar:
            return load
    if DataType.is_type(dtype, DataType.ARRAY):
        if dtype.value_type == DataType.STRING:
            return load_string_array
        member = loader(dtype.value_type, zone, top=False)
        assert member is not None
        return array_of(member)
    if DataType.is_type(dtype, DataType.MAPPING):
        key, value = loader(dtype.key_type, zone, top=False), loader(dtype.value_type, zone, top=False)
        assert key is not None and value is not None
        return mapping_of(key, value)
    raise NotCompilable(f"values of type {dtype.name}")


# --------------------------------------------------------------------------
# Run time: helpers for operations with more than one line of semantics
# --------------------------------------------------------------------------


def same_type_equal(left: Any, right: Any) -> bool:
    """rule-engine's ``==``: values of different types are never equal (``1 == true`` is false)."""
    return type(left) is type(right) and left == right  # rule-engine's exact test


def same_type_unequal(left: Any, right: Any) -> bool:
    return type(left) is not type(right) or left != right


def ordered(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    """rule-engine's ordered comparison, for arrays: element by element, then by length."""
    if left is None and right is None:
        return op in (operator.ge, operator.le)
    if isinstance(left, tuple) and isinstance(right, tuple):
        for left_item, right_item in zip(left, right, strict=False):
            if ordered(operator.ne, left_item, right_item):
                return ordered(op, left_item, right_item)
        if len(left) != len(right):
            return ordered(op, len(left), len(right))
        return op in (operator.ge, operator.le)
    if type(left) is not type(right):
        raise Unexpected
    return op(left, right)


def integer(value: Decimal) -> int:
    """An index: rule-engine refuses numbers with a fraction."""
    whole = int(value)
    if whole != value:
        raise Unexpected
    return whole


def item(sequence: Any, index: Decimal) -> Any:
    return sequence[integer(index)]


def item_safe(sequence: Any, index: Decimal) -> Any:
    try:
        return sequence[integer(index)]
    except IndexError:
        return None


def slice_of(sequence: Any, start: Decimal | None, stop: Decimal | None) -> Any:
    first = None if start is None else integer(start)
    last = None if stop is None else integer(stop)
    return sequence[first:last]


def natural(value: Decimal) -> int:
    whole = int(value)
    if whole != value or whole < 0:
        raise Unexpected
    return whole


def bitwise(op: Callable[[int, int], int]) -> Callable[[Decimal, Decimal], Decimal]:
    def apply(left: Decimal, right: Decimal) -> Decimal:
        return Decimal(op(natural(left), natural(right)))

    return apply


def decimal_sum(context: decimal.Context) -> Callable[[tuple[Decimal, ...]], Decimal]:
    add = context.add

    def total(values: tuple[Decimal, ...]) -> Decimal:
        result: Decimal | int = 0  # Python's sum starts from the int 0, as $sum does
        for value in values:
            result = add(result, value)
        return result if isinstance(result, Decimal) else Decimal(result)

    return total


def finite_power(context: decimal.Context) -> Callable[[Decimal, Decimal], Decimal]:
    """``**``: the one operation whose traps let infinity through (``0 ** -1``), which compiled
    code never holds; the interpreter evaluates such expressions."""
    power = context.power

    def finite(base: Decimal, exponent: Decimal) -> Decimal:
        result = power(base, exponent)
        if not result.is_finite():
            raise NonFinite
        return result

    return finite


EXACT = 10**28
"""Below this, int sums are what the 28-digit decimal context computes (see ``compiler``: ``+`` and
``-`` on two ints stay ints within it)."""


def string_contains(member: Any, container: str) -> bool:
    if member.__class__ is not str:
        raise Unexpected  # rule-engine: data type mismatch
    return member in container


def zone_name(value: dt.datetime) -> str:
    name = value.tzname()
    if name is None:
        raise Unexpected  # rule-engine: attribute of the wrong type
    return name


def weekday(value: dt.datetime) -> str:
    """Called from here, not inlined: ``strftime`` imports ``time`` through the caller's builtins,
    and generated code has none."""
    return value.strftime("%A")


def to_int(value: Decimal) -> Decimal:
    integer(value)
    return value


def starts_with(value: Any, prefix: Any) -> bool:
    return bool(value[: len(prefix)] == prefix)


def ends_with(value: Any, suffix: Any) -> bool:
    return bool(value[len(value) - len(suffix) :] == suffix)


def decimal_range(*arguments: Decimal) -> tuple[Decimal, ...]:
    numbers = [integer(a) for a in arguments]
    if range_length(*numbers) > LIMITS.range_items:
        raise Unexpected  # the interpreter's $range refuses it with the limit's message
    return tuple(Decimal(number) for number in range(*numbers))


def split(string: str, separator: str | None = None, limit: Decimal | None = None) -> tuple[str, ...]:
    return tuple(string.split(sep=separator, maxsplit=-1 if limit is None else natural(limit)))


def as_float(value: float) -> Decimal:
    """A Python float result (``total_seconds``, ``to_epoch``) as rule-engine coerces it."""
    return Decimal(repr(value))


def regex_matcher(method: str, negate: bool) -> Callable[[str, str], bool]:
    """``=~`` and friends with a pattern computed at run time, matched by RE2 as the interpreter does."""

    def matches(value: str, pattern: str) -> bool:
        found = getattr(compile_regex(pattern), method)(value) is not None
        return found is not negate

    return matches
