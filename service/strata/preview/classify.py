"""A lifecycle or segment ruleset as one SQL ``CASE``: the class of every profile, in the database.

A lifecycle is first-match over its stages, else its default; a segment
ruleset first scores (1..5 by thresholds, ``missing`` when the value is null),
then is first-match over its segments. Both become
``CASE WHEN <rule 1> THEN 0 WHEN <rule 2> THEN 1 ... ELSE <default's> END``,
the index of the class in ``outcomes(ruleset)``, each condition compiled by
``sqlcompile`` from the rule's text and type checked against the same names
the engine gives it. Tags do not decide the class and are not compiled.

A rule outside the compilable subset does not stop at the first: every one is
listed (``Fallback``) so the preview can say exactly what would run in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from rule_engine import types as re_types

from strata.engine import CompiledRuleset, ProfileSchema
from strata.engine.kinds.lifecycle import LifecycleRuleset
from strata.engine.kinds.segment import SegmentRuleset, scores_type
from strata.engine.ruleset import base_types
from strata.engine.spec import ScoreSpec
from strata.preview.dialects import NotCompilable, SqlDialect, SqlExpr
from strata.preview.sqlcompile import ExpressionCompiler, Record, Sql, StringList, Value, parse
from strata.preview.sqlfacts import SqlFacts
from strata.store.models import FIELD_COLUMNS, PROFILES

DataType = re_types.DataType
CLASSIFYING_KINDS = ("lifecycle", "segment")


@dataclass(frozen=True)
class Fallback:
    """A rule the SQL compiler does not translate, and why."""

    rule: str
    field: str
    reason: str


class RulesetNotCompilable(Exception):
    """Some rules of a ruleset are outside the compilable subset; ``fallbacks`` lists each."""

    def __init__(self, fallbacks: list[Fallback]) -> None:
        super().__init__("; ".join(f"{f.rule} ({f.field}): {f.reason}" for f in fallbacks))
        self.fallbacks = fallbacks


class SqlScope:
    """What every ruleset of one query reads: the dialect, the derived facts, the profile fields.

    Candidate and baseline share one scope, so a fact both read is built once
    (and, on Postgres, computed once per row).
    """

    def __init__(self, dialect: SqlDialect, schema: ProfileSchema) -> None:
        self.dialect = dialect
        self.facts = SqlFacts(dialect)
        self._schema = schema
        self._rule_types = schema.rule_types()

    def field(self, name: str) -> Value:
        """A profile field as rules see it: a typed column, or the document's value."""
        spec = self._schema.fields.get(name)
        if spec is None:
            raise NotCompilable(f"{name!r} is not a profile field")
        container, scalar = spec.type.container, spec.type.scalar
        if container == "list" and scalar == "string":
            return StringList(name)
        if container is not None:
            raise NotCompilable(f"the {container} field {name!r} is not translated to SQL")
        d = self.dialect
        if name in FIELD_COLUMNS:
            column = PROFILES.c[name]
            expr = d.instant(column) if scalar == "datetime" else column
            number = "double" if scalar == "number" else None  # the column is a double
        else:
            expr = d.json_scalar(name, scalar)
            number = ("decimal" if d.exact_decimals else "double") if scalar == "number" else None
        if scalar == "integer":
            number = "int"
        local = scalar == "date"
        return Sql(
            d.local_midnight(expr) if local else expr, self._rule_types[name], number=number, local=local
        )


def _literal(compiler: ExpressionCompiler, value: Any) -> Sql:
    """A constant of the rule file, loaded the way rule-engine loads it (floats by repr)."""
    if isinstance(value, bool):
        return Sql(sa.true() if value else sa.false(), DataType.BOOLEAN, literal=value)
    if isinstance(value, int | float):
        return compiler.number(Decimal(value) if isinstance(value, int) else Decimal(repr(value)))
    return Sql(sa.literal(value, sa.Text()), DataType.STRING, literal=value)


class _RulesetCompiler:
    """Compiles one ruleset's rules, collecting every rule that does not translate."""

    def __init__(self, ruleset: CompiledRuleset[Any], scope: SqlScope, extras: Mapping[str, Value]) -> None:
        self.scope = scope
        self.types = base_types(ruleset.schema.rule_types(), ruleset.constants)
        self.fallbacks: list[Fallback] = []
        self._extras = dict(extras)
        self.compiler = ExpressionCompiler(scope.dialect, self._resolve)
        for name, value in ruleset.constants.items():
            self._extras[name] = _literal(self.compiler, value)

    def _resolve(self, name: str) -> Value:
        """Names in the engine's order: extras (constants, scores), derived facts, profile fields."""
        if name in self._extras:
            return self._extras[name]
        if name in self.scope.facts:
            return Sql(self.scope.facts[name], self.types[name], number="int")
        return self.scope.field(name)

    def add(self, name: str, value: Value, type_: Any) -> None:
        self._extras[name] = value
        self.types[name] = type_

    def compiled(self, rule: str, path: str, build: Callable[[], SqlExpr]) -> SqlExpr | None:
        try:
            return build()
        except NotCompilable as exc:
            self.fallbacks.append(Fallback(rule, path, str(exc)))
            return None

    def condition(self, rule: str, path: str, text: str) -> SqlExpr | None:
        return self.compiled(rule, path, lambda: self.compiler.condition(parse(text, self.types)))

    def first_match(
        self, rules: list[tuple[str, str, str, str]], default: str, classes: list[str]
    ) -> SqlExpr:
        """``CASE`` over (rule id, field path, condition text, result) in order, else ``default``;
        it yields the result's index in ``classes`` (grouping by small integers is cheaper than by text)."""
        whens = []
        for rule, path, text, result in rules:
            condition = self.condition(rule, path, text)
            if condition is not None:
                whens.append((condition, classes.index(result)))
        if self.fallbacks:
            raise RulesetNotCompilable(self.fallbacks)
        return sa.case(*whens, else_=classes.index(default))


def _score(compiler: ExpressionCompiler, spec: ScoreSpec, value: Sql) -> SqlExpr:
    """``strata.engine.kinds.segment.score`` in SQL: 1 + the thresholds reached (or within)."""
    operator = "ge" if spec.better == "higher" else "le"
    total: SqlExpr = sa.literal(1, sa.Integer())
    for threshold in spec.thresholds:
        total = total + sa.case((compiler.compare_to_float(value, operator, threshold), 1), else_=0)
    if value.nullable:
        return sa.case((value.expr.is_(None), spec.missing), else_=total)
    return total


def outcomes(ruleset: CompiledRuleset[Any]) -> list[str]:
    """Every class a lifecycle or segment ruleset can answer, in its order."""
    if isinstance(ruleset, LifecycleRuleset | SegmentRuleset):
        return ruleset.outcomes()
    raise ValueError(f"a {ruleset.kind} ruleset has no classes")


def ruleset_case(ruleset: CompiledRuleset[Any], scope: SqlScope, key: str) -> SqlExpr:
    """The class of each profile under ``ruleset``, as SQL: its index in ``outcomes(ruleset)``.

    ``key`` keeps this ruleset's shared values (its scores) apart from another's.

    Raises ``RulesetNotCompilable`` listing every rule outside the subset.
    """
    if isinstance(ruleset, LifecycleRuleset):
        spec = ruleset.spec
        compiler = _RulesetCompiler(ruleset, scope, {})
        rules = [(r.id, f"stages.{i}.when", r.when, r.result) for i, r in enumerate(spec.stages)]
        return compiler.first_match(rules, spec.default.stage, ruleset.outcomes())
    if isinstance(ruleset, SegmentRuleset):
        segment_spec = ruleset.spec
        compiler = _RulesetCompiler(ruleset, scope, {})
        score_types = dict(compiler.types)  # a score's value cannot read the scores

        def score(name: str) -> Sql:
            """A score as SQL, built when a segment first reads it (unread scores cost nothing)."""

            def build() -> SqlExpr:
                score_spec = segment_spec.scores[name]
                try:
                    value = compiler.compiler.sql(parse(str(score_spec.value), score_types))
                except NotCompilable as exc:
                    raise NotCompilable(f"the score {name!r}: {exc}") from None
                return _score(compiler.compiler, score_spec, value)

            shared = scope.dialect.shared(f"{key}_score_{name}", build, sa.Integer())
            return Sql(shared, DataType.FLOAT, number="int")

        compiler.add("scores", Record(score), scores_type(list(segment_spec.scores)))
        rules = [(r.id, f"segments.{i}.when", r.when, r.result) for i, r in enumerate(segment_spec.segments)]
        return compiler.first_match(rules, segment_spec.default.segment, ruleset.outcomes())
    raise ValueError(
        f"a {ruleset.kind} ruleset does not classify profiles; previews need one of {CLASSIFYING_KINDS}"
    )
