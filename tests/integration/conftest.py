"""Databases for the integration tests: a fresh SQLite file and a fresh Postgres database per test.

Postgres comes from, in order:

1. ``STRATA_TEST_POSTGRES_URL``: a server to use (``.ci/run`` starts one with
   ``scripts/pg_throwaway.sh``); the URL's user must be allowed to create
   databases, because each test gets its own.
2. A throwaway cluster started here with ``initdb`` and ``pg_ctl`` from PATH
   (or Debian's ``/usr/lib/postgresql/*/bin``) in a temporary directory, on a
   free port, as the ``postgres`` user when the tests run as root (initdb
   refuses root), stopped and deleted when the session ends.

If neither works, Postgres tests are skipped, unless ``STRATA_REQUIRE_POSTGRES``
is set (as in CI): then they fail, so a missing database cannot pass silently.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool
from werkzeug.serving import make_server

from strata.access.store import TokenStore
from strata.access.tokens import Tokens
from strata.config import Settings
from strata.engine.schema import ProfileSchema
from strata.registry.service import Registry
from strata.registry.store import RegistryStore
from strata.rulefiles.loader import load_schema
from strata.store import ProfileStore, make_engine, migrate
from strata.transport import grpc_server
from strata.transport.http import create_app
from strata.wiring import Services, build_services
from tests.conftest import RULES_DIR
from tests.e2e.conftest import Clients

BACKENDS = ["sqlite", "postgres"]


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[URL]:
    """Start a Postgres cluster tuned for tests (no fsync); yield its URL; stop and delete it."""
    bindir = _postgres_bin()
    prefix: list[str] = []
    directory = Path(tempfile.mkdtemp(prefix="strata-test-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no postgres user to run initdb") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable("running as root and runuser is missing")
        prefix = [runuser, "-u", "postgres", "--"]
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    data, port = directory / "data", _free_port()

    def run(*command: str | Path) -> None:
        result = subprocess.run(
            [*prefix, *map(str, command)], cwd=directory, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            log = directory / "server.log"
            detail = result.stderr + (log.read_text() if log.exists() else "")
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: {detail.strip()}")

    try:
        run(bindir / "initdb", "-D", data, "-U", "strata", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(
            bindir / "pg_ctl",
            "-D",
            data,
            "-l",
            directory / "server.log",
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        try:
            yield make_url(f"postgresql+psycopg://strata@127.0.0.1:{port}/postgres")
        finally:
            stop = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            subprocess.run(stop, cwd=directory, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
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


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a new database on the Postgres server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'strata.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        server.drop_database(url)


@pytest.fixture(scope="session")
def schema() -> ProfileSchema:
    return load_schema(RULES_DIR / "profile.yaml")


@pytest.fixture
def store(database_url: str, schema: ProfileSchema) -> Iterator[ProfileStore]:
    """A store on a freshly migrated database."""
    migrate(database_url)
    engine = make_engine(database_url, pool_size=2)
    try:
        yield ProfileStore(engine, schema)
    finally:
        engine.dispose()


@pytest.fixture
def registry(database_url: str, schema: ProfileSchema) -> Iterator[Registry]:
    """The rule registry on a freshly migrated, empty database."""
    migrate(database_url)
    engine = make_engine(database_url, pool_size=4)
    try:
        yield Registry(RegistryStore(engine), schema)
    finally:
        engine.dispose()


@dataclass
class LiveServers:
    """Both transports of one seeded service, in this process, and tokens to call them with."""

    services: Services
    clients: Clients
    grpc_port: int
    http_port: int

    def token(self, role: str, name: str | None = None) -> str:
        return Tokens(TokenStore(self.services.engine)).create(name or f"test-{role}", role)


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServers]:
    """gRPC and REST over a registry seeded from rules/ on ``database_url``; tokens required.

    The watcher runs, as in ``strata serve``, so activations reach the decisions.
    """
    settings = Settings(database_url=database_url, rules_dir=RULES_DIR, require_tokens=True)
    services = build_services(settings, run_migrations=True)
    operations = services.operations()
    server, grpc_port = grpc_server.create_server(operations, "127.0.0.1:0", max_workers=4)
    server.start()
    http = make_server("127.0.0.1", 0, create_app(operations), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    services.watcher.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        clients = Clients(f"http://127.0.0.1:{http.server_port}", channel)
        yield LiveServers(services, clients, grpc_port, http.server_port)
    finally:
        services.watcher.stop()
        channel.close()
        http.shutdown()
        server.stop(None)
        services.engine.dispose()
