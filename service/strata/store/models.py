"""The tables: user profiles, and the rule registry (versions, heads, aliases, audit, tokens).

A profile is stored twice over, on purpose. ``data`` holds the whole
validated document, so the service answers ``get`` from one column and a new
field in ``rules/profile.yaml`` needs no migration to be stored. The fields
that population-wide SQL filters and aggregates on (activity, orders,
contribution, incentives) are also real, typed columns, so that an impact
preview over millions of users is a plain indexed query instead of JSON
extraction. Both are written together from the same parsed profile.

``active_days`` is derived, not a field: the user's distinct active days in
their own zone, sorted (``strata.engine.facts.every_active_day``), a ``date[]``
on Postgres and a JSON array of ISO days on SQLite. Previews count and compare
active days on every row; reading them sorted is a third of the work saved.

Instants are ``timestamp with time zone`` in UTC; calendar days (in the
user's own zone) are ``date``; integers are 64-bit because counters such as
``followers_count`` and ``points`` are unbounded in the schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint and index names, so that later migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on Postgres (indexable, compact, containment operators); JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# Sorted calendar days: date[] on Postgres; JSON text (["2026-03-09", ...]) on SQLite.
DayList = ARRAY(Date()).with_variant(Text(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention every table shares."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        str: Text(),
        int: BigInteger(),
        float: Double(),
        bool: Boolean(),
        dt.date: Date(),
        dt.datetime: DateTime(timezone=True),
    }


class Profile(Base):
    """A user's profile: the full JSON document plus its queryable fields as columns."""

    __tablename__ = "profiles"

    user_id: Mapped[str] = mapped_column(primary_key=True)
    registered_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    timezone: Mapped[str]
    first_active_date: Mapped[dt.date | None]
    last_active_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_order_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    orders_365d: Mapped[int]
    spend_365d: Mapped[float]
    followers_count: Mapped[int]
    posts_30d: Mapped[int]
    likes_received_30d: Mapped[int]
    comments_30d: Mapped[int]
    shares_30d: Mapped[int]
    likes_given_30d: Mapped[int]
    is_signed_kol: Mapped[bool]
    profile_fields_completed: Mapped[int]
    following_count: Mapped[int]
    points: Mapped[int]
    level: Mapped[int]
    streak_days: Mapped[int]
    last_checkin_date: Mapped[dt.date | None]
    membership: Mapped[str | None]
    active_days: Mapped[Any] = mapped_column(DayList)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), index=True)


PROFILES = cast(Table, Profile.__table__)  # declarative classes type it as the wider FromClause
# The columns that mirror a profile field, in table order (user_id first).
FIELD_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in PROFILES.columns if c.name not in ("active_days", "data", "updated_at")
)
# Every column a write sets, in table order: the fields, the active days, the document, the write time.
WRITE_COLUMNS: tuple[str, ...] = (*FIELD_COLUMNS, "active_days", "data", "updated_at")


# The rule registry ---------------------------------------------------------------
#
# Versions are immutable rows; what changes is a ruleset's head (its active
# version and a revision number that every change bumps, for optimistic
# concurrency) and its aliases. Every change is appended to the audit log,
# which is also the change marker replicas poll.

# An autoincrementing 64-bit key: SQLite only autoincrements INTEGER PRIMARY KEY.
BigSerial = BigInteger().with_variant(Integer(), "sqlite")


def _version_key(table: str, column: str) -> ForeignKeyConstraint:
    """A foreign key from ``table``'s (name, ``column``) to the published version it names."""
    return ForeignKeyConstraint(
        ["name", column],
        ["ruleset_versions.name", "ruleset_versions.version"],
        name=f"fk_{table}_{column}_ruleset_versions",
    )


class RulesetVersion(Base):
    """One published rule file: immutable, numbered per ruleset from 1."""

    __tablename__ = "ruleset_versions"
    __table_args__ = (UniqueConstraint("name", "checksum", name="uq_ruleset_versions_name_checksum"),)

    name: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer(), primary_key=True)
    kind: Mapped[str]
    checksum: Mapped[str]
    content: Mapped[str]
    author: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    note: Mapped[str] = mapped_column(server_default="")


class RulesetHead(Base):
    """A ruleset's active version (none until first activated) and its revision."""

    __tablename__ = "ruleset_heads"
    __table_args__ = (_version_key("ruleset_heads", "active_version"),)

    name: Mapped[str] = mapped_column(primary_key=True)
    active_version: Mapped[int | None] = mapped_column(Integer())
    revision: Mapped[int] = mapped_column(server_default="0")


class Alias(Base):
    """A named pointer (``stable``, ``canary``) at one version of a ruleset."""

    __tablename__ = "aliases"
    __table_args__ = (_version_key("aliases", "version"),)

    name: Mapped[str] = mapped_column(primary_key=True)
    alias: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer())


class Split(Base):
    """A ruleset's traffic split: weighted versions (``3:0.5,4:0.5``), a hashing seed and a coverage."""

    __tablename__ = "ruleset_splits"
    __table_args__ = (
        ForeignKeyConstraint(["name"], ["ruleset_heads.name"], name="fk_ruleset_splits_name_ruleset_heads"),
    )

    name: Mapped[str] = mapped_column(primary_key=True)
    arms: Mapped[str]
    seed: Mapped[str]
    coverage: Mapped[float] = mapped_column(Double())


class Shadow(Base):
    """A ruleset's shadow: a candidate version run beside the answering one for a share of the users."""

    __tablename__ = "ruleset_shadows"
    __table_args__ = (
        ForeignKeyConstraint(["name"], ["ruleset_heads.name"], name="fk_ruleset_shadows_name_ruleset_heads"),
        _version_key("ruleset_shadows", "version"),
    )

    name: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer())
    share: Mapped[float] = mapped_column(Double())
    seed: Mapped[str]


AUDIT_ACTIONS = ("publish", "activate", "rollback", "alias", "split", "shadow")


class AuditEntry(Base):
    """Who changed which ruleset when, from which version to which."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(f"action IN {AUDIT_ACTIONS!r}", name="action"),
        Index("ix_audit_log_ruleset_id", "ruleset", "id"),
    )

    id: Mapped[int] = mapped_column(BigSerial, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str]
    action: Mapped[str]
    ruleset: Mapped[str]
    from_version: Mapped[int | None] = mapped_column(Integer())
    to_version: Mapped[int | None] = mapped_column(Integer())
    detail: Mapped[str] = mapped_column(server_default="")


TOKEN_ROLES = ("publisher", "reader")


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored, so a leaked table grants nothing."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(f"role IN {TOKEN_ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(BigSerial, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(unique=True)
    role: Mapped[str]
    token_hash: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    revoked: Mapped[bool] = mapped_column(server_default=false())


RULESET_VERSIONS = cast(Table, RulesetVersion.__table__)
RULESET_HEADS = cast(Table, RulesetHead.__table__)
ALIASES = cast(Table, Alias.__table__)
SPLITS = cast(Table, Split.__table__)
SHADOWS = cast(Table, Shadow.__table__)
AUDIT_LOG = cast(Table, AuditEntry.__table__)
API_TOKENS = cast(Table, ApiToken.__table__)
