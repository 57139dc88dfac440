"""Postgres for the tests: a server the tests may create and drop databases on.

It comes from, in order:

1. ``STRATA_TEST_POSTGRES_URL``: a server to use (``.ci/run`` starts one with
   ``scripts/pg_throwaway.sh``); the URL's user must be allowed to create
   databases, because each test gets its own.
2. A throwaway cluster started here with ``initdb`` and ``pg_ctl`` from PATH
   (or Debian's ``/usr/lib/postgresql/*/bin``) in a temporary directory, on a
   free port, as the ``postgres`` user when the tests run as root (initdb
   refuses root), stopped and deleted when the session ends.

If neither works, Postgres tests are skipped, unless ``STRATA_REQUIRE_POSTGRES``
is set (as in CI): then they fail, so a missing database cannot pass silently.
The ``postgres_server`` fixture (in ``tests/conftest.py``) is one per test
process, shared by the integration and e2e tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests.net import free_port


class PostgresUnavailable(Exception):
    """No Postgres server could be found or started."""


@dataclass(frozen=True)
class PostgresServer:
    """A server the tests may create and drop databases on."""

    url: URL

    def _admin(self) -> URL:
        return self.url.set(drivername="postgresql+psycopg", database="postgres")

    def create_database(self) -> URL:
        name = f"strata_test_{uuid.uuid4().hex[:12]}"
        engine = create_engine(self._admin(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self._admin().set(database=name)

    def drop_database(self, url: URL) -> None:
        engine = create_engine(self._admin(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


def _postgres_bin() -> Path:
    installed = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    newest = max(installed, key=lambda path: float(Path(path).parts[-3]), default=None)
    found = shutil.which("initdb") or newest
    if not found:
        raise PostgresUnavailable("no initdb on PATH or in /usr/lib/postgresql/*/bin")
    return Path(found).resolve().parent


class Cluster:
    """A private Postgres cluster tuned for tests (no fsync), in a temporary directory, on a free port.

    Tests that stop the database on purpose start one of these, so stopping
    it harms nobody else; ``stop`` and ``start`` keep its port and data.
    """

    def __init__(self) -> None:
        self._bindir = _postgres_bin()
        self._prefix: list[str] = []
        self.directory = Path(tempfile.mkdtemp(prefix="strata-test-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no postgres user to run initdb"
                ) from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("running as root and runuser is missing")
            self._prefix = [runuser, "-u", "postgres", "--"]
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._data, self.port = self.directory / "data", free_port()
        self.url = make_url(f"postgresql+psycopg://strata@127.0.0.1:{self.port}/postgres")
        self.running = False
        self._run(
            self._bindir / "initdb",
            "-D",
            self._data,
            "-U",
            "strata",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _run(self, *command: str | Path) -> None:
        result = subprocess.run(
            [*self._prefix, *map(str, command)],
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            log = self.directory / "server.log"
            detail = result.stderr + (log.read_text() if log.exists() else "")
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: {detail.strip()}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.directory / "server.log"
        self._run(
            self._bindir / "pg_ctl", "-D", self._data, "-l", log, "-w", "-t", "60", "-o", options, "start"
        )
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``fast`` ends sessions cleanly; ``immediate`` is a crash)."""
        self._run(self._bindir / "pg_ctl", "-D", self._data, "-m", mode, "-w", "stop")
        self.running = False

    def remove(self) -> None:
        stop = [*self._prefix, str(self._bindir / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "stop"]
        subprocess.run(stop, cwd=self.directory, capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A started ``Cluster``, stopped and deleted afterwards."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[URL]:
    """Start a Postgres cluster tuned for tests (no fsync); yield its URL; stop and delete it."""
    with private_cluster() as cluster:
        yield cluster.url


def find_postgres_server() -> Iterator[PostgresServer]:
    """The configured server, or a throwaway cluster for the session; skips (or fails) without one."""
    configured = os.environ.get("STRATA_TEST_POSTGRES_URL")
    if configured:
        yield PostgresServer(make_url(configured))
        return
    try:
        with _throwaway_cluster() as url:
            yield PostgresServer(url)
    except PostgresUnavailable as exc:
        if os.environ.get("STRATA_REQUIRE_POSTGRES"):
            pytest.fail(f"STRATA_REQUIRE_POSTGRES is set but Postgres is unavailable: {exc}")
        pytest.skip(f"Postgres unavailable ({exc}); set STRATA_TEST_POSTGRES_URL to run these tests")
