"""Schema migrations, run from code: ``migrate(url)`` is ``alembic upgrade head``.

The Alembic configuration is built here rather than read from an
``alembic.ini``, so the migrations travel inside the package (a wheel or the
Docker image runs them the same way as a checkout) and the only input is the
database URL the service already has.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from strata.errors import StrataError
from strata.store.engine import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaNotReady(StrataError):
    """The database's schema is not at the revision this code expects."""

    code = "failed_precondition"


def alembic_config(url: str | URL) -> Config:
    """An Alembic ``Config`` for ``url`` pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    rendered = normalize_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # ConfigParser interpolation
    return config


def head_revision() -> str | None:
    """The newest revision the packaged migrations define."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(url: str | URL) -> str | None:
    """Bring the database at ``url`` to the newest revision; returns that revision.

    Safe to run on every start and from several replicas at once: on Postgres
    the migration holds an advisory lock, so a second runner waits and then
    finds nothing to do.
    """
    command.upgrade(alembic_config(url), "head")
    return head_revision()


def require_migrated(engine: Engine) -> None:
    """Raise ``SchemaNotReady`` unless the database is at the head revision.

    Checked before using the store so that an unmigrated database gives one
    clear instruction instead of a "no such table" error from deep inside.
    """
    current, head = current_revision(engine), head_revision()
    if current != head:
        shown = engine.url.render_as_string(hide_password=True)
        raise SchemaNotReady(
            f"the database at {shown} is at revision {current or 'none'}, not {head}; run `strata db migrate`"
        )
