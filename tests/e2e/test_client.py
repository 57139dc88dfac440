"""strata_client against real servers: one typed interface, same answers over REST and gRPC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from google.protobuf import json_format
from strata_client import EXPLAIN_NONE, EXPLAIN_RULES, StrataClient, StrataError

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
        client.classify_lifecycle("u")
    assert caught.value.code == "unavailable" and caught.value.transient
