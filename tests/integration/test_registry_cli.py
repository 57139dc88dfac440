"""`strata tokens`, `strata rules ...` and `strata audit` on SQLite and Postgres, run as a user would.

The main path runs as real subprocesses (the installed entry point, exit
codes, stdout/stderr); the many variations run in-process through click's
runner, which calls the same commands without paying the interpreter start
each time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from strata.access.store import TokenStore
from strata.access.tokens import Principal, Role, Tokens
from strata.cli import main
from strata.errors import Unauthenticated
from strata.store import make_engine, migrate


def strata(database_url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRATA_DATABASE_URL": database_url, "COLUMNS": "200"}
    command = [sys.executable, "-m", "strata", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def run(database_url: str, *args: str | Path) -> Result:
    env = {"STRATA_DATABASE_URL": database_url, "COLUMNS": "200"}
    return CliRunner().invoke(main, [str(arg) for arg in args], env=env)


def test_tokens_are_created_listed_and_revoked(database_url: str) -> None:
    migrate(database_url)
    created = strata(database_url, "tokens", "create", "--name", "ci-bot", "--role", "publisher")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("strata_") and "not shown again" in created.stderr
    engine = make_engine(database_url)
    tokens = Tokens(TokenStore(engine), ttl=0)
    assert tokens.authenticate(f"Bearer {token}") == Principal("ci-bot", Role.PUBLISHER)

    listed = run(database_url, "tokens", "list")
    assert listed.exit_code == 0 and "ci-bot" in listed.stdout and "publisher" in listed.stdout
    assert token not in listed.stdout
    assert run(database_url, "tokens", "revoke", "ci-bot").exit_code == 0
    assert "revoked" in run(database_url, "tokens", "list").stdout
    with pytest.raises(Unauthenticated):
        tokens.authenticate(f"Bearer {token}")
    again = run(database_url, "tokens", "create", "--name", "ci-bot", "--role", "reader")
    assert again.exit_code == 2 and "a token named 'ci-bot' exists" in again.stderr
    engine.dispose()
