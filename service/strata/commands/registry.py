"""``strata rules publish|list|versions|diff|activate|rollback|alias|split|shadow`` and ``strata audit``.

The rule registry from a terminal, working directly on the database named by
STRATA_DATABASE_URL (like ``strata db``), through the same use cases as the
API: a publish is validated, type checked and tested the same way, and every
change quotes the revision last read (``--expected-revision``, shown by
``strata rules list`` and ``versions``). The author or actor recorded is
``--author``/``--actor``, by default the login name.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from rich.table import Table

from strata.commands.support import open_engine, out, reported_errors, settings
from strata.registry.records import Head
from strata.registry.service import Registry
from strata.registry.store import RegistryStore
from strata.rulefiles.loader import load_schema
from strata.shadows import Shadow, default_seed
from strata.splits import Split


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a bare container)
        return "cli"


def _registry() -> Registry:
    config = settings()
    return Registry(RegistryStore(open_engine(config)), load_schema(config.profile_schema_path))


def _when(head: Head) -> str:
    active = f"version {head.active_version} is active" if head.active_version else "nothing is active"
    return f"{head.name}: {active} (revision {head.revision})"


_actor = click.option(
    "--actor", default=_login, show_default="your login name", help="recorded in the audit log"
)
_revision = click.option(
    "--expected-revision",
    "expected_revision",
    type=int,
    required=True,
    help="the revision you last saw (strata rules list); a stale one is refused",
)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note", default="", help="why this version exists")
@click.option("--author", default=_login, show_default="your login name")
def publish(file: Path, note: str, author: str) -> None:
    """Validate, type check and test FILE, then store it as its ruleset's next version."""
    with reported_errors():
        published = _registry().publish(file.read_text(encoding="utf-8"), author, note, source=str(file))
    record = published.version
    if published.created:
        out.print(f"published {record.name} version {record.version} ({record.checksum[:19]})", markup=False)
    else:
        out.print(f"unchanged: {record.name} version {record.version} has this content", markup=False)


@click.command("list")
def list_rulesets() -> None:
    """Every ruleset: its kind, active and latest versions, revision and aliases."""
    with reported_errors():
        heads = _registry().rulesets()
    table = Table("ruleset", "kind", "active", "latest", "revision", "aliases")
    for head in heads:
        aliases = ", ".join(f"{alias}={version}" for alias, version in head.aliases.items())
        active = str(head.active_version) if head.active_version else "-"
        table.add_row(head.name, head.kind, active, str(head.latest_version), str(head.revision), aliases)
    out.print(table)


@click.command()
@click.argument("name")
def versions(name: str) -> None:
    """NAME's versions, oldest first, with who published them and why."""
    with reported_errors():
        registry = _registry()
        head = registry.head(name)
        records = registry.versions(name)
    table = Table("version", "checksum", "author", "published", "note", "", title=_when(head))
    for record in records:
        marks = [alias for alias, version in head.aliases.items() if version == record.version]
        if record.version == head.active_version:
            marks.insert(0, "[bold green]active[/]")
        created = f"{record.created_at:%Y-%m-%d %H:%M:%S}Z"
        table.add_row(
            str(record.version), record.checksum[7:19], record.author, created, record.note, " ".join(marks)
        )
    out.print(table)


@click.command()
@click.argument("name")
@click.argument("from_version", metavar="A", type=int)
@click.argument("to_version", metavar="B", type=int)
def diff(name: str, from_version: int, to_version: int) -> None:
    """What changed in NAME from version A to version B, as a unified diff."""
    with reported_errors():
        text = _registry().diff(name, from_version, to_version)
    if not text:
        out.print(f"{name}: versions {from_version} and {to_version} have the same content", markup=False)
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in text.splitlines():
        out.print(line, style=styles.get(line[:1]), markup=False, highlight=False)


@click.command()
@click.argument("name")
@click.argument("version", type=int)
@_revision
@_actor
def activate(name: str, version: int, expected_revision: int, actor: str) -> None:
    """Make VERSION the one that answers for NAME, on every replica within a second."""
    with reported_errors():
        head = _registry().activate(name, version, expected_revision, actor)
    out.print(_when(head), markup=False)


@click.command()
@click.argument("name")
@_revision
@_actor
def rollback(name: str, expected_revision: int, actor: str) -> None:
    """Make the version that was active before NAME's last activation active again."""
    with reported_errors():
        head = _registry().rollback(name, expected_revision, actor)
    out.print(_when(head), markup=False)


@click.command()
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int)
@_revision
@_actor
def alias(name: str, alias: str, version: int, expected_revision: int, actor: str) -> None:
    """Point ALIAS (stable, canary, ...) of NAME at VERSION."""
    with reported_errors():
        head = _registry().set_alias(name, alias, version, expected_revision, actor)
    out.print(f"{name}: {alias} -> version {head.aliases[alias]} (revision {head.revision})", markup=False)


@click.command()
@click.argument("name")
@click.option(
    "--versions", "arms", help="the arms, VERSION:WEIGHT,... such as 3:0.5,4:0.5 (weights add up to 1)"
)
@click.option("--seed", default="", help="the hashing salt (GrowthBook's experiment seed); NAME when empty")
@click.option(
    "--coverage", type=float, default=1.0, show_default=True, help="the share of users in the split"
)
@click.option("--end", is_flag=True, help="end the split: every user gets the active version")
@_revision
@_actor
def split(
    name: str, arms: str | None, seed: str, coverage: float, end: bool, expected_revision: int, actor: str
) -> None:
    """Split NAME's traffic between versions by a hash of the user id (GrowthBook v2), or --end it.

    Users outside the coverage get the active version; a request that pins a
    version (name@3) is not split.
    """
    if end == bool(arms):
        raise click.UsageError("give either --versions or --end")
    with reported_errors():
        registry = _registry()
        if end:
            head = registry.end_split(name, expected_revision, actor)
            out.print(f"{name}: no split (revision {head.revision})", markup=False)
            return
        chosen = Split.parse(arms or "", seed or name, coverage)
        head = registry.set_split(name, chosen, expected_revision, actor)
    out.print(
        f"{name}: split {chosen.arms} seed={chosen.seed} coverage={chosen.coverage!r} (revision {head.revision})",
        markup=False,
    )


@click.command()
@click.argument("name")
@click.option(
    "--version", "candidate", type=int, help="the candidate version to run beside the answering one"
)
@click.option(
    "--share", type=float, default=1.0, show_default=True, help="the share of users whose requests run it"
)
@click.option("--seed", default="", help="the salt of the users' sample; shadow:NAME when empty")
@click.option("--end", is_flag=True, help="stop running the candidate")
@_revision
@_actor
def shadow(
    name: str,
    candidate: int | None,
    share: float,
    seed: str,
    end: bool,
    expected_revision: int,
    actor: str,
) -> None:
    """Run a candidate version of NAME beside the answering one for a share of the users, or --end it.

    The answer never changes: the candidate runs in the background, its
    agreements and differences are counted (strata_shadow_* metrics) and each
    difference is written to the decision log with both results. Requests
    that pin a version are not shadowed.
    """
    if end == (candidate is not None):
        raise click.UsageError("give either --version or --end")
    with reported_errors():
        registry = _registry()
        if end:
            head = registry.end_shadow(name, expected_revision, actor)
            out.print(f"{name}: no shadow (revision {head.revision})", markup=False)
            return
        chosen = Shadow(candidate or 0, share, seed or default_seed(name))
        head = registry.set_shadow(name, chosen, expected_revision, actor)
    out.print(f"{name}: shadow {chosen.detail} (revision {head.revision})", markup=False)


@click.command()
@click.option("--ruleset", default="", help="only this ruleset's changes")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", type=int, help="only entries older than this id (to page back)")
def audit(ruleset: str, limit: int, before: int | None) -> None:
    """Who changed what in the rule registry, and when, newest first."""
    with reported_errors():
        entries = _registry().audit(ruleset, limit, before)
    table = Table()
    for column in ("id", "at", "actor", "action", "ruleset", "from", "to", "detail"):
        table.add_column(column, no_wrap=column == "at")
    for entry in entries:
        table.add_row(
            str(entry.id),
            f"{entry.at:%Y-%m-%d %H:%M:%S}Z",
            entry.actor,
            entry.action,
            entry.ruleset,
            "-" if entry.from_version is None else str(entry.from_version),
            "-" if entry.to_version is None else str(entry.to_version),
            entry.detail,
        )
    out.print(table)


#: The subcommands of ``strata rules`` that work on the registry.
REGISTRY_COMMANDS = (publish, list_rulesets, versions, diff, activate, rollback, alias, split, shadow)
