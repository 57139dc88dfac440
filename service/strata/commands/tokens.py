"""``strata tokens``: the bearer tokens that publish rules and, when required, ask for decisions."""

from __future__ import annotations

import click
from rich.table import Table

from strata.access.store import TokenStore
from strata.access.tokens import Role, Tokens
from strata.commands.support import err, open_engine, out, reported_errors, settings


def _tokens() -> Tokens:
    return Tokens(TokenStore(open_engine(settings())))


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens in the database named by STRATA_DATABASE_URL."""


@tokens.command("create")
@click.option("--name", required=True, help="who or what holds the token; audit entries name it")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
def create_command(name: str, role: str) -> None:
    """Print a new token once: only its SHA-256 is stored, so it cannot be shown again."""
    with reported_errors():
        token = _tokens().create(name, role)
    click.echo(token)
    err.print(f"created {role} token {name!r}; store it now, it is not shown again", markup=False)


@tokens.command("list")
def list_command() -> None:
    """The tokens, oldest first (never the tokens themselves)."""
    with reported_errors():
        records = _tokens().records()
    table = Table("name", "role", "created", "status")
    for record in records:
        status = "[red]revoked[/]" if record.revoked else "[green]active[/]"
        table.add_row(record.name, record.role, f"{record.created_at:%Y-%m-%d %H:%M:%S}Z", status)
    out.print(table)


@tokens.command("revoke")
@click.argument("name")
def revoke_command(name: str) -> None:
    """Revoke token NAME; servers refuse it within seconds."""
    with reported_errors():
        _tokens().revoke(name)
    out.print(f"revoked token {name!r}", markup=False)
