"""`strata db`, `strata profiles` and `strata population`, run as a user would, on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from strata.cli import main
from strata.engine.schema import ProfileSchema
from strata.store import ProfileStore, make_engine
from strata.store.migrate import head_revision

AS_OF = "2026-03-10T12:00:00Z"


def strata(database_url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRATA_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "strata", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_migrate_generate_import_and_get(database_url: str, tmp_path: Path, schema: ProfileSchema) -> None:
    before = strata(database_url, "profiles", "get", "u0000042")
    assert before.returncode == 2 and "run `strata db migrate`" in before.stderr

    migrated = strata(database_url, "db", "migrate")
    assert migrated.returncode == 0 and f"is at revision {head_revision()}" in migrated.stdout, (
        migrated.stderr
    )

    users = tmp_path / "users.jsonl"
    generated = strata(
        database_url,
        "population",
        "generate",
        "--users",
        "500",
        "--seed",
        "5",
        "--as-of",
        AS_OF,
        "--out",
        users,
    )
    assert generated.returncode == 0 and "wrote 500 users" in generated.stdout, generated.stderr
    lines = users.read_text().splitlines()
    assert len(lines) == 500

    imported = strata(database_url, "profiles", "import", users, "--batch-size", "128")
    assert imported.returncode == 0 and "imported 500 profiles" in imported.stdout, imported.stderr

    got = strata(database_url, "profiles", "get", "u0000042")
    assert got.returncode == 0, got.stderr
    assert schema.parse(json.loads(got.stdout)) == schema.parse(json.loads(lines[41]))


def test_errors_are_reported_with_their_place_and_exit_code(tmp_path: Path, schema: ProfileSchema) -> None:
    url = f"sqlite:///{tmp_path / 'strata.db'}"
    assert strata(url, "db", "migrate").returncode == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "a"}\n{"user_id": "b", "orders_365d": -1.5}\n')

    refused = strata(url, "profiles", "import", bad)
    assert refused.returncode == 2
    assert "1 of 2 records are invalid; nothing was imported" in refused.stderr
    assert f"{bad}:2: orders_365d: expected an integer, got -1.5" in refused.stderr

    unknown = strata(url, "profiles", "get", "a")  # line 1 was valid, but the file was refused
    assert unknown.returncode == 2 and "(not_found): no profile stored for user 'a'" in unknown.stderr

    loaded = strata(url, "population", "generate", "--users", "300", "--load", "--batch-size", "100")
    assert loaded.returncode == 0 and "loaded 300 users into the database" in loaded.stdout, loaded.stderr
    engine = make_engine(url)
    assert ProfileStore(engine, schema).count() == 300
    engine.dispose()


def test_generate_writes_json_lines_to_stdout_and_refuses_two_destinations() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["population", "generate", "--users", "3", "--as-of", AS_OF])
    assert result.exit_code == 0
    assert [json.loads(line)["user_id"] for line in result.stdout.splitlines()] == [
        "u0000001",
        "u0000002",
        "u0000003",
    ]
    both = runner.invoke(main, ["population", "generate", "--users", "3", "--out", "x.jsonl", "--load"])
    assert both.exit_code == 2 and "--out and --load are alternatives" in both.output
