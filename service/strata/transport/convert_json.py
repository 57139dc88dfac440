"""``Decide`` over REST without protobuf in between: JSON straight to the domain and back.

REST bodies are the protobuf JSON mapping of the wire messages (see ``convert``). For
``Decide`` and ``DecideBatch``, going through the messages costs most of a request:
``json_format`` walks every field in Python, the inline profile as a ``Struct`` and
each rule's facts as another. So these two take a shortcut that gives the very same
documents:

- the request: every field but the inline profile still goes through
  ``json_format`` (the same checks, the same errors); the profile, when it is a JSON
  object, is taken as is, its numbers read as a ``Struct`` would read them;
- the response: the decisions are printed as ``json_format`` prints their messages
  (int64 as strings, optional fields only when set, whole numbers as integers).

``tests/unit/test_convert_json.py`` checks, over every default ruleset and generated
profiles, that both ways give equal documents; the e2e parity tests check REST
against gRPC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from strata.api.strata.v1 import decision_pb2 as pb
from strata.decisions import Answer, DecideRequest, DecideResult
from strata.engine.decision import (
    Decision,
    IncentiveDecision,
    InterventionDecision,
    LifecycleDecision,
    RuleHit,
    SegmentDecision,
)
from strata.errors import StrataError
from strata.transport import convert
from strata.transport.limits import RequestChecker

_EXACT_FLOAT = 2**53
_SCALARS = frozenset({str, bool, type(None)})


def struct_value(value: Any) -> Any:
    """A JSON value as a ``Struct`` gives it back (``convert.struct_to_dict``): every number is a
    double, so whole ones below 2**53 come back as ints and the rest as floats."""
    cls = value.__class__
    if cls in _SCALARS:
        return value
    if cls is int or cls is float:
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < _EXACT_FLOAT else number
    if cls is dict:
        return {key: struct_value(item) for key, item in value.items()}
    if cls is list or cls is tuple:
        return [struct_value(item) for item in value]
    raise TypeError(f"not a JSON value: {cls.__name__}")


def _split_profile(data: Any) -> tuple[Any, dict[str, Any] | None]:
    """The request without its inline profile, and the profile, when it is a JSON object.

    Anything else (no profile, a profile that is not an object, a body that is not an
    object) stays in the request, for ``json_format`` to accept or refuse as before.
    """
    if isinstance(data, dict) and isinstance(data.get("profile"), dict):
        return {key: value for key, value in data.items() if key != "profile"}, data["profile"]
    return data, None


def _read_profile(profile: dict[str, Any] | None, checker: RequestChecker | None, field: str) -> Any:
    """The profile as a ``Struct`` would give it back; checked against the limits on the way when given
    a checker (``RequestChecker.check_json`` leaves a profile object to this walk)."""
    if profile is None:
        return None
    return struct_value(profile) if checker is None else checker.json_profile(profile, field)


def _with_profile(request: DecideRequest, profile: Any) -> DecideRequest:
    return request if profile is None else dataclasses.replace(request, profile=profile)


def decide_request(data: Any, checker: RequestChecker | None = None) -> tuple[DecideRequest, int]:
    """A ``Decide`` body as the domain's request, and the explanation level it asks for."""
    rest, profile = _split_profile(data)
    profile = _read_profile(profile, checker, "profile")  # the limits first, as over gRPC
    message = convert.message_from_dict(rest, pb.DecideRequest())
    return _with_profile(convert.decide_request(message), profile), message.explain


def batch_request(data: Any, checker: RequestChecker | None = None) -> tuple[list[DecideRequest], list[int]]:
    """A ``DecideBatch`` body: each request, and the explanation level each asks for."""
    items = data.get("requests") if isinstance(data, dict) else None
    split = [_split_profile(item) for item in items] if isinstance(items, list) else []
    profiles = [
        _read_profile(profile, checker, f"requests.{index}.profile")
        for index, (_, profile) in enumerate(split)
    ]
    if split:
        data = {**data, "requests": [rest for rest, _ in split]}
    message = convert.message_from_dict(data, pb.DecideBatchRequest())
    requests = [convert.decide_request(item) for item in message.requests]
    if split:
        requests = [
            _with_profile(request, profile) for request, profile in zip(requests, profiles, strict=True)
        ]
    return requests, [item.explain for item in message.requests]


# responses -------------------------------------------------------------------


def _hit(hit: RuleHit, explain: int) -> dict[str, Any]:
    if explain == convert.FULL:
        return {"rule": hit.rule, "reason": hit.reason, "facts": struct_value(hit.facts)}
    return {"rule": hit.rule, "reason": hit.reason}


def _lifecycle(decision: LifecycleDecision) -> dict[str, Any]:
    return {"stage": decision.stage}


def _segment(decision: SegmentDecision) -> dict[str, Any]:
    return {"segment": decision.segment, "scores": dict(decision.scores), "tags": list(decision.tags)}


def _incentive(decision: IncentiveDecision) -> dict[str, Any]:
    return {
        "event_type": decision.event_type,
        "local_day": decision.local_day.isoformat(),
        "points_earned": str(decision.points_earned),  # int64: a string in the JSON mapping
        "points_before_cap": str(decision.points_before_cap),
        "capped": decision.capped,
        "points_total": str(decision.points_total),
        "daily_points": {key: str(value) for key, value in decision.daily_points.items()},
        "streak": decision.streak,
        "streak_days": decision.streak_days,
        "level": decision.level,
        "previous_level": decision.previous_level,
        "level_up": decision.level_up,
        "badges_unlocked": list(decision.badges_unlocked),
        "privileges": list(decision.privileges),
    }


def _intervention(decision: InterventionDecision) -> dict[str, Any]:
    actions = []
    for action in decision.actions:
        item: dict[str, Any] = {"id": action.id, "channel": action.channel}
        if action.template is not None:
            item["template"] = action.template
        if action.offer is not None:
            item["offer"] = action.offer
        item.update(priority=action.priority, reason=action.reason, cooldown_seconds=action.cooldown_seconds)
        actions.append(item)
    skipped = []
    for skip in decision.skipped:
        entry: dict[str, Any] = {"id": skip.id, "why": skip.why}
        if skip.until is not None:
            entry["until"] = convert.to_timestamp(skip.until).ToJsonString()
        skipped.append(entry)
    result: dict[str, Any] = {"actions": actions, "skipped": skipped}
    if decision.stage is not None:
        result["stage"] = decision.stage
    if decision.segment is not None:
        result["segment"] = decision.segment
    return result


_KINDS: dict[type[Decision], tuple[str, Callable[[Any], dict[str, Any]]]] = {
    LifecycleDecision: ("lifecycle", _lifecycle),
    SegmentDecision: ("segment", _segment),
    IncentiveDecision: ("incentive", _incentive),
    InterventionDecision: ("intervention", _intervention),
}


def decision_json(answer: Answer[Decision], explain: int = convert.FULL) -> dict[str, Any]:
    """The ``Decision`` oneof of an answer, as ``message_to_json`` prints it."""
    decision = answer.decision
    field, fields = _KINDS[type(decision)]
    data: dict[str, Any] = {"ruleset": decision.ruleset, "checksum": decision.checksum}
    if answer.version is not None:
        data["version"] = answer.version
    if answer.version_reason is not None:
        data["version_reason"] = answer.version_reason
    data["explanation"] = [] if explain == convert.NONE else [_hit(h, explain) for h in decision.explanation]
    data.update(fields(decision))
    return {field: data}


def decide_response(result: DecideResult, explain: int = convert.FULL) -> dict[str, Any]:
    return {"user_id": result.user_id, "decisions": [decision_json(a, explain) for a in result.decisions]}


def batch_response(results: Sequence[DecideResult | StrataError], explain: Sequence[int]) -> dict[str, Any]:
    return {
        "results": [
            {"error": convert.message_to_json(convert.error_message(result))}
            if isinstance(result, StrataError)
            else {"response": decide_response(result, level)}
            for result, level in zip(results, explain, strict=True)
        ]
    }
