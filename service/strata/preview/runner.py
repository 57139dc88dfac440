"""Run an impact preview: classify every stored profile under two rulesets, in one snapshot.

``run_preview`` compiles both rulesets to SQL ``CASE`` expressions and asks the
database for one grouped count:

    SELECT before_class, after_class, count(*), min(user_id), max(user_id)
    FROM (SELECT <baseline CASE>, <candidate CASE>, user_id FROM profiles ...)
    GROUP BY before_class, after_class

That is the whole transition matrix in one pass over the table. If either ruleset has a rule outside the compilable subset, the same
tallies are computed in Python instead: the profiles are streamed in batches
(a server-side cursor on Postgres) and decided by the engine itself; the result
says so (``method``, ``fallbacks``). Either way the work happens in one
read-only snapshot (``SqlDialect.session``) bounded by a timeout, and can run
on a read replica: the caller passes the engine to read from.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from strata.engine import CompiledRuleset
from strata.engine.decision import LifecycleDecision, SegmentDecision
from strata.engine.facts import Clock, Facts
from strata.errors import DeadlineExceeded, EvaluationError, InvalidArgument, Problem, ProfileError
from strata.preview.classify import CLASSIFYING_KINDS, RulesetNotCompilable, SqlScope, outcomes, ruleset_case
from strata.preview.dialects import SqlDialect, SqlExpr, dialect_for
from strata.preview.result import ERROR_CLASS, FallbackNote, Method, PreviewResult, Side, Tally, tabulate
from strata.store.models import PROFILES

DEFAULT_TIMEOUT_S = 300.0
BATCH_SIZE = 5000


@dataclass(frozen=True)
class Version:
    """A ruleset to compare and how to name it in the result (a file, ``v3``, ``active (v2)``)."""

    label: str
    ruleset: CompiledRuleset[Any]

    @property
    def side(self) -> Side:
        return Side(self.label, self.ruleset.checksum)


def run_preview(
    engine: Engine,
    candidate: Version,
    baseline: Version,
    as_of: dt.datetime,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    force_python: bool = False,
    batch_size: int = BATCH_SIZE,
) -> PreviewResult:
    """How the candidate would reclassify every stored profile, compared with the baseline.

    Both must be lifecycle or segment rulesets of the same kind and name.
    ``force_python`` skips SQL (the benchmark's baseline; tests). Raises
    ``InvalidArgument`` for rulesets that cannot be compared and
    ``DeadlineExceeded`` past ``timeout_s``.
    """
    _check_comparable(candidate.ruleset, baseline.ruleset)
    aware = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
    started = time.perf_counter()
    dialect = dialect_for(engine.dialect.name, aware)
    cases, fallbacks = _compile(dialect, candidate, baseline)
    method: Method = "python" if fallbacks or force_python else "sql"
    try:
        with dialect.session(engine, timeout_s) as connection:
            if method == "sql":
                tallies = _sql_tallies(connection, dialect, cases, candidate, baseline)
            else:
                tallies = _python_tallies(
                    connection, candidate, baseline, aware, started + timeout_s, batch_size
                )
    except OperationalError as exc:
        if _timed_out(exc):
            raise DeadlineExceeded(
                f"the preview took longer than {timeout_s:g} s",
                [Problem("raise the timeout", field="timeout")],
            ) from None
        raise
    counts = tabulate(tallies, outcomes(baseline.ruleset), outcomes(candidate.ruleset))
    return PreviewResult(
        ruleset=candidate.ruleset.name,
        kind=candidate.ruleset.kind,
        candidate=candidate.side,
        baseline=baseline.side,
        as_of=aware,
        method=method,
        fallbacks=tuple(fallbacks),
        database=dialect.name,
        elapsed_s=time.perf_counter() - started,
        **counts,
    )


def _check_comparable(candidate: CompiledRuleset[Any], baseline: CompiledRuleset[Any]) -> None:
    if candidate.kind not in CLASSIFYING_KINDS:
        raise InvalidArgument(
            f"a {candidate.kind} ruleset does not put profiles in classes",
            [Problem(f"previews compare {' or '.join(CLASSIFYING_KINDS)} rulesets", field="candidate")],
        )
    if (candidate.kind, candidate.name) != (baseline.kind, baseline.name):
        raise InvalidArgument(
            "the candidate and the baseline are different rulesets",
            [
                Problem(
                    f"{candidate.kind} {candidate.name} vs {baseline.kind} {baseline.name}", field="against"
                )
            ],
        )


def _compile(
    dialect: SqlDialect, candidate: Version, baseline: Version
) -> tuple[dict[str, SqlExpr], list[FallbackNote]]:
    """Both rulesets as CASE expressions over one shared scope, or every rule that is not compilable."""
    scope = SqlScope(dialect, baseline.ruleset.schema)
    cases: dict[str, SqlExpr] = {}
    fallbacks: list[FallbackNote] = []
    sides: list[tuple[Literal["baseline", "candidate"], Version]] = [
        ("baseline", baseline),
        ("candidate", candidate),
    ]
    for side, version in sides:
        try:
            cases[side] = ruleset_case(version.ruleset, scope, side[0])
        except RulesetNotCompilable as exc:
            fallbacks += [FallbackNote(side, f.rule, f.field, f.reason) for f in exc.fallbacks]
    return cases, fallbacks


def _sql_tallies(
    connection: Connection,
    dialect: SqlDialect,
    cases: dict[str, SqlExpr],
    candidate: Version,
    baseline: Version,
) -> list[Tally]:
    # Grouped by shared values, not by the CASEs themselves: Postgres estimates the groups of an
    # expression over table columns as the columns' distinct values (a million: it may then
    # sort every row instead of hashing ten groups), and those of a subquery's column as 200.
    before_class = dialect.shared("before_class", lambda: cases["baseline"], sa.Integer())
    after_class = dialect.shared("after_class", lambda: cases["candidate"], sa.Integer())
    classified = dialect.select(
        before_class.label("before_class"),
        after_class.label("after_class"),
        dialect.ordered(PROFILES.c.user_id).label("user_id"),
    ).subquery("classified")
    grouped = sa.select(
        classified.c.before_class,
        classified.c.after_class,
        sa.func.count(),
        sa.func.min(classified.c.user_id),
        sa.func.max(classified.c.user_id),
    ).group_by(classified.c.before_class, classified.c.after_class)
    before, after = outcomes(baseline.ruleset), outcomes(candidate.ruleset)
    return [
        Tally(before[b], after[a], count, lowest, highest)
        for b, a, count, lowest, highest in connection.execute(grouped)
    ]


def _classify(ruleset: CompiledRuleset[Any], facts: Facts) -> str:
    """The engine's answer: the stage or segment, or ERROR_CLASS when the evaluation fails."""
    try:
        decision = ruleset.decide(facts)
    except EvaluationError:
        return ERROR_CLASS
    if isinstance(decision, LifecycleDecision):
        return decision.stage
    if isinstance(decision, SegmentDecision):
        return decision.segment
    raise TypeError(f"{type(decision).__name__} has no class")


def python_classes(
    candidate: CompiledRuleset[Any],
    baseline: CompiledRuleset[Any],
    document: dict[str, Any],
    as_of: dt.datetime,
) -> tuple[str, str]:
    """(before, after) for one stored profile document, decided by the engine."""
    try:
        profile = baseline.schema.parse(document)
    except ProfileError:
        return ERROR_CLASS, ERROR_CLASS
    facts = baseline.facts(profile, Clock.for_profile(as_of, profile))
    return _classify(baseline, facts), _classify(candidate, facts.rebase(candidate.constants))


def _python_tallies(
    connection: Connection,
    candidate: Version,
    baseline: Version,
    as_of: dt.datetime,
    deadline: float,
    batch_size: int,
) -> list[Tally]:
    cells: dict[tuple[str, str], list[Any]] = {}
    for user_id, document in _stream(connection, deadline, batch_size):
        pair = python_classes(candidate.ruleset, baseline.ruleset, document, as_of)
        cell = cells.get(pair)
        if cell is None:
            cells[pair] = [1, user_id, user_id]
        else:
            cell[0] += 1
            cell[1] = min(cell[1], user_id)
            cell[2] = max(cell[2], user_id)
    return [Tally(before, after, *cell) for (before, after), cell in cells.items()]


def _stream(connection: Connection, deadline: float, batch_size: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (user_id, document), fetched ``batch_size`` at a time; past the deadline, stop."""
    streaming = connection.execution_options(stream_results=True, yield_per=batch_size)
    for batch in streaming.execute(sa.select(PROFILES.c.user_id, PROFILES.c.data)).partitions():
        if time.perf_counter() > deadline:
            raise DeadlineExceeded("the preview ran past its timeout while evaluating in Python")
        yield from ((user_id, document) for user_id, document in batch)


def _timed_out(exc: OperationalError) -> bool:
    """A statement cancelled by Postgres' statement_timeout or SQLite's progress handler."""
    message = str(exc.orig).lower()
    return "statement timeout" in message or "interrupted" in message
