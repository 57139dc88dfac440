"""Hostile requests over both transports: each limit refused with the same envelope and field path.

REST bodies are sent as raw bytes (a JSON encoder would not write ``NaN``);
gRPC requests carry the same values in ``google.protobuf.Value`` doubles.
Every refusal is Strata's envelope with a stable code, and the server keeps
answering afterwards.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from strata.config import RequestLimits
from tests.e2e.conftest import ROUTE_BY_RPC, Clients

LIMITS = RequestLimits()
DECIDE = ROUTE_BY_RPC["Decide"]


def _nested(depth: int) -> Any:
    """A value whose innermost list sits ``depth`` levels down when it is a profile field (the profile is 1)."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return value


NON_FINITE = [
    # (what the REST body says, the double gRPC sends)
    ("NaN", math.nan),
    ("Infinity", math.inf),
    ("-Infinity", -math.inf),
    ("1e999", math.inf),
    ("-1e999", -math.inf),
]


@pytest.mark.parametrize(("token", "number"), NON_FINITE, ids=[token for token, _ in NON_FINITE])
def test_non_finite_numbers_are_refused_with_their_path(clients: Clients, token: str, number: float) -> None:
    body = b'{"profile": {"user_id": "x", "spend_365d": ' + token.encode() + b'}, "rulesets": ["segment"]}'
    rest = clients.rest_raw("POST", DECIDE.path, body)
    grpc_ = clients.grpc(
        "Decide", {"profile": {"user_id": "x", "spend_365d": number}, "rulesets": ["segment"]}
    )
    assert rest.body == grpc_.body
    assert rest.code == "invalid_argument"
    assert rest.body["errors"][0]["field"] == "profile.spend_365d"


def test_a_non_finite_number_deep_in_an_event_profile_is_located(clients: Clients) -> None:
    body = (
        b'{"user_id": "u-current", "profile": {"daily_points": {"a": [1, NaN]}}, "rulesets": ["lifecycle"]}'
    )
    rest = clients.rest_raw("POST", DECIDE.path, body)
    assert rest.code == "invalid_argument"
    assert rest.body["errors"][0]["field"] == "profile.daily_points.a.1"


def test_a_non_finite_number_in_a_profile_body_is_named_from_the_request_root(clients: Clients) -> None:
    route = ROUTE_BY_RPC["UpsertProfile"]
    rest = clients.rest_raw("PUT", route.path.replace("{user_id}", "u-nan"), b'{"points": NaN}')
    grpc_ = clients.grpc("UpsertProfile", {"user_id": "u-nan", "profile": {"points": math.nan}})
    assert rest.body == grpc_.body
    assert rest.body["errors"][0]["field"] == "profile.points"


def test_an_integer_past_64_bits_is_refused_with_its_path(clients: Clients) -> None:
    body = (
        b'{"profile": {"user_id": "x", "points": 123456789012345678901234567890}, "rulesets": ["lifecycle"]}'
    )
    rest = clients.rest_raw("POST", DECIDE.path, body)
    assert rest.code == "invalid_argument" and rest.body["errors"][0]["field"] == "profile.points"


LIMIT_CASES = [
    # (what, rpc, request, code, field)
    (
        "an integer beyond 2^53",
        "Decide",
        {"profile": {"user_id": "x", "points": 2**60}, "rulesets": ["lifecycle"]},
        "invalid_argument",
        "profile.points",
    ),
    (
        "a long user id",
        "ClassifyLifecycle",
        {"user_id": "u" * (LIMITS.max_string_chars + 1)},
        "resource_exhausted",
        "user_id",
    ),
    (
        "a long string in a profile",
        "ClassifyLifecycle",
        {"profile": {"user_id": "x", "timezone": "z" * (LIMITS.max_string_chars + 1)}},
        "resource_exhausted",
        "profile.timezone",
    ),
    (
        "a long list in a profile",
        "ClassifyLifecycle",
        {"profile": {"user_id": "x", "tags": ["t"] * (LIMITS.max_list_items + 1)}},
        "resource_exhausted",
        "profile.tags",
    ),
    (
        "too many rulesets",
        "Decide",
        {"user_id": "u-current", "rulesets": ["lifecycle"] * (LIMITS.max_list_items + 1)},
        "resource_exhausted",
        "rulesets",
    ),
    (
        "nesting past the limit",
        "ClassifyLifecycle",
        {"profile": {"user_id": "x", "tags": _nested(LIMITS.max_depth + 1)}},
        "resource_exhausted",
        "profile.tags" + ".0" * (LIMITS.max_depth - 1),
    ),
    (
        "nesting past the limit in a batch (REST's JSON shortcut)",
        "DecideBatch",
        {
            "requests": [
                {
                    "profile": {"user_id": "x", "tags": _nested(LIMITS.max_depth + 1)},
                    "rulesets": ["lifecycle"],
                }
            ]
        },
        "resource_exhausted",
        "requests.0.profile.tags" + ".0" * (LIMITS.max_depth - 1),
    ),
    (
        "a long string in a batch",
        "DecideBatch",
        {"requests": [{"user_id": "u" * (LIMITS.max_string_chars + 1), "rulesets": ["lifecycle"]}]},
        "resource_exhausted",
        "requests.0.user_id",
    ),
]


@pytest.mark.parametrize(
    ("rpc", "request_", "code", "field"), [case[1:] for case in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES]
)
def test_limits_are_refused_alike_over_both_transports(
    clients: Clients, rpc: str, request_: dict[str, Any], code: str, field: str
) -> None:
    rest, grpc_ = clients.both(rpc, request_)
    assert rest.body == grpc_.body  # code, message and located problem
    assert rest.code == code
    assert rest.body["errors"][0]["field"] == field
    assert clients.both("ClassifyLifecycle", {"user_id": "u-current"})[1].ok


def test_values_at_the_limits_are_accepted(clients: Clients) -> None:
    profile = {
        "user_id": "x",
        "points": 2**53 - 1,
        "tags": ["t"] * LIMITS.max_list_items,
        "timezone": "UTC",
    }
    rest, grpc_ = clients.both("ClassifyLifecycle", {"profile": profile})
    assert rest.ok and grpc_.ok and rest.body == grpc_.body


def test_nesting_within_the_limit_reaches_the_profile_check(clients: Clients) -> None:
    """Not refused for its depth: the schema then says a tag is a string."""
    request = {"profile": {"user_id": "x", "tags": _nested(LIMITS.max_depth)}}
    rest, grpc_ = clients.both("ClassifyLifecycle", request)
    assert rest.body == grpc_.body
    assert rest.code == "invalid_argument" and rest.body["errors"][0]["field"].startswith("profile.tags")


def test_a_rule_file_may_be_longer_than_a_string_in_a_request(clients: Clients) -> None:
    """``content`` is bounded by the body size: the registry checks rule files itself."""
    request = {"name": "lifecycle.long", "content": "#" * (LIMITS.max_string_chars + 1)}
    rest, grpc_ = clients.both("PublishVersion", request, token=None)
    assert rest.code == grpc_.code == "unauthenticated"  # refused for the missing token, not the length
