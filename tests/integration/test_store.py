"""The profile store against SQLite and Postgres: the same behaviour on both."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from strata.engine.schema import ProfileSchema
from strata.errors import ProfileError
from strata.store import ImportProgress, ProfileStore, make_engine
from strata.store.models import FIELD_COLUMNS, PROFILES
from strata.store.population import generate_population

AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
FULL = {
    "user_id": "u1",
    "registered_at": "2025-01-01T10:00:00+08:00",
    "timezone": "Asia/Tokyo",
    "first_active_date": "2025-01-01",
    "activity_dates": ["2025-01-01", "2026-03-09", "2026-03-10"],
    "last_active_at": "2026-03-10T09:30:00",
    "orders_365d": 3,
    "spend_365d": 99.5,
    "last_order_at": "2026-03-01T08:00:00Z",
    "is_signed_kol": True,
    "membership": "black_card",
    "tags": ["fashion", "travel"],
    "daily_points": {"sign_in": 5},
    "daily_points_date": "2026-03-10",
    "last_sent": {"recall_push": "2026-03-01T00:00:00Z"},
}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def columns(database_url: str, user_id: str) -> dict[str, Any]:
    """The typed columns of one row, instants as aware UTC (SQLite hands them back naive)."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        row = connection.execute(
            select(*(PROFILES.c[name] for name in FIELD_COLUMNS)).where(PROFILES.c.user_id == user_id)
        ).one()
    engine.dispose()
    values = dict(row._mapping)
    for name, value in values.items():
        if isinstance(value, dt.datetime):
            values[name] = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return values


def test_upsert_get_delete_round_trip(store: ProfileStore, schema: ProfileSchema) -> None:
    assert store.get("u1") is None
    store.upsert(FULL)
    stored = store.get("u1")
    assert stored is not None
    assert list(stored) == list(schema.fields)  # complete, defaults filled in, in schema order
    assert schema.parse(stored) == schema.parse(FULL)  # means exactly what was sent
    assert stored["registered_at"] == "2025-01-01T10:00:00+08:00"
    assert stored["last_active_at"] == "2026-03-10T09:30:00+00:00"  # no zone given: UTC
    assert stored["activity_dates"] == FULL["activity_dates"]
    assert stored["level"] == 1 and stored["badges"] == []

    store.upsert({"user_id": "u1", "points": 10})  # a full replacement, not a merge
    replaced = store.get("u1")
    assert replaced is not None and replaced["points"] == 10 and replaced["tags"] == []
    assert store.count() == 1

    assert store.delete("u1") is True
    assert store.delete("u1") is False
    assert store.get("u1") is None and store.count() == 0


def test_user_ids_are_data_not_sql_in_the_one_message_read(store: ProfileStore) -> None:
    """Postgres reads a profile with the id escaped into one libpq message (``store/lookup.py``):
    quotes, backslashes, a statement terminator and non-ASCII must read as the ids they are."""
    hostile = ["o'brien", "a\\b'", "x'; DROP TABLE profiles; --", "E'\\x00'", "用户-1", "$1"]
    for points, user_id in enumerate(hostile):
        store.upsert({"user_id": user_id, "points": points})
    for points, user_id in enumerate(hostile):
        stored = store.get(user_id)
        assert stored is not None and stored["user_id"] == user_id and stored["points"] == points
    assert store.get("' OR '1'='1") is None
    assert store.get("nobody\x00") is None  # no stored id holds NUL (Postgres text cannot)
    assert store.count() == len(hostile)


def test_get_many_reads_several_users_in_one_query(store: ProfileStore) -> None:
    for user_id in ("a", "b", "c"):
        store.upsert({"user_id": user_id, "points": ord(user_id)})
    found = store.get_many(["c", "a", "missing", "a"])
    assert sorted(found) == ["a", "c"] and found["c"]["points"] == ord("c")
    assert store.get_many([]) == {}


def test_columns_mirror_the_document_whichever_path_wrote_them(
    store: ProfileStore, database_url: str
) -> None:
    store.upsert(FULL)
    store.import_profiles([{**FULL, "user_id": "u2"}])  # COPY on Postgres, executemany on SQLite
    single, bulk = columns(database_url, "u1"), columns(database_url, "u2")
    assert single == {**bulk, "user_id": "u1"}
    assert single["registered_at"] == dt.datetime(2025, 1, 1, 2, 0, tzinfo=dt.UTC)
    assert single["first_active_date"] == dt.date(2025, 1, 1)
    assert single["last_order_at"] == dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    assert single["spend_365d"] == 99.5 and single["orders_365d"] == 3
    assert single["is_signed_kol"] is True and single["membership"] == "black_card"
    assert single["last_checkin_date"] is None and single["level"] == 1


def test_an_invalid_profile_is_refused_naming_every_field_and_nothing_changes(store: ProfileStore) -> None:
    store.upsert({"user_id": "u1", "points": 5})
    with pytest.raises(ProfileError) as info:
        store.upsert({"user_id": "u1", "points": "many", "timezone": "Mars/Olympus", "bogus": 1})
    assert {problem.field for problem in info.value.problems} == {"points", "timezone", "bogus"}
    with pytest.raises(ProfileError) as missing:
        store.upsert({"points": 1})
    assert [problem.field for problem in missing.value.problems] == ["user_id"]
    stored = store.get("u1")
    assert stored is not None and stored["points"] == 5 and store.count() == 1


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u1", "points": 2**63}, "points"),
        ({"user_id": "u1", "daily_points": {"sign_in": 2**64}}, "daily_points"),
        ({"user_id": "u1", "tags": ["ok", "bad\x00tag"]}, "tags"),
        ({"user_id": "u1", "last_sent": {"bad\x00key": "2026-03-01T00:00:00Z"}}, "last_sent"),
    ],
)
def test_values_the_columns_cannot_hold_are_refused_on_both_backends(
    store: ProfileStore, profile: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProfileError) as info:
        store.upsert(profile)
    assert [problem.field for problem in info.value.problems] == [field]
    assert store.count() == 0


def test_import_loads_in_batches_replaces_users_and_keeps_the_last_duplicate(
    store: ProfileStore, tmp_path: Path
) -> None:
    store.upsert({"user_id": "u0", "points": 999})
    lines: list[Any] = [{"user_id": f"u{i}", "points": i} for i in range(25)]
    lines += ["", {"user_id": "u3", "points": 333}, {"user_id": "u22", "points": 222}]  # 2nd: same batch
    path = write_jsonl(tmp_path / "profiles.jsonl", lines)
    seen: list[ImportProgress] = []

    report = store.import_jsonl(path, batch_size=7, progress=seen.append)

    assert (report.records, report.invalid, report.problems) == (27, 0, ())
    assert store.count() == 25
    points = {user_id: doc["points"] for user_id, doc in store.get_many(["u0", "u3", "u22", "u24"]).items()}
    assert points == {"u0": 0, "u3": 333, "u22": 222, "u24": 24}
    assert [p.records for p in seen] == [7, 14, 21, 27]
    assert seen[-1].bytes_read == path.stat().st_size


def test_a_bad_line_refuses_the_whole_file_and_names_line_and_field(
    store: ProfileStore, tmp_path: Path
) -> None:
    store.upsert({"user_id": "existing"})
    path = write_jsonl(
        tmp_path / "profiles.jsonl",
        [
            {"user_id": "a"},
            {"user_id": "b"},
            {"user_id": "c"},  # lines 1-3 fill a batch that reaches the database first
            {"user_id": "d", "points": "x"},
            "not json",
            {"user_id": "e"},
            [1, 2],
            {"points": 1},
        ],
    )
    with pytest.raises(ProfileError) as info:
        store.import_jsonl(path, batch_size=2)

    error = info.value
    assert error.message == f"{path}: 4 of 8 records are invalid; nothing was imported"
    assert [(p.line, p.field) for p in error.problems] == [
        (4, "points"),
        (5, None),
        (7, None),
        (8, "user_id"),
    ]
    assert str(error.problems[0]) == f"{path}:4: points: expected an integer, got str"
    assert "not valid JSON" in error.problems[1].message
    assert store.count() == 1 and store.get("a") is None  # the whole file, first batch included


def test_skip_invalid_loads_the_good_lines_and_reports_the_bad(store: ProfileStore, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"user_id": "a"}, "{", {"user_id": "b", "level": 1.5}, {"user_id": "c"}]
    )
    report = store.import_jsonl(path, skip_invalid=True)
    assert (report.records, report.written, report.invalid) == (4, 2, 2)
    assert [(p.line, p.field) for p in report.problems] == [(2, None), (3, "level")]
    assert sorted(store.get_many(["a", "b", "c"])) == ["a", "c"]


def test_a_generated_population_loads_as_generated(store: ProfileStore, schema: ProfileSchema) -> None:
    users = list(generate_population(300, seed=3, as_of=AS_OF))
    report = store.import_profiles(iter(users), batch_size=64)
    assert (report.written, report.invalid) == (300, 0) and store.count() == 300
    stored = store.get_many(user["user_id"] for user in users[:50])
    assert all(schema.parse(stored[user["user_id"]]) == schema.parse(user) for user in users[:50])
