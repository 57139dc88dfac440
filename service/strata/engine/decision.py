"""Decisions and their explanations: what the engine returns.

Every decision names the ruleset and its content checksum, and for each rule
that decided, its id, its reason and the values of the facts it read, so a
support engineer can answer "why did this user get that?" from the response
alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

ALREADY_PLAIN = frozenset({int, str, bool, type(None)})
"""Classes whose values ``plain`` returns as they are."""


def plain(value: Any) -> Any:
    """A JSON-ready copy: Decimals become int or float, instants ISO 8601 strings."""
    cls = value.__class__
    if cls in ALREADY_PLAIN:  # most facts: skip the checks below
        return value
    if cls is float:  # the next most common (amounts): before the isinstance checks
        return int(value) if value.is_integer() else value
    if cls is dict:
        for key, item in value.items():  # a loop, not all(generator): no frame of its own
            if key.__class__ is not str or item.__class__ not in ALREADY_PLAIN:
                break
        else:
            return dict(value)  # a flat mapping such as the scores: a copy is all it needs
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(item) for item in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


C = TypeVar("C", bound=type)


def quick_init(cls: C) -> C:
    """A frozen dataclass whose instances build several times faster.

    ``dataclass(frozen=True)`` writes each field with ``object.__setattr__``: a decision of
    eighteen fields cost more to build than to decide. This ``__init__`` fills the instance
    dict in one call instead (for a few fields, the generated one is as fast: kept there). Same arguments (positional or by name, defaults), same
    ``TypeError`` for a missing or unknown one; the class stays frozen to everyone else.
    """
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    expected = frozenset(names)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            if not kwargs and len(args) == len(names):
                self.__dict__.update(zip(names, args, strict=True))
                return
            if len(args) > len(names) or kwargs.keys() & names[: len(args)]:
                raise TypeError(f"{cls.__name__}: too many or repeated arguments")
            kwargs.update(zip(names, args, strict=False))
        if kwargs.keys() != expected:
            kwargs = {**defaults, **kwargs}
            if kwargs.keys() != expected:
                raise TypeError(
                    f"{cls.__name__}: missing {sorted(expected - kwargs.keys())}, "
                    f"unknown {sorted(kwargs.keys() - expected)}"
                )
        self.__dict__.update(kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__  # type: ignore[misc]
    return cls


@dataclass(frozen=True)
class RuleHit:
    """One rule that decided: its id, why, and the facts it read.

    ``facts`` is empty when the request said nobody would read it (see ``Facts.skip_facts``).
    """

    rule: str
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)

    def __init__(self, rule: str, reason: str, facts: dict[str, Any] | None = None) -> None:
        """The generated one, without its three ``object.__setattr__`` calls: a decision builds
        several hits, and writing the instance dict directly (still frozen to everyone else) costs
        half as much."""
        self.__dict__.update(rule=rule, reason=reason, facts={} if facts is None else facts)

    def renamed(self, rule: str, reason: str | None = None) -> RuleHit:
        """The same facts under another rule id (and reason)."""
        return RuleHit(rule, self.reason if reason is None else reason, self.facts)


@dataclass(frozen=True)
class Decision:
    """Fields every decision has; each kind adds its result fields."""

    ruleset: str
    checksum: str
    explanation: tuple[RuleHit, ...]

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = plain(self)
        return result


@dataclass(frozen=True)
class LifecycleDecision(Decision):
    stage: str


@quick_init
@dataclass(frozen=True)
class SegmentDecision(Decision):
    segment: str
    scores: dict[str, int]
    tags: tuple[str, ...]


@quick_init
@dataclass(frozen=True)
class IncentiveDecision(Decision):
    event_type: str
    local_day: dt.date  # the user's calendar day of the event: store as daily_points_date
    points_earned: int
    points_before_cap: int
    capped: bool
    points_total: int
    daily_points: dict[str, int]
    streak: str  # continued | reset | unchanged | untracked
    streak_days: int
    level: int
    previous_level: int
    level_up: bool
    badges_unlocked: tuple[str, ...]
    privileges: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    id: str
    channel: str
    template: str | None
    offer: str | None
    priority: int
    reason: str
    cooldown_seconds: int


@dataclass(frozen=True)
class SkippedAction:
    id: str
    why: str  # cooldown | beyond_max_actions
    until: dt.datetime | None = None


@quick_init
@dataclass(frozen=True)
class InterventionDecision(Decision):
    actions: tuple[Action, ...]
    skipped: tuple[SkippedAction, ...]
    stage: str | None
    segment: str | None
