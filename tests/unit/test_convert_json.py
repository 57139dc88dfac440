"""REST's shortcut for Decide (``convert_json``) gives the documents the wire messages give.

Over a generated population and every default ruleset, at every explanation level:
the request a body becomes, the response document, and the refusals are the same as
going through ``json_format`` and the protobuf messages.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from strata.api.strata.v1 import decision_pb2 as pb
from strata.config import RequestLimits
from strata.decisions import DecideRequest, DecideResult, DecisionService
from strata.errors import InvalidArgument, StrataError
from strata.store.population import generate_population
from strata.transport import convert, convert_json
from strata.transport.limits import RequestChecker
from tests.fakes import default_rules

AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
LEVELS = ["EXPLAIN_FULL", "EXPLAIN_RULES", "EXPLAIN_NONE"]
EVENT = {"type": "sign_in", "count": 2}


@functools.cache
def _service() -> DecisionService:
    return DecisionService.from_files(default_rules())


def _bodies(count: int = 40) -> list[dict[str, Any]]:
    """Decide bodies as a caller sends them: each user's profile inline, every default ruleset."""
    names = sorted(default_rules().compiled)
    return [
        {"profile": orjson.loads(orjson.dumps(profile)), "as_of": "2026-03-10T12:00:00Z", "rulesets": names,
         "event": EVENT}
        for profile in generate_population(count, seed=9, as_of=AS_OF)
    ]  # fmt: skip


def _via_messages(body: dict[str, Any]) -> tuple[DecideRequest, int]:
    message = convert.message_from_dict(body, pb.DecideRequest())
    return convert.decide_request(message), message.explain


@pytest.mark.parametrize("explain", LEVELS)
def test_decide_documents_are_the_messages_documents(explain: str) -> None:
    for body in _bodies():
        body = {**body, "explain": explain}
        request, level = convert_json.decide_request(body)
        assert (request, level) == _via_messages(body)
        result = _service().decide(request)
        expected = convert.message_to_json(convert.decide_response(result, level))
        assert convert_json.decide_response(result, level) == expected


def test_explanation_levels() -> None:
    result = _service().decide(convert_json.decide_request(_bodies(1)[0])[0])
    full, rules, none = (convert_json.decide_response(result, getattr(pb, level)) for level in LEVELS)
    hits = [hit for item in full["decisions"] for kind in item.values() for hit in kind["explanation"]]
    assert hits and all(set(hit) == {"rule", "reason", "facts"} for hit in hits)
    assert [h for item in rules["decisions"] for kind in item.values() for h in kind["explanation"]] == [
        {"rule": hit["rule"], "reason": hit["reason"]} for hit in hits
    ]
    assert all(kind["explanation"] == [] for item in none["decisions"] for kind in item.values())
    without = [{k: {**v, "explanation": []} for k, v in item.items()} for item in full["decisions"]]
    assert none["decisions"] == without  # the answers themselves do not change


def test_batch_documents_are_the_messages_documents() -> None:
    items: list[Any] = [{**body, "explain": LEVELS[i % 3]} for i, body in enumerate(_bodies(12))]
    items += [
        {"user_id": "ghost", "rulesets": ["lifecycle"]},
        {"profile": {"user_id": "x"}, "rulesets": ["nope"]},
    ]
    body = {"requests": items}
    requests, levels = convert_json.batch_request(body)
    message = convert.message_from_dict(body, pb.DecideBatchRequest())
    assert requests == [convert.decide_request(item) for item in message.requests]
    assert levels == [item.explain for item in message.requests]
    results: list[DecideResult | StrataError] = list(_service().decide_batch(requests))
    assert isinstance(results[-1], StrataError) and isinstance(results[-2], StrataError)
    expected = convert.message_to_json(convert.batch_response(results, levels))
    assert convert_json.batch_response(results, levels) == expected


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"rulesets": "lifecycle", "profile": {"user_id": "u"}},
        {"rulesets": ["lifecycle"], "profile": ["not", "an", "object"]},
        {"rulesets": ["lifecycle"], "profile": {"user_id": "u"}, "event": {"count": "many"}},
        {"rulesets": ["lifecycle"], "explain": "EXPLAIN_SOME"},
        {"rulesets": ["lifecycle"], "colour": "red", "profile": {}},
    ],
)
def test_refusals_are_the_messages_refusals(body: Any) -> None:
    assert _outcome(convert_json.decide_request, body) == _outcome(_via_messages, body)
    assert _outcome(convert_json.decide_request, body)[0] == "refused"
    batch = {"requests": [{"rulesets": ["lifecycle"], "profile": {}}, body]}
    assert _outcome(convert_json.batch_request, batch) == _outcome(_batch_via_messages, batch)


def _outcome(parse: Any, body: Any) -> tuple[Any, ...]:
    try:
        return ("parsed", parse(body))
    except InvalidArgument as exc:
        return ("refused", exc.message, exc.problems)


def _batch_via_messages(body: Any) -> tuple[list[DecideRequest], list[int]]:
    message = convert.message_from_dict(body, pb.DecideBatchRequest())
    return [convert.decide_request(item) for item in message.requests], [i.explain for i in message.requests]


json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_a_profile_reads_as_a_struct_reads(profile: dict[str, Any]) -> None:
    struct = json_format.ParseDict(profile, struct_pb2.Struct())
    assert convert_json.struct_value(profile) == convert.struct_to_dict(struct)


CHECKER = RequestChecker(RequestLimits())


def _code(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except StrataError as exc:
        return exc.code


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_a_checked_profile_reads_as_an_unchecked_one(profile: dict[str, Any]) -> None:
    """The limits check rides on the conversion (one walk): within the limits it reads the same, and
    both transports refuse the same profiles (integers past 2^53 here)."""
    struct = json_format.ParseDict(profile, struct_pb2.Struct())
    from_json = _code(lambda: CHECKER.json_profile(profile, "profile"))
    from_struct = _code(lambda: CHECKER.struct_to_dict(struct, "profile"))
    if isinstance(from_struct, str):
        assert from_json == from_struct == "invalid_argument"
    else:
        assert from_json == from_struct == convert.struct_to_dict(struct)


_field_values = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=4)
    | st.sampled_from([*LEVELS, "2026-03-10T12:00:00Z", "2026-03-10T12:00:00.5+01:00", "10000-01-01T00:00:00Z"])
)  # fmt: skip
_events = st.dictionaries(st.sampled_from(["type", "at", "count", "kind"]), _field_values, max_size=3)
_requests = st.dictionaries(
    st.sampled_from(["user_id", "as_of", "rulesets", "event", "explain", "userId", "colour"]),
    _field_values | _events | st.lists(_field_values, max_size=2) | st.lists(st.text(max_size=3), max_size=2),
    max_size=5,
)


@given(_requests)
def test_a_plain_body_reads_as_json_format_reads_it(body: dict[str, Any]) -> None:
    """The direct reading of the usual fields is only a shortcut: whatever a body holds, it is read or
    refused exactly as through ``json_format`` and the message."""
    assert _outcome(convert_json.decide_request, body) == _outcome(_via_messages, body)
    batch = {"requests": [body, {"rulesets": ["lifecycle"], "explain": "EXPLAIN_NONE"}]}
    assert _outcome(convert_json.batch_request, batch) == _outcome(_batch_via_messages, batch)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_facts_fill_a_struct_as_update_does(facts: dict[str, Any]) -> None:
    expected = struct_pb2.Struct()
    expected.update(facts)
    filled = struct_pb2.Struct()
    convert.fill_struct(filled, facts)
    assert filled == expected
    assert filled.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)


@given(st.dictionaries(st.text(max_size=8), json_values | st.tuples(json_values), max_size=6))
def test_facts_print_as_their_struct_prints(facts: dict[str, Any]) -> None:
    """A hit's facts go out as they are when a ``Struct`` would not change them (no copy): the same
    JSON either way, whole floats as integers, integers past 2^53 as floats."""
    struct = json_format.ParseDict(convert_json.struct_value(facts), struct_pb2.Struct())
    expected = orjson.dumps(json_format.MessageToDict(struct))
    assert orjson.dumps(convert_json._facts(facts)) == orjson.dumps(convert_json.struct_value(facts))
    assert orjson.loads(orjson.dumps(convert_json._facts(facts))) == orjson.loads(expected)
