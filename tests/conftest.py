"""Shared fixtures: paths that do not depend on the working directory, and the Postgres server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, find_postgres_server

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    return RULES_DIR


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One Postgres server per test process, for the integration and e2e tests (see tests.postgres)."""
    yield from find_postgres_server()
