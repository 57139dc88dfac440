"""The one place that converts between wire messages and the domain.

Both transports go through here: gRPC receives the messages directly, REST
parses JSON into the very same messages (``message_from_json``) and prints
them back (``message_to_json``), the grpc-gateway way. So a REST body is the
protobuf JSON mapping of the gRPC message, with the proto field names
(``user_id``; the lowerCamelCase names are accepted on input too), and
fields without presence printed even when zero (``level_up: false`` is an
answer, not a gap).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import profile_pb2 as profile_pb
from strata.decisions import Answer, DecideRequest, DecideResult, DecisionRequest
from strata.engine.decision import (
    Decision,
    IncentiveDecision,
    InterventionDecision,
    LifecycleDecision,
    SegmentDecision,
)
from strata.errors import InvalidArgument, Problem, StrataError
from strata.transport.limits import RequestChecker, locate_non_finite, not_finite

M = TypeVar("M", bound=Message)
SingleRequest = (
    pb.ClassifyLifecycleRequest
    | pb.AssignSegmentRequest
    | pb.EvaluateIncentiveRequest
    | pb.RecommendInterventionRequest
)
DecisionMessage = pb.LifecycleDecision | pb.SegmentDecision | pb.IncentiveDecision | pb.InterventionDecision
DM = TypeVar("DM", bound=DecisionMessage)
EXACT_FLOAT = 2**53
"""Whole numbers below this are exact as doubles (a Struct's numbers): printed and read as ints."""

# JSON ----------------------------------------------------------------------


def _integral(value: Any) -> Any:
    """Struct numbers are doubles; print the whole ones as integers (``5``, not ``5.0``)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < EXACT_FLOAT else value
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def message_to_json(message: Message) -> dict[str, Any]:
    """The protobuf JSON mapping of ``message``: what REST returns."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    result: dict[str, Any] = _integral(data)
    return result


def _field_path(text: str) -> str | None:
    """The field a json_format error is about, as a dotted path (``event.count``)."""
    path = re.findall(r"Failed to parse (\w+) field", text)
    unknown = re.search(r'has no field named "([^"]+)"', text)
    if unknown:
        path.append(unknown.group(1))
    return ".".join(path) or None


def message_from_dict(data: Any, message: M, source: str = "the request body") -> M:
    """Fill ``message`` from parsed JSON (or path and query values); a mismatch names the field."""
    if not isinstance(data, dict):
        raise InvalidArgument(
            "the request body must be a JSON object", [Problem(f"got {type(data).__name__}", field="body")]
        )
    try:
        json_format.ParseDict(data, message)
    except (
        json_format.ParseError,
        ValueError,
        TypeError,
        OverflowError,
    ) as exc:  # Overflow: an infinite enum
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidArgument(
            f"{source} is not a valid {message.DESCRIPTOR.name}",
            [Problem(text, field=_field_path(text))],
        ) from None
    return message


def json_body(body: bytes, path: str = "") -> Any:
    """A REST body's JSON; invalid JSON is an invalid argument saying where.

    NaN, Infinity or ``1e999`` is named by its field (the body being the
    request's field ``path``, if any), as a gRPC request's would be.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        where = locate_non_finite(body, path)
        if where is not None:
            raise not_finite(where) from None
        problem = "the body is empty" if not body.strip() else str(exc)
        raise InvalidArgument(
            "the request body is not valid JSON", [Problem(problem, field="body")]
        ) from None


def message_from_json(body: bytes, message: M, path: str = "") -> M:
    """Parse a REST body (the request's field ``path``, if any) into ``message``; see ``json_body``."""
    return message_from_dict(json_body(body, path), message)


# well-known types ------------------------------------------------------------


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < EXACT_FLOAT else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    return None


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python; whole numbers become ints (the profile schema has integers)."""
    return {key: value_to_python(value) for key, value in struct.fields.items()}


def fill_struct(struct: struct_pb2.Struct, data: Mapping[str, Any]) -> None:
    """``struct.update(data)``, a tenth cheaper: the facts of every explanation go through here.

    ``Struct.update`` sets each value through a chain of ``isinstance`` tests in
    protobuf's Python; the exact classes the engine's facts hold (numbers, None,
    booleans, strings, flat objects such as the scores) are set directly, anything
    else (lists) as ``update`` sets it. The struct is present afterwards even when
    ``data`` is empty (a field holding it prints ``{}``: a rule that read no facts still
    says so); setting a value marks it present anyway, so only an empty one asks.
    """
    if not data:
        struct.SetInParent()
        return
    fields = struct.fields
    for key, value in data.items():
        cls = value.__class__
        if cls is int or cls is float:
            fields[key].number_value = value
        elif value is None:
            fields[key].null_value = struct_pb2.NULL_VALUE
        elif cls is bool:
            fields[key].bool_value = value
        elif cls is str:
            fields[key].string_value = value
        elif cls is dict:
            fill_struct(fields[key].struct_value, value)
        else:
            struct[key] = value


def dict_to_struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def to_datetime(timestamp: timestamp_pb2.Timestamp, field: str = "as_of") -> dt.datetime:
    """An aware instant; a timestamp out of range (gRPC bytes can carry any) is the caller's error."""
    try:
        return timestamp.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument("invalid timestamp", [Problem(str(exc), field=field)]) from None


def to_timestamp(instant: dt.datetime) -> timestamp_pb2.Timestamp:
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC))
    return timestamp


# requests --------------------------------------------------------------------


def event_to_dict(event: pb.Event) -> dict[str, Any]:
    """The engine's event mapping: ``at`` and ``count`` only when sent, so defaults apply."""
    result: dict[str, Any] = {"type": event.type}
    if event.HasField("at"):
        result["at"] = to_datetime(event.at, "event.at")
    if event.HasField("count"):
        result["count"] = event.count
    return result


def _profile(message: SingleRequest | pb.DecideRequest, checker: RequestChecker | None, field: str) -> Any:
    """The inline profile, if sent; checked against the limits on the way when given a checker (a
    request's profile is checked there, not by ``RequestChecker.check_request``)."""
    if not message.HasField("profile"):
        return None
    if checker is None:
        return struct_to_dict(message.profile)
    return checker.struct_to_dict(message.profile, field)


def decision_request(message: SingleRequest, checker: RequestChecker | None = None) -> DecisionRequest:
    event = None
    if isinstance(message, pb.EvaluateIncentiveRequest) and message.HasField("event"):
        event = event_to_dict(message.event)
    return DecisionRequest(
        user_id=message.user_id,
        profile=_profile(message, checker, "profile"),
        as_of=to_datetime(message.as_of) if message.HasField("as_of") else None,
        ruleset=message.ruleset,
        event=event,
    )


def decide_request(
    message: pb.DecideRequest, checker: RequestChecker | None = None, field: str = "profile"
) -> DecideRequest:
    """``field``: where the profile is in the call, for the limits' errors."""
    return DecideRequest(
        user_id=message.user_id,
        profile=_profile(message, checker, field),
        as_of=to_datetime(message.as_of) if message.HasField("as_of") else None,
        rulesets=tuple(message.rulesets),
        event=event_to_dict(message.event) if message.HasField("event") else None,
        explain_facts=message.explain == pb.EXPLAIN_FULL,
    )


def batch_request(
    message: pb.DecideBatchRequest, checker: RequestChecker | None = None
) -> list[DecideRequest]:
    return [
        decide_request(item, checker, f"requests.{index}.profile")
        for index, item in enumerate(message.requests)
    ]


# decisions -------------------------------------------------------------------
#
# Messages are filled in place, in the message that will be sent: a protobuf message
# passed to a parent's constructor or ``add`` is copied, facts and all.

FULL, RULES, NONE = pb.EXPLAIN_FULL, pb.EXPLAIN_RULES, pb.EXPLAIN_NONE


def _stamp(message: DecisionMessage, decision: Decision, explain: int) -> None:
    """Provenance and explanation, as much of it as ``explain`` asks for (see ``pb.Explain``)."""
    message.ruleset = decision.ruleset
    message.checksum = decision.checksum
    if explain == NONE:
        return
    add = message.explanation.add
    if explain == FULL:
        for hit in decision.explanation:
            fill_struct(add(rule=hit.rule, reason=hit.reason).facts, hit.facts)
    else:
        for hit in decision.explanation:
            add(rule=hit.rule, reason=hit.reason)


def _lifecycle(message: pb.LifecycleDecision, decision: LifecycleDecision) -> None:
    message.stage = decision.stage


def _segment(message: pb.SegmentDecision, decision: SegmentDecision) -> None:
    message.segment = decision.segment
    message.scores.update(decision.scores)
    message.tags.extend(decision.tags)


def _incentive(message: pb.IncentiveDecision, decision: IncentiveDecision) -> None:
    # Written field by field: a third fewer instructions than building an IncentiveDecision
    # with the values and merging it in (upb's merge is a copy of the whole message).
    message.event_type = decision.event_type
    message.local_day = decision.local_day.isoformat()
    message.points_earned = decision.points_earned
    message.points_before_cap = decision.points_before_cap
    message.capped = decision.capped
    message.points_total = decision.points_total
    message.daily_points.update(decision.daily_points)
    message.streak = decision.streak
    message.streak_days = decision.streak_days
    message.level = decision.level
    message.previous_level = decision.previous_level
    message.level_up = decision.level_up
    message.badges_unlocked.extend(decision.badges_unlocked)
    message.privileges.extend(decision.privileges)


def _intervention(message: pb.InterventionDecision, decision: InterventionDecision) -> None:
    for action in decision.actions:
        item = message.actions.add(
            id=action.id,
            channel=action.channel,
            priority=action.priority,
            reason=action.reason,
            cooldown_seconds=action.cooldown_seconds,
        )
        if action.template is not None:
            item.template = action.template
        if action.offer is not None:
            item.offer = action.offer
    for skipped in decision.skipped:
        entry = message.skipped.add(id=skipped.id, why=skipped.why)
        if skipped.until is not None:
            entry.until.CopyFrom(to_timestamp(skipped.until))
    if decision.stage is not None:
        message.stage = decision.stage
    if decision.segment is not None:
        message.segment = decision.segment


_KINDS: dict[type[Decision], tuple[str, Callable[[Any, Any], None]]] = {
    LifecycleDecision: ("lifecycle", _lifecycle),
    SegmentDecision: ("segment", _segment),
    IncentiveDecision: ("incentive", _incentive),
    InterventionDecision: ("intervention", _intervention),
}
"""Each decision class: its field in the ``Decision`` oneof, and what fills its message."""


def _kind(decision: Decision) -> tuple[str, Callable[[Any, Any], None]]:
    try:
        return _KINDS[decision.__class__]
    except KeyError:
        raise TypeError(f"no wire message for {type(decision).__name__}") from None


def _fill(
    message: DM, decision: Decision, explain: int = FULL, fill: Callable[[Any, Any], None] | None = None
) -> DM:
    """``message`` stamped and filled with ``decision``; ``fill``: its kind's filler, when the caller
    already looked it up."""
    _stamp(message, decision, explain)
    (fill or _kind(decision)[1])(message, decision)
    return message


def lifecycle_to_proto(decision: LifecycleDecision) -> pb.LifecycleDecision:
    return _fill(pb.LifecycleDecision(), decision)


def segment_to_proto(decision: SegmentDecision) -> pb.SegmentDecision:
    return _fill(pb.SegmentDecision(), decision)


def incentive_to_proto(decision: IncentiveDecision) -> pb.IncentiveDecision:
    return _fill(pb.IncentiveDecision(), decision)


def intervention_to_proto(decision: InterventionDecision) -> pb.InterventionDecision:
    return _fill(pb.InterventionDecision(), decision)


def decision_to_proto(decision: Decision) -> DecisionMessage:
    """The kind's own message for a decision."""
    message: DecisionMessage = getattr(pb.Decision(), _kind(decision)[0])
    return _fill(message, decision)


def versioned(message: DM, answer: Answer[Any]) -> DM:
    """``message`` stamped with the ruleset version that answered and why (absent for rule files)."""
    if answer.version is not None:
        message.version = answer.version
    if answer.version_reason is not None:
        message.version_reason = answer.version_reason
    return message


def fill_decision(message: pb.Decision, answer: Answer[Decision], explain: int = FULL) -> pb.Decision:
    """``message``, the ``Decision`` oneof, holding the answer under its kind (``_fill``'s steps,
    looking the kind up once: a batch fills thousands of these)."""
    decision = answer.decision
    name, fill = _kind(decision)
    versioned(_fill(getattr(message, name), decision, explain, fill), answer)
    return message


def wrap_decision(answer: Answer[Decision]) -> pb.Decision:
    """An answer in the ``Decision`` oneof, under its kind."""
    return fill_decision(pb.Decision(), answer)


def _fill_response(message: pb.DecideResponse, result: DecideResult, explain: int) -> None:
    message.user_id = result.user_id
    add = message.decisions.add
    for answer in result.decisions:
        fill_decision(add(), answer, explain)


def decide_response(result: DecideResult, explain: int = FULL) -> pb.DecideResponse:
    message = pb.DecideResponse()
    _fill_response(message, result, explain)
    return message


def batch_response(
    results: Sequence[DecideResult | StrataError], explain: Sequence[int] = ()
) -> pb.DecideBatchResponse:
    """One result per request; ``explain``: each request's level (all of it when not given)."""
    message = pb.DecideBatchResponse()
    add = message.results.add
    for result, level in zip(results, explain or repeat(FULL, len(results)), strict=True):
        if isinstance(result, StrataError):
            add(error=error_message(result))
        else:
            _fill_response(add().response, result, level)
    return message


# errors and profiles -----------------------------------------------------------


def summary(error: StrataError) -> str:
    """The message plus the first problem, so a one-line status names the field."""
    if not error.problems:
        return error.message
    more = len(error.problems) - 1
    return f"{error.message}: {error.problems[0]}" + (f" (and {more} more)" if more else "")


def _detail(problem: Problem) -> pb.ErrorDetail:
    detail = pb.ErrorDetail(message=problem.message)
    if problem.file is not None:
        detail.file = problem.file
    if problem.line is not None:
        detail.line = problem.line
    if problem.rule is not None:
        detail.rule = problem.rule
    if problem.field is not None:
        detail.field = problem.field
    return detail


def error_message(error: StrataError) -> pb.Error:
    """The ``strata.v1.Error`` envelope of an error."""
    return pb.Error(code=error.code, message=summary(error), errors=[_detail(p) for p in error.problems])


def profile_to_proto(profile: Mapping[str, Any]) -> profile_pb.Profile:
    return profile_pb.Profile(user_id=str(profile.get("user_id", "")), profile=dict_to_struct(profile))
