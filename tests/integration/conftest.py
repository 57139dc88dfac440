"""Databases for the integration tests: a fresh SQLite file and a fresh Postgres database per test.

Postgres comes from ``tests.postgres`` (a configured server, or a throwaway
cluster); each test gets its own database on it, dropped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
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
from tests.postgres import PostgresServer

BACKENDS = ["sqlite", "postgres"]


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


def settings_for(database_url: str, decision_log: Path | None = None) -> Settings:
    """Tokens required, rules/ seeding the registry, and the decision log (if any) written there."""
    log = "" if decision_log is None else str(decision_log)
    return Settings(database_url=database_url, rules_dir=RULES_DIR, require_tokens=True, decision_log=log)


@pytest.fixture
def live_settings(database_url: str) -> Settings:
    """The settings of ``live``; a test module may override this fixture (to add a decision log)."""
    return settings_for(database_url)


@pytest.fixture
def live(live_settings: Settings) -> Iterator[LiveServers]:
    """gRPC and REST over a registry seeded from rules/ on ``database_url``; tokens required.

    The watcher runs, as in ``strata serve``, so activations reach the decisions.
    """
    services = build_services(live_settings, run_migrations=True)
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
