"""The synthetic population: valid profiles, DOMAIN.md's shapes, judged by the default rule files."""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from strata.engine.schema import parse_date, parse_datetime
from strata.rulefiles.loader import load_paths, load_schema
from strata.store.population import generate_population
from tests.conftest import RULES_DIR

AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
USERS = 20_000
SCHEMA = load_schema(RULES_DIR / "profile.yaml")
RULE_FILES = ["segment.pyramid", "segment.rfm", "lifecycle.duolingo", "lifecycle.journey"]
RULES, _ = load_paths([RULES_DIR / f"{name}.yaml" for name in RULE_FILES])


@pytest.fixture(scope="module")
def population() -> list[dict[str, Any]]:
    return list(generate_population(USERS, seed=7, as_of=AS_OF))


def decide(name: str, users: list[dict[str, Any]], key: str) -> collections.Counter[str]:
    ruleset = RULES.compiled[name]
    return collections.Counter(ruleset.evaluate(user, AS_OF).to_dict()[key] for user in users)


def test_every_profile_passes_the_profile_schema(population: list[dict[str, Any]]) -> None:
    for user in population:
        SCHEMA.parse(user)  # raises ProfileError naming the field
    assert len({user["user_id"] for user in population}) == USERS


def test_the_pyramid_shares_are_those_of_domain_md(population: list[dict[str, Any]]) -> None:
    shares = {tier: count / USERS for tier, count in decide("segment.pyramid", population, "segment").items()}
    assert 0.002 < shares["kol"] < 0.01  # under 1%
    assert 0.04 < shares["creator"] < 0.06  # about 5%
    assert 0.27 < shares["active"] < 0.33  # 20-30% (the top of it, so that the rest fits)
    assert 0.60 < shares["general"] < 0.67  # 60-65%


@pytest.mark.parametrize(("name", "key"), [("lifecycle.duolingo", "stage"), ("lifecycle.journey", "stage")])
def test_every_lifecycle_stage_has_users(population: list[dict[str, Any]], name: str, key: str) -> None:
    found = decide(name, population[:5000], key)
    assert set(found) == set(RULES.compiled[name].outcomes())  # type: ignore[attr-defined]


def test_every_rfm_segment_has_users(population: list[dict[str, Any]]) -> None:
    found = decide("segment.rfm", population[:5000], "segment")
    assert set(found) == set(RULES.compiled["segment.rfm"].outcomes())  # type: ignore[attr-defined]


def test_activity_and_spend_are_heavy_tailed(population: list[dict[str, Any]]) -> None:
    spend = sorted((user["spend_365d"] for user in population), reverse=True)
    assert sum(spend[: USERS // 100]) > 0.2 * sum(spend)  # the top 1% of buyers carry a fifth
    followers = sorted(user["followers_count"] for user in population)
    assert followers[-1] > 1000 * max(1, followers[USERS // 2])
    assert len({user["timezone"] for user in population}) >= 15
    assert sum(bool(user["tags"]) for user in population) > USERS * 0.6
    assert sum(bool(user["last_sent"]) for user in population) > USERS * 0.1


def test_each_profile_is_consistent_with_itself(population: list[dict[str, Any]]) -> None:
    for user in population:
        zone = ZoneInfo(user["timezone"])
        today = AS_OF.astimezone(zone).date()
        days = [parse_date(day) for day in user["activity_dates"]]
        assert days == sorted(set(days)) and all(day <= today for day in days)
        instants = [
            user["registered_at"],
            user["last_active_at"],
            user["last_order_at"],
            *user["last_sent"].values(),
        ]
        assert all(parse_datetime(at) <= AS_OF for at in instants if at)
        if days:
            assert user["first_active_date"] == user["activity_dates"][0]
            assert parse_datetime(user["last_active_at"]).astimezone(zone).date() == days[-1]
        if user["last_order_at"]:
            assert parse_datetime(user["last_order_at"]) <= parse_datetime(user["last_active_at"])
        if user["registered_at"]:
            registered = parse_datetime(user["registered_at"])
            assert all(parse_datetime(at) >= registered for at in user["last_sent"].values())
        assert user["orders_365d"] > 0 or user["spend_365d"] == 0


def test_a_seed_always_gives_the_same_population() -> None:
    first = list(generate_population(300, seed=11, as_of=AS_OF))
    assert first == list(generate_population(300, seed=11, as_of=AS_OF))
    assert first != list(generate_population(300, seed=12, as_of=AS_OF))
    assert [user["user_id"] for user in first[:2]] == ["u0000001", "u0000002"]
