"""The registry's SQL: versions, heads, aliases and the audit log, on Postgres or SQLite.

Every change to a head is a compare-and-set: ``UPDATE ... WHERE revision =
:expected`` in the same transaction as its audit row, so of two writers who
read the same revision exactly one changes anything, on either database,
without holding a lock across the caller's think time. On Postgres the same
transaction sends a ``NOTIFY`` on ``CHANNEL``, delivered to the replicas when
it commits.

Each write transaction begins with a write statement, so SQLite takes its
write lock first (waiting its busy timeout) instead of failing to upgrade a
read snapshot that another writer has moved past.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from strata.registry.records import AuditRecord, Head, VersionRecord
from strata.shadows import Shadow
from strata.splits import Split
from strata.store.models import ALIASES, AUDIT_LOG, RULESET_HEADS, RULESET_VERSIONS, SHADOWS, SPLITS
from strata.store.sql import connect, utc

#: The Postgres notification channel a change to any head is announced on.
CHANNEL = "strata_registry"

_V, _H, _A, _L, _S, _W = RULESET_VERSIONS, RULESET_HEADS, ALIASES, AUDIT_LOG, SPLITS, SHADOWS
_LISTED = (_V.c.name, _V.c.version, _V.c.kind, _V.c.checksum, _V.c.author, _V.c.created_at, _V.c.note)


def _version(row: Sequence[Any], content: str | None = None) -> VersionRecord:
    name, version, kind, checksum, author, created_at, note = row[:7]
    return VersionRecord(name, version, kind, checksum, author, utc(created_at), note, content)


def _audit(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        row.id, utc(row.at), row.actor, row.action, row.ruleset, row.from_version, row.to_version, row.detail
    )


class RegistryStore:
    """SQL over the registry tables; the use cases and their checks live in ``RegistryService``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def _connect(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        return connect(self._engine, write=write, what="the registry database")

    # reads -----------------------------------------------------------------------

    def find_checksum(self, name: str, checksum: str) -> VersionRecord | None:
        query = select(*_LISTED).where(_V.c.name == name, _V.c.checksum == checksum)
        with self._connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _version(row)

    def version(self, name: str, version: int) -> VersionRecord | None:
        """One version with its content."""
        query = select(*_LISTED, _V.c.content).where(_V.c.name == name, _V.c.version == version)
        with self._connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _version(row, row.content)

    def versions(self, name: str) -> list[VersionRecord]:
        """A ruleset's versions, oldest first, without their content."""
        query = select(*_LISTED).where(_V.c.name == name).order_by(_V.c.version)
        with self._connect() as connection:
            return [_version(row) for row in connection.execute(query)]

    def heads(self, name: str | None = None) -> list[Head]:
        """Every ruleset's head (or just ``name``'s), by name.

        One statement, so one snapshot: a head being created by a concurrent
        publish is seen with its first version or not at all.
        """
        latest = select(_V.c.name, func.max(_V.c.version).label("latest"), func.max(_V.c.kind).label("kind"))
        if name is not None:
            latest = latest.where(_V.c.name == name)
        summary = latest.group_by(_V.c.name).subquery()
        query = (
            select(
                _H.c.name,
                _H.c.active_version,
                _H.c.revision,
                summary.c.latest,
                summary.c.kind,
                _A.c.alias,
                _A.c.version.label("alias_version"),
            )
            .join(summary, summary.c.name == _H.c.name)
            .outerjoin(_A, _A.c.name == _H.c.name)
            .order_by(_H.c.name, _A.c.alias)
        )
        with self._connect() as connection:
            rows = connection.execute(query).all()
        aliases: dict[str, dict[str, int]] = {row.name: {} for row in rows}
        for row in rows:
            if row.alias is not None:
                aliases[row.name][row.alias] = row.alias_version
        by_name = {row.name: row for row in rows}  # a head's rows differ only in their alias
        return [
            Head(name, row.kind, row.active_version, row.revision, row.latest, aliases[name])
            for name, row in sorted(by_name.items())
        ]

    def active_versions(self) -> dict[str, int]:
        """Ruleset name -> active version, for every ruleset that has one."""
        query = select(_H.c.name, _H.c.active_version).where(_H.c.active_version.is_not(None))
        with self._connect() as connection:
            return {row.name: row.active_version for row in connection.execute(query)}

    def splits(self) -> dict[str, Split]:
        """Ruleset name -> its traffic split, for every ruleset that has one."""
        with self._connect() as connection:
            return {
                row.name: Split.parse(row.arms, row.seed, row.coverage)
                for row in connection.execute(select(_S))
            }

    def shadows(self) -> dict[str, Shadow]:
        """Ruleset name -> its shadow, for every ruleset that has one."""
        with self._connect() as connection:
            return {
                row.name: Shadow(row.version, row.share, row.seed) for row in connection.execute(select(_W))
            }

    def activations(self, name: str) -> list[AuditRecord]:
        """The ruleset's activations and rollbacks, oldest first: its history of active versions."""
        query = (
            select(_L)
            .where(_L.c.ruleset == name, _L.c.action.in_(("activate", "rollback")))
            .order_by(_L.c.id)
        )
        with self._connect() as connection:
            return [_audit(row) for row in connection.execute(query)]

    def audit(
        self, ruleset: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[AuditRecord]:
        """Audit entries, newest first; ``before`` is an entry id, for paging back."""
        query = select(_L).order_by(_L.c.id.desc()).limit(limit)
        if ruleset:
            query = query.where(_L.c.ruleset == ruleset)
        if before is not None:
            query = query.where(_L.c.id < before)
        with self._connect() as connection:
            return [_audit(row) for row in connection.execute(query)]

    def marker(self) -> int:
        """The newest audit id: it changes whenever anything in the registry does."""
        with self._connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(_L.c.id), 0))).scalar_one())

    # writes ----------------------------------------------------------------------

    def insert_version(
        self, name: str, kind: str, checksum: str, content: str, author: str, note: str
    ) -> VersionRecord:
        """Store the next version of ``name`` (creating its head) and audit it.

        Two concurrent publishes of one ruleset race for the same number or
        checksum; the loser gets ``IntegrityError`` and nothing is stored.
        """
        now = dt.datetime.now(dt.UTC)
        number = select(func.coalesce(func.max(_V.c.version), 0) + 1).where(_V.c.name == name)
        values = {"name": name, "kind": kind, "checksum": checksum, "content": content}
        with self._connect(write=True) as connection:
            version = connection.execute(
                insert(_V)
                .values(**values, version=number.scalar_subquery(), author=author, created_at=now, note=note)
                .returning(_V.c.version)
            ).scalar_one()
            head = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(_H)
            connection.execute(
                head.values(name=name, revision=0).on_conflict_do_nothing(index_elements=["name"])
            )
            self._record(connection, now, author, "publish", name, None, version, note)
        return VersionRecord(name, version, kind, checksum, author, now, note)

    def move_head(
        self, name: str, expected_revision: int, version: int, action: str, actor: str, previous: int | None
    ) -> bool:
        """Make ``version`` active if the head is still at ``expected_revision``; False if it moved."""
        with self._connect(write=True) as connection:
            if not self._bump(connection, name, expected_revision, active_version=version):
                return False
            self._record(connection, dt.datetime.now(dt.UTC), actor, action, name, previous, version, "")
        return True

    def set_alias(
        self, name: str, alias: str, version: int, expected_revision: int, actor: str, previous: int | None
    ) -> bool:
        """Point ``alias`` at ``version`` if the head is still at ``expected_revision``; False if it moved."""
        upsert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(_A)
        statement = upsert.values(name=name, alias=alias, version=version).on_conflict_do_update(
            index_elements=["name", "alias"], set_={"version": version}
        )
        with self._connect(write=True) as connection:
            if not self._bump(connection, name, expected_revision):
                return False
            connection.execute(statement)
            self._record(connection, dt.datetime.now(dt.UTC), actor, "alias", name, previous, version, alias)
        return True

    def set_split(self, name: str, split: Split | None, expected_revision: int, actor: str) -> bool:
        """Set, change or (``None``) end the split if the head is still at ``expected_revision``."""
        if split is None:
            return self._replace(_S, name, None, expected_revision, actor, "split", None, "ended")
        row = {"arms": split.arms, "seed": split.seed, "coverage": split.coverage}
        detail = f"{split.arms} seed={split.seed} coverage={split.coverage!r}"
        return self._replace(_S, name, row, expected_revision, actor, "split", None, detail)

    def set_shadow(self, name: str, shadow: Shadow | None, expected_revision: int, actor: str) -> bool:
        """Set, change or (``None``) end the shadow if the head is still at ``expected_revision``."""
        if shadow is None:
            return self._replace(_W, name, None, expected_revision, actor, "shadow", None, "ended")
        row = {"version": shadow.version, "share": shadow.share, "seed": shadow.seed}
        return self._replace(_W, name, row, expected_revision, actor, "shadow", shadow.version, shadow.detail)

    def _replace(
        self,
        table: Table,
        name: str,
        row: dict[str, Any] | None,
        expected_revision: int,
        actor: str,
        action: str,
        version: int | None,
        detail: str,
    ) -> bool:
        """Replace ``name``'s row of ``table`` by ``row`` (none: delete it) and audit the change, if the
        head is still at ``expected_revision``; False if it moved."""
        with self._connect(write=True) as connection:
            if not self._bump(connection, name, expected_revision):
                return False
            connection.execute(table.delete().where(table.c.name == name))
            if row is not None:
                connection.execute(insert(table).values(name=name, **row))
            self._record(connection, dt.datetime.now(dt.UTC), actor, action, name, None, version, detail)
        return True

    def _bump(self, connection: Connection, name: str, expected: int, **values: Any) -> bool:
        """The compare-and-set: bump the revision only where it is still ``expected``."""
        statement = (
            update(_H)
            .where(_H.c.name == name, _H.c.revision == expected)
            .values(revision=_H.c.revision + 1, **values)
        )
        if connection.execute(statement).rowcount != 1:
            return False
        if self._dialect == "postgresql":
            connection.execute(text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name})
        return True

    @staticmethod
    def _record(
        connection: Connection,
        at: dt.datetime,
        actor: str,
        action: str,
        ruleset: str,
        before: int | None,
        after: int | None,
        detail: str,
    ) -> None:
        connection.execute(
            insert(_L).values(
                at=at,
                actor=actor,
                action=action,
                ruleset=ruleset,
                from_version=before,
                to_version=after,
                detail=detail,
            )
        )
