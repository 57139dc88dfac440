"""The changes a publisher makes from a ruleset's page, each confirmed before it is made.

A change is read from the submitted form, says what it will change (shown on
the confirmation page, from the state at that moment) and is applied through
the registry's own use case. Every change carries the revision the page was
loaded with, so a page someone else has made stale is refused at either step
with the registry's ``Conflict``, never applied over their change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from strata.errors import InvalidArgument, NotFound, Problem
from strata.registry.records import Head
from strata.registry.service import Registry, check_alias
from strata.shadows import Shadow, default_seed
from strata.splits import Split


@dataclass(frozen=True)
class Effect:
    """One line of "what will change": the thing, its value now, its value after."""

    what: str
    before: str
    after: str


def _version_text(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _split_text(split: Split | None) -> str:
    if split is None:
        return "none"
    return f"{split.arms} (seed {split.seed}, coverage {split.coverage:g})"


def _shadow_text(shadow: Shadow | None) -> str:
    return (
        "none"
        if shadow is None
        else f"v{shadow.version} for {shadow.share:.0%} of users (seed {shadow.seed})"
    )


def number(form: Mapping[str, str], field: str) -> int:
    """A whole number from a form field, or an error naming the field."""
    text = form.get(field, "").strip()
    if not text.isdigit():
        raise InvalidArgument(f"invalid {field} {text!r}", [Problem("expected a whole number", field=field)])
    return int(text)


@dataclass(frozen=True)
class Change(ABC):
    """A change to one ruleset, guarded by the revision its page was loaded with."""

    title: ClassVar[str]
    name: str
    expected_revision: int

    @abstractmethod
    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        """What the change will do to ``head``; raises what the change itself would refuse."""

    @abstractmethod
    def apply(self, registry: Registry, actor: str) -> Head:
        """Make the change as ``actor``."""

    def fields(self) -> dict[str, str]:
        """The form fields that make this change again (the confirmation form's hidden inputs)."""
        return {"expected_revision": str(self.expected_revision)}

    def preview(self, registry: Registry) -> list[Effect]:
        """The effects, if the page is not stale (``Conflict`` otherwise)."""
        return self.effects(registry, registry.at_revision(self.name, self.expected_revision))


@dataclass(frozen=True)
class Activate(Change):
    title = "Activate"
    version: int

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        registry.version(self.name, self.version)
        return [Effect("active version", _version_text(head.active_version), _version_text(self.version))]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.activate(self.name, self.version, self.expected_revision, actor)

    def fields(self) -> dict[str, str]:
        return {**super().fields(), "version": str(self.version)}


@dataclass(frozen=True)
class Rollback(Change):
    title = "Roll back"

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        target = registry.rollback_target(head)
        return [Effect("active version", _version_text(head.active_version), _version_text(target))]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.rollback(self.name, self.expected_revision, actor)


@dataclass(frozen=True)
class SetAlias(Change):
    title = "Move alias"
    alias: str
    version: int

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        registry.version(self.name, self.version)
        before = _version_text(head.aliases.get(self.alias))
        return [Effect(f"alias {self.alias}", before, _version_text(self.version))]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.set_alias(self.name, self.alias, self.version, self.expected_revision, actor)

    def fields(self) -> dict[str, str]:
        return {**super().fields(), "alias": self.alias, "version": str(self.version)}


@dataclass(frozen=True)
class SetSplit(Change):
    title = "Set traffic split"
    split: Split

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        for version in self.split.versions:
            registry.version(self.name, version)
        return [Effect("traffic split", _split_text(registry.split(self.name)), _split_text(self.split))]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.set_split(self.name, self.split, self.expected_revision, actor)

    def fields(self) -> dict[str, str]:
        split = self.split
        return {**super().fields(), "arms": split.arms, "seed": split.seed, "coverage": repr(split.coverage)}


@dataclass(frozen=True)
class EndSplit(Change):
    title = "End traffic split"

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        return [Effect("traffic split", _split_text(registry.split(self.name)), "none")]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.end_split(self.name, self.expected_revision, actor)


@dataclass(frozen=True)
class SetShadow(Change):
    title = "Shadow a candidate"
    shadow: Shadow

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        registry.version(self.name, self.shadow.version)
        return [Effect("shadow", _shadow_text(registry.shadow(self.name)), _shadow_text(self.shadow))]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.set_shadow(self.name, self.shadow, self.expected_revision, actor)

    def fields(self) -> dict[str, str]:
        shadow = self.shadow
        extra = {"version": str(shadow.version), "share": repr(shadow.share), "seed": shadow.seed}
        return {**super().fields(), **extra}


@dataclass(frozen=True)
class EndShadow(Change):
    title = "End the shadow"

    def effects(self, registry: Registry, head: Head) -> list[Effect]:
        return [Effect("shadow", _shadow_text(registry.shadow(self.name)), "none")]

    def apply(self, registry: Registry, actor: str) -> Head:
        return registry.end_shadow(self.name, self.expected_revision, actor)


def _fraction(form: Mapping[str, str], field: str) -> float:
    """A share from 0 to 1 (blank: 1); the use case checks the range."""
    text = form.get(field, "").strip() or "1"
    try:
        return float(text)
    except ValueError:
        raise InvalidArgument(
            f"invalid {field} {text!r}", [Problem("a number from 0 to 1", field=field)]
        ) from None


def parse_change(action: str, name: str, form: Mapping[str, str]) -> Change:
    """The change a ruleset page's form asks for; bad fields are refused before anything is shown."""
    revision = number(form, "expected_revision")
    if action == "activate":
        return Activate(name, revision, number(form, "version"))
    if action == "rollback":
        return Rollback(name, revision)
    if action == "alias":
        alias = form.get("alias", "").strip()
        check_alias(alias)
        return SetAlias(name, revision, alias, number(form, "version"))
    if action == "split":
        seed = form.get("seed", "").strip() or name
        return SetSplit(
            name, revision, Split.parse(form.get("arms", "").strip(), seed, _fraction(form, "coverage"))
        )
    if action == "end-split":
        return EndSplit(name, revision)
    if action == "shadow":
        seed = form.get("seed", "").strip() or default_seed(name)
        return SetShadow(name, revision, Shadow(number(form, "version"), _fraction(form, "share"), seed))
    if action == "end-shadow":
        return EndShadow(name, revision)
    raise NotFound(f"no change named {action!r}", [Problem("unknown change", field="action")])
