"""Decisions and their explanations: what the engine returns.

Every decision names the ruleset and its content checksum, and for each rule
that decided, its id, its reason and the values of the facts it read, so a
support engineer can answer "why did this user get that?" from the response
alone.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import types
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

    ``dataclass(frozen=True)`` writes each field with ``object.__setattr__``: building a decision
    and its hits cost more than deciding. This ``__init__`` stores each field in the instance dict
    directly (the class stays frozen to everyone else). It is generated, as the dataclass's own is,
    with the dataclass's signature: the same arguments, positional or by name, the same defaults
    (a ``default_factory`` field also takes None for "a new default"), and Python's own
    ``TypeError`` for a missing or unknown one. Built from ``ast`` nodes, as compiled rules are.
    """
    instance_dict = ast.Name(id="fields", ctx=ast.Load())
    body: list[ast.stmt] = [
        _assign("fields", ast.Attribute(value=_load("self"), attr="__dict__", ctx=ast.Load()))
    ]
    scope: dict[str, Any] = {"__builtins__": {}}
    defaults = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults.append(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            defaults.append(None)
            scope[f"factory_{f.name}"] = f.default_factory
            missing = ast.Compare(left=_load(f.name), ops=[ast.Is()], comparators=[ast.Constant(None)])
            new = ast.Call(func=_load(f"factory_{f.name}"), args=[], keywords=[])
            body.append(ast.If(test=missing, body=[_assign(f.name, new)], orelse=[]))
        target = ast.Subscript(value=instance_dict, slice=ast.Constant(f.name), ctx=ast.Store())
        body.append(ast.Assign(targets=[target], value=_load(f.name)))
    parameters = [ast.arg(arg=name) for name in ("self", *(f.name for f in dataclasses.fields(cls)))]
    function = ast.FunctionDef(
        name="__init__",
        args=ast.arguments(posonlyargs=[], args=parameters, kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body,
        decorator_list=[],
        returns=None,
    )
    module = compile(
        ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[])), "<quick_init>", "exec"
    )
    code = next(const for const in module.co_consts if isinstance(const, types.CodeType))
    init = types.FunctionType(code, scope, "__init__", tuple(defaults) or None)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=value)


@quick_init
@dataclass(frozen=True)
class RuleHit:
    """One rule that decided: its id, why, and the facts it read.

    ``facts`` is empty when the request said nobody would read it (see ``Facts.skip_facts``).
    """

    rule: str
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)

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


@quick_init
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


@quick_init
@dataclass(frozen=True)
class Action:
    id: str
    channel: str
    template: str | None
    offer: str | None
    priority: int
    reason: str
    cooldown_seconds: int


@quick_init
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
