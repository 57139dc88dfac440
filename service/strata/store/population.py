"""A synthetic user population for demos, tests and benchmarks.

``generate_population(n, seed, as_of)`` yields profile documents valid
against ``rules/profile.yaml``, shaped like a content-and-commerce community
(DOMAIN.md) so that every default rule file has something to say about them:

- the contribution pyramid, with each tier built to land in the segment of
  the default ``segment.pyramid`` rules: kol 0.6% (signed, or 100,000+
  followers), creators 5% (4+ posts and 200+ likes received in 30 days),
  active 30% (10+ shares, comments and likes given in 30 days), the general
  public the remaining ~64% (at most 8 interactions and 1 post);
- a lifecycle stage per user, with activity dates that place them in it:
  new (registered this week), engaged, at risk after 1-6 or 7-29 days away,
  reactivated, recalled after 30+ days away, dormant, churned, registered
  but never active, and unregistered visitors (``potential``);
- heavy tails where real data has them: followers, interactions, points and
  order values are lognormal, order counts Pareto, so RFM and level
  thresholds all see users on both sides;
- registrations over the past three years, more of them recent; local
  calendars in 17 IANA zones, including half-hour and 45-minute offsets;
- interest and strategy tags, badges, memberships, and ``last_sent`` times
  for the interventions a user of that stage would have been sent.

The same ``(n, seed, as_of)`` always yields the same profiles. Everything
per-day is precomputed per zone, so a million users take about 45 seconds
on one core.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

HISTORY_DAYS = 3 * 365  # registrations go back this far
WINDOW_DAYS = 30  # activity_dates holds every active day in this window, plus the one before it
NEW_DAYS = 7  # "new": registered at most this many days ago

TIER_SHARES: dict[str, float] = {"kol": 0.006, "creator": 0.05, "active": 0.30, "general": 0.644}

TIMEZONES: dict[str, float] = {
    "Asia/Shanghai": 38,
    "America/New_York": 8,
    "Asia/Tokyo": 6,
    "Asia/Kolkata": 6,
    "America/Los_Angeles": 6,
    "Europe/London": 5,
    "Europe/Berlin": 5,
    "Europe/Paris": 4,
    "Asia/Singapore": 4,
    "America/Chicago": 4,
    "America/Sao_Paulo": 4,
    "Asia/Seoul": 3,
    "Australia/Sydney": 3,
    "Africa/Lagos": 1.5,
    "UTC": 1.5,
    "Asia/Kathmandu": 0.5,
    "America/St_Johns": 0.5,
}

# Lifecycle stage weights per tier. Contributing tiers are active in the last
# 30 days by definition, so only the general public goes dormant or churns.
STAGES: dict[str, dict[str, float]] = {
    "kol": {"engaged": 0.85, "at_risk_wau": 0.12, "reactivated": 0.03},
    "creator": {"engaged": 0.75, "at_risk_wau": 0.15, "reactivated": 0.05, "recalled": 0.05},
    "active": {
        "engaged": 0.55,
        "at_risk_wau": 0.18,
        "at_risk_mau": 0.08,
        "reactivated": 0.06,
        "recalled": 0.05,
        "new": 0.08,
    },
    "general": {
        "new": 0.06,
        "potential": 0.04,
        "engaged": 0.12,
        "at_risk_wau": 0.08,
        "at_risk_mau": 0.10,
        "reactivated": 0.03,
        "recalled": 0.05,
        "dormant": 0.17,
        "churned": 0.33,
        "never_active": 0.02,
    },
}

# The default incentive.levels thresholds: level n needs LEVEL_POINTS[n - 1] points.
LEVEL_POINTS = (0, 50, 150, 400, 1000, 2500, 5000, 10000, 20000, 40000, 80000)
INTERESTS = (
    "fashion",
    "beauty",
    "food",
    "travel",
    "fitness",
    "home",
    "parenting",
    "tech",
    "pets",
    "gaming",
    "books",
    "music",
)
INTEREST_WEIGHTS = tuple(itertools.accumulate(1 / rank for rank in range(1, len(INTERESTS) + 1)))
# Actions of the default intervention rules that a user of each stage (or
# tier) would have been sent lately, so cooldowns have something to honour.
INTERVENTIONS: dict[str, tuple[str, ...]] = {
    "potential": ("register_prompt",),
    "new": ("onboard_complete_profile", "onboard_follow_people"),
    "at_risk_wau": ("recall_push",),
    "at_risk_mau": ("recall_push", "recall_coupon"),
    "dormant": ("recall_coupon", "winback_email"),
    "churned": ("winback_coupon", "winback_email"),
    "recalled": ("welcome_back",),
    "kol": ("kol_care", "top_tier_outreach"),
    "creator": ("creator_care",),
    "active": ("active_care",),
    "general": ("general_campaign",),
}
SENT_WITHIN = dt.timedelta(days=60)


@dataclass(frozen=True)
class _Zone:
    """One time zone's calendar, precomputed back HISTORY_DAYS from as_of."""

    name: str
    dates: tuple[str, ...]  # local date, k days ago, as 'YYYY-MM-DD'
    midnights: tuple[dt.datetime, ...]  # UTC instant of that local midnight
    seconds_today: int  # seconds since local midnight at as_of

    @classmethod
    def build(cls, name: str, as_of: dt.datetime) -> _Zone:
        zone = ZoneInfo(name)
        local = as_of.astimezone(zone)
        days = [local.date() - dt.timedelta(days=k) for k in range(HISTORY_DAYS + 1)]
        midnights = tuple(dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC) for day in days)
        seconds_today = int((as_of - midnights[0]).total_seconds())
        return cls(name, tuple(day.isoformat() for day in days), midnights, seconds_today)


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


class _Generator:
    """Draws one user at a time from a seeded ``random.Random``."""

    def __init__(self, seed: int, as_of: dt.datetime) -> None:
        self.rng = random.Random(seed)
        self.as_of = as_of
        self.zones = [_Zone.build(name, as_of) for name in TIMEZONES]
        self.zone_weights = _cumulative(list(TIMEZONES.values()))
        self.tiers = list(TIER_SHARES)
        self.tier_weights = _cumulative(list(TIER_SHARES.values()))
        self.stages = {
            tier: (list(weights), _cumulative(list(weights.values()))) for tier, weights in STAGES.items()
        }

    # -- calendar -------------------------------------------------------------

    def _instant(self, zone: _Zone, days_ago: int, not_after: int | None = None) -> tuple[dt.datetime, int]:
        """A time on the local day ``days_ago`` (and its second of the day), never after as_of."""
        limit = zone.seconds_today if days_ago == 0 else 23 * 3600  # 23h: safe on DST days
        if not_after is not None:
            limit = min(limit, not_after)
        second = int(self.rng.random() * max(limit, 1))
        return zone.midnights[days_ago] + dt.timedelta(seconds=second), second

    def _registration(self, minimum: int) -> int:
        """Days since registration, at least ``minimum``; recent ones more likely (a growing product)."""
        span = HISTORY_DAYS - minimum
        return minimum + int(span * (1 - math.sqrt(self.rng.random())))

    def _spell(self, days: set[int], first: int, last: int, p: float, registered: int) -> None:
        """Mark days ``first``..``last`` ago active with probability p (none before registering)."""
        for k in range(first, min(last, registered) + 1):
            if self.rng.random() < p:
                days.add(k)

    def _activity(self, stage: str, p: float) -> tuple[int | None, set[int]]:
        """Days since registration (None: unregistered) and the active days, as days ago."""
        rng = self.rng
        days: set[int] = set()
        if stage == "potential":
            days.update(rng.randint(0, 13) for _ in range(rng.randint(1, 3)))
            return None, days
        if stage == "new":
            registered = rng.randint(0, NEW_DAYS - 1)
            self._spell(days, 0, registered, p, registered)
            days.add(registered)
            return registered, days
        if stage == "never_active":
            return self._registration(NEW_DAYS + 1), days
        if stage == "dormant":
            last = rng.randint(WINDOW_DAYS, 89)
            registered = self._registration(last)
            return registered, {last, registered}
        if stage == "churned":
            registered = self._registration(120)
            return registered, {rng.randint(90, registered), registered}
        if stage == "recalled":
            back = rng.randint(0, 6)
            away = WINDOW_DAYS + 1 + int(rng.paretovariate(1.2) * 20)
            registered = self._registration(min(back + away, HISTORY_DAYS))
            days.add(back)
            self._spell(days, 0, back, p, registered)
            days.add(min(back + away, registered))
            return registered, days
        # Users active within the window: engaged, at risk (weekly, monthly), reactivated.
        latest = {"engaged": 0, "at_risk_wau": rng.randint(1, 6), "at_risk_mau": rng.randint(7, 29)}.get(
            stage
        )
        if latest is None:  # reactivated: today, after a 6-day break, active before that
            latest = rng.randint(7, 20)
            days.add(0)
        elif stage == "engaged" and rng.random() < 0.25:
            latest = 1
        registered = self._registration(max(latest, NEW_DAYS + 1))
        days.add(latest)
        self._spell(days, latest, WINDOW_DAYS - 1, p, registered)
        if registered >= WINDOW_DAYS:  # the last active day before the window
            days.add(min(registered, WINDOW_DAYS + int(rng.expovariate(max(p, 0.05)))))
        days.add(registered)
        return registered, days

    # -- one user ---------------------------------------------------------------

    def user(self, number: int) -> dict[str, Any]:
        rng = self.rng
        tier = rng.choices(self.tiers, cum_weights=self.tier_weights)[0]
        stage_names, stage_weights = self.stages[tier]
        stage = rng.choices(stage_names, cum_weights=stage_weights)[0]
        zone = rng.choices(self.zones, cum_weights=self.zone_weights)[0]
        p = {"kol": 0.8, "creator": 0.7, "active": 0.5}.get(tier, 0.25) * rng.uniform(0.5, 1.2)
        registered, days = self._activity(stage, p)
        ordered = sorted(days)  # most recent first (days ago)
        in_window = sum(1 for k in ordered if k < WINDOW_DAYS)

        last_active_at = last_second = registered_at = None
        if ordered:
            last_active_at, last_second = self._instant(zone, ordered[0])
        if registered is not None:
            same_day = last_second if ordered and ordered[0] == registered else None
            registered_at = self._instant(zone, registered, same_day)[0]

        first_seen = registered_at or (zone.midnights[ordered[-1]] if ordered else self.as_of)
        counts = self._contribution(tier, in_window, registered is not None)
        orders, spend, last_order_at = self._orders(tier, zone, ordered, last_second)
        points = 0 if registered is None else self._points(tier, registered)
        level = bisect.bisect_right(LEVEL_POINTS, points)
        signs_in = in_window and (counts["posts_30d"] or rng.random() < 0.5)
        streak, checkin = self._streak(ordered) if signs_in else (0, None)
        return {
            "user_id": f"u{number:07d}",
            "registered_at": registered_at.isoformat() if registered_at else None,
            "timezone": zone.name,
            "first_active_date": zone.dates[ordered[-1]] if ordered else None,
            "activity_dates": [zone.dates[k] for k in reversed(ordered)],
            "last_active_at": last_active_at.isoformat() if last_active_at else None,
            "profile_fields_completed": self._completed(tier, registered),
            "following_count": self._following(tier, stage),
            **counts,
            "orders_365d": orders,
            "spend_365d": spend,
            "last_order_at": last_order_at,
            "points": points,
            "level": level,
            "streak_days": streak,
            "last_checkin_date": zone.dates[checkin] if checkin is not None else None,
            **self._daily_points(zone, ordered, counts),
            "badges": self._badges(counts, level, streak),
            "membership": "black_card" if registered_at and rng.random() < 0.02 + spend / 40_000 else None,
            "tags": self._tags(orders),
            "last_sent": self._last_sent(tier, stage, first_seen),
        }

    def _contribution(self, tier: str, active_days: int, registered: bool) -> dict[str, Any]:
        """The 30-day contribution counts that put the user in their pyramid tier.

        Only the general public has users without activity in the window
        (their 30-day counts are zero) or without an account (nor followers).
        """
        rng = self.rng
        signed = False
        if tier == "kol":
            signed = rng.random() < 0.7
            followers = int(rng.lognormvariate(math.log(150_000), 1.0))
            followers = followers if signed else 100_000 + followers
            posts = 8 + int(active_days * rng.uniform(0.3, 1.5))
            likes_received = int(posts * rng.lognormvariate(math.log(2_000), 0.8))
        elif tier == "creator":
            followers = min(99_999, int(rng.lognormvariate(math.log(3_000), 1.1)))
            posts = max(4, int(active_days * rng.uniform(0.2, 1.2)))
            likes_received = 200 + int(posts * rng.lognormvariate(math.log(80), 1.0))
        elif tier == "active":
            followers = min(99_999, int(rng.lognormvariate(math.log(120), 1.2)))
            posts = rng.choice((0, 0, 0, 1, 2, 3))
            likes_received = int(posts * rng.lognormvariate(math.log(15), 1.0))
        else:
            followers = min(20_000, int(rng.lognormvariate(math.log(8), 1.3))) if registered else 0
            posts = 1 if active_days and registered and rng.random() < 0.05 else 0
            likes_received = int(posts * rng.lognormvariate(math.log(5), 1.0))
        if tier == "general":
            shares = int(active_days > 0 and rng.random() < 0.1)
            comments = int(active_days > 0 and rng.random() < 0.2)
            likes_given = min(6, int(active_days * rng.random() * 0.7))
        else:  # at least 12 interactions: clear of the active threshold of 10
            interactions = 12 + int(rng.lognormvariate(math.log(30), 0.9) * active_days / 15)
            shares = int(interactions * rng.random() * 0.25)
            comments = int(interactions * rng.random() * 0.25)
            likes_given = interactions - shares - comments
        return {
            "followers_count": followers,
            "is_signed_kol": signed,
            "posts_30d": posts,
            "likes_received_30d": likes_received,
            "comments_30d": comments,
            "shares_30d": shares,
            "likes_given_30d": likes_given,
        }

    def _orders(
        self, tier: str, zone: _Zone, ordered: list[int], last_second: int | None
    ) -> tuple[int, float, str | None]:
        """Orders and spend in 365 days (Pareto counts, lognormal values) and the last order."""
        rng = self.rng
        buy_rate = {"kol": 0.7, "creator": 0.6, "active": 0.5}.get(tier, 0.3)
        if not ordered or rng.random() >= buy_rate:
            return 0, 0.0, None
        recent = [k for k in ordered if k <= 365]
        day = recent[0] if recent and rng.random() < 0.35 else rng.choice(recent or ordered)
        at = self._instant(zone, day, last_second if day == ordered[0] else None)[0].isoformat()
        if not recent:  # bought, but more than a year ago
            return 0, 0.0, at
        orders = min(500, int(rng.paretovariate(1.1)))
        spend = round(orders * rng.lognormvariate(math.log(45), 0.9), 2)
        return orders, spend, at

    def _points(self, tier: str, registered: int) -> int:
        base = {"kol": 8_000, "creator": 1_500, "active": 150}.get(tier, 20)
        tenure = math.log1p(registered / 30)
        return min(2_000_000, int(self.rng.lognormvariate(math.log(base) + 0.5 * tenure, 1.0)))

    @staticmethod
    def _streak(ordered: list[int]) -> tuple[int, int]:
        """Consecutive active days ending on the latest one, and that day (the last check-in).

        Every poster and half of the other users active this month sign in
        (or publish) on each day they are active.
        """
        streak = 1
        for earlier, later in itertools.pairwise(ordered):
            if later - earlier != 1:
                break
            streak += 1
        return streak, ordered[0]

    def _daily_points(self, zone: _Zone, ordered: list[int], counts: dict[str, Any]) -> dict[str, Any]:
        """Points already earned today, for users active today who post or get likes."""
        earned: dict[str, int] = {}
        if ordered and ordered[0] == 0:
            if counts["posts_30d"] and self.rng.random() < 0.5:
                earned["note_published"] = 10 * self.rng.randint(1, 5)
            if counts["likes_received_30d"]:
                earned["like_received"] = min(100, 1 + counts["likes_received_30d"] // 30)
        return {"daily_points": earned, "daily_points_date": zone.dates[0] if earned else None}

    def _completed(self, tier: str, registered: int | None) -> int:
        if registered is None:
            return 0
        weights = (25, 15, 15, 15, 10, 20) if tier == "general" else (5, 5, 10, 15, 20, 45)
        return self.rng.choices(range(6), weights=weights)[0]

    def _following(self, tier: str, stage: str) -> int:
        if stage == "potential":
            return 0
        if stage == "new":
            return self.rng.randint(0, 15)  # following 5-10 early predicts retention
        median = {"kol": 300, "creator": 150, "active": 60}.get(tier, 15)
        return int(self.rng.lognormvariate(math.log(median), 1.0))

    def _badges(self, counts: dict[str, Any], level: int, streak: int) -> list[str]:
        badges = []
        if counts["posts_30d"]:
            badges.append("first_note")
        if counts["likes_received_30d"] >= 100:
            badges.append("likes_100")
        if streak >= 30:
            badges.append("streak_30")
        if level >= 5:
            badges.append("level_5")
        return badges

    def _tags(self, orders: int) -> list[str]:
        rng = self.rng
        count = rng.choices(range(5), weights=(20, 30, 25, 15, 10))[0]
        tags = list(dict.fromkeys(rng.choices(INTERESTS, cum_weights=INTEREST_WEIGHTS, k=count)))
        if orders and rng.random() < 0.3:
            tags.append("price_sensitive")
        if orders >= 5 and rng.random() < 0.4:
            tags.append("coupon_user")
        return tags

    def _last_sent(self, tier: str, stage: str, first_seen: dt.datetime) -> dict[str, str]:
        """When recent interventions were sent: within 60 days, never before the user was seen."""
        sent = {}
        horizon = min(SENT_WITHIN, self.as_of - first_seen).total_seconds()
        for action in INTERVENTIONS.get(stage, ()) + INTERVENTIONS[tier]:
            if self.rng.random() < 0.3:
                ago = dt.timedelta(seconds=int(self.rng.random() * horizon))
                sent[action] = (self.as_of - ago).isoformat()
        return sent


def generate_population(n: int, seed: int, as_of: dt.datetime) -> Iterator[dict[str, Any]]:
    """``n`` synthetic profiles as of the instant ``as_of`` (naive means UTC), ids u0000001...

    Deterministic: the same arguments give the same profiles, in the same order.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    clock = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
    generator = _Generator(seed, clock)
    for number in range(1, n + 1):
        yield generator.user(number)
