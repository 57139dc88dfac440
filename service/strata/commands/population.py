"""``strata population``: a synthetic user population for demos, tests and benchmarks."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.progress import MofNCompleteColumn

from strata.commands.profiles import batch_size_option
from strata.commands.support import open_store, out, parse_as_of, progress_bar, reported_errors, settings
from strata.store import ImportProgress
from strata.store.population import generate_population


@click.group()
def population() -> None:
    """Generate synthetic users (pyramid tiers, lifecycle stages, heavy-tailed activity)."""


@population.command()
@click.option("--users", "count", required=True, type=click.IntRange(min=0), help="how many users")
@click.option("--seed", type=int, default=0, show_default=True, help="the same seed gives the same users")
@click.option("--as-of", help="the instant the population is current at (ISO 8601); default now")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write JSON Lines to this file (default: standard output)",
)
@click.option("--load", is_flag=True, help="store the users straight into the database instead")
@batch_size_option
def generate(
    count: int, seed: int, as_of: str | None, out_file: Path | None, load: bool, batch_size: int
) -> None:
    """Generate --users profiles valid against the profile schema.

    Ids are u0000001, u0000002, ...: loading twice replaces, not duplicates.
    """
    if out_file and load:
        raise click.UsageError("--out and --load are alternatives: choose one")
    users = generate_population(count, seed, parse_as_of(as_of))
    started = time.perf_counter()
    if load:
        with reported_errors():
            store = open_store(settings())
            with progress_bar(MofNCompleteColumn()) as bar:
                task = bar.add_task("generating and loading", total=count)

                def advance(progress: ImportProgress) -> None:
                    bar.update(task, completed=progress.records)

                written = store.import_profiles(users, batch_size=batch_size, progress=advance).written
        done = f"loaded {written:,} users into the database"
    elif out_file:
        with out_file.open("wb") as file, progress_bar(MofNCompleteColumn()) as bar:
            task = bar.add_task("generating", total=count)
            for chunk in _jsonl_chunks(users, batch_size):
                file.write(chunk)
                bar.advance(task, chunk.count(b"\n"))
        done = f"wrote {count:,} users to {out_file}"
    else:
        for chunk in _jsonl_chunks(users, batch_size):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    out.print(f"{done} in {time.perf_counter() - started:.1f} s", markup=False)


def _jsonl_chunks(users: Iterator[dict[str, Any]], size: int) -> Iterator[bytes]:
    """JSON Lines in chunks of ``size`` users: one write per chunk, not per user."""
    lines: list[bytes] = []
    for user in users:
        lines.append(orjson.dumps(user))
        if len(lines) == size:
            yield b"\n".join(lines) + b"\n"
            lines.clear()
    if lines:
        yield b"\n".join(lines) + b"\n"
