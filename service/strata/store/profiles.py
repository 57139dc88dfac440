"""The profile store: validated profiles in, JSON profiles out, bulk loads fast.

Every write goes through ``ProfileSchema.parse`` first, so the database only
ever holds profiles that rules can read; a bad profile is refused with the
field named and nothing is written. What is stored is the *normalized*
document: every schema field present (defaults filled in), dates as
``YYYY-MM-DD``, instants as ISO 8601 with the offset they were sent with
(``+00:00`` when none was given). ``get`` returns exactly that, a dict a
client could send back unchanged. The copies in typed columns hold instants
in UTC.

Bulk loads (``import_jsonl``, ``import_profiles``) use the fastest path each
database has: on Postgres, each batch is streamed with ``COPY`` into a
temporary staging table and merged with one ``INSERT ... SELECT ... ON
CONFLICT DO UPDATE``; on SQLite, batches are ``executemany`` upserts. A whole
import is one transaction either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, Text, bindparam, column, delete, func, select, table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.dml import Insert

from strata.engine.facts import every_active_day, profile_zone
from strata.engine.schema import ProfileSchema
from strata.errors import Problem, ProfileError
from strata.store.lookup import ProfileReader
from strata.store.models import FIELD_COLUMNS, PROFILES, WRITE_COLUMNS

if TYPE_CHECKING:
    import psycopg

DEFAULT_BATCH_SIZE = 10_000
MAX_REPORTED_PROBLEMS = 50
_STAGING = "profiles_staging"
_SUPPORTED = {("postgresql", "psycopg"), ("sqlite", "pysqlite")}  # the bulk paths below are written for these
_INT64 = range(-(2**63), 2**63)
# Built once: building it per call cost more than the rest of a read from SQLite (bench/store_bench.py).
_GET = select(PROFILES.c.data).where(PROFILES.c.user_id == bindparam("user_id"))
# The upsert's parameter names, in Row order (the document goes in as text).
_PARAMETERS = (*FIELD_COLUMNS, "active_days", "document", "updated_at")
_SCALAR_OF_PYTHON_TYPE: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dt.date: "date",
    dt.datetime: "datetime",
}

Row = tuple[Any, ...]
# (record number, the raw profile or the error that made it unreadable, bytes read so far)
Record = tuple[int, Any, int | None]


@dataclass(frozen=True)
class ImportProgress:
    """How far an import has got; reported after every batch."""

    records: int
    written: int
    invalid: int
    bytes_read: int | None  # None when the profiles do not come from a file


@dataclass(frozen=True)
class ImportReport:
    """What an import did. ``problems`` lists the first invalid records' problems."""

    records: int
    written: int
    invalid: int
    problems: tuple[Problem, ...]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, tuple):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(item) for key, item in value.items())
    return False


def _unencodable(parsed: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The fields JSON cannot carry (integers past 64 bits inside lists or maps), with why."""
    for name, value in parsed.items():
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError as exc:
            yield name, f"cannot be stored: {exc}"


def check_schema_matches_table(schema: ProfileSchema) -> None:
    """Refuse a profile schema whose fields no longer fit the table's columns.

    The columns copy some fields; if ``profile.yaml`` drops one, changes its
    type or makes it nullable, writes would fail row by row deep inside a
    load. Failing at start-up names the field and says a migration is due.
    """
    problems = []
    for col in PROFILES.columns:
        if col.name not in FIELD_COLUMNS:
            continue
        field = schema.fields.get(col.name)
        expected = _SCALAR_OF_PYTHON_TYPE[col.type.python_type]
        if field is None:
            problems.append(
                Problem("the profiles table stores this field; the schema lacks it", field=col.name)
            )
        elif field.type.container is not None or field.type.scalar != expected:
            problems.append(Problem(f"the profiles table stores it as {expected}", field=col.name))
        elif field.nullable and not col.nullable:
            problems.append(Problem("nullable in the schema, NOT NULL in the profiles table", field=col.name))
    if problems:
        raise ValueError(
            "the profile schema does not match the profiles table (write a migration): "
            + "; ".join(str(problem) for problem in problems)
        )


def _located(exc: ProfileError, source: str | None, number: int) -> list[Problem]:
    if not exc.problems:
        return [Problem(exc.message, file=source, line=number)]
    return [Problem(p.message, file=source, line=number, field=p.field) for p in exc.problems]


def read_jsonl(file: IO[bytes]) -> Iterator[Record]:
    """Records of a JSON Lines file; blank lines are skipped, not counted as errors.

    A line that is not JSON comes through as the ``ProfileError`` describing
    it, so that it is reported with its line number like any invalid profile.
    """
    position = 0
    for number, line in enumerate(file, 1):
        position += len(line)
        if not line.strip():
            continue
        raw: Any
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raw = ProfileError(f"not valid JSON: {exc.msg} (column {exc.colno})")
        yield number, raw, position


class ProfileStore:
    """Profiles in a SQL database (Postgres or SQLite), validated on every write.

    Thread-safe: each call takes its own connection from the engine's pool.
    """

    def __init__(self, engine: Engine, schema: ProfileSchema) -> None:
        if (engine.dialect.name, engine.dialect.driver) not in _SUPPORTED:
            raise ValueError(f"unsupported engine {engine.url}: create it with strata.store.make_engine")
        check_schema_matches_table(schema)
        self._engine = engine
        self._schema = schema
        self._text_fields = tuple(
            name
            for name, field in schema.fields.items()
            if field.type.scalar == "string" or field.type.container == "map"
        )
        self._integer_columns = tuple(
            col.name for col in PROFILES.columns if col.name in FIELD_COLUMNS and col.type.python_type is int
        )
        self._postgres = engine.dialect.name == "postgresql"
        self._reader = ProfileReader(engine) if self._postgres else None
        self._upsert = _upsert_statement(engine.dialect.name)

    # -- one profile at a time ---------------------------------------------

    def get(self, user_id: str) -> dict[str, Any] | None:
        """The stored profile document, or None if there is none for ``user_id``.

        On Postgres through ``lookup``, which reads for all the threads asking
        at once in one query: decisions that name a user pay for this read on
        every request.
        """
        if self._reader is not None:
            found = self._reader.document(user_id)
            data = None if found is None else orjson.loads(found)
        else:
            with self._engine.connect() as connection:
                data = connection.execute(_GET, {"user_id": user_id}).scalar()
        return None if data is None else self._in_schema_order(data)

    def get_many(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored documents by user id, in one query; unknown ids are absent."""
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        query = select(PROFILES.c.user_id, PROFILES.c.data).where(PROFILES.c.user_id.in_(wanted))
        with self._engine.connect() as connection:
            return {user_id: self._in_schema_order(data) for user_id, data in connection.execute(query)}

    def _in_schema_order(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document's keys in schema order: JSONB keeps its own, and people read these."""
        ordered = {name: document[name] for name in self._schema.fields if name in document}
        return ordered | document

    def upsert(self, profile: Mapping[str, Any]) -> None:
        """Validate and store ``profile``, replacing any stored one for its user.

        Raises ``ProfileError`` naming every bad field; nothing is written then.
        """
        row = self._row(profile, dt.datetime.now(dt.UTC))
        with self._engine.begin() as connection:
            connection.execute(self._upsert, dict(zip(_PARAMETERS, row, strict=True)))

    def delete(self, user_id: str) -> bool:
        """Remove the profile; True if there was one."""
        with self._engine.begin() as connection:
            result = connection.execute(delete(PROFILES).where(PROFILES.c.user_id == user_id))
        return result.rowcount > 0

    def count(self) -> int:
        """How many profiles are stored."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(PROFILES)).scalar_one())

    # -- bulk ----------------------------------------------------------------

    def import_jsonl(
        self,
        path: Path,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[ImportProgress], None] | None = None,
        skip_invalid: bool = False,
    ) -> ImportReport:
        """Load a JSON Lines file of profiles (one object per line) in one transaction.

        Bad-line policy: by default the file is all or nothing. Every line is
        validated (all of them, so one run reports every bad line, each
        problem naming its line number and field, the first
        ``MAX_REPORTED_PROBLEMS`` in detail); if any is invalid, the import
        raises ``ProfileError`` and nothing is written. A partly loaded export
        is worse than none: nobody can tell which users are stale, and a
        re-run after fixing the file must give the same database. With
        ``skip_invalid=True`` the valid lines are loaded and the invalid ones
        are counted and reported in the returned ``ImportReport``, for
        exports known to carry some junk.

        A user id seen twice keeps its last line; existing users are replaced.
        """
        with path.open("rb") as file:
            return self._import(read_jsonl(file), batch_size, progress, skip_invalid, str(path))

    def import_profiles(
        self,
        profiles: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[ImportProgress], None] | None = None,
        skip_invalid: bool = False,
    ) -> ImportReport:
        """Load profile mappings in bulk, with the policy of ``import_jsonl``.

        Problems name the profile's position in ``profiles``, counted from 1.
        """
        records = ((number, profile, None) for number, profile in enumerate(profiles, 1))
        return self._import(records, batch_size, progress, skip_invalid, None)

    def _import(
        self,
        records: Iterable[Record],
        batch_size: int,
        progress: Callable[[ImportProgress], None] | None,
        skip_invalid: bool,
        source: str | None,
    ) -> ImportReport:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        count = written = invalid = 0
        problems: list[Problem] = []
        position: int | None = None
        batch: dict[str, Row] = {}
        now = dt.datetime.now(dt.UTC)
        with self._engine.begin() as connection:
            write = self._batch_writer(connection, now)
            for number, raw, position in records:
                count += 1
                try:
                    row = self._row(raw, now)
                except ProfileError as exc:
                    invalid += 1
                    if len(problems) < MAX_REPORTED_PROBLEMS:
                        problems.extend(_located(exc, source, number))
                    if not skip_invalid:
                        batch.clear()  # the import is refused: stop writing, keep validating
                else:
                    if skip_invalid or not invalid:
                        batch[row[0]] = row
                if count % batch_size == 0:
                    written += write(batch.values())
                    batch.clear()
                    if progress:
                        progress(ImportProgress(count, written, invalid, position))
            written += write(batch.values())
            if progress:
                progress(ImportProgress(count, written, invalid, position))
            problems = problems[:MAX_REPORTED_PROBLEMS]
            if invalid and not skip_invalid:
                where = f"{source}: " if source else ""
                raise ProfileError(
                    f"{where}{invalid} of {count} records are invalid; nothing was imported", problems
                )
        return ImportReport(count, written, invalid, tuple(problems))

    # -- internals -------------------------------------------------------------

    def _row(self, raw: Any, now: dt.datetime) -> Row:
        """The values to write for a profile: its field columns, its JSON document, the time.

        Raises ProfileError. Beyond the schema, the store refuses what its
        columns cannot hold: an empty key, integers past 64 bits, and NUL in
        text (Postgres cannot store it; SQLite could, but both backends must
        accept the same profiles).
        """
        if isinstance(raw, ProfileError):
            raise raw
        parsed = self._schema.parse(raw)
        problems = []
        if not parsed["user_id"]:
            problems.append(Problem("must not be empty", field="user_id"))
        problems += [
            Problem("out of range for a 64-bit integer", field=name)
            for name in self._integer_columns
            if parsed[name] not in _INT64
        ]
        try:
            document = orjson.dumps(parsed)
        except orjson.JSONEncodeError:
            problems += [Problem(message, field=name) for name, message in _unencodable(parsed)]
        else:
            if b"\\u0000" in document:  # the cheap test; the walk names the field
                problems += [
                    Problem("text must not contain the NUL character", field=name)
                    for name in self._text_fields
                    if _has_nul(parsed[name])
                ]
        if problems:
            raise ProfileError("invalid profile", problems)
        values = [
            value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value
            for value in (parsed[name] for name in FIELD_COLUMNS)
        ]
        days = every_active_day(parsed, profile_zone(parsed))
        active_days = days if self._postgres else orjson.dumps(days).decode()
        return (*values, active_days, document.decode(), now)

    def _batch_writer(self, connection: Connection, now: dt.datetime) -> Callable[[Iterable[Row]], int]:
        if self._postgres:
            return _PostgresCopyWriter(connection, now)

        def executemany(rows: Iterable[Row]) -> int:
            params = [dict(zip(_PARAMETERS, row, strict=True)) for row in rows]
            if params:
                connection.execute(self._upsert, params)
            return len(params)

        return executemany


def _upsert_statement(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (user_id) DO UPDATE`` setting every other column.

    The document arrives already serialized (as the ``document`` parameter,
    text), so it is encoded once per row, not once more by the JSON type.
    """
    document = bindparam("document", type_=Text())
    update = [name for name in WRITE_COLUMNS if name != "user_id"]
    if dialect == "postgresql":
        on_postgres = postgresql.insert(PROFILES).values(data=sa.cast(document, JSONB))
        excluded = on_postgres.excluded
        return on_postgres.on_conflict_do_update(
            index_elements=["user_id"], set_={name: excluded[name] for name in update}
        )
    on_sqlite = sqlite.insert(PROFILES).values(data=document)
    return on_sqlite.on_conflict_do_update(
        index_elements=["user_id"], set_={name: on_sqlite.excluded[name] for name in update}
    )


class _PostgresCopyWriter:
    """Writes batches with COPY into a staging table, then one merging upsert.

    COPY is Postgres's fastest way in: no statement or parameter binding per
    row. Only the JSON document (and the active days) is copied; the merge fills the typed columns
    from it in SQL (``(data->>'points')::bigint``...), which is cheaper in
    the database than formatting two dozen values per row in Python. The
    staging table exists because COPY cannot resolve conflicts itself; it is
    temporary and dropped at commit, so concurrent imports never see each
    other's rows.
    """

    def __init__(self, connection: Connection, now: dt.datetime) -> None:
        self._connection = connection
        connection.execute(
            text(
                f"CREATE TEMPORARY TABLE {_STAGING} (data jsonb NOT NULL, active_days date[] NOT NULL)"
                " ON COMMIT DROP"
            )
        )
        staging = table(_STAGING, column("data", JSONB), column("active_days"))
        data = staging.c.data
        fields = [
            data[name].astext if col.type.python_type is str else data[name].astext.cast(col.type)
            for name, col in ((name, PROFILES.c[name]) for name in FIELD_COLUMNS)
        ]
        merge = postgresql.insert(PROFILES).from_select(
            list(WRITE_COLUMNS),
            select(*fields, staging.c.active_days, data, sa.literal(now, PROFILES.c.updated_at.type)),
        )
        self._merge = merge.on_conflict_do_update(
            index_elements=["user_id"],
            set_={name: merge.excluded[name] for name in WRITE_COLUMNS if name != "user_id"},
        )

    def __call__(self, rows: Iterable[Row]) -> int:
        raw = cast("psycopg.Connection[Any]", self._connection.connection.driver_connection)
        written = 0
        with raw.cursor() as cursor, cursor.copy(f"COPY {_STAGING} (data, active_days) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((row[-2], row[-3]))  # the document, the active days (see ``_row``)
                written += 1
        if written:
            self._connection.execute(self._merge)
            self._connection.execute(text(f"TRUNCATE {_STAGING}"))
        return written
