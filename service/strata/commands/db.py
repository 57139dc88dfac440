"""``strata db``: the database schema."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from strata.commands.support import out, reported_errors, settings
from strata.store import migrate


@click.group()
def db() -> None:
    """Manage the database named by STRATA_DATABASE_URL."""


@db.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema to the newest revision."""
    with reported_errors():
        url = settings().database_url
        revision = migrate(url)
    shown = make_url(url).render_as_string(hide_password=True)
    out.print(f"{shown} is at revision {revision}", markup=False)
