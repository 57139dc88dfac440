"""What the registry hands out: plain, immutable records, free of SQL and wire types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionRecord:
    """One published version; ``content`` is None in listings, where it is not read."""

    name: str
    version: int
    kind: str
    checksum: str
    author: str
    created_at: dt.datetime
    note: str
    content: str | None = None


@dataclass(frozen=True)
class Head:
    """A ruleset's current state: what is active, its aliases, and the revision to quote back."""

    name: str
    kind: str
    active_version: int | None
    revision: int
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """One change: who did what to which ruleset, from which version to which."""

    id: int
    at: dt.datetime
    actor: str
    action: str  # publish | activate | rollback | alias | split | shadow
    ruleset: str
    from_version: int | None
    to_version: int | None
    detail: str


@dataclass(frozen=True)
class Published:
    """The outcome of a publish: the version, and whether this call stored it."""

    version: VersionRecord
    created: bool
