"""gRPC's shortcut for ``Decide`` and ``DecideBatch``: the response's protobuf bytes, encoded in Python.

Building the upb messages (``convert.decide_response``) and serialising them was a third of a
500-user batch's CPU and a quarter of a gRPC ``Decide``'s: every field set is a call into upb,
and each hit's facts a ``google.protobuf.Struct`` of map entries and ``Value`` oneofs. This
module writes the same bytes straight from the domain objects (as ``convert_json`` writes
REST's documents), in few Python operations per field: what does not change between answers
is cached as ready-made bytes (a decision's provenance, a hit's rule and reason, a fact's map
entry up to its number's eight bytes, whole ``null``/boolean entries), lengths below
``_LENGTHS``' size are one list look-up, and each nesting level is joined once.

The caches hold bytes made of rule ids, reasons, fact names and ruleset provenance only
(never a fact's value, except ``None`` and booleans), each dropped whole when it reaches
``_CACHE_LIMIT`` entries (a reload, or reasons that quote request values, cannot grow them
without end). Threads may race on them: a lost update only means the bytes are made again.

The oracle is ``convert``: ``DecideResponse.FromString(decide_response(...))`` equals
``convert.decide_response(...)`` for every default ruleset, explanation level and generated
profile (tests/unit/test_convert_wire.py), and values the messages refuse are refused with
the same exceptions (``ValueError`` for an integer out of its field's range or a fact of
another type, ``OverflowError`` for an integer too large for a double).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from strata.api.strata.v1 import decision_pb2 as pb
from strata.decisions import DecideResult
from strata.engine.decision import (
    Action,
    Decision,
    IncentiveDecision,
    InterventionDecision,
    LifecycleDecision,
    RuleHit,
    SegmentDecision,
    SkippedAction,
)
from strata.errors import StrataError
from strata.transport import convert

_CACHE_LIMIT = 4096
_double = struct.Struct("<d").pack


def _varint(number: int) -> bytes:
    """A varint; a negative number as its 64-bit two's complement (ten bytes), as int32 and int64 are."""
    if number < 0:
        number += 1 << 64
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


_LENGTHS = [_varint(length) for length in range(1 << 12)]
"""The varint of each length below 4096 (one or two bytes): most messages here are shorter."""
_LENGTH_LIMIT = len(_LENGTHS)


def _length(size: int) -> bytes:
    return _LENGTHS[size] if size < _LENGTH_LIMIT else _varint(size)


def _key(message: type[Message], name: str) -> bytes:
    """The key (field number and wire type) of ``message``'s field ``name``, from its descriptor."""
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE):
        wire_type = 2
    elif field.type == FieldDescriptor.TYPE_DOUBLE:
        wire_type = 1
    else:
        wire_type = 0
    return _varint(field.number << 3 | wire_type)


def _int32(number: int) -> bytes:
    if not -(1 << 31) <= number < 1 << 31:
        raise ValueError(f"Value out of range: {number}")
    return _LENGTHS[number] if 0 <= number < _LENGTH_LIMIT else _varint(number)


def _int64(number: int) -> bytes:
    if not -(1 << 63) <= number < 1 << 63:
        raise ValueError(f"Value out of range: {number}")
    return _LENGTHS[number] if 0 <= number < _LENGTH_LIMIT else _varint(number)


def _field(key: bytes, payload: bytes) -> bytes:
    """A length-delimited field: a string's UTF-8 or a message's bytes."""
    return key + _length(len(payload)) + payload


def _text(key: bytes, text: str) -> bytes:
    return _field(key, text.encode())


class _Cache(dict[Any, bytes]):
    """Bytes ``make`` makes of their key, looked up as ``cache[key]`` (no Python call once made).

    Emptied when full (see the module's docstring)."""

    def __init__(self, make: Callable[[Any], bytes]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> bytes:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        made = self[key] = self.make(key)
        return made


def _texts(key: bytes) -> _Cache:
    """A string field's bytes by its text: for the words a ruleset answers with (stages, tags...)."""
    return _Cache(lambda text: _text(key, text))


# google.protobuf.Struct ------------------------------------------------------

_ENTRY = _key(struct_pb2.Struct, "fields")  # each field is a map entry: key 1, value 2
_ENTRY_KEY, _ENTRY_VALUE = b"\x0a", b"\x12"
_NULL = _key(struct_pb2.Value, "null_value") + b"\x00"
_NUMBER = _key(struct_pb2.Value, "number_value")
_STRING = _key(struct_pb2.Value, "string_value")
_TRUE, _FALSE = (_key(struct_pb2.Value, "bool_value") + flag for flag in (b"\x01", b"\x00"))
_STRUCT = _key(struct_pb2.Value, "struct_value")
_LIST = _key(struct_pb2.Value, "list_value")
_LIST_ITEM = _key(struct_pb2.ListValue, "values")


def _number_head(name: str) -> bytes:
    key = _text(_ENTRY_KEY, name)
    return _ENTRY + _length(len(key) + 11) + key + _ENTRY_VALUE + b"\x09" + _NUMBER


def _constant(item: tuple[str, Any]) -> bytes:
    name, value = item
    return _field(_ENTRY, _text(_ENTRY_KEY, name) + _field(_ENTRY_VALUE, _value(value)))


_number_heads = _Cache(_number_head)
"""A fact's name: its map entry up to the number's eight bytes (such an entry's length is constant)."""
_named = _Cache(lambda name: _text(_ENTRY_KEY, name) + _ENTRY_VALUE)
"""A fact's name: its map entry's key field and the tag of its value field (any other value)."""
_constants = _Cache(_constant)
"""A fact's name and ``None``, ``True`` or ``False``: the whole map entry."""


def _value(value: Any) -> bytes:
    """A ``Value`` message, with the checks of protobuf's ``Struct.update`` in its order (less its
    ``Struct`` and ``ListValue``: the engine's facts are plain Python)."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, str):
        return _text(_STRING, value)
    if isinstance(value, int | float):
        return _NUMBER + _double(float(value))
    if isinstance(value, dict):
        return _field(_STRUCT, _struct(value))
    if isinstance(value, list | tuple):
        return _field(_LIST, b"".join([_field(_LIST_ITEM, _value(item)) for item in value]))
    raise ValueError("Unexpected type")


def _struct(data: Mapping[str, Any]) -> bytes:
    """A ``Struct``'s bytes: the exact classes of the engine's facts first, as ``convert.fill_struct``
    sets them."""
    parts = []
    for name, value in data.items():
        cls = value.__class__
        if cls is int or cls is float:
            try:
                parts.append(_number_heads[name] + _double(value))
            except struct.error:  # an int beyond a double's range: refused as upb refuses it
                raise OverflowError("int too large to convert to float") from None
        elif cls is bool or value is None:
            parts.append(_constants[name, value])
        else:
            if cls is str:
                item = value.encode()
                item = _STRING + _length(len(item)) + item
            elif cls is dict:
                item = _struct(value)
                item = _STRUCT + _length(len(item)) + item
            else:
                item = _value(value)
            head = _named[name]
            size = _length(len(item))
            parts.append(_ENTRY + _length(len(head) + len(size) + len(item)) + head + size + item)
    return b"".join(parts)


# decisions -------------------------------------------------------------------

_RULESET = _key(pb.LifecycleDecision, "ruleset")
_CHECKSUM = _key(pb.LifecycleDecision, "checksum")
_VERSION = _key(pb.LifecycleDecision, "version")
_VERSION_REASON = _key(pb.LifecycleDecision, "version_reason")
_HIT = _key(pb.LifecycleDecision, "explanation")
"""The fields every decision kind has, numbered alike in each (a test checks it)."""
_RULE, _REASON, _FACTS = (_key(pb.RuleHit, name) for name in ("rule", "reason", "facts"))
FULL, RULES, NONE = convert.FULL, convert.RULES, convert.NONE


def _strings(*fields: tuple[bytes, str | None]) -> bytes:
    """String fields, each when set (an empty one too, when it has presence: ``None`` is unset)."""
    return b"".join([_text(key, text) for key, text in fields if text is not None])


def _head(key: tuple[str, str, int | None, str | None]) -> bytes:
    ruleset, checksum, version, version_reason = key
    head = _strings((_RULESET, ruleset or None), (_CHECKSUM, checksum or None))
    head += b"" if version is None else _VERSION + _int32(version)
    return head + _strings((_VERSION_REASON, version_reason))


_heads = _Cache(_head)
"""A decision's provenance (ruleset, checksum, version and why): its fields."""


def _rule(rule: str, reason: str) -> bytes:
    return _strings((_RULE, rule or None), (_REASON, reason or None))


def _hit_head(hit: tuple[str, str, int]) -> bytes:
    rule, reason, size = hit
    head = _rule(rule, reason) + _FACTS + _length(size)
    return _HIT + _length(len(head) + size) + head


_hit_heads = _Cache(_hit_head)
"""A hit's rule, reason and the size of its facts: the hit's bytes up to the facts (FULL)."""
_brief_hits = _Cache(lambda hit: _field(_HIT, _rule(*hit)))
"""A hit's rule and reason: the whole hit without its facts (RULES)."""


def _hits(parts: list[bytes], hits: Sequence[RuleHit], explain: int) -> None:
    """The explanation at ``explain``'s level (not NONE), onto ``parts``: the hot loop of a batch."""
    if explain == FULL:
        heads = _hit_heads
        for hit in hits:
            facts = _struct(hit.facts) if hit.facts else b""
            parts.append(heads[hit.rule, hit.reason, len(facts)] + facts)
    else:
        parts += [_brief_hits[hit.rule, hit.reason] for hit in hits]


_MAP_KEY, _MAP_VALUE = b"\x0a", b"\x10"  # a map<string, int32 | int64> entry: key 1, value 2


def _map_head(key: bytes) -> _Cache:
    """A ``map<string, int32 | int64>`` entry's bytes by its key, all but a value below 128."""

    def head(name: str) -> bytes:
        name_field = _text(_MAP_KEY, name)
        return key + _length(len(name_field) + 2) + name_field + _MAP_VALUE

    return _Cache(head)


def _map(parts: list[bytes], key: bytes, heads: _Cache, data: Mapping[str, int], varint: Any) -> None:
    """The entries of a ``map<string, int32 | int64>`` (``varint``: the value type's encoder)."""
    for name, value in data.items():
        if 0 <= value < 128:
            parts.append(heads[name] + _LENGTHS[value])
        else:
            parts.append(_field(key, _text(_MAP_KEY, name) + _MAP_VALUE + varint(value)))


def _keys(message: type[Message], *names: str) -> list[bytes]:
    return [_key(message, name) for name in names]


_STAGES = _texts(_key(pb.LifecycleDecision, "stage"))
_SEGMENTS, _TAGS = (_texts(_key(pb.SegmentDecision, name)) for name in ("segment", "tags"))
_SCORES = _key(pb.SegmentDecision, "scores")
_SCORE_HEADS = _map_head(_SCORES)


def _lifecycle(parts: list[bytes], decision: LifecycleDecision) -> None:
    if decision.stage:
        parts.append(_STAGES[decision.stage])


def _segment(parts: list[bytes], decision: SegmentDecision) -> None:
    if decision.segment:
        parts.append(_SEGMENTS[decision.segment])
    if decision.scores:
        _map(parts, _SCORES, _SCORE_HEADS, decision.scores, _int32)
    if decision.tags:
        parts += [_TAGS[tag] for tag in decision.tags]


_EVENT_TYPES, _STREAKS, _BADGES, _PRIVILEGES = (
    _texts(_key(pb.IncentiveDecision, name))
    for name in ("event_type", "streak", "badges_unlocked", "privileges")
)
_DAYS = _Cache(lambda day: _text(_key(pb.IncentiveDecision, "local_day"), day.isoformat()))
_EARNED, _BEFORE_CAP, _TOTAL = _keys(
    pb.IncentiveDecision, "points_earned", "points_before_cap", "points_total"
)
_STREAK_DAYS, _LEVEL, _PREVIOUS_LEVEL = _keys(pb.IncentiveDecision, "streak_days", "level", "previous_level")
_CAPPED, _LEVEL_UP = (_key(pb.IncentiveDecision, name) + b"\x01" for name in ("capped", "level_up"))
_DAILY_POINTS = _key(pb.IncentiveDecision, "daily_points")
_DAILY_HEADS = _map_head(_DAILY_POINTS)


def _incentive(parts: list[bytes], decision: IncentiveDecision) -> None:
    if decision.event_type:
        parts.append(_EVENT_TYPES[decision.event_type])
    parts.append(_DAYS[decision.local_day])
    if decision.points_earned:
        parts.append(_EARNED + _int64(decision.points_earned))
    if decision.points_before_cap:
        parts.append(_BEFORE_CAP + _int64(decision.points_before_cap))
    if decision.capped:
        parts.append(_CAPPED)
    if decision.points_total:
        parts.append(_TOTAL + _int64(decision.points_total))
    if decision.daily_points:
        _map(parts, _DAILY_POINTS, _DAILY_HEADS, decision.daily_points, _int64)
    if decision.streak:
        parts.append(_STREAKS[decision.streak])
    if decision.streak_days:
        parts.append(_STREAK_DAYS + _int32(decision.streak_days))
    if decision.level:
        parts.append(_LEVEL + _int32(decision.level))
    if decision.previous_level:
        parts.append(_PREVIOUS_LEVEL + _int32(decision.previous_level))
    if decision.level_up:
        parts.append(_LEVEL_UP)
    if decision.badges_unlocked:
        parts += [_BADGES[badge] for badge in decision.badges_unlocked]
    if decision.privileges:
        parts += [_PRIVILEGES[privilege] for privilege in decision.privileges]


_ID, _CHANNEL, _TEMPLATE, _OFFER, _PRIORITY, _WHY, _COOLDOWN = _keys(
    pb.Action, "id", "channel", "template", "offer", "priority", "reason", "cooldown_seconds"
)
_SKIPPED_ID, _SKIPPED_WHY, _UNTIL = _keys(pb.SkippedAction, "id", "why", "until")
_ACTIONS, _SKIPPED = _keys(pb.InterventionDecision, "actions", "skipped")
_CONTEXT_STAGES, _CONTEXT_SEGMENTS = (
    _texts(_key(pb.InterventionDecision, name)) for name in ("stage", "segment")
)


def _action(action: Action) -> bytes:
    body = _strings((_ID, action.id or None), (_CHANNEL, action.channel or None),
                    (_TEMPLATE, action.template), (_OFFER, action.offer))  # fmt: skip
    body += _PRIORITY + _int32(action.priority) if action.priority else b""
    body += _strings((_WHY, action.reason or None))
    body += _COOLDOWN + _int32(action.cooldown_seconds) if action.cooldown_seconds else b""
    return _field(_ACTIONS, body)


_ACTION_FIELDS = _Cache(_action)
"""An action (the ruleset's own objects, shared by its decisions): the whole field."""


def _skipped(skipped: SkippedAction) -> bytes:
    body = _strings((_SKIPPED_ID, skipped.id or None), (_SKIPPED_WHY, skipped.why or None))
    if skipped.until is not None:
        body += _field(_UNTIL, convert.to_timestamp(skipped.until).SerializeToString())
    return _field(_SKIPPED, body)


def _intervention(parts: list[bytes], decision: InterventionDecision) -> None:
    parts += [_ACTION_FIELDS[action] for action in decision.actions]
    if decision.skipped:
        parts += [_skipped(skipped) for skipped in decision.skipped]
    if decision.stage is not None:
        parts.append(_CONTEXT_STAGES[decision.stage])
    if decision.segment is not None:
        parts.append(_CONTEXT_SEGMENTS[decision.segment])


_USER_ID, _DECISION = _keys(pb.DecideResponse, "user_id", "decisions")
_RESULT = _key(pb.DecideBatchResponse, "results")
_RESPONSE, _ERROR = _keys(pb.DecideBatchResult, "response", "error")


def _frames(outer: bytes, inner: bytes) -> _Cache:
    """By a message's size: the bytes before it when it is the field ``inner`` of a message that is
    itself the field ``outer`` (a decision in the ``Decision`` oneof, a response in a result)."""

    def frame(size: int) -> bytes:
        head = inner + _length(size)
        return outer + _length(len(head) + size) + head

    return _Cache(frame)


_KINDS: dict[type[Decision], tuple[_Cache, Callable[[list[bytes], Any], None]]] = {
    LifecycleDecision: (_frames(_DECISION, _key(pb.Decision, "lifecycle")), _lifecycle),
    SegmentDecision: (_frames(_DECISION, _key(pb.Decision, "segment")), _segment),
    IncentiveDecision: (_frames(_DECISION, _key(pb.Decision, "incentive")), _incentive),
    InterventionDecision: (_frames(_DECISION, _key(pb.Decision, "intervention")), _intervention),
}
"""Each decision class: what goes before it in a response (see ``_frames``), what writes its fields."""
_RESPONSE_FRAMES = _frames(_RESULT, _RESPONSE)


def decide_response(result: DecideResult, explain: int = FULL) -> bytes:
    """``convert.decide_response(result, explain).SerializeToString()``, in half the time."""
    kinds, heads = _KINDS, _heads
    user_id = result.user_id.encode()
    response = [_USER_ID + _length(len(user_id)) + user_id] if user_id else []
    for answer in result.decisions:
        decision = answer.decision
        try:
            frames, fill = kinds[decision.__class__]
        except KeyError:
            raise TypeError(f"no wire message for {type(decision).__name__}") from None
        parts = [heads[decision.ruleset, decision.checksum, answer.version, answer.version_reason]]
        if explain != NONE:
            _hits(parts, decision.explanation, explain)
        fill(parts, decision)
        body = b"".join(parts)
        response.append(frames[len(body)] + body)
    return b"".join(response)


def batch_response(results: Sequence[DecideResult | StrataError], explain: Sequence[int]) -> bytes:
    """``convert.batch_response(results, explain).SerializeToString()``: one result per request."""
    parts = []
    for result, level in zip(results, explain, strict=True):
        if isinstance(result, StrataError):
            parts.append(_field(_RESULT, _field(_ERROR, convert.error_message(result).SerializeToString())))
        else:
            body = decide_response(result, level)
            parts.append(_RESPONSE_FRAMES[len(body)] + body)
    return b"".join(parts)
