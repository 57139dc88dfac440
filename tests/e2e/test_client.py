"""strata_client against real servers: one typed interface, same answers over REST and gRPC."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from google.protobuf import json_format
from strata_client import EXPLAIN_NONE, EXPLAIN_RULES, Reply, StrataClient, StrataError

from tests.e2e.conftest import Clients, Servers

AS_OF = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture(params=["rest", "grpc"])
def client(request: pytest.FixtureRequest, servers: Servers, clients: Clients) -> Iterator[StrataClient]:
    if request.param == "rest":
        made = StrataClient.rest(f"http://127.0.0.1:{servers.http_port}", timeout=10)
    else:
        made = StrataClient.grpc(f"127.0.0.1:{servers.grpc_port}", timeout=10)
    with made:
        yield made


def test_four_decisions_through_the_client(client: StrataClient) -> None:
    lifecycle = client.classify_lifecycle("u-current", as_of=AS_OF)
    assert lifecycle.stage == "current" and lifecycle.ruleset == "lifecycle.duolingo"
    assert lifecycle.explanation[0].rule == "current"
    segment = client.assign_segment("u-current", as_of=AS_OF, ruleset="segment.rfm")
    assert segment.segment == "champions" and dict(segment.scores) == {"r": 5, "f": 4, "m": 4}
    incentive = client.evaluate_incentive(
        "sign_in", "u-current", as_of=AS_OF, ruleset="incentive.daily_signin"
    )
    assert (incentive.streak, incentive.streak_days, incentive.points_earned) == ("continued", 5, 20)
    intervention = client.recommend_intervention("u-new", as_of=AS_OF)
    assert "onboard_complete_profile" in [action.id for action in intervention.actions]


def test_inline_profile_overrides_stored_fields(client: StrataClient) -> None:
    decision = client.classify_lifecycle("u-current", profile={"activity_dates": []}, as_of=AS_OF)
    assert decision.stage != "current"


def test_decide_several_at_once(client: StrataClient) -> None:
    response = client.decide("u-current", rulesets=["lifecycle.duolingo", "segment.pyramid"], as_of=AS_OF)
    assert len(response.decisions) == 2


def test_decide_with_less_explanation(client: StrataClient) -> None:
    rulesets = ["lifecycle.duolingo", "segment.rfm"]
    full = client.decide("u-current", rulesets=rulesets, as_of=AS_OF)
    rules = client.decide("u-current", rulesets=rulesets, as_of=AS_OF, explain=EXPLAIN_RULES)
    none = client.decide("u-current", rulesets=rulesets, as_of=AS_OF, explain=EXPLAIN_NONE)
    assert full.decisions[0].lifecycle.explanation[0].HasField("facts")
    hits = [(hit.rule, hit.reason) for hit in full.decisions[1].segment.explanation]
    assert [(hit.rule, hit.reason) for hit in rules.decisions[1].segment.explanation] == hits
    assert not any(hit.HasField("facts") for d in rules.decisions for hit in d.segment.explanation)
    assert [len(d.lifecycle.explanation) + len(d.segment.explanation) for d in none.decisions] == [0, 0]
    assert none.decisions[1].segment.scores == full.decisions[1].segment.scores


def test_errors_are_strata_errors_with_stable_codes(client: StrataClient) -> None:
    with pytest.raises(StrataError) as missing:
        client.classify_lifecycle("nobody", as_of=AS_OF)
    assert missing.value.code == "not_found" and not missing.value.transient
    with pytest.raises(StrataError) as bad:
        client.classify_lifecycle(profile={"user_id": "x", "posts_30d": "many"}, as_of=AS_OF)
    assert bad.value.code == "invalid_argument"
    assert any(e.get("field") == "profile.posts_30d" for e in bad.value.errors)


def test_a_request_id_is_sent_and_the_servers_is_read_back(client: StrataClient) -> None:
    reply = Reply()
    client.classify_lifecycle("u-current", as_of=AS_OF, request_id="checkout-42", reply=reply)
    assert reply.request_id == "checkout-42"
    client.decide("u-current", rulesets=["segment"], as_of=AS_OF, reply=reply)
    assert reply.request_id is not None and re.fullmatch("[0-9a-f]{32}", reply.request_id)  # the server's
    made_up = reply.request_id
    client.recommend_intervention("u-new", as_of=AS_OF, reply=reply)
    assert reply.request_id != made_up  # one per call
    client.assign_segment("u-current", as_of=AS_OF, request_id="", reply=reply)  # empty: none, as a header
    assert reply.request_id and re.fullmatch("[0-9a-f]{32}", reply.request_id)


def test_a_failed_call_carries_its_request_id(client: StrataClient) -> None:
    with pytest.raises(StrataError) as given:
        client.assign_segment("nobody", as_of=AS_OF, request_id="checkout-43")
    assert (given.value.code, given.value.request_id) == ("not_found", "checkout-43")
    with pytest.raises(StrataError) as made_up:
        client.evaluate_incentive("sign_in", "nobody", as_of=AS_OF)
    assert made_up.value.request_id is not None and re.fullmatch("[0-9a-f]{32}", made_up.value.request_id)


@pytest.mark.parametrize("bad", ["has space", "a\nb", "é", "x" * 129])
def test_a_request_id_the_server_would_refuse_is_refused_as_it_would(client: StrataClient, bad: str) -> None:
    with pytest.raises(StrataError) as caught:
        client.classify_lifecycle("u-current", as_of=AS_OF, request_id=bad)
    assert caught.value.code == "invalid_argument"
    assert [error["field"] for error in caught.value.errors] == ["x-request-id"]


def test_both_backends_give_the_same_decision(servers: Servers, clients: Clients) -> None:
    rest = StrataClient.rest(f"http://127.0.0.1:{servers.http_port}")
    grpc = StrataClient.grpc(f"127.0.0.1:{servers.grpc_port}")
    with rest, grpc:
        for user in ("u-current", "u-new", "u-lapsed"):
            a = rest.recommend_intervention(user, as_of=AS_OF)
            b = grpc.recommend_intervention(user, as_of=AS_OF)
            assert json_format.MessageToDict(a) == json_format.MessageToDict(b)


def test_unreachable_server_is_transient_and_retried() -> None:
    client = StrataClient.rest("http://127.0.0.1:9", timeout=0.5, retries=1)
    with pytest.raises(StrataError) as caught:
        client.classify_lifecycle("u", request_id="never-answered")
    assert caught.value.code == "unavailable" and caught.value.transient
    assert caught.value.request_id == "never-answered"  # no server answered: the one sent
