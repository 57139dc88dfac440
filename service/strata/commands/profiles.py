"""``strata profiles``: load and read stored user profiles."""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson
from rich.progress import DownloadColumn, TextColumn

from strata.commands.support import err, open_store, out, progress_bar, reported_errors, settings
from strata.errors import NotFound, Problem
from strata.store import ImportProgress
from strata.store.profiles import DEFAULT_BATCH_SIZE

batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="profiles written per batch (COPY on Postgres, executemany on SQLite)",
)


@click.group()
def profiles() -> None:
    """Store and read user profiles in the database."""


@profiles.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@batch_size_option
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="load the valid lines and list the invalid ones, instead of refusing the whole file",
)
def import_command(file: Path, batch_size: int, skip_invalid: bool) -> None:
    """Load FILE, JSON Lines with one profile object per line, in one transaction.

    By default any invalid line refuses the whole file: every problem is listed
    with its line number and field, and nothing is written.
    """
    with reported_errors():
        store = open_store(settings())
        started = time.perf_counter()
        with progress_bar(DownloadColumn(), TextColumn("{task.fields[records]:,} profiles")) as bar:
            task = bar.add_task("importing", total=file.stat().st_size, records=0)

            def advance(progress: ImportProgress) -> None:
                bar.update(task, completed=progress.bytes_read, records=progress.records)

            report = store.import_jsonl(
                file, batch_size=batch_size, progress=advance, skip_invalid=skip_invalid
            )
    elapsed = time.perf_counter() - started
    for problem in report.problems:
        err.print(f"  skipped {problem}", markup=False)
    skipped = f"; skipped {report.invalid:,} invalid records" if report.invalid else ""
    rate = report.written / elapsed if elapsed else 0
    out.print(
        f"imported {report.written:,} profiles from {file} in {elapsed:.1f} s ({rate:,.0f}/s){skipped}",
        markup=False,
    )


@profiles.command("get")
@click.argument("user_id")
def get_command(user_id: str) -> None:
    """Print USER_ID's stored profile as JSON."""
    with reported_errors():
        profile = open_store(settings()).get(user_id)
        if profile is None:
            raise NotFound(
                f"no profile stored for user {user_id!r}", [Problem("unknown user", field="user_id")]
            )
    click.echo(orjson.dumps(profile, option=orjson.OPT_INDENT_2).decode())
