"""Request fuzzing over both transports: only Strata's envelopes come back, never a 500, never a hang.

Hypothesis writes REST bodies (any JSON, NaN and Infinity included, alone
or in place of one field of a valid request) and gRPC payloads (any bytes,
or a valid request with bytes changed). Each call has a client timeout, so
a hang fails the test instead of stalling it. The examples are bounded for
CI; ``HYPOTHESIS_PROFILE``-style tuning is left to whoever runs it longer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.transport.errors import ERROR_TABLE
from tests.e2e.conftest import ROUTE_BY_RPC, Clients, Outcome
from tests.fakes import AS_OF, PROFILES

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Routes a body can be posted to, with a valid request to mutate.
VALID: dict[str, dict[str, Any]] = {
    "ClassifyLifecycle": {"user_id": "u-current", "as_of": AS_OF},
    "AssignSegment": {"profile": PROFILES["u-current"], "as_of": AS_OF},
    "EvaluateIncentive": {"user_id": "u-current", "event": {"type": "sign_in"}, "as_of": AS_OF},
    "RecommendIntervention": {"user_id": "u-current", "as_of": AS_OF},
    "Decide": {"user_id": "u-current", "rulesets": ["lifecycle", "segment"], "as_of": AS_OF},
    "DecideBatch": {"requests": [{"user_id": "u-current", "rulesets": ["lifecycle"]}]},
    "GetProfile": {"user_id": "u-current"},
    "ListRulesets": {},
}

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)


def _is_envelope(outcome: Outcome) -> None:
    """Strata answered: a result, or an error with a known code that is not ``internal``."""
    if outcome.ok:
        return
    assert outcome.code in ERROR_TABLE, outcome.body
    assert outcome.code != "internal", outcome.body
    assert isinstance(outcome.body.get("message"), str)


WITH_BODY = sorted(rpc for rpc in VALID if ROUTE_BY_RPC[rpc].body == "*")


@st.composite
def rest_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    rpc = draw(st.sampled_from(WITH_BODY))
    if draw(st.booleans()):
        body = draw(json_values)
    else:
        body = dict(VALID[rpc])
        field = draw(st.sampled_from([*body, "profile", "event", "extra"]))
        body[field] = draw(json_values)
    return rpc, json.dumps(body, allow_nan=True).encode()  # NaN and Infinity as JSON-ish tokens


@FUZZ
@given(case=rest_bodies())
def test_rest_bodies_get_an_answer_or_an_envelope(clients: Clients, case: tuple[str, bytes]) -> None:
    rpc, body = case
    route = ROUTE_BY_RPC[rpc]
    outcome = clients.rest_raw(route.method, route.path, body)
    _is_envelope(outcome)
    assert outcome.status != 500


@st.composite
def grpc_payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    rpc = draw(st.sampled_from(sorted(VALID)))
    if draw(st.booleans()):
        return rpc, draw(st.binary(max_size=200))
    route = ROUTE_BY_RPC[rpc]
    valid = bytearray(json_format.ParseDict(VALID[rpc], route.request()).SerializeToString())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not valid:
            break
        index = draw(st.integers(min_value=0, max_value=len(valid) - 1))
        valid[index] = draw(st.integers(min_value=0, max_value=255))
    return rpc, bytes(valid)


@FUZZ
@given(case=grpc_payloads())
def test_grpc_payloads_get_an_answer_or_an_envelope(clients: Clients, case: tuple[str, bytes]) -> None:
    rpc, payload = case
    outcome = clients.grpc_raw(ROUTE_BY_RPC[rpc], payload, timeout=10)
    assert outcome.code != "deadline_exceeded", "the call hung"
    _is_envelope(outcome)


@pytest.mark.parametrize("rpc", sorted(VALID))
def test_the_valid_requests_are_answered(clients: Clients, rpc: str) -> None:
    """The fuzzers start from requests that succeed, so their mutations test something."""
    rest, grpc_ = clients.both(rpc, VALID[rpc])
    assert rest.ok and grpc_.ok, (rest.body, grpc_.body)
