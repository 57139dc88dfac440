"""``strata preview`` driven through a subprocess: files, registry versions, JSON, the heatmap, mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strata.registry.service import Registry
from strata.registry.store import RegistryStore
from strata.rulefiles.loader import load_schema
from strata.store import ProfileStore, make_engine, migrate
from strata.store.population import generate_population
from tests.conftest import RULES_DIR
from tests.integration.preview_cases import AS_OF

USERS = 400
JOURNEY = RULES_DIR / "lifecycle.journey.yaml"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database with a population, and lifecycle.journey v1 active in the registry."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'strata.db'}"
    migrate(url)
    engine = make_engine(url)
    schema = load_schema(RULES_DIR / "profile.yaml")
    ProfileStore(engine, schema).import_profiles(generate_population(USERS, seed=5, as_of=AS_OF))
    registry = Registry(RegistryStore(engine), schema)
    registry.publish(JOURNEY.read_text(encoding="utf-8"), "test")
    registry.activate("lifecycle.journey", 1, registry.head("lifecycle.journey").revision, "test")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """journey with churn after 45 days instead of 30 (its own test cases expect 30: dropped)."""
    path = tmp_path_factory.mktemp("rules") / "journey45.yaml"
    path.write_text(
        JOURNEY.read_text(encoding="utf-8").replace("churn_days: 30 ", "churn_days: 45 ").split("\ntests:")[0]
    )
    return path


def preview(database: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRATA_DATABASE_URL": database}
    env.pop("STRATA_READ_DATABASE_URL", None)
    command = [sys.executable, "-m", "strata", "preview", *map(str, args), "--as-of", AS_OF.isoformat()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_a_candidate_file_against_the_active_version_as_json(database: str, candidate: Path) -> None:
    result = preview(database, "lifecycle.journey", "--candidate", candidate, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert (body["method"], body["database"], body["total"]) == ("sql", "sqlite", USERS)
    assert body["baseline"]["label"] == "active (v1)"
    assert body["candidate"]["label"] == str(candidate)
    moves = [cell for cell in body["cells"] if cell["from"] != cell["to"]]
    assert moves == [cell for cell in moves if (cell["from"], cell["to"]) == ("churned", "declining")]
    assert body["changed"] == sum(cell["count"] for cell in moves) > 0
    assert all(cell["samples"] for cell in moves)
    assert sum(body["before"].values()) == sum(body["after"].values()) == USERS


def test_stored_versions_by_number_and_alias_with_a_table_and_a_heatmap(
    database: str, candidate: Path, tmp_path: Path
) -> None:
    engine = make_engine(database)
    registry = Registry(RegistryStore(engine), load_schema(RULES_DIR / "profile.yaml"))
    version = registry.publish(candidate.read_text(encoding="utf-8"), "test").version.version
    registry.set_alias(
        "lifecycle.journey", "canary", version, registry.head("lifecycle.journey").revision, "test"
    )
    engine.dispose()
    image = tmp_path / "matrix.png"
    result = preview(
        database, "lifecycle.journey", "--candidate", "canary", "--against", "1", "--plot", image
    )
    assert result.returncode == 0, result.stderr
    assert f"canary (v{version}) against v1" in result.stdout
    assert "moves" in result.stdout and "churned" in result.stdout and "declining" in result.stdout
    assert image.read_bytes().startswith(b"\x89PNG")


def test_mistakes_are_reported_with_exit_status_2(database: str, candidate: Path) -> None:
    other = preview(database, "segment.rfm", "--candidate", candidate)
    assert other.returncode == 2
    assert "is the ruleset 'lifecycle.journey', not 'segment.rfm'" in other.stderr
    missing = preview(database, "lifecycle.journey", "--candidate", "nightly")
    assert missing.returncode == 2
    assert "no version or alias 'nightly'" in missing.stderr
    incentive = preview(
        database,
        "incentive.levels",
        "--candidate",
        RULES_DIR / "incentive.levels.yaml",
        "--against",
        RULES_DIR / "incentive.levels.yaml",
    )
    assert incentive.returncode == 2
    assert "does not put profiles in classes" in incentive.stderr
