"""/openapi.json is generated from the proto descriptors; it must be valid and match the bodies."""

from __future__ import annotations

import jsonschema
import pytest
from openapi_spec_validator import validate

from strata.api.strata.v1 import decision_pb2 as pb
from strata.decisions import Answer
from strata.engine.schema import parse_datetime
from strata.transport import convert
from strata.transport.operations import ROUTES
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.openapi_check import DOCUMENT, check_request, check_response


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)  # raises on any violation of the OpenAPI 3.0 schema


def test_every_route_is_documented() -> None:
    for route in ROUTES:
        operation = DOCUMENT["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.rpc
        assert "default" in operation["responses"]
    assert {"/healthz", "/readyz"} <= set(DOCUMENT["paths"])


def test_the_error_envelope_is_a_component() -> None:
    error = DOCUMENT["components"]["schemas"]["strata.v1.Error"]
    assert set(error["properties"]) == {"code", "message", "errors"}


def test_a_printed_decision_matches_its_schema() -> None:
    rules = default_rules()
    decisions = [
        rules.get(name).evaluate(PROFILES["u-current"], parse_datetime(AS_OF), event)
        for name, event in [
            ("lifecycle.duolingo", None),
            ("segment.rfm", None),
            ("incentive.levels", {"type": "note_published"}),
            ("intervention.default", None),
        ]
    ]
    paths = [
        "/v1/lifecycle:classify",
        "/v1/segment:assign",
        "/v1/incentive:evaluate",
        "/v1/intervention:recommend",
    ]
    for path, decision in zip(paths, decisions, strict=True):
        check_response(path, "POST", convert.message_to_json(convert.decision_to_proto(decision)))
    response = pb.DecideResponse(
        user_id="u", decisions=[convert.wrap_decision(Answer(d, 3, "active")) for d in decisions]
    )
    check_response("/v1/decide", "POST", convert.message_to_json(response))


def test_the_schemas_are_strict_enough_to_catch_a_mismatch() -> None:
    with pytest.raises(jsonschema.ValidationError):
        check_response("/v1/lifecycle:classify", "POST", {"stage": 3})
    with pytest.raises(jsonschema.ValidationError):
        check_response("/v1/lifecycle:classify", "POST", {"stage": "new", "unexpected": True})
    with pytest.raises(jsonschema.ValidationError):
        check_request("/v1/decide", "POST", {"rulesets": "lifecycle"})


def test_request_examples_match() -> None:
    check_request(
        "/v1/incentive:evaluate",
        "POST",
        {"user_id": "u1", "as_of": AS_OF, "profile": {"points": 3}, "event": {"type": "x", "count": 2}},
    )
    check_request("/v1/profiles/{user_id}", "PUT", PROFILES["u-new"])


def test_query_parameters_path_types_and_credentials_are_documented() -> None:
    diff = DOCUMENT["paths"]["/v1/rulesets/{name}/diff"]["get"]
    assert [(p["name"], p["in"]) for p in diff["parameters"]] == [
        ("name", "path"),
        ("from", "query"),
        ("to", "query"),
        ("Grpc-Timeout", "header"),
        ("X-Request-Id", "header"),
    ]
    assert "X-Request-Id" in diff["responses"]["200"]["headers"]
    assert "text/plain" in DOCUMENT["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    audit = DOCUMENT["paths"]["/v1/audit"]["get"]
    assert [p["name"] for p in audit["parameters"] if p["in"] == "query"] == ["ruleset", "limit", "before"]
    version = DOCUMENT["paths"]["/v1/rulesets/{name}/versions/{version}"]["get"]["parameters"][1]
    assert version["schema"]["type"] == "integer"
    assert DOCUMENT["paths"]["/v1/rulesets/{name}/versions"]["post"]["security"] == [{"bearer": []}]
    assert diff["security"] == [{}, {"bearer": []}]  # a token only where the server requires one
    assert DOCUMENT["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
