"""The rulesets a request is judged by: an immutable snapshot, read once per request.

The registry replaces the whole snapshot when an activation lands; a request
that took the old one finishes with it, so a reload never changes the rules
halfway through a request and never fails one (OPA reads its store the same
way). Rule files loaded from disk make a snapshot that never changes, which
is what tests and the CLI use.

Pure Python: no database, no transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from strata.engine import CompiledRuleset, ProfileSchema
from strata.rulefiles.loader import RuleSet
from strata.shadows import Shadow
from strata.splits import Split

#: Why a version answered: it is the ruleset's active version.
ACTIVE = "active"
#: Why a version answered: the request named it (``name@3``, ``name@stable``).
PINNED = "pinned"
#: Why a version answered: the ruleset's traffic split put the user in an arm (``split:1``).
SPLIT = "split"
#: Why a version ran: it is the ruleset's shadow candidate (its answers are compared, never returned).
SHADOW = "shadow"


@dataclass(frozen=True)
class Served:
    """A compiled ruleset, and which version of it this is and why it answers.

    ``version`` and ``reason`` are None for rulesets loaded from files,
    which have no version.
    """

    compiled: CompiledRuleset[Any]
    version: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SplitServed:
    """A ruleset's traffic split with each arm's version compiled (``arms[i]`` for arm ``i``)."""

    split: Split
    arms: tuple[Served, ...]

    def choose(self, user_id: str) -> Served | None:
        """The user's arm's version, or None (outside the coverage: the active version answers)."""
        arm = self.split.arm(user_id)
        return None if arm is None else self.arms[arm]


@dataclass(frozen=True)
class ShadowServed:
    """A ruleset's shadow with its candidate version compiled."""

    shadow: Shadow
    candidate: Served


class Pins(Protocol):
    """Versions other than the active one, by number or alias (the registry's; files have none)."""

    def pin(self, snapshot: Snapshot, name: str, ref: str) -> Served:
        """``name`` at version ``ref`` (a number or an alias); raises ``NotFound``."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """Rulesets by name, with the profile schema they were compiled against.

    ``pins`` serves other versions than the active ones, when there are
    versions; ``splits`` are the rulesets whose traffic is split between versions;
    ``shadows`` the rulesets with a candidate version judged beside the answering one.
    """

    schema: ProfileSchema
    rulesets: Mapping[str, Served]
    pins: Pins | None = None
    splits: Mapping[str, SplitServed] = field(default_factory=dict)
    shadows: Mapping[str, ShadowServed] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rulesets", MappingProxyType(dict(self.rulesets)))
        object.__setattr__(self, "splits", MappingProxyType(dict(self.splits)))
        object.__setattr__(self, "shadows", MappingProxyType(dict(self.shadows)))

    @classmethod
    def of_files(cls, rules: RuleSet) -> Snapshot:
        return cls(rules.schema, {name: Served(compiled) for name, compiled in rules.compiled.items()})


class RulesetSource(Protocol):
    """Where the decision service gets its rulesets: the registry's active versions, or files."""

    def current(self) -> Snapshot: ...


class FixedRulesets:
    """A source that always returns the same snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def current(self) -> Snapshot:
        return self._snapshot
