"""The cost of one decision for each default ruleset: Strata's engine, rule-engine, zen-engine, Python.

    .venv/bin/python bench/engine_bench.py [--profiles 300] [--verify-profiles 2000] [--repeats 9]
    .venv/bin/python bench/engine_bench.py --cprofile segment.rfm   # where the engine's time goes

For every ruleset in ``rules/`` this builds a fixed, deterministic population
of varied profiles (valid against ``rules/profile.yaml``), parses them once,
and then times, per decision:

* compiled: ``ruleset.decide(ruleset.facts(profile, Clock.for_profile(as_of, profile)), event)``,
  the path a request takes once its profile is parsed (derived facts, the rule
  expressions compiled to Python, the explanation with the facts each rule read);
* answer only: the same call with ``skip_facts``: explanations without the values
  of the facts (``Decide`` with ``explain`` RULES or NONE), the answer, which is
  all zen-engine and the floor return;
* interpreted: the same call with every expression evaluated by rule-engine's
  interpreter instead (``Expression.use_compiled = False``), which is what the
  engine did before it compiled;
* zen: zen-engine (GoRules, Rust) evaluating the same logic as JDM decision
  tables built by ``bench/zen_tables.py``, fed the facts the rules read
  (computed by the floor's Python), for the lifecycle, segment and
  intervention rulesets; "-" where there is no table or zen-engine is missing;
* floor: a hand-written Python function with the same logic (thresholds, order
  of rules, calendar arithmetic in the user's time zone) working directly on
  the parsed profile dict and returning only the answer. It is what a
  developer would write if the rules were code: the lower bound for the engine.

Before timing, the timed profiles and ``--verify-profiles`` more go through
every side. The compiled and interpreted decisions must be identical, explanation
included (their ``repr``), and the answers of the engine, zen-engine and the
floor (stage, segment, scores, tags, points before and after the cap, daily
totals, streak, level, level-up, badges, privileges, action ids) must agree
exactly: a side with different logic measures nothing, so any difference
aborts the run, printing the profiles that disagree.

Each timed pass runs the whole timed population through one side (the sides'
passes alternate); the figure is the median pass over ``--repeats`` passes,
divided by the number of profiles, in the process's CPU time (``--clock cpu``,
the default: time spent waiting for a core another program holds does not
count) or elapsed time (``--clock wall``). The floors and the zen tables hard-code the
numbers of the default rule files; when ops change a threshold there, the
check above fails until they are updated to match.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import datetime as dt
import gc
import itertools
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import zen_tables  # zen-engine's JDM tables for the same rulesets, and the facts they read (bench/)
from rich.console import Console
from rich.table import Table

from strata.engine import CompiledRuleset
from strata.engine.expressions import Expression
from strata.engine.facts import DERIVED_FACTS, Clock
from strata.rulefiles.loader import load_paths

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

Floor = Callable[[Mapping[str, Any], Mapping[str, Any] | None, dt.datetime], dict[str, Any]]


# --------------------------------------------------------------------------
# The population: deterministic, varied, realistic profiles
# --------------------------------------------------------------------------

ZONES = [
    "Asia/Shanghai", "Asia/Shanghai", "Asia/Shanghai", "UTC", "Asia/Tokyo", "Asia/Kolkata",
    "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Australia/Sydney",
]  # fmt: skip
ARCHETYPES = {  # how users spread over the journey (weights)
    "potential": 5, "new": 12, "engaged": 22, "casual": 15, "at_risk": 13,
    "churned": 12, "recalled": 10, "dormant": 11,
}  # fmt: skip
BASE_TAGS = ["photography", "travel", "food", "fashion", "beauty", "fitness", "pets", "gaming", "parenting"]
LEVEL_POINTS = [0, 50, 150, 400, 1000, 2500, 5000, 10000, 20000, 40000, 80000]


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _local_instant(rng: random.Random, day: dt.date, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """A random instant on a local day, never after ``now``."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    latest = min(86399, int((now - start).total_seconds()))
    return start + dt.timedelta(seconds=rng.randint(0, max(0, latest)))


def _history(rng: random.Random, archetype: str) -> tuple[int | None, set[int]]:
    """(days since registration or None, the days ago the user was active)."""
    days: set[int] = set()
    if archetype == "potential":
        if rng.random() < 0.4:  # a visitor browsing without an account
            days = {d for d in range(0, 10) if rng.random() < 0.3}
        return None, days
    if archetype == "new":
        reg = rng.randint(0, 10)
        if rng.random() < 0.85:
            days = {reg} | {d for d in range(0, reg) if rng.random() < 0.6}
        if rng.random() < 0.1:  # looked around long before registering
            days.add(rng.randint(40, 300))
        return reg, days
    reg = rng.randint(45, 1400)
    if archetype == "engaged":
        density = rng.uniform(0.5, 0.97)
        days = {d for d in range(0, min(reg, 60)) if rng.random() < density}
    elif archetype == "casual":
        days = {rng.randint(0, 6)} | {d for d in range(0, min(reg, 60)) if rng.random() < 0.15}
    elif archetype == "at_risk":
        last = rng.randint(1, 29)
        days = {last} | {d for d in range(last, min(reg, last + 60)) if rng.random() < 0.3}
    elif archetype == "churned":
        last = rng.randint(28, 220)
        days = {d for d in range(last, min(reg, last + 60)) if rng.random() < 0.3} | {min(last, reg)}
    elif archetype == "recalled":
        back = rng.randint(0, 9)
        gap = rng.randint(20, 160)
        days = {back} | {d for d in range(0, back) if rng.random() < 0.5}
        days |= {d for d in range(back + gap, min(reg, back + gap + 40)) if rng.random() < 0.3}
    else:  # dormant
        days = {min(reg, rng.randint(150, 600))}
    # sparse older activity back to registration, the first active day
    days |= {d for d in range(60, reg) if rng.random() < 0.01}
    days.add(reg)
    return reg, days


def make_profile(rng: random.Random, index: int, pools: dict[str, list[str]]) -> dict[str, Any]:
    """One raw (JSON-shaped) profile."""
    timezone = rng.choice(ZONES)
    zone = ZoneInfo(timezone)
    now = AS_OF.astimezone(zone)
    today = now.date()
    archetype = rng.choices(list(ARCHETYPES), weights=list(ARCHETYPES.values()))[0]
    reg, days_ago = _history(rng, archetype)
    profile: dict[str, Any] = {"user_id": f"u{index:05d}", "timezone": timezone}
    if reg is not None:
        profile["registered_at"] = _iso(_local_instant(rng, today - reg * DAY, zone, now))
    if days_ago:
        # the schema keeps at least the last 30 days, plus the last active day before them
        older = [d for d in days_ago if d > 30]
        kept = sorted({d for d in days_ago if d <= 30} | ({min(older)} if older else set()), reverse=True)
        profile["activity_dates"] = [(today - d * DAY).isoformat() for d in kept]
        if rng.random() < 0.85:
            profile["first_active_date"] = (today - max(days_ago) * DAY).isoformat()
        if rng.random() < 0.85:
            profile["last_active_at"] = _iso(_local_instant(rng, today - min(days_ago) * DAY, zone, now))
    active_recently = bool(days_ago) and min(days_ago) <= 30

    # onboarding and the social graph
    profile["profile_fields_completed"] = (
        rng.randint(0, 5) if archetype in ("new", "potential") else rng.choice([2, 3, 4, 5, 5, 5, 5])
    )
    profile["following_count"] = (
        rng.randint(0, 12) if archetype in ("new", "potential") else int(rng.lognormvariate(3.0, 1.4))
    )
    tier = rng.random()
    if tier < 0.015:
        followers = rng.randint(100_000, 3_000_000)
    elif tier < 0.08:
        followers = rng.randint(2_000, 99_999)
    else:
        followers = int(rng.lognormvariate(3.0, 1.6))
    profile["followers_count"] = followers
    profile["is_signed_kol"] = rng.random() < 0.01 or (followers >= 100_000 and rng.random() < 0.5)

    # content activity in the last 30 days
    creator = active_recently and (followers > 2_000 or rng.random() < 0.08)
    posts = rng.randint(3, 40) if creator else (rng.choice([0, 0, 0, 1, 2]) if active_recently else 0)
    profile["posts_30d"] = posts
    profile["likes_received_30d"] = posts * rng.randint(0, 150) + rng.randint(0, 20)
    interacts = active_recently and (creator or rng.random() < 0.35)  # the pyramid's "active" layer
    profile["comments_30d"] = rng.randint(0, 25) if interacts else rng.randint(0, 2)
    profile["shares_30d"] = rng.randint(0, 8) if interacts else rng.randint(0, 1)
    profile["likes_given_30d"] = rng.randint(0, 60) if interacts else rng.randint(0, 4)

    # orders
    if rng.random() < 0.35:
        profile["orders_365d"] = 0
        profile["spend_365d"] = 0
    else:
        last_order = rng.choice([rng.randint(0, 7), rng.randint(8, 30), rng.randint(31, 90),
                                 rng.randint(91, 180), rng.randint(181, 500)])  # fmt: skip
        orders = 0 if last_order > 365 else max(1, int(rng.lognormvariate(1.2, 1.0)))
        profile["orders_365d"] = orders
        profile["spend_365d"] = round(orders * rng.uniform(12, 600), 2)
        profile["last_order_at"] = _iso(_local_instant(rng, today - last_order * DAY, zone, now))

    # incentive counters
    points = min(200_000, int(rng.lognormvariate(5.5, 2.0))) if reg is not None else 0
    profile["points"] = points
    profile["level"] = bisect.bisect_right(LEVEL_POINTS, points)
    checkin = rng.random()
    if checkin < 0.15:
        profile["streak_days"] = 0
    else:
        ago = 0 if checkin < 0.3 else 1 if checkin < 0.7 else rng.randint(2, 40)
        profile["streak_days"] = rng.randint(1, 45)
        profile["last_checkin_date"] = (today - ago * DAY).isoformat()
    daily = rng.random()
    if daily < 0.7 and pools["event_types"]:
        profile["daily_points_date"] = (today - (0 if daily < 0.45 else 1) * DAY).isoformat()
        profile["daily_points"] = {
            t: rng.choice([rng.randint(0, 20), rng.randint(20, 110)])
            for t in pools["event_types"]
            if rng.random() < 0.5
        }
    profile["badges"] = [b for b in pools["badges"] if rng.random() < 0.3]
    membership = rng.random()
    profile["membership"] = "black_card" if membership < 0.1 else "gold" if membership < 0.13 else None
    profile["tags"] = rng.sample(pools["tags"], k=rng.choice([0, 0, 1, 2, 3, 4]))
    profile["last_sent"] = {
        action: _iso(AS_OF - dt.timedelta(hours=rng.uniform(1, 24 * 20)))
        for action in pools["actions"]
        if rng.random() < 0.2
    }
    return profile


def make_event(rng: random.Random, ruleset: CompiledRuleset[Any]) -> dict[str, Any] | None:
    """An event for an incentive ruleset (None for the other kinds)."""
    if ruleset.kind != "incentive":
        return None
    spec = ruleset.spec
    types = [rule.event for rule in spec.events]
    types += [t for t in (spec.streak.events if spec.streak else []) if t not in types]
    event_type = "video_watched" if rng.random() < 0.05 else rng.choice(types)  # 5% earn nothing
    count = rng.randint(1, 30) if event_type.endswith("_received") and rng.random() < 0.5 else 1
    late = rng.random() < 0.15  # delivered late: the event's own time picks its local day
    event: dict[str, Any] = {
        "type": event_type,
        "at": AS_OF - dt.timedelta(minutes=rng.randint(1, 900) if late else 0),
    }
    if count != 1 or rng.random() < 0.5:
        event["count"] = count
    return event


def pools_from(rules: Mapping[str, CompiledRuleset[Any]]) -> dict[str, list[str]]:
    """Badge names, action ids, event types and labels (``*_tag`` constants) the rule files use."""
    badges: list[str] = []
    actions: list[str] = []
    event_types: list[str] = []
    tags = list(BASE_TAGS)
    for ruleset in rules.values():
        spec = ruleset.spec
        if ruleset.kind == "incentive":
            badges += [rule.result for rule in spec.badges]
            event_types += [rule.event for rule in spec.events]
        if ruleset.kind == "intervention":
            actions += [rule.id for rule in spec.actions]
        tags += [str(value) for key, value in spec.constants.items() if key.endswith("_tag")]
    unique = lambda items: list(dict.fromkeys(items))  # noqa: E731
    return {
        "badges": unique(badges),
        "actions": unique(actions),
        "event_types": unique(event_types),
        "tags": unique(tags),
    }


# --------------------------------------------------------------------------
# The floors: the same logic written directly in Python
# --------------------------------------------------------------------------


def _today(profile: Mapping[str, Any], as_of: dt.datetime) -> tuple[dt.date, ZoneInfo]:
    zone = ZoneInfo(profile["timezone"] or "UTC")
    return as_of.astimezone(zone).date(), zone


def _active_days(profile: Mapping[str, Any], today: dt.date, zone: ZoneInfo) -> set[dt.date]:
    days = set(profile["activity_dates"])
    if profile["first_active_date"]:
        days.add(profile["first_active_date"])
    if profile["last_active_at"]:
        days.add(profile["last_active_at"].astimezone(zone).date())
    return {day for day in days if day <= today}


def _days_since(instant: dt.datetime | None, today: dt.date, zone: ZoneInfo) -> int | None:
    return None if instant is None else (today - instant.astimezone(zone).date()).days


def floor_lifecycle_duolingo(profile: Mapping[str, Any], event: Any, as_of: dt.datetime) -> dict[str, Any]:
    today, zone = _today(profile, as_of)
    days = _active_days(profile, today, zone)
    if days and min(days) == today:
        return {"stage": "new"}
    today_, d1_6, d7_29, before = False, False, False, False
    for day in days:
        ago = (today - day).days
        if ago == 0:
            today_ = True
        elif ago <= 6:
            d1_6 = True
        elif ago <= 29:
            d7_29 = True
        else:
            before = True
    if today_:
        if d1_6:
            return {"stage": "current"}
        if d7_29:
            return {"stage": "reactivated"}
        if before:
            return {"stage": "resurrected"}
    else:
        if d1_6:
            return {"stage": "at_risk_wau"}
        if d7_29:
            return {"stage": "at_risk_mau"}
    return {"stage": "dormant"}


def floor_lifecycle_journey(profile: Mapping[str, Any], event: Any, as_of: dt.datetime) -> dict[str, Any]:
    churn_days, new_days, declining_days, active_min_days = 30, 7, 8, 4
    if profile["registered_at"] is None:
        return {"stage": "potential"}
    today, zone = _today(profile, as_of)
    since_registered = (today - profile["registered_at"].astimezone(zone).date()).days
    if since_registered <= new_days:
        return {"stage": "new"}
    days = _active_days(profile, today, zone)
    absent = (today - max(days)).days if days else since_registered
    if absent > churn_days:
        return {"stage": "churned"}
    ordered = sorted(days)
    for earlier, later in itertools.pairwise(ordered):
        if (today - later).days < 7 and (later - earlier).days > churn_days:
            return {"stage": "recalled"}
    if absent >= declining_days:
        return {"stage": "declining"}
    if sum(1 for day in days if (today - day).days < 7) >= active_min_days:
        return {"stage": "active"}
    return {"stage": "retained"}


def floor_segment_pyramid(profile: Mapping[str, Any], event: Any, as_of: dt.datetime) -> dict[str, Any]:
    followers, signed, shares = profile["followers_count"], profile["is_signed_kol"], profile["shares_30d"]
    if signed or followers >= 100_000:
        segment = "kol"
    elif profile["posts_30d"] >= 4 and profile["likes_received_30d"] >= 200:
        segment = "creator"
    elif shares + profile["comments_30d"] + profile["likes_given_30d"] >= 10:
        segment = "active"
    else:
        segment = "general"
    tags = []
    if signed:
        tags.append("signed_kol")
    if not signed and 10_000 <= followers < 100_000:
        tags.append("rising_star")
    if shares >= 5:
        tags.append("spreader")
    return {"segment": segment, "scores": {}, "tags": tuple(tags)}


RFM_GRID = {  # R -> the segment for F = 1..5
    1: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
}


def floor_segment_rfm(profile: Mapping[str, Any], event: Any, as_of: dt.datetime) -> dict[str, Any]:
    last_order = profile["last_order_at"]
    days = None
    if last_order is not None:
        zone = ZoneInfo(profile["timezone"])
        days = (as_of.astimezone(zone).date() - last_order.astimezone(zone).date()).days
    return rfm(days, profile["orders_365d"], profile["spend_365d"])


def rfm(days: int | None, orders: int, spend: float) -> dict[str, Any]:
    """The RFM scores, segment and tags from days since the last order (None: never), orders and spend."""
    if days is None:
        r = 1
    else:
        r = 5 if days <= 7 else 4 if days <= 30 else 3 if days <= 90 else 2 if days <= 180 else 1
    f = 5 if orders >= 20 else 4 if orders >= 10 else 3 if orders >= 5 else 2 if orders >= 2 else 1
    m = 5 if spend >= 5000 else 4 if spend >= 1000 else 3 if spend >= 300 else 2 if spend >= 100 else 1
    tags = []
    if m == 5:
        tags.append("big_spender")
    if m >= 4 and r <= 2:
        tags.append("high_value_lapsing")
    if orders == 1:
        tags.append("one_time_buyer")
    if days is None:
        tags.append("never_ordered")
    return {"segment": RFM_GRID[r][f - 1], "scores": {"r": r, "f": f, "m": m}, "tags": tuple(tags)}


LEVEL_PRIVILEGES = (
    "basic_tags", "basic_stickers", "basic_emoticons", "custom_tags", "animated_stickers",
    "premium_emoticons", "topic_tags", "exclusive_stickers", "exclusive_emoticons", "creator_tags",
    "legend_profile_frame",
)  # fmt: skip
BLACK_CARD = ("member_prices", "early_access", "price_protected_refund_7d")
LEVELS_EVENTS = {  # event type -> (points per unit, daily cap)
    "note_published": (10, 50),
    "like_received": (1, 100),
    "comment_received": (2, 100),
    "collect_received": (2, 100),
}


def _streak(profile: Mapping[str, Any], day: dt.date) -> tuple[str, int]:
    last, days = profile["last_checkin_date"], profile["streak_days"]
    if last is not None and day <= last:  # the same local day, or a late event for a past day
        return "unchanged", max(days, 1)
    if last == day - DAY:
        return "continued", days + 1
    return "reset", 1


def floor_incentive_levels(profile: Mapping[str, Any], event: Any, as_of: dt.datetime) -> dict[str, Any]:
    event_type, count = event["type"], event.get("count", 1)
    day = event.get("at", as_of).astimezone(ZoneInfo(profile["timezone"])).date()
    if event_type == "note_published":
        streak, streak_days = _streak(profile, day)
    else:
        streak, streak_days = "untracked", profile["streak_days"]
    daily = dict(profile["daily_points"]) if profile["daily_points_date"] == day else {}
    rule = LEVELS_EVENTS.get(event_type)
    if rule is None:
        before_cap = earned = 0
    else:
        before_cap = rule[0] * count
        earned = max(0, min(before_cap, rule[1] - daily.get(event_type, 0)))
    points = profile["points"]
    total = points + earned
    level = bisect.bisect_right(LEVEL_POINTS, total)
    held = profile["badges"]
    badges = []
    if event_type == "note_published" and "first_note" not in held:
        badges.append("first_note")
    likes = profile["likes_received_30d"] + (count if event_type == "like_received" else 0)
    if likes >= 100 and "likes_100" not in held:
        badges.append("likes_100")
    if streak_days >= 30 and "streak_30" not in held:
        badges.append("streak_30")
    if level >= 5 and "level_5" not in held:
        badges.append("level_5")
    if rule is not None:
        daily[event_type] = daily.get(event_type, 0) + earned
    return {
        "local_day": day,
        "points": earned,
        "points_before_cap": before_cap,
        "points_total": total,
        "daily_points": daily,
        "streak": streak,
        "streak_days": streak_days,
        "level": level,
        "level_up": level > bisect.bisect_right(LEVEL_POINTS, points),
        "badges": tuple(badges),
        "privileges": LEVEL_PRIVILEGES[:level]
        + (BLACK_CARD if profile["membership"] == "black_card" else ()),
    }


def floor_incentive_daily_signin(
    profile: Mapping[str, Any], event: Any, as_of: dt.datetime
) -> dict[str, Any]:
    event_type = event["type"]
    day = event.get("at", as_of).astimezone(ZoneInfo(profile["timezone"])).date()
    daily = dict(profile["daily_points"]) if profile["daily_points_date"] == day else {}
    if event_type == "sign_in":
        streak, streak_days = _streak(profile, day)
        level = profile["level"]
        cap = 40 if level >= 8 else 30 if level >= 4 else 20
        before_cap = min(5 * streak_days, cap)
        earned = 0 if streak == "unchanged" else before_cap
    else:
        streak, streak_days, before_cap, earned = "untracked", profile["streak_days"], 0, 0
    points = profile["points"]
    total = points + earned
    level = bisect.bisect_right(LEVEL_POINTS, total)
    if event_type == "sign_in":
        daily[event_type] = daily.get(event_type, 0) + earned
    return {
        "local_day": day,
        "points": earned,
        "points_before_cap": before_cap,
        "points_total": total,
        "daily_points": daily,
        "streak": streak,
        "streak_days": streak_days,
        "level": level,
        "level_up": level > bisect.bisect_right(LEVEL_POINTS, points),
        "badges": (),
        "privileges": (),
    }


def floor_intervention_default(
    profile: Mapping[str, Any], event: Any, as_of: dt.datetime, stage: str | None = None
) -> dict[str, Any]:
    """``stage``: the journey stage when already known (the rules-only floor), else worked out here."""
    stage = stage or floor_lifecycle_journey(profile, None, as_of)["stage"]
    segment = floor_segment_pyramid(profile, None, as_of)["segment"]
    declining, engaged = stage == "declining", stage not in ("potential", "churned")
    matched: list[tuple[int, str, int]] = []  # (priority, action id, cooldown in days), in file order
    if declining and segment in ("kol", "creator"):
        matched.append((95, "top_tier_outreach", 14))
    if stage == "new" and profile["profile_fields_completed"] < 5:
        matched.append((90, "onboard_complete_profile", 1))
    if stage == "new" and profile["following_count"] < 5:
        matched.append((85, "onboard_follow_people", 1))
    if declining:
        matched.append((80, "recall_coupon", 7))
    if segment == "kol":
        matched.append((75, "kol_care", 30))
    if declining:
        matched.append((70, "recall_push", 3))
    if stage == "churned":
        matched.append((65, "winback_coupon", 30))
        matched.append((60, "winback_email", 14))
    if segment == "creator":
        matched.append((55, "creator_care", 14))
    if stage == "recalled":
        matched.append((50, "welcome_back", 7))
    if stage == "potential":
        matched.append((50, "register_prompt", 1))
    if segment == "active" and engaged:
        matched.append((40, "active_care", 7))
    tags = profile["tags"]
    if "fashion" in tags and engaged:
        matched.append((30, "invite_fashion_circle", 30))
    if "travel" in tags and engaged:
        matched.append((30, "invite_travel_circle", 30))
    if segment == "general" and engaged:
        matched.append((20, "general_campaign", 7))
    last_sent = profile["last_sent"]
    ready = []
    for priority, action, cooldown_days in matched:
        sent = last_sent.get(action)
        if sent is None or sent + dt.timedelta(days=cooldown_days) <= as_of:
            ready.append((priority, action))
    ready.sort(key=lambda item: -item[0])  # stable: file order breaks ties
    return {"stage": stage, "segment": segment, "actions": tuple(action for _, action in ready[:3])}


FLOORS: dict[str, Floor] = {
    "lifecycle.duolingo": floor_lifecycle_duolingo,
    "lifecycle.journey": floor_lifecycle_journey,
    "segment.pyramid": floor_segment_pyramid,
    "segment.rfm": floor_segment_rfm,
    "incentive.levels": floor_incentive_levels,
    "incentive.daily_signin": floor_incentive_daily_signin,
    "intervention.default": floor_intervention_default,
}


# --------------------------------------------------------------------------
# Rules only: the same logic on facts derived beforehand
# --------------------------------------------------------------------------
#
# The issue's "hand-written Python, same lifecycle: 0.10 us" and "zen-engine as a decision
# table: 9.2 us" decide from facts already derived: no calendar arithmetic in either. These
# floors take the facts zen_tables.FACTS derives (the floors' own calendar code), the same
# facts the zen tables and the engine are given in the rules-only comparison.

RulesFloor = Callable[[Mapping[str, Any], dict[str, Any], dt.datetime], dict[str, Any]]


def rules_lifecycle_journey(profile: Mapping[str, Any], facts: dict[str, Any], as_of: Any) -> dict[str, Any]:
    if not facts["registered"]:
        return {"stage": "potential"}
    registered = facts["days_since_registered"]
    if registered <= 7:
        return {"stage": "new"}
    absent = facts["days_since_last_active"]
    if absent is None:
        absent = registered
    if absent > 30:
        return {"stage": "churned"}
    gap = facts["recent_gap_days"]
    if gap is not None and gap > 30:
        return {"stage": "recalled"}
    if absent >= 8:
        return {"stage": "declining"}
    return {"stage": "active" if facts["active_days_7d"] >= 4 else "retained"}


def rules_lifecycle_duolingo(profile: Mapping[str, Any], facts: dict[str, Any], as_of: Any) -> dict[str, Any]:
    if facts["is_first_day"]:
        return {"stage": "new"}
    d1_6, d7_29 = facts["active_d1_d6"], facts["active_d7_d29"]
    if facts["active_today"]:
        if d1_6:
            return {"stage": "current"}
        if d7_29:
            return {"stage": "reactivated"}
        if facts["active_before_d29"]:
            return {"stage": "resurrected"}
    elif d1_6:
        return {"stage": "at_risk_wau"}
    elif d7_29:
        return {"stage": "at_risk_mau"}
    return {"stage": "dormant"}


def rules_segment_rfm(profile: Mapping[str, Any], facts: dict[str, Any], as_of: Any) -> dict[str, Any]:
    return rfm(facts["days_since_last_order"], facts["orders_365d"], facts["spend_365d"])


def rules_intervention_default(
    profile: Mapping[str, Any], facts: dict[str, Any], as_of: dt.datetime
) -> dict[str, Any]:
    """``floor_intervention_default`` with the journey stage decided from the given facts."""
    return floor_intervention_default(
        profile, None, as_of, rules_lifecycle_journey(profile, facts, as_of)["stage"]
    )


RULES_FLOORS: dict[str, RulesFloor] = {
    "lifecycle.duolingo": rules_lifecycle_duolingo,
    "lifecycle.journey": rules_lifecycle_journey,
    "segment.pyramid": lambda profile, facts, as_of: floor_segment_pyramid(
        profile, None, as_of
    ),  # no calendar
    "segment.rfm": rules_segment_rfm,
    "intervention.default": rules_intervention_default,
}


# --------------------------------------------------------------------------
# Comparing answers
# --------------------------------------------------------------------------


def answer(decision: Any) -> dict[str, Any]:
    """The part of an engine decision a floor must reproduce."""
    kind = type(decision).__name__
    if kind == "LifecycleDecision":
        return {"stage": decision.stage}
    if kind == "SegmentDecision":
        return {"segment": decision.segment, "scores": dict(decision.scores), "tags": tuple(decision.tags)}
    if kind == "IncentiveDecision":
        return {
            "local_day": decision.local_day,
            "points": decision.points_earned,
            "points_before_cap": decision.points_before_cap,
            "points_total": decision.points_total,
            "daily_points": dict(decision.daily_points),
            "streak": decision.streak,
            "streak_days": decision.streak_days,
            "level": decision.level,
            "level_up": decision.level_up,
            "badges": tuple(decision.badges_unlocked),
            "privileges": tuple(decision.privileges),
        }
    if kind == "InterventionDecision":
        return {
            "stage": decision.stage,
            "segment": decision.segment,
            "actions": tuple(action.id for action in decision.actions),
        }
    raise TypeError(f"no answer() for {kind}")


def outcome_labels(engine: dict[str, Any]) -> list[str]:
    """What a decision was, for the outcome spread printed after the table."""
    if "actions" in engine:
        count = len(engine["actions"])
        return [f"{count} action{'' if count == 1 else 's'}", *engine["actions"]]
    if "streak" in engine:
        labels = [engine["streak"], "earned" if engine["points"] else "earned 0"]
        labels += ["capped"] if engine["points"] < engine["points_before_cap"] else []
        labels += ["level up"] if engine["level_up"] else []
        return labels + [f"badge {badge}" for badge in engine["badges"]]
    if "segment" in engine:
        return [engine["segment"], *(f"#{tag}" for tag in engine["tags"])]
    return [engine["stage"]]


def abort(what: str, mismatches: list[tuple[Any, ...]], total: int) -> None:
    console = Console(stderr=True)
    console.print(
        f"[bold red]ABORT: {what} on {len(mismatches)} of {total} profiles; its timing would mean nothing.[/]"
    )
    for raw_profile, event, engine, other in mismatches[:3]:
        if isinstance(engine, dict):
            diff = {
                k: (engine.get(k), other.get(k)) for k in {*engine, *other} if engine.get(k) != other.get(k)
            }
            console.print({"profile": raw_profile, "event": event, "(engine, other)": diff})
        else:
            console.print({"profile": raw_profile, "event": event, "compiled": engine, "interpreted": other})
    raise SystemExit(1)


def verify(
    name: str,
    ruleset: CompiledRuleset[Any],
    floor: Floor,
    zen: Floor | None,
    cases: list[tuple[dict[str, Any], dict[str, Any] | None]],
    raw: list[dict[str, Any]],
) -> dict[str, int]:
    """Every side agrees on every profile, or the run aborts. Returns the outcome spread."""
    to_floor, to_interpreter, to_zen = [], [], []
    spread: dict[str, int] = {}
    for (profile, event), raw_profile in zip(cases, raw, strict=True):
        decision = ruleset.decide(ruleset.facts(profile, Clock.for_profile(AS_OF, profile)), event)
        Expression.use_compiled = False
        try:
            reference = ruleset.decide(ruleset.facts(profile, Clock.for_profile(AS_OF, profile)), event)
        finally:
            Expression.use_compiled = True
        if repr(decision) != repr(reference):
            to_interpreter.append((raw_profile, event, repr(decision), repr(reference)))
        engine, hand = answer(decision), floor(profile, event, AS_OF)
        if engine != hand:
            to_floor.append((raw_profile, event, engine, hand))
        if zen is not None and (tables := zen(profile, event, AS_OF)) != engine:
            to_zen.append((raw_profile, event, engine, tables))
        for label in outcome_labels(engine):
            spread[label] = spread.get(label, 0) + 1
    if to_interpreter:
        abort(
            f"the compiled {name} decides differently from rule-engine's interpreter",
            to_interpreter,
            len(cases),
        )
    if to_floor:
        abort(f"the hand-written floor for {name} disagrees with the engine", to_floor, len(cases))
    if to_zen:
        abort(f"the zen-engine tables for {name} disagree with the engine", to_zen, len(cases))
    return spread


RulesCase = tuple[dict[str, Any], dict[str, Any] | None, Clock, dict[str, Any], dict[str, Any]]
"""A rules-only case: profile, event, clock, the engine's memo holding the derived facts, and
the same facts as the dict the zen table and the rules-only floor read."""


def rules_only_cases(name: str, cases: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[RulesCase]:
    """Each case with its facts derived beforehand by ``zen_tables.FACTS`` (the floors' calendar
    code), given to the engine as its request memo: it then derives nothing."""
    derive = zen_tables.FACTS[name]
    found = []
    for profile, event in cases:
        derived = derive(profile, AS_OF)
        memo = {fact: value for fact, value in derived.items() if fact in DERIVED_FACTS}
        found.append((profile, event, Clock.for_profile(AS_OF, profile), memo, derived))
    return found


def verify_rules_only(
    name: str,
    ruleset: CompiledRuleset[Any],
    floor: RulesFloor,
    table: RulesFloor | None,
    cases: list[RulesCase],
    raw: list[dict[str, Any]],
) -> None:
    """On facts derived beforehand, the engine decides exactly as on its own (explanation included)
    without deriving anything more, and the zen table and the rules-only floor agree with it."""
    mismatches: dict[str, list[tuple[Any, ...]]] = {"engine": [], "floor": [], "zen": []}
    for (profile, event, clock, memo, derived), raw_profile in zip(cases, raw, strict=True):
        given = set(memo)
        decision = ruleset.decide(ruleset.facts(profile, clock, memo), event)
        reference = ruleset.decide(ruleset.facts(profile, Clock.for_profile(AS_OF, profile)), event)
        extra = {fact for fact in memo.keys() - given if fact in DERIVED_FACTS or fact.startswith("_")}
        if repr(decision) != repr(reference) or extra:
            mismatches["engine"].append(
                (raw_profile, event, repr(decision), f"{reference!r}, derived {extra}")
            )
        engine = answer(decision)
        if (hand := floor(profile, derived, AS_OF)) != engine:
            mismatches["floor"].append((raw_profile, event, engine, hand))
        if table is not None and (tables := table(profile, derived, AS_OF)) != engine:
            mismatches["zen"].append((raw_profile, event, engine, tables))
    what = {
        "engine": "decides differently (or derives facts) when given the facts",
        "floor": "rules-only floor disagrees with the engine",
        "zen": "zen-engine tables disagree with the engine on the given facts",
    }
    for side, found in mismatches.items():
        if found:
            abort(f"rules only, {name}: the {what[side]}", found, len(cases))


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

Case = tuple[dict[str, Any], dict[str, Any] | None]
Side = Callable[[list[Case]], None]  # runs one timed pass over the cases


CLOCKS: dict[str, Callable[[], int]] = {"cpu": time.process_time_ns, "wall": time.perf_counter_ns}


def time_passes(
    sides: dict[str, Callable[[list[Any]], None]], cases: list[Any], repeats: int, clock: str
) -> dict[str, float]:
    """Median ns per decision for each side, the sides' passes interleaved."""
    passes: dict[str, list[int]] = {name: [] for name in sides}
    perf = CLOCKS[clock]
    for _ in range(repeats):
        for name, side in sides.items():
            gc.collect()
            start = perf()
            side(cases)
            passes[name].append(perf() - start)
    return {name: statistics.median(times) / len(cases) for name, times in passes.items()}


def engine_side(ruleset: CompiledRuleset[Any], explained: bool = True) -> Side:
    """The compiled engine; ``explained``: with the values of the facts each deciding rule read
    (``Decide`` with ``explain`` FULL, the default); else without them (``skip_facts``), as for
    ``explain`` RULES or NONE."""
    decide, facts, for_profile = ruleset.decide, ruleset.facts, Clock.for_profile

    def run(cases: list[Case]) -> None:
        for profile, event in cases:
            decide(facts(profile, for_profile(AS_OF, profile)), event)

    def answer_only(cases: list[Case]) -> None:
        for profile, event in cases:
            decide(facts(profile, for_profile(AS_OF, profile), skip_facts=True), event)

    return run if explained else answer_only


def interpreter_side(ruleset: CompiledRuleset[Any]) -> Side:
    """The engine with every expression left to rule-engine's interpreter."""
    engine = engine_side(ruleset)

    def run(cases: list[Case]) -> None:
        Expression.use_compiled = False
        try:
            engine(cases)
        finally:
            Expression.use_compiled = True

    return run


def rules_engine_side(
    ruleset: CompiledRuleset[Any], explained: bool = True
) -> Callable[[list[RulesCase]], None]:
    """The compiled engine on facts derived beforehand (its memo holds them; the clock is built)."""
    decide, facts = ruleset.decide, ruleset.facts

    def run(cases: list[RulesCase]) -> None:
        for profile, event, clock, memo, _ in cases:
            decide(facts(profile, clock, memo), event)

    def answer_only(cases: list[RulesCase]) -> None:
        for profile, event, clock, memo, _ in cases:
            decide(facts(profile, clock, memo, skip_facts=True), event)

    return run if explained else answer_only


def rules_side(floor: RulesFloor) -> Callable[[list[RulesCase]], None]:
    def run(cases: list[RulesCase]) -> None:
        for profile, _, _, _, derived in cases:
            floor(profile, derived, AS_OF)

    return run


def floor_side(floor: Floor) -> Side:
    def run(cases: list[Case]) -> None:
        for profile, event in cases:
            floor(profile, event, AS_OF)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=300, help="timed profiles per ruleset (300)")
    parser.add_argument("--verify-profiles", type=int, default=2000, help="more profiles only checked (2000)")
    parser.add_argument("--repeats", type=int, default=9, help="timed passes; the median is reported (9)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the population (3)")
    parser.add_argument(
        "--clock",
        choices=list(CLOCKS),
        default="cpu",
        help="cpu: the process's CPU time, robust on a shared machine (default); wall: elapsed time",
    )
    parser.add_argument("--only", action="append", help="bench only this ruleset (repeatable)")
    parser.add_argument("--cprofile", metavar="RULESET", help="profile the engine on one ruleset and exit")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 220)
    started = time.perf_counter()

    ruleset_set, names = load_paths([RULES])
    rules = {name: ruleset_set.compiled[name] for name in names}
    selected = [name for name in rules if not args.only or name in args.only]
    missing = [name for name in selected if name not in FLOORS]
    if missing:
        console.print(f"[bold red]ABORT: no hand-written floor for {', '.join(missing)}[/]")
        return 1
    pools = pools_from(rules)
    rng = random.Random(args.seed)
    total = args.profiles + args.verify_profiles
    raw = [make_profile(rng, i, pools) for i in range(total)]
    parsed = [ruleset_set.schema.parse(profile) for profile in raw]  # once, shared by every ruleset

    if args.cprofile:
        ruleset = rules[args.cprofile]
        event_rng = random.Random(f"{args.seed}:{args.cprofile}")
        cases = [(profile, make_event(event_rng, ruleset)) for profile in parsed[: args.profiles]]
        run = engine_side(ruleset)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeats):
            run(cases)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return 0

    zen_rules = zen_tables.tables() if zen_tables.zen else {}
    zen = zen_tables.sides(zen_rules)
    table = Table(
        title=f"Cost per decision ({args.clock} time): {args.profiles} profiles, median of {args.repeats} passes"
    )
    for column in ("ruleset", "kind"):
        table.add_column(column)
    for column in ("compiled µs", "answer only µs", "rule-engine µs", "zen µs", "floor µs"):
        table.add_column(column, justify="right")
    for column in ("compiled/floor", "rule-engine/compiled", "zen/compiled", "zen/answer only"):
        table.add_column(column, justify="right")
    rules_table = Table(
        title=f"Rules only ({args.clock} time): the facts derived beforehand, the same for every side"
    )
    rules_table.add_column("ruleset")
    for column in ("compiled µs", "answer only µs", "zen µs", "floor µs"):
        rules_table.add_column(column, justify="right")
    for column in ("compiled/floor", "zen/compiled", "zen/answer only"):
        rules_table.add_column(column, justify="right")
    spreads: list[str] = []
    for name in selected:
        ruleset = rules[name]
        event_rng = random.Random(f"{args.seed}:{name}")
        cases = [(profile, make_event(event_rng, ruleset)) for profile in parsed]
        spread = verify(name, ruleset, FLOORS[name], zen.get(name), cases, raw)
        sides = {
            "compiled": engine_side(ruleset),
            "answer": engine_side(ruleset, explained=False),
            "interpreted": interpreter_side(ruleset),
            "floor": floor_side(FLOORS[name]),
        }
        if name in zen:
            sides["zen"] = floor_side(zen[name])
        ns = time_passes(sides, cases[: args.profiles], args.repeats, args.clock)
        compiled = ns["compiled"]
        table.add_row(
            name,
            ruleset.kind,
            f"{compiled / 1000:.1f}",
            f"{ns['answer'] / 1000:.1f}",
            f"{ns['interpreted'] / 1000:.1f}",
            f"{ns['zen'] / 1000:.1f}" if "zen" in ns else "-",
            f"{ns['floor'] / 1000:.2f}",
            f"{compiled / ns['floor']:.1f}x",
            f"{ns['interpreted'] / compiled:.1f}x",
            f"{ns['zen'] / compiled:.1f}x" if "zen" in ns else "-",
            f"{ns['zen'] / ns['answer']:.1f}x" if "zen" in ns else "-",
        )
        if name in zen_tables.FACTS:
            rules_cases = rules_only_cases(name, cases)
            verify_rules_only(name, ruleset, RULES_FLOORS[name], zen_rules.get(name), rules_cases, raw)
            rules_sides = {
                "compiled": rules_engine_side(ruleset),
                "answer": rules_engine_side(ruleset, explained=False),
                "floor": rules_side(RULES_FLOORS[name]),
            }
            if name in zen_rules:
                rules_sides["zen"] = rules_side(zen_rules[name])
            rns = time_passes(rules_sides, rules_cases[: args.profiles], args.repeats, args.clock)
            zen_ns = rns.get("zen")
            rules_table.add_row(
                name,
                f"{rns['compiled'] / 1000:.2f}",
                f"{rns['answer'] / 1000:.2f}",
                f"{zen_ns / 1000:.2f}" if zen_ns else "-",
                f"{rns['floor'] / 1000:.2f}",
                f"{rns['compiled'] / rns['floor']:.1f}x",
                f"{zen_ns / rns['compiled']:.1f}x" if zen_ns else "-",
                f"{zen_ns / rns['answer']:.1f}x" if zen_ns else "-",
            )
        top = sorted(spread.items(), key=lambda kv: -kv[1])
        spreads.append(f"  {name}: " + ", ".join(f"{label} {count}" for label, count in top))
    console.print(table)
    if rules_table.rows:
        console.print(rules_table)
    console.print(
        f"Compiled and interpreted decisions were identical, and engine, zen-engine tables and floor "
        f"agreed, on all {total} profiles of every ruleset, in full and rules only "
        f"({args.profiles} timed + {args.verify_profiles} checked only). Outcomes:",
        highlight=False,
    )
    if zen_tables.zen is None:
        console.print("zen-engine is not installed (pip install zen-engine): no zen column.", highlight=False)
    for line in spreads:
        console.print(line, soft_wrap=True, highlight=False)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    console.print(
        f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}; load average {load}; "
        f"run took {time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
