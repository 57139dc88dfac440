"""Request limits: the same refusals, with the same field paths, on both transports.

Most REST routes parse their JSON body into the same protobuf message gRPC
receives, and walking that message (``check_request``) checks it whichever
way it came; ``Decide`` and ``DecideBatch`` over REST skip the message and
are checked on their JSON (below). The sizes that must be
refused before parsing (body bytes, message bytes) are set on Flask and
grpcio from the same ``RequestLimits``.

A request's ``profile`` (a ``Struct``) is the bulk of it, and it is walked
anyway to convert it to plain Python, so it is checked there, in the same
walk (``struct_to_dict``, ``json_profile``): ``check_request`` and
``check_json`` leave it to whoever converts it (``convert.decide_request``
and the like, handed the checker). Each check is one pass over the values;
two passes cost about 5% of a ``DecideBatch``.

REST's ``Decide`` and ``DecideBatch`` skip the wire message (see
``convert_json``); ``check_json`` walks their parsed JSON with the same
limits, counting nesting from each ``profile`` as the message walk counts it
from the ``Struct``, so the refusals are the same there too.

Numbers inside ``google.protobuf.Value`` are doubles: a gRPC caller can send
NaN or Infinity there, and JSON's ``1e999`` overflows to Infinity. None of
them is a value a profile or an event can hold, so they are refused by path
(``profile.spend_365d``) instead of reaching a rule, where ``NaN > 1`` is
neither true nor false.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, cast

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from strata.config import RequestLimits
from strata.errors import InvalidArgument, Problem, ResourceExhausted, StrataError

#: Strings bounded by the body or message size only: a rule file is checked by the registry's own limits.
UNBOUNDED_STRINGS = frozenset({"strata.v1.PublishVersionRequest.content"})
#: The fields of a JSON request that are ``Struct``s in its message: nesting is counted from them.
STRUCT_FIELDS = frozenset({"profile"})
_STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name
NOT_FINITE = "a number is not finite"


def _join(path: str, name: str | int) -> str:
    return f"{path}.{name}" if path else str(name)


def not_finite(path: str) -> InvalidArgument:
    """The error for NaN, Infinity or a number beyond the double range, at ``path``."""
    return InvalidArgument(
        NOT_FINITE, [Problem("NaN, Infinity and numbers beyond ±1.8e308 are refused", field=path)]
    )


class _Refused(Exception):
    """A violation on its way up: each container adds its key, so paths are built only on failure."""

    def __init__(self, error: Callable[[str], StrataError]) -> None:
        self.error = error
        self.keys: list[str | int] = []


_STRING, _DOUBLE, _STRUCT_VALUE, _MESSAGE, _SIZE = range(5)
_Plan = tuple[tuple[str, bool, int], ...]


@functools.cache
def _plan(descriptor: Descriptor) -> _Plan:
    """The fields of a message that ``check_request`` looks at: ``(name, repeated, kind)``.

    Worked out once per message type from its descriptor, so the walk reads only the fields that
    can break a limit (strings, doubles, ``Struct``s other than a profile, messages holding any
    of these, and the size of every list and map) and skips the rest (a ``Timestamp``, an enum).
    """
    return _steps(descriptor, frozenset())


@functools.cache
def _sizes_only(descriptor: Descriptor) -> bool:
    """Whether every check ``check_request`` makes on this message is a size: a string's length or
    a list's items, never a number's value. Then a message of n bytes cannot break a limit above n:
    a string of n characters takes at least n bytes in UTF-8, a list of n items at least n.
    """
    return _only_sizes(descriptor, frozenset())


def _only_sizes(descriptor: Descriptor, outer: frozenset[str]) -> bool:
    for name, _, kind in _plan(descriptor):
        if kind == _MESSAGE:
            inner = cast(Descriptor, descriptor.fields_by_name[name].message_type)
            if inner.full_name in outer or not _only_sizes(inner, outer | {descriptor.full_name}):
                return False  # a recursive message is walked: its depth is not a size
        elif kind != _STRING:
            return False
    return True


def _steps(descriptor: Descriptor, outer: frozenset[str]) -> _Plan:
    steps = []
    for field in sorted(descriptor.fields, key=lambda field: field.number):
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            kind = _SIZE  # a map: its size only
        elif field.type == FieldDescriptor.TYPE_STRING:
            kind = _SIZE if field.full_name in UNBOUNDED_STRINGS else _STRING
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            kind = _DOUBLE
        elif message is not None and message.full_name == _STRUCT:
            # the only free-form JSON in the requests (no bare Value fields); a profile is
            # checked where it is converted
            kind = _SIZE if field.name in STRUCT_FIELDS else _STRUCT_VALUE
        elif message is not None:
            inner = message.full_name in outer or _steps(message, outer | {descriptor.full_name})
            kind = _MESSAGE if inner else _SIZE
        else:
            kind = _SIZE
        if kind != _SIZE or field.is_repeated:
            steps.append((field.name, field.is_repeated, kind))
    return tuple(steps)


class RequestChecker:
    """Checks a parsed request against ``RequestLimits``; the first violation raises, naming its field.

    Runs on every request, so the walk does the least per value: one range
    comparison per number (NaN and the infinities fail it too), a length per
    string and list, and field paths only for the one that fails.
    """

    def __init__(self, limits: RequestLimits) -> None:
        self.limits = limits
        self._too_long = self._size("a string", limits.max_string_chars)
        self._too_many = self._size("a list", limits.max_list_items)
        self._too_deep = self._size("the nesting", limits.max_depth)
        #: Bytes below every size limit: a message of ``_sizes_only`` this small passes unwalked.
        self._small = min(limits.max_string_chars, limits.max_list_items)

    @staticmethod
    def _size(what: str, limit: int) -> Callable[[str], StrataError]:
        return lambda path: ResourceExhausted(
            f"{what} is too large", [Problem(f"at most {limit} are accepted", field=path)]
        )

    def _number(self, value: float) -> Callable[[str], StrataError]:
        if not math.isfinite(value):
            return not_finite
        limit = self.limits.max_integer
        return lambda path: InvalidArgument(
            "an integer is out of range", [Problem(f"at most ±{limit} (2^53 - 1) is exact", field=path)]
        )

    @staticmethod
    def _raise(refused: _Refused, prefix: str, default: str = "") -> NoReturn:
        keys = [prefix] if prefix else []
        keys.extend(str(key) for key in reversed(refused.keys))
        raise refused.error(".".join(keys) or default) from None

    def check_request(self, message: Message) -> None:
        """Raise ``ResourceExhausted`` (sizes) or ``InvalidArgument`` (number values) for ``message``.

        Its ``profile`` fields are not walked: ``struct_to_dict`` checks them as it converts them.
        """
        try:
            self._message(message)
        except _Refused as refused:
            self._raise(refused, "")

    def struct_to_dict(self, struct: struct_pb2.Struct, field: str) -> dict[str, Any]:
        """A request's ``Struct`` (at ``field``) as plain Python, checked on the way.

        Whole numbers become ints, as the profile schema has integers: the
        check has refused any beyond ±(2^53 - 1), so every whole one is exact.
        """
        try:
            return self._struct(struct, 1)
        except _Refused as refused:
            self._raise(refused, field)

    def check_json(self, data: Any) -> None:
        """The same checks on a parsed JSON request (REST's shortcut past the wire message).

        A ``profile`` that is a JSON object is not walked: ``json_profile`` checks it as it reads it.
        """
        try:
            self._json(data, 0)
        except _Refused as refused:
            self._raise(refused, "", "body")

    def json_profile(self, profile: dict[str, Any], field: str) -> dict[str, Any]:
        """A JSON ``profile`` object (at ``field``), checked, with its numbers read as a ``Struct`` reads
        them (``convert_json.struct_value``): whole ones are ints, the others floats."""
        try:
            result: dict[str, Any] = self._json_value(profile, 1)
        except _Refused as refused:
            self._raise(refused, field)
        return result

    def _json(self, value: Any, depth: int) -> None:
        """``depth``: 0 outside a ``Struct`` field, else the level ``value`` sits at (the profile is 1)."""
        cls = value.__class__
        if cls is str:
            if len(value) > self.limits.max_string_chars:
                raise _Refused(self._too_long)
        elif cls is float or cls is int:
            if not -self.limits.max_integer <= value <= self.limits.max_integer:
                raise _Refused(self._number(float(value)))
        elif cls is dict or cls is list:
            if depth > self.limits.max_depth:
                raise _Refused(self._too_deep)
            if (depth or cls is list) and len(value) > self.limits.max_list_items:
                raise _Refused(self._too_many)
            items = value.items() if cls is dict else enumerate(value)
            for key, item in items:
                try:
                    if isinstance(key, str) and len(key) > self.limits.max_string_chars:
                        raise _Refused(self._too_long)
                    if depth:
                        self._json(item, depth + 1)
                    elif cls is dict and key in STRUCT_FIELDS:
                        if item.__class__ is not dict:  # an object is checked where it is read
                            self._json(item, 1)
                    else:
                        self._json(item, 0)
                except _Refused as refused:
                    refused.keys.append(key)
                    raise

    def _json_value(self, value: Any, depth: int) -> Any:
        """``value``, at level ``depth`` of a profile, checked and read as a ``Struct`` would hold it."""
        cls = value.__class__
        if cls is str:
            if len(value) > self.limits.max_string_chars:
                raise _Refused(self._too_long)
            return value
        if cls is int or cls is float:
            if not -self.limits.max_integer <= value <= self.limits.max_integer:
                raise _Refused(self._number(float(value)))
            return int(value) if cls is int or value.is_integer() else value
        if cls is dict or cls is list:
            if depth > self.limits.max_depth:
                raise _Refused(self._too_deep)
            if len(value) > self.limits.max_list_items:
                raise _Refused(self._too_many)
            longest, inner = self.limits.max_string_chars, depth + 1
            if cls is list:
                result: list[Any] = []
                for index, item in enumerate(value):
                    try:
                        result.append(self._json_value(item, inner))
                    except _Refused as refused:
                        refused.keys.append(index)
                        raise
                return result
            converted: dict[str, Any] = {}
            for key, item in value.items():
                try:
                    if len(key) > longest:
                        raise _Refused(self._too_long)
                    converted[key] = self._json_value(item, inner)
                except _Refused as refused:
                    refused.keys.append(key)
                    raise
            return converted
        return value  # true, false, null: the JSON parser gives nothing else

    def _message(self, message: Message) -> None:
        descriptor = message.DESCRIPTOR
        if _sizes_only(descriptor) and message.ByteSize() <= self._small:
            return  # a batch's requests: one C call each instead of a walk
        for name, repeated, kind in _plan(descriptor):
            try:
                if repeated:
                    values = getattr(message, name)
                    if len(values) > self.limits.max_list_items:
                        raise _Refused(self._too_many)
                    if kind != _SIZE:
                        for index, item in enumerate(values):
                            try:
                                self._field(kind, item)
                            except _Refused as refused:
                                refused.keys.append(index)
                                raise
                elif kind <= _DOUBLE or message.HasField(name):  # an unset scalar reads as "" or 0
                    self._field(kind, getattr(message, name))
            except _Refused as refused:
                refused.keys.append(name)
                raise

    def _field(self, kind: int, value: Any) -> None:
        if kind == _STRING:
            if len(value) > self.limits.max_string_chars:
                raise _Refused(self._too_long)
        elif kind == _DOUBLE:
            if not -self.limits.max_integer <= value <= self.limits.max_integer:
                raise _Refused(self._number(value))
        elif kind == _STRUCT_VALUE:
            self._struct(value, 1)
        else:
            self._message(value)

    def _struct(self, struct: struct_pb2.Struct, depth: int) -> dict[str, Any]:
        if depth > self.limits.max_depth:
            raise _Refused(self._too_deep)
        fields = struct.fields
        if len(fields) > self.limits.max_list_items:
            raise _Refused(self._too_many)
        result: dict[str, Any] = {}
        longest = self.limits.max_string_chars
        for key, value in fields.items():
            try:
                if len(key) > longest:
                    raise _Refused(self._too_long)
                result[key] = self._value(value, depth)
            except _Refused as refused:
                refused.keys.append(key)
                raise
        return result

    def _list(self, values: struct_pb2.ListValue, depth: int) -> list[Any]:
        if depth > self.limits.max_depth:
            raise _Refused(self._too_deep)
        items = values.values
        if len(items) > self.limits.max_list_items:
            raise _Refused(self._too_many)
        result: list[Any] = []
        for index, value in enumerate(items):
            try:
                result.append(self._value(value, depth))
            except _Refused as refused:
                refused.keys.append(index)
                raise
        return result

    def _value(self, value: struct_pb2.Value, depth: int) -> Any:
        """One value of an object or list at level ``depth``, as plain Python (``convert.value_to_python``)."""
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            number = value.number_value
            largest = self.limits.max_integer
            if not -largest <= number <= largest:
                raise _Refused(self._number(number))
            return int(number) if number.is_integer() else number
        if kind == "string_value":
            text = value.string_value
            if len(text) > self.limits.max_string_chars:
                raise _Refused(self._too_long)
            return text
        if kind == "bool_value":
            return value.bool_value
        if kind == "struct_value":
            return self._struct(value.struct_value, depth + 1)
        if kind == "list_value":
            return self._list(value.list_value, depth + 1)
        return None


def _non_finite_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite_paths(item, _join(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite_paths(item, _join(path, index))


def locate_non_finite(body: bytes, prefix: str = "") -> str | None:
    """The path of the first NaN, Infinity or overflowing number in a JSON body that orjson refused.

    Only runs on a body that already failed to parse, so the valid path pays
    nothing; the standard library's parser accepts these tokens (as float
    NaN and infinities), which is what lets it point at them.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return next(_non_finite_paths(data, prefix), None)
