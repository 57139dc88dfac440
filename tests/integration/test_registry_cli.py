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
from tests.registry_files import LIFECYCLE, lifecycle


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


def test_publish_activate_alias_roll_back_and_audit(database_url: str, tmp_path: Path) -> None:
    migrate(database_url)
    first, second = tmp_path / "probe.yaml", tmp_path / "probe-14.yaml"
    first.write_text(lifecycle(7))
    second.write_text(lifecycle(14))

    published = strata(database_url, "rules", "publish", first, "--note", "first cut", "--author", "ana")
    assert published.returncode == 0, published.stderr
    assert f"published {LIFECYCLE} version 1 (sha256:" in published.stdout
    assert f"published {LIFECYCLE} version 2" in run(database_url, "rules", "publish", second).stdout
    unchanged = run(database_url, "rules", "publish", first)
    assert (
        unchanged.exit_code == 0 and f"unchanged: {LIFECYCLE} version 1 has this content" in unchanged.stdout
    )
    listed = run(database_url, "rules", "list").stdout
    assert LIFECYCLE in listed and "lifecycle" in listed

    activated = strata(database_url, "rules", "activate", LIFECYCLE, "1", "--expected-revision", "0")
    assert activated.returncode == 0, activated.stderr
    assert f"{LIFECYCLE}: version 1 is active (revision 1)" in activated.stdout
    stale = run(database_url, "rules", "activate", LIFECYCLE, "2", "--expected-revision", "0")
    assert stale.exit_code == 2 and "(aborted)" in stale.stderr and "at revision 1, not 0" in stale.stderr
    missing = run(database_url, "rules", "activate", LIFECYCLE, "9", "--expected-revision", "1")
    assert missing.exit_code == 2 and "(not_found)" in missing.stderr
    assert (
        "version 2 is active (revision 2)"
        in run(database_url, "rules", "activate", LIFECYCLE, "2", "--expected-revision", "1").stdout
    )

    aliased = run(database_url, "rules", "alias", LIFECYCLE, "stable", "1", "--expected-revision", "2")
    assert f"{LIFECYCLE}: stable -> version 1 (revision 3)" in aliased.stdout
    versions = run(database_url, "rules", "versions", LIFECYCLE).stdout
    assert "revision 3" in versions and "first cut" in versions and "ana" in versions
    assert "stable" in versions and "active" in versions
    diff = run(database_url, "rules", "diff", LIFECYCLE, "1", "2").stdout
    assert "-constants: {window: 7}" in diff and "+constants: {window: 14}" in diff
    rolled = run(database_url, "rules", "rollback", LIFECYCLE, "--expected-revision", "3", "--actor", "dee")
    assert f"{LIFECYCLE}: version 1 is active (revision 4)" in rolled.stdout

    audit = strata(database_url, "audit", "--ruleset", LIFECYCLE)
    assert audit.returncode == 0, audit.stderr
    rows = [line for line in audit.stdout.splitlines() if LIFECYCLE in line]
    actions = ("rollback", "alias", "activate", "publish")
    assert [next(action for action in actions if action in row) for row in rows] == [
        "rollback",
        "alias",
        "activate",
        "activate",
        "publish",
        "publish",
    ]
    assert "dee" in rows[0] and "stable" in rows[1] and "ana" in rows[-1]


def test_a_refused_publish_lists_every_problem_and_stores_nothing(database_url: str, tmp_path: Path) -> None:
    migrate(database_url)
    refusals = {
        "broken.yaml": (lifecycle(when="(days_since_last_active ?? 999) <="), "(invalid_argument)", ":7:"),
        "typed.yaml": (lifecycle(when="timezone > window"), "(invalid_argument)", ":7:"),
        "failing.yaml": (lifecycle(expect="idle"), "(failed_precondition)", ":14:"),
        "large.yaml": (lifecycle() + "#" * 1_000_000, "(resource_exhausted)", "at most 1000000"),
    }
    for name, (content, code, where) in refusals.items():
        path = tmp_path / name
        path.write_text(content)
        refused = run(database_url, "rules", "publish", path)
        assert refused.exit_code == 2, name
        assert code in refused.stderr and where in refused.stderr, (name, refused.stderr)
    assert LIFECYCLE not in run(database_url, "rules", "list").stdout
    assert "publish" not in run(database_url, "audit").stdout
