"""One converter: decisions survive the trip to wire messages and JSON unchanged."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import preview_pb2 as preview_pb
from strata.api.strata.v1 import profile_pb2 as profile_pb
from strata.api.strata.v1 import registry_pb2 as registry_pb
from strata.decisions import Answer, DecisionRequest
from strata.engine.decision import Decision
from strata.engine.schema import parse_datetime
from strata.errors import InvalidArgument
from strata.transport import convert
from strata.transport.operations import ROUTES
from tests.fakes import AS_OF, PROFILES, default_rules

INT64_FIELDS = {"points_earned", "points_before_cap", "points_total"}


def _decide(ruleset: str, user: str, event: dict[str, Any] | None = None) -> Decision:
    return default_rules().get(ruleset).evaluate(PROFILES[user], parse_datetime(AS_OF), event)


def _as_wire_json(data: dict[str, Any]) -> dict[str, Any]:
    """What the protobuf JSON mapping makes of ``Decision.to_dict()``: int64 as strings, no nulls."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key in INT64_FIELDS:
            value = str(value)
        elif key == "daily_points":
            value = {k: str(v) for k, v in value.items()}
        elif key in ("actions", "skipped"):
            value = [{k: v for k, v in item.items() if v is not None} for item in value]
        result[key] = value
    return result


@pytest.mark.parametrize(
    ("ruleset", "user", "event"),
    [
        ("lifecycle.duolingo", "u-current", None),
        ("lifecycle.journey", "u-new", None),
        ("segment.rfm", "u-current", None),
        ("segment.pyramid", "u-current", None),
        ("incentive.levels", "u-current", {"type": "note_published", "count": 3}),
        ("incentive.daily_signin", "u-current", {"type": "sign_in"}),
        ("intervention.default", "u-new", None),
        ("intervention.default", "u-lapsed", None),
    ],
)
def test_decision_to_json_loses_nothing(ruleset: str, user: str, event: dict[str, Any] | None) -> None:
    decision = _decide(ruleset, user, event)
    message = convert.decision_to_proto(decision)
    assert convert.message_to_json(message) == _as_wire_json(decision.to_dict())
    wrapped = convert.wrap_decision(Answer(decision, 4, "active"))
    kind = default_rules().get(ruleset).kind
    assert wrapped.WhichOneof("decision") == kind
    stamped = convert.message_to_json(getattr(wrapped, kind))
    assert (stamped["version"], stamped["version_reason"]) == (4, "active")


def test_whole_numbers_print_as_integers_and_others_do_not() -> None:
    hit = pb.RuleHit(rule="r", reason="why")
    hit.facts.update({"n": 5, "x": 2.5, "big": 1e300, "list": [1, 2.0]})
    facts = convert.message_to_json(hit)["facts"]
    assert facts == {"n": 5, "x": 2.5, "big": 1e300, "list": [1, 2]}
    assert isinstance(facts["n"], int)


def test_fields_without_presence_are_printed_even_when_zero() -> None:
    data = convert.message_to_json(pb.IncentiveDecision(ruleset="r"))
    assert data["level_up"] is False
    assert data["points_earned"] == "0"
    assert "version" not in data  # optional: absent for rulesets loaded from files


def test_request_conversion() -> None:
    message = convert.message_from_dict(
        {
            "user_id": "u1",
            "profile": {"points": 5, "spend_365d": 2.5, "tags": ["a"]},
            "as_of": AS_OF,
            "ruleset": "incentive.levels",
            "event": {"type": "note_published", "at": "2026-03-10T08:00:00+01:00", "count": 2},
        },
        pb.EvaluateIncentiveRequest(),
    )
    request = convert.decision_request(message)
    assert request == DecisionRequest(
        user_id="u1",
        profile={"points": 5, "spend_365d": 2.5, "tags": ["a"]},
        as_of=dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC),
        ruleset="incentive.levels",
        event={"type": "note_published", "at": dt.datetime(2026, 3, 10, 7, tzinfo=dt.UTC), "count": 2},
    )
    assert isinstance(request.profile and request.profile["points"], int)


def test_absent_fields_stay_absent() -> None:
    request = convert.decision_request(pb.EvaluateIncentiveRequest(user_id="u1", event=pb.Event(type="x")))
    assert request.profile is None and request.as_of is None and request.ruleset == ""
    assert request.event == {"type": "x"}  # at and count take the engine's defaults


def test_lower_camel_case_names_are_accepted_too() -> None:
    message = convert.message_from_dict({"userId": "u1", "asOf": AS_OF}, pb.ClassifyLifecycleRequest())
    assert message.user_id == "u1" and message.HasField("as_of")


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"", "body", "not valid JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (b'{"user": "u1"}', "user", "not a valid DecideRequest"),
        (b'{"event": {"count": "many"}}', "event.count", "not a valid DecideRequest"),
        (b'{"as_of": "yesterday"}', "as_of", "not a valid DecideRequest"),
        (b'{"rulesets": "lifecycle"}', "rulesets", "not a valid DecideRequest"),
        (b'{"profile": [1]}', "profile", "not a valid DecideRequest"),
    ],
)
def test_bad_bodies_are_invalid_arguments_naming_the_field(body: bytes, field: str, text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.message_from_json(body, pb.DecideRequest())
    assert text in caught.value.message
    assert caught.value.problems[0].field == field


def test_profiles_round_trip() -> None:
    message = convert.profile_to_proto(PROFILES["u-current"])
    assert message.user_id == "u-current"
    assert convert.struct_to_dict(message.profile) == PROFILES["u-current"]


def test_routes_cover_every_rpc_with_its_messages() -> None:
    """The REST table and the gRPC registration both come from ROUTES: it must match the proto."""
    expected = {}
    for file in (pb.DESCRIPTOR, profile_pb.DESCRIPTOR, registry_pb.DESCRIPTOR, preview_pb.DESCRIPTOR):
        for service in file.services_by_name.values():
            for method in service.methods:
                expected[(service.full_name, method.name)] = (method.input_type, method.output_type)
    actual = {
        (route.service, route.rpc): (route.request.DESCRIPTOR, route.response.DESCRIPTOR) for route in ROUTES
    }
    assert actual == expected
    assert len({(route.method, route.path) for route in ROUTES}) == len(ROUTES)


def test_json_mapping_options_match_the_openapi_names() -> None:
    """REST prints proto field names; json_format would default to lowerCamelCase."""
    message: Message = pb.DecideResponse(user_id="u1")
    assert "user_id" in convert.message_to_json(message)
    assert "userId" in json_format.MessageToDict(message)


@pytest.mark.parametrize(("field", "path"), [("as_of", "as_of"), ("event", "event.at")])
def test_a_timestamp_out_of_range_is_an_invalid_argument(field: str, path: str) -> None:
    """gRPC bytes can carry any seconds and nanos; REST's JSON cannot (json_format refuses them)."""
    message = pb.DecideRequest(rulesets=["lifecycle"])
    target = message.as_of if field == "as_of" else message.event.at
    target.seconds, target.nanos = 1_773_144_000, 1_773_144_000  # nanos beyond 999,999,999
    with pytest.raises(InvalidArgument) as caught:
        convert.decide_request(message)
    assert caught.value.problems[0].field == path
