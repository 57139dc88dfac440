"""The composition root: settings in, the services both transports serve out.

The only module that knows every layer: it opens the database, checks it is
migrated, seeds and loads the rule registry, and hands the use cases their
store and rulesets. The transports receive finished services and never read
settings themselves.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from strata.access.store import TokenStore
from strata.access.tokens import Access, Tokens
from strata.config import RequestLimits, Settings
from strata.console.backend import Console
from strata.decisionlog import JsonLinesLog
from strata.decisions import DecisionService
from strata.errors import Unavailable
from strata.preview.service import Previews
from strata.profiles import ProfileService, ProfileStore
from strata.registry.saved import SavedRulesFile
from strata.registry.seed import seed
from strata.registry.service import Registry
from strata.registry.serving import ActiveRulesets
from strata.registry.store import RegistryStore
from strata.registry.watcher import Watcher
from strata.rulefiles.loader import load_schema
from strata.shadowrunner import ShadowRunner
from strata.store import ProfileStore as SqlProfileStore
from strata.store import make_engine, migrate, require_migrated
from strata.store.guarded import GuardedStore
from strata.transport.operations import Operations

log = logging.getLogger(__name__)


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
    limits: RequestLimits
    decision_log: JsonLinesLog | None = None

    def operations(self) -> Operations:
        """The RPCs both transports serve, over these use cases, within the request limits."""
        return Operations(
            self.decisions,
            self.profiles,
            registry=self.registry,
            access=self.access,
            previews=self.previews,
            limits=self.limits,
        )

    def console(self, secret: str) -> Console:
        """What the ops console serves: these use cases; ``secret`` signs its sessions (empty: off)."""
        return Console(self.registry, self.decisions, self.tokens, self.previews, self.active.refresh, secret)

    def close(self, timeout: float) -> None:
        """Finish what the background queues hold, within ``timeout`` seconds in all, once calls
        have stopped: the shadow runs first (they log their differences), then the decision log."""
        deadline = time.monotonic() + timeout
        if self.decisions.shadows is not None:
            self.decisions.shadows.close(timeout)
        if self.decision_log is not None:
            self.decision_log.close(max(0.0, deadline - time.monotonic()))


YOUNG_COLLECTION_THRESHOLD = 100_000
"""Net new container objects between the collector's young passes in a serving process.

Python's default (700) ran about 35 young passes in a 500-user ``DecideBatch`` (and a middle
pass every ten): each walked the batch's decisions and messages, all still alive until the
answer is sent, so their time bought nothing (about 3% of the batch's instructions, more of its
time: the walks miss the caches). The count is allocations less frees, so it falls back when a
request's objects die; a 1,000-user batch (``MAX_BATCH``) peaks at 60,000-70,000 with the whole
explanation, under this threshold, so a steady serving process runs no pass at all. What it
trades: reference cycles (none in a decision; a caught exception's traceback makes some) are
freed after up to this many allocations instead of 700, a few MB at most.
"""


def prepare_heap_for_serving() -> None:
    """Take what start-up built out of the collector's scans, and space its young passes out.

    Called once a serving process has loaded its services. Every request allocates objects
    that die with it, and the cyclic collector's full passes (every few batches) walked all
    long-lived objects each time too: about 80 ms a pass, 12% of a batch run's CPU (issue 9;
    a 500-user ``DecideBatch`` took 30% less CPU with this). Frozen objects are still freed
    when no longer referenced; only reference cycles among them would stay, a bounded
    one-off for what start-up built. Rulesets loaded later (hot reloads) are not frozen,
    so those can be collected when replaced. See ``YOUNG_COLLECTION_THRESHOLD`` for the
    young passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def build_services(settings: Settings, *, run_migrations: bool = False) -> Services:
    """Open the database named by ``settings`` and load the active rule versions from it.

    An empty registry is first seeded from the rule files (see
    ``strata.registry.seed``). Fails at start-up, not on the first request:
    rule files that do not compile raise ``RuleFileError``; an unmigrated
    database raises ``SchemaNotReady`` unless ``run_migrations`` migrates it
    first. The watcher that hot-reloads activations is returned unstarted.

    A database that cannot be reached is not fatal: the rulesets saved at
    ``settings.rules_snapshot`` are served (or none, and the service is not
    ready), and the watcher finishes this start-up when the database returns.
    """
    schema = load_schema(settings.profile_schema_path)
    engine = make_engine(settings.database_url)
    registry = Registry(RegistryStore(engine), schema)
    active = ActiveRulesets(registry, SavedRulesFile(Path(settings.rules_snapshot), settings.database_url))

    def prepare() -> None:
        if run_migrations:
            migrate(settings.database_url)
        require_migrated(engine)
        seed(registry, settings.rules_dir)
        if not active.refresh() and not active.current().rulesets:
            raise Unavailable("the registry's database is unavailable")

    try:
        prepare()
        pending = None
    except (OperationalError, Unavailable) as exc:
        log.warning("starting without the database (%s)", exc)
        if not active.restore():
            log.error(
                "no saved rulesets in %s: not ready until the database returns", settings.rules_snapshot
            )
        pending = prepare
    store = GuardedStore(SqlProfileStore(engine, schema), settings.database_timeout)
    # Previews read the whole population: from a replica when STRATA_READ_DATABASE_URL names one.
    same = settings.read_database_url == settings.database_url
    read_engine = engine if same else make_engine(settings.read_database_url, pool_size=2)
    tokens = Tokens(TokenStore(engine))
    decision_log = JsonLinesLog(settings.decision_log) if settings.decision_log else None
    return Services(
        DecisionService(
            active,
            store,
            log=decision_log,
            log_share=settings.decision_log_share,
            shadows=ShadowRunner(decision_log),
        ),
        ProfileService(schema, store),
        registry,
        Access(tokens, require_tokens=settings.require_tokens),
        store,
        engine,
        Watcher(active, engine.url, prepare=pending),
        Previews(registry, read_engine, schema),
        active,
        tokens,
        settings.limits,
        decision_log,
    )
