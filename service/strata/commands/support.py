"""What the database commands share: settings, the store, ``--as-of`` and error reporting.

Exit codes follow ``strata.cli``: 0 success, 2 a Strata error (bad input, an
unknown user, an unmigrated database), plus 3 when the database itself fails
(unreachable, down), which retrying later may fix.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from strata.config import Settings
from strata.engine.schema import parse_datetime
from strata.errors import InvalidArgument, StrataError
from strata.rulefiles.loader import load_schema
from strata.store import ProfileStore, make_engine, require_migrated

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_STRATA_ERROR = 2
EXIT_DATABASE_ERROR = 3


def fail(exc: StrataError) -> NoReturn:
    err.print(f"[bold red]error[/] ({exc.code}): {exc.message}", markup=True)
    for problem in exc.problems:
        err.print(f"  {problem}", markup=False)
    sys.exit(EXIT_STRATA_ERROR)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn Strata and database errors into one line each and an exit code, not a traceback."""
    try:
        yield
    except StrataError as exc:
        fail(exc)
    except (OperationalError, InterfaceError) as exc:
        err.print(f"[bold red]error[/] (unavailable): the database failed: {exc.orig or exc}", markup=True)
        sys.exit(EXIT_DATABASE_ERROR)


def settings() -> Settings:
    """Settings from the environment; a malformed variable is bad input."""
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def parse_as_of(text: str | None) -> dt.datetime:
    """An ``--as-of`` option's instant (ISO 8601); now, to the second, when it is not given."""
    if text is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


def open_engine(config: Settings) -> Engine:
    """An engine on ``config``'s database, checked to be migrated."""
    try:
        engine = make_engine(config.database_url)
    except ValueError as exc:  # an unsupported URL
        raise InvalidArgument(str(exc)) from None
    require_migrated(engine)
    return engine


def open_store(config: Settings) -> ProfileStore:
    """The profile store of ``config``'s database, checked to be migrated."""
    engine = open_engine(config)
    try:
        return ProfileStore(engine, load_schema(config.profile_schema_path))
    except ValueError as exc:  # a schema the table cannot hold
        raise InvalidArgument(str(exc)) from None


def progress_bar(*counters: ProgressColumn) -> Progress:
    """A progress bar on stderr, so stdout stays clean for data."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        *counters,
        TimeRemainingColumn(),
        console=err,
    )
