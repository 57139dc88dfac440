"""The rule file format, one model per kind, validated before anything compiles.

These models say what a rule file may contain; ``docs/rule-files.md`` says the
same in prose. Unknown keys are refused (a typo must not silently disable a
rule). Expressions stay strings here: they are compiled and type checked by
``strata.engine.ruleset``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strata.engine.limits import LIMITS

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RulesetName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_-]*)+$", max_length=128)]
ExpressionText = Annotated[str, Field(min_length=1)]  # its length is a limit checked when it compiles
NumberOrExpression = int | float | ExpressionText
Reason = Annotated[str, Field(min_length=1, max_length=500)]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Rule(Strict):
    """A condition with an id unique in its file and a reason a human reads."""

    id: Identifier
    when: ExpressionText
    reason: Reason


class TestCase(Strict):
    """A case embedded in a rule file: inputs and the decision fields expected."""

    __test__ = False  # not a pytest class

    name: Annotated[str, Field(min_length=1)]
    as_of: dt.datetime
    profile: dict[str, Any]
    event: dict[str, Any] | None = None
    expect: dict[str, Any]


class RulesetBase(Strict):
    kind: str
    name: RulesetName
    description: Annotated[str, Field(min_length=1)]
    constants: dict[Identifier, int | float | str | bool] = {}
    tests: Annotated[list[TestCase], Field(max_length=LIMITS.test_cases)] = []

    def rule_ids(self) -> list[str]:
        """Every rule id in the file, in order (duplicates are refused)."""
        return []

    @model_validator(mode="after")
    def _unique_ids(self) -> RulesetBase:
        seen: set[str] = set()
        for rule_id in self.rule_ids():
            if rule_id in seen:
                raise ValueError(f"duplicate rule id {rule_id!r}")
            seen.add(rule_id)
        return self


# lifecycle -----------------------------------------------------------------


class StageRule(Rule):
    stage: Identifier | None = None  # defaults to the rule id

    @property
    def result(self) -> str:
        return self.stage or self.id


class DefaultStage(Strict):
    stage: Identifier
    reason: Reason


class LifecycleSpec(RulesetBase):
    kind: Literal["lifecycle"]
    stages: Annotated[list[StageRule], Field(min_length=1)]
    default: DefaultStage

    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self.stages]


# segment -------------------------------------------------------------------


class ScoreSpec(Strict):
    """An expression scored 1..5 by four ascending thresholds.

    ``better: higher``: 1 + how many thresholds the value reaches (>=).
    ``better: lower``: 1 + how many thresholds the value is within (<=).
    A null value scores ``missing``.
    """

    value: ExpressionText
    better: Literal["higher", "lower"]
    thresholds: Annotated[list[float], Field(min_length=4, max_length=4)]
    missing: Annotated[int, Field(ge=1, le=5)] = 1
    reason: Reason | None = None

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, thresholds: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            raise ValueError("thresholds must be strictly ascending")
        return thresholds


class SegmentRule(Rule):
    segment: Identifier | None = None

    @property
    def result(self) -> str:
        return self.segment or self.id


class TagRule(Rule):
    tag: Identifier | None = None

    @property
    def result(self) -> str:
        return self.tag or self.id


class DefaultSegment(Strict):
    segment: Identifier
    reason: Reason


class SegmentSpec(RulesetBase):
    kind: Literal["segment"]
    scores: dict[Identifier, ScoreSpec] = {}
    segments: Annotated[list[SegmentRule], Field(min_length=1)]
    default: DefaultSegment
    tags: list[TagRule] = []

    def rule_ids(self) -> list[str]:
        return [rule.id for rule in [*self.segments, *self.tags]]


# incentive -----------------------------------------------------------------


class PointsRule(Strict):
    """What one event type earns, and its cap per local calendar day."""

    id: Identifier
    event: Identifier
    points: NumberOrExpression
    daily_cap: NumberOrExpression | None = None
    once_per_day: bool = False
    reason: Reason


class LevelSpec(Strict):
    thresholds: Annotated[list[int], Field(min_length=1)]
    privileges: dict[int, list[Identifier]] = {}

    @field_validator("thresholds")
    @classmethod
    def _ascending_from_zero(cls, thresholds: list[int]) -> list[int]:
        if thresholds[0] != 0:
            raise ValueError("the first level starts at 0 points")
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            raise ValueError("thresholds must be strictly ascending")
        return thresholds

    @model_validator(mode="after")
    def _known_levels(self) -> LevelSpec:
        for level in self.privileges:
            if not 1 <= level <= len(self.thresholds):
                raise ValueError(f"privileges for level {level}, but levels are 1..{len(self.thresholds)}")
        return self


class StreakSpec(Strict):
    events: Annotated[list[Identifier], Field(min_length=1)]


class BadgeRule(Rule):
    badge: Identifier | None = None

    @property
    def result(self) -> str:
        return self.badge or self.id


class IncentiveSpec(RulesetBase):
    kind: Literal["incentive"]
    events: Annotated[list[PointsRule], Field(min_length=1)]
    levels: LevelSpec
    streak: StreakSpec | None = None
    badges: list[BadgeRule] = []
    memberships: dict[Identifier, list[Identifier]] = {}

    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self.events] + [rule.id for rule in self.badges]

    @model_validator(mode="after")
    def _one_rule_per_event(self) -> IncentiveSpec:
        seen: set[str] = set()
        for rule in self.events:
            if rule.event in seen:
                raise ValueError(f"event {rule.event!r} has two points rules")
            seen.add(rule.event)
            if rule.once_per_day and (self.streak is None or rule.event not in self.streak.events):
                raise ValueError(f"rule {rule.id!r}: once_per_day needs {rule.event!r} in streak.events")
        return self


# intervention --------------------------------------------------------------


def duration_seconds(text: str) -> int:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r}: use a number and a unit, like 30m, 12h or 7d")
    return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


class ActionRule(Rule):
    channel: Literal["push", "email", "sms", "in_app", "coupon", "outreach"]
    template: Identifier | None = None
    offer: Identifier | None = None
    priority: Annotated[int, Field(ge=0, le=1000)]
    cooldown: str = "0s"

    @field_validator("cooldown")
    @classmethod
    def _duration(cls, text: str) -> str:
        duration_seconds(text)
        return text

    @model_validator(mode="after")
    def _template_or_offer(self) -> ActionRule:
        if not (self.template or self.offer):
            raise ValueError("an action needs a template or an offer")
        return self


class Uses(Strict):
    lifecycle: RulesetName | None = None
    segment: RulesetName | None = None


class InterventionSpec(RulesetBase):
    kind: Literal["intervention"]
    uses: Uses = Uses()
    max_actions: Annotated[int, Field(ge=1, le=100)] = 3
    actions: Annotated[list[ActionRule], Field(min_length=1)]

    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self.actions]


RulesetSpec = Annotated[
    LifecycleSpec | SegmentSpec | IncentiveSpec | InterventionSpec,
    Field(discriminator="kind"),
]
KINDS = ("lifecycle", "segment", "incentive", "intervention")
