"""The profile store: SQLAlchemy models, migrations, bulk loads, synthetic users.

Postgres (psycopg 3) in production, a SQLite file by default. The decision
engine never imports this package; the service hands the engine the profile
documents this package returns.
"""

from strata.store.engine import make_engine
from strata.store.migrate import SchemaNotReady, migrate, require_migrated
from strata.store.profiles import ImportProgress, ImportReport, ProfileStore

__all__ = [
    "ImportProgress",
    "ImportReport",
    "ProfileStore",
    "SchemaNotReady",
    "make_engine",
    "migrate",
    "require_migrated",
]
