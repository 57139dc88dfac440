"""``strata decisions tail``: the newest entries of the decision log (STRATA_DECISION_LOG)."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import click

from strata.commands.support import reported_errors, settings
from strata.errors import FailedPrecondition, Problem


@click.group()
def decisions() -> None:
    """The decision log."""


@decisions.command()
@click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path), help="default: STRATA_DECISION_LOG"
)
@click.option("-n", "--lines", type=click.IntRange(0), default=20, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="keep printing entries as they are written")
def tail(path: Path | None, lines: int, follow: bool) -> None:
    """Print the last entries of the decision log, one JSON object a line."""
    with reported_errors():
        configured = settings().decision_log
        path = path or (Path(configured) if configured else None)
        if path is None or not path.is_file():
            raise FailedPrecondition(
                "no decision log to read",
                [Problem("set STRATA_DECISION_LOG (or pass --file) to the file the service writes")],
            )
    with path.open("rb") as log:
        for line in deque(log, maxlen=lines) if lines else ():
            click.echo(line.rstrip(b"\n").decode())
        log.seek(0, 2)
        while follow:
            line = log.readline()
            if line.endswith(b"\n"):
                click.echo(line.rstrip(b"\n").decode())
            else:
                log.seek(-len(line), 1)
                time.sleep(0.2)
