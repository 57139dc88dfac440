"""The ``strata`` command: check, test and evaluate rule files from a terminal;
serve; manage the database, the rule registry and API tokens.

Output is a readable table by default and JSON with ``--json``. Exit codes:
0 success, 1 a rule file's own test failed (``strata rules test``), 2 bad
input or a refused change (the error says which file, line, rule and
field), 3 the database failed (see ``strata.commands.support``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from strata.commands.db import db
from strata.commands.decisions_cmd import decisions
from strata.commands.population import population
from strata.commands.preview import preview
from strata.commands.profiles import profiles
from strata.commands.registry import REGISTRY_COMMANDS, audit
from strata.commands.serve import serve_command
from strata.commands.tokens import tokens
from strata.engine.decision import Decision
from strata.engine.schema import parse_datetime
from strata.errors import StrataError
from strata.rulefiles.casetests import run_cases
from strata.rulefiles.loader import load_paths

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(exc: StrataError) -> None:
    err.print(f"[bold red]error[/] ({exc.code}): {exc.message}")
    for problem in exc.problems:
        err.print(f"  {problem}", markup=False)
    sys.exit(2)


@click.group()
def main() -> None:
    """Strata: decisions about users from versioned, declarative rule files."""


@main.group()
def rules() -> None:
    """Check and test rule files; publish, activate and roll back their versions in the registry."""


_paths = click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))


@rules.command()
@_paths
def check(paths: tuple[Path, ...]) -> None:
    """Parse and type check rule files without running their tests."""
    try:
        ruleset, names = load_paths(paths)
    except StrataError as exc:
        _fail(exc)
    for name in names:
        compiled = ruleset.compiled[name]
        out.print(f"[green]ok[/] {name} ({compiled.kind}, {compiled.checksum[:19]})")


@rules.command("test")
@_paths
def test_(paths: tuple[Path, ...]) -> None:
    """Run the test cases embedded in rule files."""
    try:
        ruleset, names = load_paths(paths)
    except StrataError as exc:
        _fail(exc)
    failed = total = 0
    for name in names:
        for result in run_cases(ruleset.compiled[name]):
            total += 1
            failed += not result.passed
            if result.passed:
                out.print(f"[green]PASS[/] {result.ruleset}: {result.case}", markup=True)
            else:
                out.print(result.describe(), markup=False, style="red")
    out.print(f"{total - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(f"[bold red]error[/] (invalid_argument): {what} is not valid JSON: {exc}")
        sys.exit(2)


def _render(decision: Decision) -> None:
    data = decision.to_dict()
    summary = Table(title=f"{decision.ruleset} ({decision.checksum[:19]})", show_header=False)
    for key, value in data.items():
        if key not in ("ruleset", "checksum", "explanation"):
            summary.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    out.print(summary)
    why = Table(title="why")
    for column in ("rule", "reason", "facts read"):
        why.add_column(column)
    for hit in data["explanation"]:
        facts = ", ".join(f"{k}={json.dumps(v)}" for k, v in hit["facts"].items())
        why.add_row(hit["rule"], hit["reason"], facts)
    out.print(why)


@main.command("eval")
@click.option("--rules", "rules_file", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--profile", "profile_file", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--as-of", help="ISO 8601 instant; default now (UTC when no zone is given)")
@click.option("--event", "event_json", help='incentive event as JSON, e.g. {"type": "sign_in"}')
@click.option("--json", "as_json", is_flag=True, help="print the decision as JSON")
def eval_(
    rules_file: Path, profile_file: Path, as_of: str | None, event_json: str | None, as_json: bool
) -> None:
    """Evaluate one rule file against one profile and explain the decision."""
    profile = _load_json(profile_file.read_text(encoding="utf-8"), str(profile_file))
    event = _load_json(event_json, "--event") if event_json else None
    try:
        clock = parse_datetime(as_of) if as_of else dt.datetime.now(dt.UTC)
    except ValueError as exc:
        err.print(f"[bold red]error[/] (invalid_argument): --as-of: {exc}")
        sys.exit(2)
    try:
        ruleset, names = load_paths([rules_file])
        decision = ruleset.compiled[names[0]].evaluate(profile, clock, event)
    except StrataError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))
    else:
        _render(decision)


main.add_command(serve_command)
main.add_command(db)
main.add_command(profiles)
main.add_command(population)
main.add_command(tokens)
main.add_command(audit)
main.add_command(decisions)
for command in REGISTRY_COMMANDS:
    rules.add_command(command)
main.add_command(preview)
