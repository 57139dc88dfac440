"""Alembic's entry point: run the migrations against the configured URL.

``strata.store.migrate.alembic_config`` supplies the URL; the models'
metadata is the target, so ``alembic revision --autogenerate`` compares the
database with ``strata.store.models``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from strata.store.engine import make_engine
from strata.store.models import Base

# Any fixed 64-bit number: the key of the Postgres advisory lock that
# serializes concurrent migration runs (several replicas starting at once).
MIGRATION_LOCK_KEY = 0x5354524154410001


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: migrate a live database")

url = context.config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("no sqlalchemy.url: build the config with strata.store.migrate.alembic_config")
engine = make_engine(url, pool_size=1)
try:
    with engine.connect() as connection:
        run_migrations(connection)
finally:
    engine.dispose()
