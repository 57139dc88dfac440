"""Incentive: what one event earns, with daily caps, streaks, levels, badges and privileges.

Strata is stateless: the caller sends the user's current counters in the
profile (points, streak, today's points per event type) and stores the new
ones from the decision. Days are the user's local calendar days.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strata.engine.decision import IncentiveDecision, RuleHit
from strata.engine.expressions import Expression, compile_number, object_type
from strata.engine.facts import Facts
from strata.engine.ruleset import AllMatches, CompiledRuleset, Compiler, DataType, evaluate, hit
from strata.engine.schema import parse_datetime
from strata.engine.spec import IncentiveSpec, PointsRule
from strata.errors import InvalidArgument, Problem

EVENT_TYPE = object_type("event", {"type": DataType.STRING, "at": DataType.DATETIME, "count": DataType.FLOAT})
STREAK_TYPE = object_type("streak", {"days": DataType.FLOAT, "status": DataType.STRING})
AFTER_TYPE = object_type(
    "after", {"points": DataType.FLOAT, "level": DataType.FLOAT, "streak_days": DataType.FLOAT}
)
COUNTER_FIELDS = (
    "points", "streak_days", "last_checkin_date", "badges", "membership", "daily_points", "daily_points_date",
)  # fmt: skip


@dataclass(frozen=True)
class Event:
    type: str
    at: dt.datetime
    count: int

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, as_of: dt.datetime) -> Event:
        """An event from JSON; ``at`` defaults to the request's clock, ``count`` to 1."""
        if not isinstance(raw, Mapping):
            raise InvalidArgument("an incentive decision needs an event", [Problem("missing", field="event")])
        problems = [
            Problem("unknown event field", field=f"event.{key}")
            for key in raw
            if key not in ("type", "at", "count")
        ]
        event_type, at, count = raw.get("type"), raw.get("at", as_of), raw.get("count", 1)
        if not isinstance(event_type, str) or not event_type:
            problems.append(Problem("expected a non-empty string", field="event.type"))
        try:
            at = parse_datetime(at)
        except ValueError as exc:
            problems.append(Problem(str(exc), field="event.at"))
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
            problems.append(Problem("expected an integer from 1 to 1000000", field="event.count"))
        if problems:
            raise InvalidArgument("invalid event", problems)
        return cls(str(event_type), at, count)


@dataclass(frozen=True)
class PointsRuleCompiled:
    spec: PointsRule
    points: Expression
    daily_cap: Expression | None


class IncentiveRuleset(CompiledRuleset[IncentiveSpec]):
    kind = "incentive"

    def __init__(self, spec: IncentiveSpec, checksum: str, compiler: Compiler) -> None:
        super().__init__(spec, checksum, compiler)
        for name in COUNTER_FIELDS:
            if name not in compiler.types:
                compiler.problem(f"the profile schema has no {name!r} field, which incentives need")
        compiler.types.update(event=EVENT_TYPE, streak=STREAK_TYPE)
        self.points: dict[str, PointsRuleCompiled] = {}
        for index, rule in enumerate(spec.events):
            points = compiler.expression(rule.points, f"events.{index}.points", rule.id, compile_number)
            cap = None
            if rule.daily_cap is not None:
                cap = compiler.expression(
                    rule.daily_cap, f"events.{index}.daily_cap", rule.id, compile_number
                )
            if points:
                self.points[rule.event] = PointsRuleCompiled(rule, points, cap)
        compiler.types["after"] = AFTER_TYPE
        self._privileges: dict[tuple[int, str | None], tuple[str, ...]] = {}
        self.badges: AllMatches[str] = AllMatches(
            self.name, compiler.choices("badges", spec.badges, lambda rule: rule.result)
        )

    def level_of(self, points: int) -> int:
        return bisect.bisect_right(self.spec.levels.thresholds, points)

    def privileges(self, level: int, membership: str | None) -> tuple[str, ...]:
        """Privileges of every level up to ``level``, then the membership's own (worked out once
        for each pair: they depend on the file only)."""
        key = (level, membership)
        if key not in self._privileges:
            self._privileges[key] = self._grant(level, membership)
        return self._privileges[key]

    def _grant(self, level: int, membership: str | None) -> tuple[str, ...]:
        granted = [
            p for lvl, names in sorted(self.spec.levels.privileges.items()) if lvl <= level for p in names
        ]
        granted += self.spec.memberships.get(membership or "", [])
        return tuple(dict.fromkeys(granted))

    def _streak(self, event: Event, today: dt.date, facts: Facts) -> tuple[str, int]:
        """``today``: the user's local day of the event."""
        profile = facts.profile
        days = int(profile["streak_days"])
        if self.spec.streak is None or event.type not in self.spec.streak.events:
            return "untracked", days
        last = profile["last_checkin_date"]
        if last is not None and today <= last:  # same local day, or a late event for a past day
            return "unchanged", max(days, 1)
        if last == today - dt.timedelta(days=1):
            return "continued", days + 1
        return "reset", 1

    def _earn(self, event: Event, day: dt.date, status: str, facts: Facts) -> tuple[int, int, RuleHit]:
        """(points earned, points before the cap, the rule hit)."""
        rule = self.points.get(event.type)
        if rule is None:
            return 0, 0, RuleHit("no_points_rule", f"no rule in this ruleset rewards {event.type!r}")
        rule_id = rule.spec.id
        raw = max(0, int(evaluate(rule.points, facts, self.name, rule_id, "points")))
        why = hit(rule_id, rule.spec.reason, facts, rule.points, rule.daily_cap)
        if rule.spec.once_per_day and status == "unchanged":
            return 0, raw, why.renamed(rule_id, f"{rule.spec.reason} (already earned today)")
        if rule.daily_cap is None:
            return raw, raw, why
        cap = int(evaluate(rule.daily_cap, facts, self.name, rule_id, "daily_cap"))
        earned_today = self._points_today(facts, day).get(event.type, 0)
        return max(0, min(raw, cap - earned_today)), raw, why

    def _points_today(self, facts: Facts, day: dt.date) -> dict[str, int]:
        profile = facts.profile
        if profile["daily_points_date"] != day:
            return {}
        return dict(profile["daily_points"])

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> IncentiveDecision:
        parsed = Event.parse(event, facts.clock.as_of)
        profile = facts.profile
        day = facts.clock.local_date(parsed.at)  # the user's calendar day of the event
        status, streak_days = self._streak(parsed, day, facts)
        facts = facts.with_extra(
            event={"type": parsed.type, "at": parsed.at, "count": parsed.count},
            streak={"days": streak_days, "status": status},
        )
        earned, before_cap, why = self._earn(parsed, day, status, facts)
        total = int(profile["points"]) + earned
        previous_level, level = self.level_of(int(profile["points"])), self.level_of(total)
        facts = facts.with_extra(after={"points": total, "level": level, "streak_days": streak_days})
        held = set(profile["badges"])
        unlocked = [(c, h) for c, h in self.badges.all(facts) if c.result not in held]
        daily = self._points_today(facts, day)
        if parsed.type in self.points:
            daily[parsed.type] = daily.get(parsed.type, 0) + earned
        return IncentiveDecision(
            **self.stamp(),
            explanation=(why, *(badge_hit for _, badge_hit in unlocked)),
            event_type=parsed.type,
            local_day=day,
            points_earned=earned,
            points_before_cap=before_cap,
            capped=earned < before_cap,
            points_total=total,
            daily_points=daily,
            streak=status,
            streak_days=streak_days,
            level=level,
            previous_level=previous_level,
            level_up=level > previous_level,
            badges_unlocked=tuple(dict.fromkeys(c.result for c, _ in unlocked)),
            privileges=self.privileges(level, profile["membership"]),
        )
