"""``strata preview``: what a candidate lifecycle or segment version would do to the whole population.

Reads profiles from STRATA_READ_DATABASE_URL (a read replica, say; by default
STRATA_DATABASE_URL) and, when a version is named rather than a file, the
registry from STRATA_DATABASE_URL. Prints the transition matrix, the moves with
sample user ids and the totals per class; ``--json`` prints the result as JSON
and ``--plot`` also draws the matrix as a heatmap.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from strata.commands.support import open_engine, out, parse_as_of, reported_errors, settings
from strata.config import Settings
from strata.errors import InvalidArgument
from strata.preview import PreviewResult, Version, run_preview
from strata.preview.heatmap import draw_heatmap
from strata.preview.runner import DEFAULT_TIMEOUT_S
from strata.preview.sources import from_file, from_registry, is_file_reference
from strata.registry.service import Registry
from strata.registry.store import RegistryStore
from strata.rulefiles.loader import load_schema
from strata.store import make_engine, require_migrated


class _Sources:
    """Resolves references, opening the registry only if one names a stored version."""

    def __init__(self, config: Settings, name: str) -> None:
        self._config = config
        self._name = name
        self.schema = load_schema(config.profile_schema_path)
        self._registry: Registry | None = None

    def version(self, reference: str) -> Version:
        if is_file_reference(reference):
            return from_file(Path(reference), self._name, self.schema)
        if self._registry is None:
            self._registry = Registry(RegistryStore(open_engine(self._config)), self.schema)
        return from_registry(self._registry, self._name, reference, self.schema)


def _percent(share: float) -> str:
    return f"{share:.1%}" if share >= 0.001 or not share else "<0.1%"


def _render(result: PreviewResult) -> None:
    how = "in SQL" if result.method == "sql" else "in Python (some rules are not compilable to SQL)"
    out.print(
        f"[bold]{result.ruleset}[/]: {result.candidate.label} against {result.baseline.label}, "
        f"as of {result.as_of.isoformat()}; {result.total:,} users, "
        f"[bold]{result.changed:,}[/] ({_percent(result.changed / result.total if result.total else 0)}) "
        f"change class; evaluated {how} on {result.database} in {result.elapsed_s:.2f} s"
    )
    for fallback in result.fallbacks:
        out.print(
            f"  [yellow]python[/] {fallback.side} {fallback.rule} ({fallback.field}): {fallback.reason}"
        )
    rows = [name for name in result.classes if result.before.get(name)]
    columns = [name for name in result.classes if result.after.get(name)]
    counts = {(cell.before, cell.after): cell for cell in result.cells}
    matrix = Table(title="users by class: baseline (rows) -> candidate (columns)")
    matrix.add_column("from \\ to", overflow="fold")
    for column in columns:
        matrix.add_column(column, justify="right", overflow="fold")
    for row in rows:
        values = []
        for column in columns:
            cell = counts.get((row, column))
            if cell is None:
                values.append("")
            else:
                text = f"{cell.count:,}"
                values.append(f"[bold yellow]{text}[/]" if cell.changed else f"[dim]{text}[/]")
        matrix.add_row(row, *values)
    out.print(matrix)
    moves = Table("from", "to", "users", "share", "sample user ids", title="moves")
    for cell in sorted((c for c in result.cells if c.changed), key=lambda c: -c.count):
        moves.add_row(
            cell.before, cell.after, f"{cell.count:,}", _percent(cell.share), ", ".join(cell.samples)
        )
    if moves.row_count:
        out.print(moves)
    totals = Table("class", "before", "after", "change", title="totals")
    for name in result.classes:
        before, after = result.before.get(name, 0), result.after.get(name, 0)
        if before or after:
            totals.add_row(name, f"{before:,}", f"{after:,}", f"{after - before:+,}")
    out.print(totals)


@click.command("preview")
@click.argument("name")
@click.option(
    "--candidate",
    required=True,
    help="the version to try: a rule file, or a stored version number, alias, 'latest' or 'active'",
)
@click.option(
    "--against",
    default="active",
    show_default=True,
    help="what to compare with: a rule file, or a stored version (number, alias, 'latest', 'active')",
)
@click.option("--as-of", help="the instant to classify at (ISO 8601); default now")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="also draw the matrix as a heatmap PNG (needs matplotlib: pip install 'strata[plot]')",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="seconds before the preview is cancelled",
)
def preview(
    name: str,
    candidate: str,
    against: str,
    as_of: str | None,
    as_json: bool,
    plot: Path | None,
    timeout: float,
) -> None:
    """How a candidate version of the lifecycle or segment ruleset NAME would reclassify every stored user.

    One read-only query in the database classifies each profile under both
    versions; rules it cannot translate to SQL are evaluated in Python
    instead (the output says which). Exit status 2 on bad input, 3 if the
    database fails.
    """
    clock = parse_as_of(as_of)
    with reported_errors():
        config = settings()
        sources = _Sources(config, name)
        versions = sources.version(candidate), sources.version(against)
        try:
            engine = make_engine(config.read_database_url)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        require_migrated(engine)
        result = run_preview(engine, *versions, clock, timeout_s=timeout)
        if plot:
            draw_heatmap(result, plot)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        _render(result)
    if plot and not as_json:
        out.print(f"heatmap written to {plot}", markup=False)
