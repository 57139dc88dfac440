"""The composition root: settings in, the services both transports serve out.

The only module that knows every layer: it opens the database, checks it is
migrated, seeds and loads the rule registry, and hands the use cases their
store and rulesets. The transports receive finished services and never read
settings themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from strata.access.store import TokenStore
from strata.access.tokens import Access, Tokens
from strata.config import Settings
from strata.console.backend import Console
from strata.decisionlog import JsonLinesLog
from strata.decisions import DecisionService
from strata.errors import Unavailable
from strata.preview.service import Previews
from strata.profiles import ProfileService, ProfileStore
from strata.registry.seed import seed
from strata.registry.service import Registry
from strata.registry.serving import ActiveRulesets
from strata.registry.store import RegistryStore
from strata.registry.watcher import Watcher
from strata.rulefiles.loader import load_schema
from strata.shadowrunner import ShadowRunner
from strata.store import ProfileStore as SqlProfileStore
from strata.store import make_engine, migrate, require_migrated
from strata.transport.operations import Operations

T = TypeVar("T")


class GuardedStore:
    """A store whose lost-connection errors become ``Unavailable`` (503, retryable).

    Without this a database restart would surface as ``internal`` errors,
    which clients must not retry; SQLAlchemy stays out of the use cases.
    """

    def __init__(self, store: ProfileStore) -> None:
        self._store = store

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except OperationalError as exc:
            raise Unavailable("the profile database is unavailable") from exc

    def get(self, user_id: str) -> dict[str, Any] | None:
        return self._call(lambda: self._store.get(user_id))

    def upsert(self, profile: dict[str, Any]) -> None:
        self._call(lambda: self._store.upsert(profile))

    def delete(self, user_id: str) -> bool:
        return self._call(lambda: self._store.delete(user_id))


@dataclass(frozen=True)
class Services:
    """What a server process serves: the use cases, who may call them, the registry's watcher."""

    decisions: DecisionService
    profiles: ProfileService
    registry: Registry
    access: Access
    store: ProfileStore
    engine: Engine
    watcher: Watcher
    previews: Previews
    active: ActiveRulesets
    tokens: Tokens

    def operations(self) -> Operations:
        """The RPCs both transports serve, over these use cases."""
        return Operations(
            self.decisions, self.profiles, registry=self.registry, access=self.access, previews=self.previews
        )

    def console(self, secret: str) -> Console:
        """What the ops console serves: these use cases; ``secret`` signs its sessions (empty: off)."""
        return Console(self.registry, self.decisions, self.tokens, self.previews, self.active.refresh, secret)

    def ready(self) -> bool:
        """Rulesets are loaded and the database answers."""
        if not self.decisions.rulesets.current().rulesets:
            return False
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError:
            return False
        return True


def build_services(settings: Settings, *, run_migrations: bool = False) -> Services:
    """Open the database named by ``settings`` and load the active rule versions from it.

    An empty registry is first seeded from the rule files (see
    ``strata.registry.seed``). Fails at start-up, not on the first request:
    rule files that do not compile raise ``RuleFileError``; an unmigrated
    database raises ``SchemaNotReady`` unless ``run_migrations`` migrates it
    first. The watcher that hot-reloads activations is returned unstarted.
    """
    schema = load_schema(settings.profile_schema_path)
    if run_migrations:
        migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    require_migrated(engine)
    registry = Registry(RegistryStore(engine), schema)
    seed(registry, settings.rules_dir)
    active = ActiveRulesets(registry)
    active.refresh()
    store = GuardedStore(SqlProfileStore(engine, schema))
    # Previews read the whole population: from a replica when STRATA_READ_DATABASE_URL names one.
    same = settings.read_database_url == settings.database_url
    read_engine = engine if same else make_engine(settings.read_database_url, pool_size=2)
    tokens = Tokens(TokenStore(engine))
    log = JsonLinesLog(settings.decision_log) if settings.decision_log else None
    return Services(
        DecisionService(
            active, store, log=log, log_share=settings.decision_log_share, shadows=ShadowRunner(log)
        ),
        ProfileService(schema, store),
        registry,
        Access(tokens, require_tokens=settings.require_tokens),
        store,
        engine,
        Watcher(active, engine.url),
        Previews(registry, read_engine, schema),
        active,
        tokens,
    )
