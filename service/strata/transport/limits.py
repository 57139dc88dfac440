"""Request limits, checked on the parsed wire message: one check for both transports.

REST parses its JSON body into the same protobuf message gRPC receives, so
walking the message once (``check_request``) gives the same refusal, with
the same field path, whichever way a request came. The sizes that must be
refused before parsing (body bytes, message bytes) are set on Flask and
grpcio from the same ``RequestLimits``.

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

import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
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

    def check_request(self, message: Message) -> None:
        """Raise ``ResourceExhausted`` (sizes) or ``InvalidArgument`` (number values) for ``message``."""
        try:
            self._message(message)
        except _Refused as refused:
            raise refused.error(".".join(str(key) for key in reversed(refused.keys))) from None

    def check_json(self, data: Any) -> None:
        """The same checks on a parsed JSON request (REST's shortcut past the wire message)."""
        try:
            self._json(data, 0)
        except _Refused as refused:
            raise refused.error(".".join(str(key) for key in reversed(refused.keys)) or "body") from None

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
                    inner = depth + 1 if depth else (1 if cls is dict and key in STRUCT_FIELDS else 0)
                    self._json(item, inner)
                except _Refused as refused:
                    refused.keys.append(key)
                    raise

    def _message(self, message: Message) -> None:
        for field, value in message.ListFields():
            try:
                if field.is_repeated:
                    if len(value) > self.limits.max_list_items:
                        raise _Refused(self._too_many)
                    if field.message_type is None or not field.message_type.GetOptions().map_entry:
                        for index, item in enumerate(value):
                            try:
                                self._field(field, item)
                            except _Refused as refused:
                                refused.keys.append(index)
                                raise
                else:
                    self._field(field, value)
            except _Refused as refused:
                refused.keys.append(field.name)
                raise

    def _field(self, field: FieldDescriptor, value: Any) -> None:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            if len(value) > self.limits.max_string_chars and field.full_name not in UNBOUNDED_STRINGS:
                raise _Refused(self._too_long)
        elif kind == FieldDescriptor.TYPE_DOUBLE or kind == FieldDescriptor.TYPE_FLOAT:
            if not -self.limits.max_integer <= value <= self.limits.max_integer:
                raise _Refused(self._number(value))
        elif field.message_type is not None:
            full_name = field.message_type.full_name
            if full_name == _STRUCT:  # the only free-form JSON in the requests (no bare Value fields)
                self._struct(value, 1)
            else:
                self._message(value)

    def _struct(self, struct: struct_pb2.Struct, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise _Refused(self._too_deep)
        fields = struct.fields
        if len(fields) > self.limits.max_list_items:
            raise _Refused(self._too_many)
        self._values(((key, fields[key]) for key in fields), depth)

    def _list(self, values: struct_pb2.ListValue, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise _Refused(self._too_deep)
        items = values.values
        if len(items) > self.limits.max_list_items:
            raise _Refused(self._too_many)
        self._values(enumerate(items), depth)

    def _values(self, items: Iterable[tuple[str | int, struct_pb2.Value]], depth: int) -> None:
        """The values of one object or list at level ``depth``; scalars inline, since most values are."""
        longest, largest = self.limits.max_string_chars, self.limits.max_integer
        for key, value in items:
            try:
                if isinstance(key, str) and len(key) > longest:
                    raise _Refused(self._too_long)
                kind = value.WhichOneof("kind")
                if kind == "string_value":
                    if len(value.string_value) > longest:
                        raise _Refused(self._too_long)
                elif kind == "number_value":
                    number = value.number_value
                    if not -largest <= number <= largest:
                        raise _Refused(self._number(number))
                elif kind == "struct_value":
                    self._struct(value.struct_value, depth + 1)
                elif kind == "list_value":
                    self._list(value.list_value, depth + 1)
            except _Refused as refused:
                refused.keys.append(key)
                raise


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
