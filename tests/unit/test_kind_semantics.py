"""Each kind's semantics on small inline rulesets, independent of the default files."""

from __future__ import annotations

import datetime as dt

import pytest

from strata.errors import InvalidArgument
from tests.unit.helpers import AS_OF, ruleset

SEGMENT = """\
name: segment.t
kind: segment
description: t
scores:
  p: {value: posts_30d, better: higher, thresholds: [1, 2, 3, 4]}
segments:
  - {id: top, when: scores.p == 5, reason: many posts}
  - {id: mid, when: scores.p >= 3, reason: some posts}
default: {segment: low, reason: few posts}
tags:
  - {id: poster, when: posts_30d > 0, reason: posted}
  - {id: liked, when: likes_received_30d > 0, reason: liked}
  - {id: again, tag: poster, when: posts_30d > 1, reason: posted twice}
"""

INCENTIVE = """\
name: incentive.t
kind: incentive
description: t
events:
  - {id: post, event: post, points: 10 * event.count, daily_cap: 25, reason: posting}
  - {id: checkin, event: checkin, points: '$min([streak.days, 3])', once_per_day: true, reason: checking in}
levels: {thresholds: [0, 20, 40], privileges: {1: [a], 2: [b], 3: [c]}}
streak: {events: [checkin]}
badges:
  - {id: level_3, when: after.level >= 3, reason: reached level 3}
memberships: {gold: [g]}
"""

INTERVENTION = """\
name: intervention.t
kind: intervention
description: t
max_actions: 2
actions:
  - {id: low, when: 'true', channel: push, template: t, priority: 1, reason: low}
  - {id: high, when: 'true', channel: push, template: t, priority: 9, cooldown: 2d, reason: high}
  - {id: mid, when: 'true', channel: email, offer: o, priority: 5, reason: mid}
  - {id: never, when: 'false', channel: push, template: t, priority: 100, reason: never}
"""


@pytest.mark.parametrize(
    ("posts", "segment", "tags"), [(0, "low", []), (2, "mid", ["poster"]), (4, "top", ["poster"])]
)
def test_segment_first_match_default_and_collected_tags(posts: int, segment: str, tags: list[str]) -> None:
    decision = ruleset(SEGMENT).evaluate({"user_id": "u", "posts_30d": posts}, AS_OF)
    assert decision.segment == segment and list(decision.tags) == tags
    rules = [hit.rule for hit in decision.explanation]
    assert rules[0] == "score.p" and rules[1] == (segment if segment != "low" else "default")


def test_incentive_daily_cap_counts_only_today() -> None:
    rules = ruleset(INCENTIVE)
    profile = {"user_id": "u", "points": 15, "daily_points": {"post": 20}, "daily_points_date": "2026-03-10"}
    capped = rules.evaluate(profile, AS_OF, {"type": "post"})
    assert (capped.points_earned, capped.points_before_cap, capped.capped) == (5, 10, True)
    assert capped.daily_points == {"post": 25} and capped.points_total == 20
    assert (capped.previous_level, capped.level, capped.level_up) == (1, 2, True)
    assert capped.privileges == ("a", "b")
    next_day = rules.evaluate(profile, AS_OF + dt.timedelta(days=1), {"type": "post", "count": 3})
    assert (next_day.points_earned, next_day.capped, next_day.daily_points) == (25, True, {"post": 25})


def test_incentive_streak_continue_reset_and_same_day() -> None:
    rules = ruleset(INCENTIVE)
    base = {"user_id": "u", "streak_days": 4, "membership": "gold"}
    continued = rules.evaluate({**base, "last_checkin_date": "2026-03-09"}, AS_OF, {"type": "checkin"})
    assert (continued.streak, continued.streak_days, continued.points_earned) == ("continued", 5, 3)
    reset = rules.evaluate({**base, "last_checkin_date": "2026-03-07"}, AS_OF, {"type": "checkin"})
    assert (reset.streak, reset.streak_days, reset.points_earned) == ("reset", 1, 1)
    same = rules.evaluate({**base, "last_checkin_date": "2026-03-10"}, AS_OF, {"type": "checkin"})
    assert (same.streak, same.streak_days, same.points_earned) == ("unchanged", 4, 0)
    assert same.privileges == ("a", "g")
    untracked = rules.evaluate(base, AS_OF, {"type": "post"})
    assert untracked.streak == "untracked"


def test_incentive_badges_unlock_once() -> None:
    rules = ruleset(INCENTIVE)
    first = rules.evaluate({"user_id": "u", "points": 35}, AS_OF, {"type": "post"})
    assert first.badges_unlocked == ("level_3",) and first.level_up
    held = rules.evaluate({"user_id": "u", "points": 35, "badges": ["level_3"]}, AS_OF, {"type": "post"})
    assert held.badges_unlocked == ()


def test_incentive_unrewarded_event_and_bad_event() -> None:
    rules = ruleset(INCENTIVE)
    decision = rules.evaluate({"user_id": "u"}, AS_OF, {"type": "share"})
    assert decision.points_earned == 0 and decision.explanation[0].rule == "no_points_rule"
    with pytest.raises(InvalidArgument) as caught:
        rules.evaluate({"user_id": "u"}, AS_OF, {"type": "post", "count": 0, "colour": "red"})
    assert {p.field for p in caught.value.problems} == {"event.count", "event.colour"}


def test_intervention_ranks_skips_cooldowns_and_cuts_to_top_n() -> None:
    rules = ruleset(INTERVENTION)
    fresh = rules.evaluate({"user_id": "u"}, AS_OF)
    assert [a.id for a in fresh.actions] == ["high", "mid"]
    assert [(s.id, s.why) for s in fresh.skipped] == [("low", "beyond_max_actions")]
    sent = {"last_sent": {"high": (AS_OF - dt.timedelta(days=1)).isoformat()}}
    cooling = rules.evaluate({"user_id": "u", **sent}, AS_OF)
    assert [a.id for a in cooling.actions] == ["mid", "low"]
    assert cooling.skipped[0].id == "high" and cooling.skipped[0].until == AS_OF + dt.timedelta(days=1)
    later = rules.evaluate({"user_id": "u", **sent}, AS_OF + dt.timedelta(days=1))
    assert [a.id for a in later.actions] == ["high", "mid"]


def test_incentive_late_event_for_a_past_day_keeps_the_streak() -> None:
    rules = ruleset(INCENTIVE)
    profile = {"user_id": "u", "streak_days": 20, "last_checkin_date": "2026-03-10"}
    late = rules.evaluate(profile, AS_OF, {"type": "checkin", "at": "2026-03-09T10:00:00Z"})
    assert (late.streak, late.streak_days, late.points_earned) == ("unchanged", 20, 0)
    assert late.to_dict()["local_day"] == "2026-03-09"


def test_case_expectations_match_nested_subsets() -> None:
    from strata.rulefiles.casetests import matches

    actual = {"actions": [{"id": "a", "reason": "r", "priority": 1}, {"id": "b", "reason": "s"}]}
    assert matches({"actions": [{"id": "a"}, {"id": "b"}]}, actual)
    assert not matches({"actions": [{"id": "a"}]}, actual)  # lists compare whole
    assert not matches({"actions": [{"id": "b"}, {"id": "a"}]}, actual)  # and in order
    assert not matches({"actions": [{"id": "a", "colour": "x"}, {"id": "b"}]}, actual)
